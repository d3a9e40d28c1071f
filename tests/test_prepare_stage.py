"""Stage 2 end to end: the prepare notebook and the CLI against the vCenter simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import papermill as pm
import pytest
import yaml

from sim_site import site_data, site_for
from tkgs_lib.stages.flow import StageRun
from tkgs_simulators.ova import build_ova
from tkgs_lib.site import load_site
from tkgs_lib.display.tables import Table
from tkgs_lib.vsphere.connection import connect
from tkgs_lib.vsphere.inventory import Inventory
from tkgs_lib.vsphere.content_api import ContentLibraryApi
from tkgs_lib.vsphere.storage import CATEGORY_PATH, read_policies

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PREPARE = NOTEBOOKS / "02_prepare_vsphere.ipynb"
SCRIPT = Path(sys.executable).with_name("tkgs-runbook")


@pytest.fixture
def sim_site_file(vcsim, tmp_path, monkeypatch):
    """A site file for the simulator with a small generated OVA beside it; the password in the environment."""
    ova = build_ova(tmp_path / "haproxy-v0.1.10.ova", disk_size=256 * 1024)
    data = site_data(vcsim)
    data["content_libraries"]["haproxy"]["ova"] = ova.name  # relative to the site file
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv(data["vcenter"]["password_env"], vcsim.password)
    return path


def run_prepare(site_file: Path, out: Path, apply: bool):
    pm.execute_notebook(str(PREPARE), str(out), cwd=str(NOTEBOOKS), progress_bar=False, kernel_name="python3",
                        parameters={"site_file": str(site_file), "output_dir": str(out.parent), "apply": apply})
    return json.loads(out.read_text())


def text_of(nb) -> str:
    parts = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            parts += ["".join(data.get(kind, "")) for kind in ("text/plain", "text/markdown")]
            parts.append("".join(o.get("text", "")))
    return "\n".join(parts)


def portgroup_names(site_file: Path, password: str) -> set[str]:
    site = load_site(site_file)
    with connect(site.vcenter, password=password) as session:
        return {pg.name for pg in Inventory(session, site.vcenter).switch.portgroup}


def made_by_the_stage(site_file: Path, password: str) -> dict:
    """What the stage would create besides port groups: tag categories, the site's policy, libraries."""
    site = load_site(site_file)
    with connect(site.vcenter, password=password) as session:
        api = ContentLibraryApi(session.rest)
        return {"tag categories": session.rest.get(CATEGORY_PATH) or [],
                "storage policies": [p.name for p in read_policies(session, site.storage.policy)],
                "content libraries": [lib.name for name in (site.content_libraries.kubernetes.name,
                                                            site.content_libraries.haproxy.name)
                                      for lib in api.libraries_named(name)]}


def test_dry_run_plans_creates_and_changes_nothing_then_apply_then_rerun_is_all_ok(sim_site_file, vcsim, tmp_path):
    nb = run_prepare(sim_site_file, tmp_path / "dry.ipynb", apply=False)
    assert "Dry run: nothing was changed" in text_of(nb)
    assert "tkgs-workload" not in portgroup_names(sim_site_file, vcsim.password)

    nb = run_prepare(sim_site_file, tmp_path / "apply.ipynb", apply=True)
    assert "After apply" in text_of(nb)
    assert {"tkgs-management", "tkgs-workload", "tkgs-frontend"} <= portgroup_names(sim_site_file, vcsim.password)

    run_prepare(sim_site_file, tmp_path / "rerun.ipynb", apply=True)
    import pandas as pd

    plan = pd.read_csv(tmp_path / "prepare-plan.csv")  # written by the rerun: the plan before its apply
    assert set(plan["action"]) == {"ok"}, plan.to_string()


def test_a_vlan_conflict_fails_the_headless_run_with_its_sentence(sim_site_file, vcsim, tmp_path):
    data = yaml.safe_load(sim_site_file.read_text())
    data["networks"]["workload"]["portgroup"] = "DC0_DVPG0"  # exists in the simulator, with another VLAN
    sim_site_file.write_text(yaml.safe_dump(data))
    with pytest.raises(pm.PapermillExecutionError) as failure:
        run_prepare(sim_site_file, tmp_path / "conflict.ipynb", apply=True)
    assert failure.value.ename == "ConflictError"
    assert "DC0_DVPG0" in failure.value.evalue and "nothing was changed" in failure.value.evalue
    assert "tkgs-management" not in portgroup_names(sim_site_file, vcsim.password)
    # The conflict stopped everything: the storage and library steps after it ran neither.
    assert made_by_the_stage(sim_site_file, vcsim.password) == {
        "tag categories": [], "storage policies": [], "content libraries": []}


def test_a_site_without_storage_or_content_libraries_says_what_is_left_out(vcsim, tmp_path):
    site = site_for(vcsim, storage=None, content_libraries=None)
    with connect(site.vcenter, password=vcsim.password) as session:
        plan = StageRun("prepare", site, tmp_path, vcenter=session, progress=False).plan()
    assert {s.object.split(" ")[0] for s in plan.steps} == {"port"}  # port groups only, as before
    warnings = {f.path: f for f in plan.findings if f.severity == "warning"}
    assert warnings["storage"].message.startswith("is not in the site, so no datastore tag or storage policy")
    assert warnings["content_libraries"].message.startswith("is not in the site, so no content library")
    assert "add storage" in warnings["storage"].fix and "add content_libraries" in warnings["content_libraries"].fix
    assert not [f for f in plan.findings if f.is_error]  # a warning: the stage still runs


def test_the_reports_are_titled_tables_that_confirm_what_vcenter_holds(sim_site_file, vcsim, tmp_path):
    site = load_site(sim_site_file)
    with connect(site.vcenter, password=vcsim.password) as session:
        run = StageRun("prepare", site, tmp_path, vcenter=session, progress=False)
        run.plan().apply(progress=False)
        reports = run.reports()
    assert list(reports) == ["port group teaming", "datastores and the storage policy", "content libraries",
                             "the HAProxy OVA item"]
    assert all(isinstance(table, Table) for table in reports.values())
    # The simulator's switch defines no uplinks: the table says so rather than reading as an error.
    assert set(reports["port group teaming"]["check"]) == {"cannot check: switch defines no uplinks"}
    (item,) = reports["the HAProxy OVA item"].records()
    assert item["found"] == "yes" and item["item"] == site.content_libraries.haproxy.item
    assert item["recorded manifest digest"].startswith("sha256-manifest:")


def test_headless_without_the_password_variable_names_the_variable(sim_site_file, tmp_path, monkeypatch):
    monkeypatch.delenv("TKGS_VCENTER_PASSWORD")
    with pytest.raises(pm.PapermillExecutionError) as failure:
        run_prepare(sim_site_file, tmp_path / "nopw.ipynb", apply=False)
    assert failure.value.ename == "SiteError"
    assert "TKGS_VCENTER_PASSWORD" in failure.value.evalue


def test_cli_run_prepare_apply_through_the_entry_point(sim_site_file, vcsim, tmp_path):
    result = subprocess.run([str(SCRIPT), "run", str(sim_site_file), "--stages", "networks", "prepare", "--apply",
                             "--output", str(tmp_path / "runs")], capture_output=True, text=True, timeout=300,
                            env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "plan only" not in result.stdout  # --apply was given
    (folder,) = (tmp_path / "runs").iterdir()
    assert (folder / "02_prepare_vsphere.html").exists()
    executed = json.loads((folder / "02_prepare_vsphere.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"]["apply"] is True
    for path in folder.iterdir():
        assert vcsim.password.encode() not in path.read_bytes(), f"the password reached {path.name}"
    assert "tkgs-frontend" in portgroup_names(sim_site_file, vcsim.password)
