"""The simulated appliance leaves the host as it found it: routes, rules, interfaces, addresses,
namespaces, mounts and processes (its guest and the guest's HAProxy master and workers), after a
normal stop, Ctrl-C, SIGTERM, and SIGKILL (the next start sweeps what a killed one left); so does
the Supervisor's control plane beside it, also the one the vCenter simulator's Workload Management
stand-in plays, which goes with a disable and with the simulator.

It runs alone in the suite: under xdist it is skipped, and scripts/run-tests.sh runs it (marked
``alone``) in a pytest of its own after the rest. A simulator
from outside the suite may still run meanwhile (a main job, another checkout's tests): its
namespaces, the mounts that hold them and its guests carry their owner's PID, so the comparison
leaves out every one not owned by this test's processes. Host routes, rules, links and addresses
are compared whole: no simulator ever touches the host's own namespace."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from appliance_fixtures import require_appliance_simulator, start_appliance
from tkgs_simulators.appliance.netns import namespaces, netns_mounted, sweep
from tkgs_simulators.supervisor import SupervisorControlPlane

def RUNS_ALONE(test):  # noqa: N802 (reads as the marks it stands for)
    """Marked ``alone`` (scripts/run-tests.sh runs these after the rest, in a pytest of their own), and
    skipped where another test worker may run beside it."""
    return pytest.mark.alone(pytest.mark.skipif(bool(os.environ.get("PYTEST_XDIST_WORKER")),
                                                reason="runs alone: other test workers' simulators would run "
                                                       "beside it")(test))

OWNED = re.compile(r"tkgs-(?:lab|app|sup)-(\d+)-\d+")


def kept(lines, ours: set[int]) -> list[str]:
    """The lines that name no simulator, or one whose owner is in ``ours``."""
    return sorted(line for line in lines if all(int(owner) in ours for owner in OWNED.findall(line)))


def _out(*argv) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout


def appliance_processes(ours: set[int]) -> list[str]:
    """The simulated appliances' processes (guests, and every HAProxy: the guests run one each), each
    with the namespace it runs in, but other owners'."""
    found = []
    listed = _out("pgrep", "-af", "tkgs_simulators.appliance.guest") + _out("pgrep", "-a", "-x", "haproxy")
    for line in listed.splitlines():
        pid = line.split()[0]
        netns = _out("ip", "netns", "identify", pid).strip()  # none: its namespace is gone; counted as ours
        if os.path.exists(f"/proc/{pid}"):  # one that ended meanwhile is no one's
            found.append(f"{line} in {netns or 'an unnamed namespace'}")
    return kept(found, ours)


def host_state(ours: set[int]) -> dict:
    """What a simulator could leave on the host, without what other owners' simulators hold."""
    mounts = [" ".join(line.split()[3:5]) for line in open("/proc/self/mountinfo")]
    return {"routes": _out("ip", "route", "show", "table", "all"), "rules": _out("ip", "rule"),
            "links": _out("ip", "-o", "link"), "addresses": _out("ip", "-o", "addr"),
            "namespaces": kept(_out("ip", "netns", "list").splitlines(), ours), "mounts": kept(mounts, ours),
            "processes": appliance_processes(ours)}


def processes_back_to(before: dict, ours: set[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if appliance_processes(ours) == before["processes"]:
            return True
        time.sleep(0.1)
    return False


def start_command() -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tkgs_simulators.appliance"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    assert first.startswith("simulated appliance at 10.64.2.10"), first + proc.stderr.read()
    return proc


def as_a_fresh_machine() -> bool:
    """Take iproute2's one-time /run/netns mount away when no namespace needs it, so the host is as a
    machine that never made a network namespace (as CI's is): the comparison then proves that the
    simulator removes the mount it made. Another owner's namespace needs it: then it stays, on both sides.
    What a killed run of an earlier test left is swept first, as the simulator's next start would (the
    sweep then takes the mount too, so the host must be compared after it, not before)."""
    sweep()
    if namespaces() or not netns_mounted() or os.listdir("/run/netns"):
        return False
    return subprocess.run(["umount", "/run/netns"], capture_output=True).returncode == 0


@pytest.mark.slow
@RUNS_ALONE
def test_every_way_a_simulator_ends_leaves_the_host_as_it_was(tmp_path):
    require_appliance_simulator()
    ours = {os.getpid()}
    fresh = as_a_fresh_machine() or not netns_mounted()
    before = host_state(ours)
    assert ("/run/netns /run/netns" in before["mounts"]) != fresh
    assert not [name for name in before["namespaces"] if OWNED.match(name)], "this process already holds a simulator"

    lab = start_appliance(tmp_path)
    control_plane = SupervisorControlPlane(lab.sim.lab, "10.64.8.0/21", "10.64.8.1", ["10.64.8.50"]).start()
    during = host_state(ours)
    assert lab.sim.lab in during["namespaces"] and control_plane.namespace in during["namespaces"]
    assert [p for p in during["processes"] if p.split()[1].endswith("haproxy")] and \
        [p for p in during["processes"] if "guest" in p]
    assert during["routes"] == before["routes"] and during["addresses"] == before["addresses"]  # nothing on the host
    control_plane.stop()
    lab.sim.stop()
    assert host_state(ours) == before

    for how in (signal.SIGINT, signal.SIGTERM):
        proc = start_command()
        ours.add(proc.pid)
        assert appliance_processes(ours) != before["processes"]  # its guest is seen, so its going is too
        proc.send_signal(how)
        assert proc.wait(timeout=30) == 0
        assert host_state(ours) == before, signal.Signals(how).name

    proc = start_command()
    ours.add(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert processes_back_to(before, ours), "the guest or its HAProxy outlived a SIGKILLed owner"
    left = host_state(ours)["namespaces"]
    assert any(name.startswith(f"tkgs-lab-{proc.pid}-") for name in left)  # named after the dead owner, for the sweep
    again = start_appliance(tmp_path)  # the next start sweeps them
    again.sim.stop()
    assert host_state(ours) == before


@RUNS_ALONE
def test_a_namespace_left_behind_still_shows_as_its_mount_and_name(tmp_path):
    """The comparison is no weaker for the fresh-machine case: a namespace the simulator leaves shows."""
    require_appliance_simulator()
    ours = {os.getpid()}
    as_a_fresh_machine()
    before = host_state(ours)
    lab = start_appliance(tmp_path)
    leaked = lab.sim.lab
    lab.sim._own_lab = False  # a simulator that forgets its lab: the leak under test
    lab.sim.stop()
    try:
        after = host_state(ours)
        assert leaked in after["namespaces"] and [m for m in after["mounts"] if m.endswith(f" /run/netns/{leaked}")]
        assert after != before
    finally:
        subprocess.run(["ip", "netns", "del", leaked])
        as_a_fresh_machine()


def test_the_comparison_leaves_out_other_owners_simulators_and_keeps_ours():
    lines = ["/run/netns/tkgs-lab-42-3", "/run/netns/tkgs-app-7-1", "1234 python -m guest in tkgs-app-7-2",
             "5678 python -m guest in an unnamed namespace", "/ /proc", "91 haproxy -W -f x in tkgs-app-7-2",
             "/run/netns/tkgs-sup-7-3"]
    assert kept(lines, {42}) == sorted(["/run/netns/tkgs-lab-42-3", "5678 python -m guest in an unnamed namespace",
                                        "/ /proc"])
    assert kept(lines, {7}) == sorted(lines[1:])


@pytest.mark.slow
@pytest.mark.vcsim
@RUNS_ALONE
def test_the_supervisor_the_stand_in_plays_goes_with_a_disable_and_with_its_simulator(tmp_path, vcsim_binary):
    from supervisor_fixtures import disable, statuses_until, supervise
    from tkgs_simulators.vcsim import VCenterSimulator

    require_appliance_simulator()
    ours = {os.getpid()}
    before = host_state(ours)
    vcsim = VCenterSimulator(binary=vcsim_binary, workdir=tmp_path / "vcsim").start()
    try:
        (tmp_path / "appliance").mkdir()
        supervised = supervise(vcsim, tmp_path / "appliance")
        try:
            statuses_until(supervised, lambda info: info.config_status == "RUNNING", "the Supervisor RUNNING")
            first = vcsim.control_plane(supervised.cluster).namespace
            assert first in host_state(ours)["namespaces"]
            disable(supervised)  # the control plane goes, and the load balancer the controller made
            assert first not in host_state(ours)["namespaces"]
            frontends = supervised.sim.appliance_run(["ss", "-Hltn"], capture_output=True, text=True).stdout
            assert ":6443" not in frontends, frontends

            supervised.enable()
            statuses_until(supervised, lambda info: info.config_status == "RUNNING", "RUNNING again")
            second = vcsim.control_plane(supervised.cluster).namespace
            assert second in host_state(ours)["namespaces"] and second != first
            supervised.client.rest.logout()
            vcsim.stop()  # the simulator's life ends with its Supervisor running
            assert second not in host_state(ours)["namespaces"]
        finally:
            supervised.sim.stop()
    finally:
        vcsim.stop()
    assert host_state(ours) == before
