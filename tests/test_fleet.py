"""`tkgs-runbook run SITE SITE... [--jobs N]`: a fleet of single-site runs, and the record each keeps."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from sim_site import site_data
from long_step import at_long_step, notebooks_with_a_long_plan
from test_cli import SCRIPT, cli, write_site
from tkgs_lib.fleet import FleetSite, startable
from tkgs_simulators.ova import build_ova

ROOT = Path(__file__).resolve().parent.parent


# --- scheduling, without running anything ---------------------------------------------------------

def _sites(*vcenters):
    return [FleetSite(f"s{i}.yaml", name=f"s{i}", vcenter=vc) for i, vc in enumerate(vcenters)]


def test_by_default_one_site_per_vcenter_runs_at_a_time_and_every_vcenter_at_once():
    waiting = _sites("a:443", "a:443", "b:443", "c:443", "b:443")
    chosen = startable(waiting, [], jobs=None, one_per_vcenter=True)
    assert [s.name for s in chosen] == ["s0", "s2", "s3"]
    assert startable(waiting[1:], [waiting[0]], jobs=None, one_per_vcenter=True) == [waiting[2], waiting[3]]


def test_jobs_caps_the_sites_at_once_and_an_apply_still_keeps_one_per_vcenter():
    waiting = _sites("a:443", "a:443", "a:443", "b:443")
    assert [s.name for s in startable(waiting, [], jobs=2, one_per_vcenter=False)] == ["s0", "s1"]
    assert [s.name for s in startable(waiting, [], jobs=2, one_per_vcenter=True)] == ["s0", "s3"]
    assert startable(waiting[1:], waiting[:1], jobs=1, one_per_vcenter=False) == []


# --- a single run's own record --------------------------------------------------------------------

def test_a_single_run_keeps_stages_json_and_an_index_and_continues_its_run_folder(tmp_path):
    site = write_site(tmp_path)
    folder = tmp_path / "shared" / "lab01"
    first = cli("run", site, "--stages", "networks", "--run-folder", folder)
    assert first.returncode == 0, first.stderr
    assert f"run folder: {folder}" in first.stdout
    record = json.loads((folder / "stages.json").read_text())
    assert record["site"] == "lab01" and record["site_file"] == str(site)
    (plan,) = record["stages"]
    assert (plan["stage"], plan["status"], plan["notebook"], plan["html"]) == (
        "networks", "ok", "01_plan_networks.ipynb", "01_plan_networks.html")
    assert plan["seconds"] > 0
    index = (folder / "index.html").read_text()
    assert "lab01: networks ok." in index and 'href="01_plan_networks.html"' in index
    # The next stage, a separate process (an Airflow task), into the same folder: the networks stage's entry is kept.
    second = cli("run", site, "--stages", "prepare", "--run-folder", folder)
    assert second.returncode == 1  # no vCenter here: prepare fails, and says so in the record
    stages = {e["stage"]: e for e in json.loads((folder / "stages.json").read_text())["stages"]}
    assert stages["networks"]["status"] == "ok" and stages["prepare"]["status"] == "failed"
    assert "vcenter.test.corp" in stages["prepare"]["error"]
    assert "lab01: networks ok, prepare failed." in (folder / "index.html").read_text()
    # A folder holds one site's run.
    other = write_site(tmp_path, {"site": "lab02"}, name="lab02.yaml")
    result = cli("run", other, "--stages", "networks", "--run-folder", folder)
    assert result.returncode == 1
    assert f"the run folder {folder} holds the run of site 'lab01', not 'lab02'" in result.stderr
    many = cli("run", other, site, "--run-folder", folder)
    assert many.returncode == 1 and "--run-folder continues the run of one site" in many.stderr


# --- a fleet against the vCenter simulator --------------------------------------------------------

@pytest.fixture
def three_sites(vcsim, tmp_path):
    """Three sites aimed at the simulator; lab-b's workload gateway lies outside its network."""
    ova = build_ova(tmp_path / "haproxy-v0.1.10.ova", disk_size=256 * 1024)
    files = []
    for name in ("lab-a", "lab-b", "lab-c"):
        data = site_data(vcsim)
        data["site"] = name
        data["content_libraries"]["haproxy"]["ova"] = ova.name
        if name == "lab-b":
            data["networks"]["workload"]["gateway"] = "10.64.16.1"
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        files.append(path)
    return files


def _running_counts(stdout: str) -> list[int]:
    """How many sites each progress line says are running."""
    counts = []
    for now in re.findall(r"\| now: (.*?);", stdout):
        counts.append(0 if now == "none running" else now.count(",") + 1)
    return counts


def test_a_fleet_of_three_with_one_broken_at_plan(three_sites, vcsim, tmp_path):
    env = {"TKGS_VCENTER_PASSWORD": vcsim.password}
    result = cli("run", *three_sites, "--stages", "networks", "prepare", "--jobs", "2", "--output", tmp_path / "runs",
                 env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    (fleet,) = (tmp_path / "runs").iterdir()
    assert fleet.name.startswith("fleet-")
    counts = _running_counts(result.stdout)
    assert max(counts) == 2, result.stdout  # --jobs 2, all three against one vCenter, plan only
    # Each stage's failure stops only its own site.
    for name in ("lab-a", "lab-c"):
        record = json.loads((fleet / name / "stages.json").read_text())
        assert [(e["stage"], e["status"]) for e in record["stages"]] == [("networks", "ok"), ("prepare", "ok")]
        assert (fleet / name / "02_prepare_vsphere.html").exists() and (fleet / name / "index.html").exists()
    broken = json.loads((fleet / "lab-b" / "stages.json").read_text())
    assert [(e["stage"], e["status"]) for e in broken["stages"]] == [("networks", "failed"), ("prepare", "pending")]
    assert "networks.workload.gateway" in broken["stages"][0]["error"]
    assert not (fleet / "lab-b" / "02_prepare_vsphere.ipynb").exists()
    # Progress says which site is at which stage; the summary line names where the broken one stopped.
    assert "lab-a: prepare ..." in result.stdout and "lab-b: networks failed" in result.stdout
    assert re.search(r"now: [^;]*lab-\w at prepare", result.stdout)
    assert f"fleet: 3 sites, 2 ok; lab-b failed at networks. See {fleet / 'index.html'}." in result.stdout
    index = (fleet / "index.html").read_text()
    for name in ("lab-a", "lab-b", "lab-c"):
        assert f'<a href="{name}/index.html">{name}</a>' in index
    assert index.count("<td>ok (") == 4 and "failed at networks" in index and "not run" in index
    summary = json.loads((fleet / "fleet.json").read_text())
    assert [(s["site"], s["outcome"], s["exit_status"]) for s in summary["sites"]] == [
        ("lab-a", "ok", 0), ("lab-b", "failed at networks", 1), ("lab-c", "ok", 0)]
    for path in fleet.rglob("*"):
        if path.is_file():
            assert vcsim.password.encode() not in path.read_bytes(), f"the password reached {path}"
    assert vcsim.password not in result.stdout + result.stderr


def test_one_vcenter_under_two_names_applies_one_site_at_a_time(vcsim, tmp_path):
    """127.0.0.1 and localhost are one simulator (its certificate names both): its instance UUID says so, so the
    two applies run one after the other, and both end ok. lab-ip goes first and uploads the OVA; lab-name then
    finds it (the simulator names its upload addresses 127.0.0.1, where a session to localhost sends nothing)."""
    ova = build_ova(tmp_path / "haproxy-v0.1.10.ova", disk_size=256 * 1024)
    files = []
    for name, server in (("lab-ip", "127.0.0.1"), ("lab-name", "localhost")):
        data = site_data(vcsim)
        data["site"], data["vcenter"]["server"] = name, server
        data["content_libraries"]["haproxy"]["ova"] = ova.name
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        files.append(path)
    result = cli("run", *files, "--stages", "networks", "prepare", "--apply", "--output", tmp_path / "runs",
                 env={"TKGS_VCENTER_PASSWORD": vcsim.password})
    counts = _running_counts(result.stdout)
    assert counts and max(counts) == 1, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    header = result.stdout.splitlines()[0]
    assert f"2 sites, 1 vCenter; 127.0.0.1:{vcsim.port} and localhost:{vcsim.port} are one vCenter;" in header, header
    (fleet,) = (tmp_path / "runs").iterdir()
    summary = json.loads((fleet / "fleet.json").read_text())
    assert [(s["site"], s["outcome"]) for s in summary["sites"]] == [("lab-ip", "ok"), ("lab-name", "ok")]


def test_a_vcenter_that_cannot_be_asked_is_scheduled_by_its_address_and_the_fleet_says_why(tmp_path):
    """Nothing listens at either address: each is asked once, and each is its own group, saying why."""
    ports = []
    for _ in range(2):
        with socket.socket() as s:  # a port nothing listens on: the connection is refused
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    files = [write_site(tmp_path, {"site": f"lab-{i}", "vcenter.server": "127.0.0.1", "vcenter.port": port},
                        name=f"lab-{i}.yaml") for i, port in enumerate(ports)]
    result = cli("run", *files, "--stages", "networks", "--output", tmp_path / "runs")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "(2 sites, 2 vCenters;" in lines[0], lines[0]
    for line, port in zip(lines[1:3], ports):
        assert line.endswith(f"vCenter 127.0.0.1:{port} cannot be asked which vCenter it is, so its sites are "
                             f"scheduled by this address alone: cannot reach vCenter at 127.0.0.1:{port}: the "
                             f"connection was refused; check vcenter.server and vcenter.port, and that this machine "
                             f"can reach vCenter's HTTPS port."), line
    assert max(_running_counts(result.stdout)) == 2, result.stdout  # a plan of each, each its own group


# --- stopping a fleet -----------------------------------------------------------------------------

def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.mark.parametrize("signame", ["SIGTERM"])  # the others stop a run alike: test_interruption.py
def test_a_signal_mid_fleet_keeps_every_record_and_leaves_no_kernel(tmp_path, signame):
    """SIGTERM (a CI timeout) or Ctrl-C: each running site stops its kernel and keeps its record, as a single
    run does; no further site starts."""
    files = [write_site(tmp_path, {"site": name}, name=f"{name}.yaml") for name in ("lab-a", "lab-b", "lab-c")]
    proc = subprocess.Popen([str(SCRIPT), "run", *map(str, files), "--stages", "networks", "prepare", "--jobs", "2",
                             "--output", str(tmp_path / "runs")],
                            env={**os.environ,
                                 "TKGS_NOTEBOOKS": str(notebooks_with_a_long_plan(tmp_path / "notebooks"))},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    records = []
    while time.monotonic() < deadline:  # until both running sites' kernels are in the long step
        time.sleep(0.5)
        records = list((tmp_path / "runs").glob("fleet-*/*/01_plan_networks.ipynb"))
        if len(records) == 2 and all(at_long_step(r) for r in records):
            break
    assert len(records) == 2 and all(at_long_step(r) for r in records), "the sites never reached the long step"
    time.sleep(1)
    processes = _descendants(proc.pid)
    assert len(processes) >= 4  # two runners and their kernels
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, out + err
    (fleet,) = (tmp_path / "runs").iterdir()
    for name in ("lab-a", "lab-b"):
        folder = fleet / name
        record = json.loads((folder / "stages.json").read_text())
        statuses = [(e["stage"], e["status"]) for e in record["stages"]]
        assert statuses == [("networks", "interrupted"), ("prepare", "pending")]
        assert (folder / "01_plan_networks.html").exists()  # the record, exported
        banner = json.loads((folder / "01_plan_networks.ipynb").read_text())["cells"][0]
        assert banner["metadata"]["tags"] == ["tkgs-interrupted"]
        log = (folder / "runner.log").read_text()
        assert f"interrupted: stage 'networks' (Plan the networks) was interrupted by {signame}. It changed nothing." in log
        assert "Traceback" not in log
    assert not (fleet / "lab-c").exists()  # never started once the fleet was stopped
    assert f"lab-a: {signame} passed on" in out and f"lab-b: {signame} passed on" in out
    assert "fleet: 3 sites, 0 ok; lab-a interrupted at networks; lab-b interrupted at networks; lab-c not started." in out
    index = (fleet / "index.html").read_text()
    assert index.count("<td>interrupted at networks") == 2 and "<td>not started</td>" in index
    deadline = time.monotonic() + 10  # a process just reaped can linger a moment in /proc
    while (left := [pid for pid in processes if Path(f"/proc/{pid}").exists()]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], "a runner or kernel outlived the fleet"
