"""The fleet's Airflow DAG, run by Airflow itself (`airflow dags test`, SQLite, no scheduler), and its fleet file.

Where Airflow is not installed (`pip install -e '.[airflow]'`, or TKGS_AIRFLOW=1 bash scripts/setup.sh)
the Airflow tests are skipped with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sim_site import site_data
from test_cli import write_site
from tkgs_lib.errors import TkgsError
from tkgs_lib.fleet.file import load_fleet
from tkgs_simulators.ova import build_ova

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = Path(sys.executable).with_name("airflow")


@pytest.fixture
def airflow_installed():
    try:
        import airflow.sdk  # noqa: F401  (what the DAG factory imports)
    except ImportError as exc:
        reason = f"Apache Airflow is not installed ({exc}); install the airflow extra to run this test"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"on CI: {reason}", pytrace=False)
        pytest.skip(reason)
    assert AIRFLOW.exists(), f"no airflow command beside {sys.executable}"


# --- the fleet file (no Airflow needed) -------------------------------------------------------------

def _fleet_file(tmp_path: Path, sites: list, **top) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({"fleet": "tkgs_test", "run_folder": str(tmp_path / "shared"),
                                    "stages": ["networks", "prepare"], "sites": sites, **top}, sort_keys=False))
    return path


def test_the_example_fleet_file_reads():
    fleet = load_fleet(ROOT / "examples" / "example-fleet.yaml")
    (site,) = fleet.sites
    assert (fleet.name, fleet.stages, fleet.apply) == ("tkgs_fleet", ("networks", "prepare"), False)
    assert (site.name, site.queue, site.pool) == ("lab01", "lab", "vcenter-test-corp")
    assert site.passwords == {"TKGS_VCENTER_PASSWORD": "tkgs_lab01_vcenter"}


@pytest.mark.parametrize("sites, top, words", [
    ([{"site_file": "lab01.yaml"}], {}, "sites[0].queue: is required but missing."),
    ([{"site_file": "lab01.yaml", "queue": "emea", "password": "x"}], {}, "sites[0].password: unknown key"),
    ([{"site_file": "lab01.yaml", "queue": "emea"}, {"site_file": "lab01.yaml", "queue": "apac"}], {},
     "sites[1].site_file: site 'lab01' is also the site of sites[0]"),
    ([{"site_file": "lab01.yaml", "queue": "emea", "passwords": {"TKGS_NOPE": "c"}}], {},
     "sites[0].passwords.TKGS_NOPE: the site names no such variable (it names TKGS_VCENTER_PASSWORD"),
    ([{"site_file": "lab01.yaml", "queue": "emea"}], {"stages": ["networks", "deploy-all"]},
     "stages: unknown stage deploy-all"),
    ([{"site_file": "lab01.yaml", "queue": "emea"}], {"run_folder": "runs"}, "run_folder: expected an absolute path"),
])
def test_a_bad_fleet_file_is_one_sentence_naming_file_and_field(tmp_path, sites, top, words):
    write_site(tmp_path, name="lab01.yaml")
    path = _fleet_file(tmp_path, sites, **top)
    with pytest.raises(TkgsError) as caught:
        load_fleet(path)
    assert str(caught.value).startswith(f"{path}: ") and words in str(caught.value), str(caught.value)


def test_a_site_file_that_cannot_be_read_is_a_site_that_says_why_and_its_name_is_its_own(tmp_path):
    """The other sites still make a DAG; a bad file's site is named by its file's stem, made unique."""
    write_site(tmp_path, {"site": "broken"}, name="lab01.yaml")
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "broken.yaml").write_text("site: [lab02\n")
    write_site(tmp_path, {"site": "lab 03"}, name="lab03.yaml")
    path = _fleet_file(tmp_path, [{"site_file": "lab01.yaml", "queue": "emea"},
                                  {"site_file": "a/broken.yaml", "queue": "emea"},
                                  {"site_file": "b/broken.yaml", "queue": "apac", "passwords": {"TKGS_X": "conn_x"}},
                                  {"site_file": "no such.yaml", "queue": "emea"},
                                  {"site_file": "lab03.yaml", "queue": "emea"}])
    fleet = load_fleet(path)
    assert [(s.name, s.queue) for s in fleet.sites] == [
        ("broken", "emea"), ("broken-2", "emea"), ("broken-3", "apac"), ("no_such", "emea"), ("lab03", "emea")]
    assert fleet.sites[0].problem == ""
    for entry in fleet.sites[1:3]:
        assert entry.problem.startswith(f"{entry.site_file}: is not valid YAML at line 2"), entry.problem
    assert fleet.sites[3].problem == f"{tmp_path / 'no such.yaml'}: no such site file."
    assert fleet.sites[4].problem.startswith(f"{tmp_path / 'lab03.yaml'}: site 'lab 03' cannot name a task group")


# --- the DAG, built ---------------------------------------------------------------------------------

def test_the_dag_has_a_group_per_site_and_a_task_per_stage_on_its_sites_queue(airflow_installed, tmp_path):
    from tkgs_lib.fleet.airflow import SiteStageOperator, fleet_dag

    for name in ("lab-a", "lab-b"):
        write_site(tmp_path, {"site": name}, name=f"{name}.yaml")
    (tmp_path / "lab-c.yaml").write_text("site: [lab-c\n")
    path = _fleet_file(tmp_path, [{"site_file": "lab-a.yaml", "queue": "emea", "pool": "vc-one",
                                   "passwords": {"TKGS_VCENTER_PASSWORD": "tkgs_lab_a_vcenter"}},
                                  {"site_file": "lab-b.yaml", "queue": "apac"},
                                  {"site_file": "lab-c.yaml", "queue": "apac"}], apply=True)
    dag = fleet_dag(path)
    assert dag.dag_id == "tkgs_test" and dag.params == {} and dag.max_active_runs == 1
    stages = {t.task_id: t for t in dag.tasks if isinstance(t, SiteStageOperator) and not t.problem}
    assert sorted(stages) == ["lab-a.networks", "lab-a.prepare", "lab-b.networks", "lab-b.prepare"]
    # A task fetches only the connections of the secrets its stage may read: networks reads none.
    assert stages["lab-a.networks"].passwords == {}
    assert stages["lab-a.prepare"].passwords == {"TKGS_VCENTER_PASSWORD": "tkgs_lab_a_vcenter"}
    # The unreadable site file: a group of its own, a task per stage, each failing with the sentence why.
    unreadable = {t.task_id: t for t in dag.tasks if isinstance(t, SiteStageOperator) and t.problem}
    assert sorted(unreadable) == ["lab-c.networks", "lab-c.prepare"]
    assert all(t.problem.startswith(f"{tmp_path / 'lab-c.yaml'}: is not valid YAML") for t in unreadable.values())
    assert all(not t.upstream_task_ids for t in unreadable.values())
    assert {t.task_id: t.queue for t in stages.values()} == {
        "lab-a.networks": "emea", "lab-a.prepare": "emea", "lab-b.networks": "apac", "lab-b.prepare": "apac"}
    assert stages["lab-a.networks"].pool == "vc-one" and stages["lab-b.networks"].pool == "default_pool"
    assert stages["lab-a.prepare"].upstream_task_ids == {"lab-a.networks"}
    assert not stages["lab-a.networks"].apply and stages["lab-a.prepare"].apply  # apply only where a stage changes
    index = dag.get_task("fleet_index")
    assert index.upstream_task_ids == {"lab-a.prepare", "lab-b.prepare", "lab-c.networks", "lab-c.prepare"}
    assert index.trigger_rule == "all_done"
    assert stages["lab-a.networks"].template_fields == ("run_folder",)


# --- the DAG, run by Airflow against the vCenter simulator -----------------------------------------

def test_airflow_runs_networks_and_prepare_for_two_sites_without_a_password_anywhere(airflow_installed, vcsim,
                                                                                   tmp_path):
    """One site's vCenter password comes from an Airflow connection, the other's from the worker's
    environment; neither may appear in Airflow's output, its database (XCom, rendered templates, the
    DAG's code and parameters) or any log. In the same DAG run, what stops only its own site: a site file
    that is not YAML (each of its tasks fails saying why) and a connection that does not exist (networks,
    which reads no password, runs; prepare fails naming it); neither is retried, though tasks may be."""
    ova = build_ova(tmp_path / "haproxy-v0.1.10.ova", disk_size=256 * 1024)
    sites = []
    for name, queue in (("lab-a", "emea"), ("lab-b", "apac"), ("lab-c", "apac")):
        data = site_data(vcsim)
        data["site"] = name
        data["vcenter"]["password_env"] = f"TKGS_{name.upper().replace('-', '_')}_VCENTER_PASSWORD"
        data["content_libraries"]["haproxy"]["ova"] = ova.name
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        sites.append({"site_file": f"{name}.yaml", "queue": queue})
    sites[0]["passwords"] = {"TKGS_LAB_A_VCENTER_PASSWORD": "tkgs_lab_a_vcenter"}
    sites[2]["passwords"] = {"TKGS_LAB_C_VCENTER_PASSWORD": "tkgs_lab_c_vcenter"}  # defined nowhere
    (tmp_path / "broken.yaml").write_text("site: [lab-d\n")
    sites.append({"site_file": "broken.yaml", "queue": "emea"})
    fleet_file = _fleet_file(tmp_path, sites)
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    retried = ("\nfor task in dag.tasks:  # the test's own: a failure that is retried shows in its try_number\n"
               "    task.retries, task.retry_delay = 2, __import__('datetime').timedelta(0)\n")
    (home / "dags" / "airflow_fleet_dag.py").write_text((ROOT / "examples" / "airflow_fleet_dag.py").read_text()
                                                        + retried)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TKGS_LAB_"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"), "TKGS_FLEET_FILE": str(fleet_file),
        # lab-a's password: an Airflow connection (from the environment, so not even the database holds it)
        "AIRFLOW_CONN_TKGS_LAB_A_VCENTER": json.dumps({"conn_type": "generic", "password": vcsim.password}),
        "TKGS_LAB_B_VCENTER_PASSWORD": vcsim.password,  # lab-b's: the worker's environment
    })
    migrate = subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    run = subprocess.run([str(AIRFLOW), "dags", "test", "tkgs_test"], env=env, capture_output=True, text=True,
                         timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]

    db = sqlite3.connect(home / "airflow.db")
    rows = db.execute("select task_id, queue, state, try_number, run_id from task_instance").fetchall()
    assert {(task, queue, state, tries) for task, queue, state, tries, _ in rows} == {
        ("lab-a.networks", "emea", "success", 1), ("lab-a.prepare", "emea", "success", 1),
        ("lab-b.networks", "apac", "success", 1), ("lab-b.prepare", "apac", "success", 1),
        ("lab-c.networks", "apac", "success", 1), ("lab-c.prepare", "apac", "failed", 1),
        ("broken.networks", "emea", "failed", 1), ("broken.prepare", "emea", "failed", 1),
        ("fleet_index", "default", "success", 1)}
    (run_id,) = {r[4] for r in rows}
    folder = tmp_path / "shared" / "tkgs_test" / run_id.replace(":", "-").replace("+", "_")
    for name in ("lab-a", "lab-b"):  # prepare ran into the folder networks wrote, and kept its entry
        record = json.loads((folder / name / "stages.json").read_text())
        assert [(e["stage"], e["status"]) for e in record["stages"]] == [("networks", "ok"), ("prepare", "ok")]
        assert (folder / name / "02_prepare_vsphere.html").exists()
    missing = (f"the Airflow connection 'tkgs_lab_c_vcenter', which the fleet file names for "
               f"TKGS_LAB_C_VCENTER_PASSWORD, does not exist, and stage prepare reads that password: define it")
    unreadable = f"{tmp_path / 'broken.yaml'}: is not valid YAML at line 2"
    assert output.count(unreadable) >= 2 and missing in output  # each failed task's log says why
    fleet = json.loads((folder / "fleet.json").read_text())
    outcomes = {s["site"]: s["outcome"] for s in fleet["sites"]}
    assert outcomes.pop("broken").startswith(f"not run: {unreadable}")
    assert outcomes == {"lab-a": "ok", "lab-b": "ok", "lab-c": "failed at prepare"}
    lab_c = {e["stage"]: e for e in fleet["sites"][2]["stages"]}
    assert lab_c["networks"]["status"] == "ok" and lab_c["prepare"]["error"].startswith(missing)
    index = (folder / "index.html").read_text()
    assert '<a href="lab-a/index.html">lab-a</a>' in index and "not started" not in index

    rendered = db.execute("select task_id, rendered_fields from rendered_task_instance_fields").fetchall()
    assert {task for task, _ in rendered} >= {"lab-a.networks", "lab-b.prepare"}
    assert all(str(folder) in fields for task, fields in rendered if task != "fleet_index")
    xcoms = db.execute("select key, value from xcom").fetchall()
    secret = vcsim.password
    assert secret not in repr(rendered) + repr(xcoms), "a password reached a rendered template or XCom"
    assert secret not in output, "a password reached Airflow's output"
    assert "running: tkgs_lib.cli run" in output  # the tasks' logs are in that output
    db.close()
    for path in [*home.rglob("*"), *folder.rglob("*")]:  # the database whole (DAG code, params...), logs, records
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the password reached {path}"
