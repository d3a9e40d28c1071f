"""The planning notebook: headless with papermill, and with a form when a person runs it."""

from __future__ import annotations

import json
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


def test_parameters_cell_defaults_point_at_the_example_site():
    params = pm.inspect_notebook(str(PLAN))
    assert params["site_file"]["inferred_type_name"] == "str"
    assert (NOTEBOOKS / json.loads(params["site_file"]["default"])).resolve() == EXAMPLE_SITE
    assert params["site_file"]["help"]  # every parameter carries a comment


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
