"""The planning notebook: headless with papermill, and with a form when a person runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import papermill as pm
import pytest
import yaml

from helpers import EXAMPLE_SITE, variant

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PLAN = NOTEBOOKS / "01_plan_networks.ipynb"


def execute(tmp_path: Path, site: Path):
    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(str(PLAN), str(out), parameters={"site_file": str(site), "output_dir": str(tmp_path)},
                        cwd=str(NOTEBOOKS), progress_bar=False, kernel_name="python3")
    return json.loads(out.read_text())


ROOT = NOTEBOOKS.parent
PAPERMILL = Path(sys.executable).with_name("papermill")


def test_parameters_cell_defaults_point_at_the_example_site():
    params = pm.inspect_notebook(str(PLAN))
    assert params["site_file"]["inferred_type_name"] == "str"
    assert (ROOT / json.loads(params["site_file"]["default"])).resolve() == EXAMPLE_SITE
    assert params["site_file"]["help"]  # every parameter carries a comment


def _source_tree_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored", "--", "notebooks"], cwd=ROOT,
                          capture_output=True, text=True).stdout


@pytest.mark.parametrize("where", ["repository root", "elsewhere"])
def test_papermill_by_hand_with_the_defaults_works_from_anywhere_and_writes_beside_no_notebook(tmp_path, where):
    """`papermill notebooks/01_plan_networks.ipynb out.ipynb` once failed from the repository root,
    and a run by hand wrote its picture into notebooks/."""
    before = _source_tree_status()
    cwd = ROOT if where == "repository root" else tmp_path
    notebook = "notebooks/01_plan_networks.ipynb" if cwd == ROOT else str(PLAN)
    runs = tmp_path / "runs"
    result = subprocess.run([str(PAPERMILL), notebook, str(tmp_path / "out.ipynb")], cwd=cwd, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "TKGS_RUNS_DIR": str(runs)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p.name for p in (runs / "lab01-by-hand").iterdir()} == {"address-space.png", "anyip-routes.cfg"}
    assert _source_tree_status() == before


def test_a_relative_site_file_that_is_nowhere_names_where_it_was_looked_for(tmp_path, monkeypatch):
    from tkgs_lib.errors import SiteError
    from tkgs_lib.paths import CHECKOUT, site_file_path

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SiteError) as failure:
        site_file_path("sites/nope.yaml")
    assert str(tmp_path / "sites/nope.yaml") in str(failure.value) and str(CHECKOUT / "sites/nope.yaml") in str(failure.value)
    assert site_file_path("examples/example-site.yaml") == EXAMPLE_SITE  # from the checkout


def test_headless_run_on_the_example_passes_and_shows_tables_and_picture(tmp_path):
    nb = execute(tmp_path, EXAMPLE_SITE)
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    html = " ".join(o.get("data", {}).get("text/html", "") if isinstance(o.get("data", {}).get("text/html"), str)
                    else "".join(o.get("data", {}).get("text/html", [])) for o in outputs)
    assert "10.64.8.50" in html and "255.255.248.0" in html  # allocation and subnet tables
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert (tmp_path / "address-space.png").exists()
    assert not any(o["output_type"] == "error" for o in outputs)
    # Headless: no widget form is rendered, so nothing waits on a callback.
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


def test_headless_run_on_a_broken_site_fails_with_the_sentence_not_a_traceback(tmp_path):
    site = tmp_path / "broken.yaml"
    site.write_text(yaml.safe_dump(variant({"haproxy.load_balancer_ranges": ["10.64.0.1/23"]})))
    with pytest.raises(pm.PapermillExecutionError) as failure:
        execute(tmp_path, site)
    assert failure.value.ename == "ValidationFailed"
    assert "haproxy.load_balancer_ranges[0]" in failure.value.evalue
    assert failure.value.traceback == [f"ValidationFailed: {failure.value.evalue}"]


def test_a_person_running_the_notebook_gets_the_parameter_form(tmp_path):
    """Run the first cells in a real kernel the way JupyterLab does (allow_stdin=True)."""
    from jupyter_client.manager import start_new_kernel

    nb = json.loads(PLAN.read_text())
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(NOTEBOOKS))
    try:
        displayed = []
        for cell in nb["cells"][:3]:
            if cell["cell_type"] != "code":
                continue
            msg_id = kc.execute("".join(cell["source"]), allow_stdin=True)
            while True:
                msg = kc.get_iopub_msg(timeout=60)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "error":
                    pytest.fail("\n".join(msg["content"]["traceback"]))
                if msg["msg_type"] == "display_data":
                    displayed.append(msg["content"]["data"])
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    break
        assert any("application/vnd.jupyter.widget-view+json" in d for d in displayed)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
