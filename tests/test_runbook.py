"""The runner: each stage's notebook must declare every parameter the stage passes it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tkgs_lib.errors import TkgsError
from tkgs_lib.runner.site_run import run_site
from tkgs_lib.stages import StageCall
from tkgs_lib.site import load_site
from tkgs_lib.stages import STAGES, select_stages

ROOT = Path(__file__).resolve().parent.parent


def test_every_stage_notebook_declares_the_parameters_its_stage_passes():
    import papermill as pm

    for stage in STAGES:
        declared = pm.inspect_notebook(str(ROOT / "notebooks" / stage.notebook))
        assert set(stage.parameters) <= set(declared), stage.name


def test_the_runner_refuses_a_notebook_that_lacks_a_parameter(tmp_path):
    """papermill would drop the undeclared site_file silently, and the notebook would run on its
    default site; the runner stops first and says which parameter is missing."""
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    plan_notebook = notebooks / "01_plan_networks.ipynb"
    nb = json.loads(plan_notebook.read_text())
    for cell in nb["cells"]:
        if "parameters" in cell["metadata"].get("tags", []):
            cell["source"] = "".join(line for line in cell["source"] if not line.startswith("site_file"))
    plan_notebook.write_text(json.dumps(nb))
    site = load_site(ROOT / "examples" / "example-site.yaml")
    with pytest.raises(TkgsError) as refused:
        list(run_site(site, [StageCall(s) for s in select_stages(["networks"])], tmp_path / "run", notebooks=notebooks,
                      progress=False))
    assert "does not declare the parameter(s) site_file" in str(refused.value)
    assert not (tmp_path / "run" / "01_plan_networks.ipynb").exists()  # nothing was executed


def test_stage_notebooks_hold_no_protocol_code():
    """The plan/check/apply/read-again protocol lives in the library (StageRun.carry_out): a stage
    notebook's cells read as the article's steps."""
    for stage in STAGES:
        nb = json.loads((ROOT / "notebooks" / stage.notebook).read_text())
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        for protocol in (".raise_for_blockers(", ".apply(", "to_csv", "is_noop", "if apply", "assert "):
            assert protocol not in code, f"{stage.notebook} spells out the protocol: {protocol}"


def test_site_validation_imports_no_transport():
    """Validating a site reaches for nothing above it: no vSphere client, no appliance transport."""
    import subprocess
    import sys

    code = ("import sys; from tkgs_lib.site import load_site; from tkgs_lib.site.layout import network_layout; "
            f"network_layout(load_site({str(ROOT / 'examples' / 'example-site.yaml')!r})); "
            "print(sorted(m for m in sys.modules if m.startswith(('tkgs_lib.vsphere', 'tkgs_lib.appliance', "
            "'tkgs_lib.stages', 'pyVmomi', 'requests'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_secret_that_reaches_the_run_folder_encoded_fails_the_run_naming_the_file(tmp_path, monkeypatch):
    """The scrubber masks a secret's plain forms; the scan after each stage catches what it cannot
    (here a stage that wrote it base64-encoded): the run stops and names the file, never the value."""
    import base64

    from tkgs_lib.errors import StageFailed

    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    plan_notebook = notebooks / "01_plan_networks.ipynb"
    nb = json.loads(plan_notebook.read_text())
    nb["cells"].append({"cell_type": "code", "id": "leak", "metadata": {}, "outputs": [], "execution_count": None,
                        "source": "import base64, os, pathlib\n"
                                  "pathlib.Path(output_dir, 'leak.txt').write_text("
                                  "base64.b64encode(os.environ['TKGS_VCENTER_PASSWORD'].encode()).decode())"})
    plan_notebook.write_text(json.dumps(nb))
    monkeypatch.setenv("TKGS_VCENTER_PASSWORD", "a-vcenter-secret")
    site = load_site(ROOT / "examples" / "example-site.yaml")
    (tmp_path / "run").mkdir()
    with pytest.raises(StageFailed) as failed:
        list(run_site(site, [StageCall(s) for s in select_stages(["networks"])], tmp_path / "run", notebooks=notebooks,
                      progress=False))
    assert "after stage 'networks' a secret value was found in leak.txt (encoded): the run stops." in str(failed.value)
    assert "a-vcenter-secret" not in str(failed.value)
    assert base64.b64encode(b"a-vcenter-secret").decode() not in str(failed.value)


def test_no_stage_module_imports_another_stage():
    """Stages hand each other what they found through the values they provide (tkgs_lib/stages/provided.py),
    never by import: a stage module may import the registry, the flow, those values and what the stages after
    enable read of the Supervisor (supervisor.py, not a stage), the appliance VM's placement and properties the
    stages that deploy one share (appliance_vm.py) and the appliance's checks those that verify one share
    (verification.py), and no sibling."""
    import ast

    stages = Path(__file__).resolve().parent.parent / "tkgs_lib" / "stages"
    names = {p.stem for p in stages.glob("*.py")} - {"__init__", "flow", "provided", "supervisor",
                                                         "appliance_vm", "verification"}
    offenders = []
    for path in sorted(stages.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                imported = {node.module} if node.module else {alias.name for alias in node.names}
                offenders += [f"{path.stem} imports {name}" for name in imported if name in names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tkgs_lib.stages."):
                if node.module.rsplit(".", 1)[1] in names:
                    offenders.append(f"{path.stem} imports {node.module}")
    assert offenders == []
