"""One run contract: a stage is a registry entry (what it needs, takes and provides), a module and a
notebook, and every way of running stages (`run`, a fleet, the index) picks it up from the registry; a
stage started without what it needs stops before its kernel starts, in one sentence.

The extra stage here is registered as a person would add one of their own (TKGS_EXTRA_STAGES), in a
folder of its own beside a copy of the notebooks: the product's code is not touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import EXAMPLE_SITE
from test_cli import write_site

SCRIPT = Path(sys.executable).with_name("tkgs-runbook")
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

MODULE = '''
"""An audit of one's own: it reads the site, plans nothing, and reports the appliance's VM."""
from tkgs_lib.display.tables import Table
from tkgs_lib.planning import Plan
from tkgs_lib.stages import Stage
from tkgs_lib.stages.provided import ApplianceVm

STAGE = Stage("audit", "07_audit_site.ipynb", "Audit the site", ("site_file", "output_dir"), needs=(ApplianceVm,))


def read_facts(run):
    return {"site": run.site.site, "vm": run.provided.get(ApplianceVm)}


def plan(run, facts):
    return Plan(STAGE.title)


def reports(run, facts):
    vm = facts["vm"]
    return {"what the audit read": Table([{"what": "site", "value": facts["site"]},
                                          {"what": "appliance VM", "value": f"{vm.name} ({vm.moid})"}],
                                         ["what", "value"])}
'''
CELLS = ["from tkgs_lib.stages.flow import StageRun\nrun = StageRun.start('audit', site_file, output_dir)\nrun",
         "plan = run.plan()\nplan", "run.carry_out(plan, False)", "run.reports()",
         "from pathlib import Path\nPath(output_dir, 'audit-ran.txt').write_text('the audit ran')"]


@pytest.fixture
def audit(tmp_path):
    """The environment that registers the audit: its module on the path, its notebook beside the runbook's."""
    return registered(tmp_path, CELLS)


def registered(tmp_path: Path, cells: list[str]) -> dict:
    """The environment that registers the audit, its notebook made of ``cells`` after the parameters."""
    code = tmp_path / "extra"
    code.mkdir()
    (code / "site_audit.py").write_text(MODULE)
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    parameters = nbformat.v4.new_code_cell('site_file: str = ""  # the site\noutput_dir: str = ""  # the run folder\n',
                                           metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(cells=[parameters, *(nbformat.v4.new_code_cell(c) for c in cells)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(notebooks / "07_audit_site.ipynb"))
    return {**os.environ, "TKGS_EXTRA_STAGES": "site_audit", "TKGS_NOTEBOOKS": str(notebooks),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH", "")]))}


def run(*args, env, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300, env=env,
                          cwd=cwd)


def test_a_stage_started_without_what_it_needs_stops_before_its_kernel_starts(audit, tmp_path):
    folder = tmp_path / "run"
    result = run("run", EXAMPLE_SITE, "--stages", "audit", "--run-folder", folder, env=audit)
    assert result.returncode == 1, result.stdout + result.stderr
    sentence = (f"error: stage 'audit' needs the appliance's VM, which no stage of the run folder {folder} provided: "
                f"run stage 'deploy' into it first (--run-folder).")
    assert sentence in result.stderr.splitlines(), result.stderr
    assert "Traceback" not in result.stderr
    assert not list(folder.glob("*.ipynb")) and not (folder / "audit-ran.txt").exists()  # no kernel started
    (entry,) = json.loads((folder / "stages.json").read_text())["stages"]
    assert (entry["stage"], entry["status"]) == ("audit", "failed")
    assert entry["error"] == sentence.removeprefix("error: ")


def test_an_extra_stage_runs_through_run_the_fleet_and_the_index(audit, tmp_path):
    from tkgs_lib.stages.provided import ApplianceVm, provide

    help_text = run("run", "--help", env=audit).stdout
    assert "audit" in help_text and "Audit the site" in help_text  # the CLI lists it from the registry

    folder = tmp_path / "run"
    provide(folder, ApplianceVm("haproxy01", "vm-42"))  # as the deploy stage leaves it in the folder
    result = run("run", EXAMPLE_SITE, "--stages", "networks", "audit", "--run-folder", folder, env=audit)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (folder / "audit-ran.txt").read_text() == "the audit ran"
    stages = json.loads((folder / "stages.json").read_text())["stages"]
    assert [(e["stage"], e["status"]) for e in stages] == [("networks", "ok"), ("audit", "ok")]
    index = (folder / "index.html").read_text()
    assert "Audit the site" in index and 'href="07_audit_site.html"' in index
    assert "haproxy01 (vm-42)" in (folder / "07_audit_site.html").read_text()

    second = write_site(tmp_path, {"site": "lab02"}, name="lab02.yaml")
    fleet = run("run", EXAMPLE_SITE, second, "--stages", "audit", "--output", tmp_path / "fleet", env=audit)
    assert fleet.returncode == 1, fleet.stdout  # neither site's folder holds the appliance's VM
    (folder,) = (tmp_path / "fleet").iterdir()
    sites = json.loads((folder / "fleet.json").read_text())["sites"]
    assert [(s["site"], s["outcome"]) for s in sites] == [("lab01", "failed at audit"), ("lab02", "failed at audit")]
    assert "<th>audit</th>" in (folder / "index.html").read_text()


LEARNED = "learned-canary-read-at-run-time-7f3"
LEARNED_CELL = ("from tkgs_lib.credentials import learned_secret, plain\n"
                f"key = learned_secret({LEARNED!r})  # as a stage reads one off the appliance\nprint(plain(key))")


def test_a_secret_a_stage_reads_at_run_time_is_scrubbed_from_its_record(tmp_path):
    """Not every secret is named by the site: the upgrade stage reads the running appliance's CA key over SSH.
    The kernel hands it to the runner (credentials.learned_secret), which scrubs it from the stage's record."""
    folder = tmp_path / "run"
    env = registered(tmp_path, [CELLS[0], LEARNED_CELL])
    provide_vm(folder)
    result = run("run", EXAMPLE_SITE, "--stages", "audit", "--run-folder", folder, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    notebook, page = (folder / "07_audit_site.ipynb").read_text(), (folder / "07_audit_site.html").read_text()
    assert LEARNED not in notebook and LEARNED not in page and LEARNED not in result.stdout + result.stderr
    assert "********" in notebook  # where it was printed


def test_a_secret_a_stage_read_at_run_time_left_encoded_in_the_run_folder_stops_the_run(tmp_path):
    """Scrubbing masks its plain forms; the scan after the stage looks for it encoded too, as for the site's."""
    folder = tmp_path / "run"
    leak = ("import base64, pathlib\npathlib.Path(output_dir, 'leak.txt').write_text("
            "base64.b64encode(plain(key).encode()).decode())")
    env = registered(tmp_path, [CELLS[0], LEARNED_CELL.replace("print(plain(key))", leak)])
    provide_vm(folder)
    result = run("run", EXAMPLE_SITE, "--stages", "audit", "--run-folder", folder, env=env)
    assert result.returncode == 1, result.stdout
    assert "after stage 'audit' a secret value was found in leak.txt (encoded): the run stops." in result.stderr, \
        result.stderr[-3000:]
    assert LEARNED not in result.stdout + result.stderr


def provide_vm(folder: Path) -> None:
    from tkgs_lib.stages.provided import ApplianceVm, provide

    provide(folder, ApplianceVm("haproxy01", "vm-42"))  # as the deploy stage leaves it in the folder
