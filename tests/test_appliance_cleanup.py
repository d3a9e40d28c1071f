"""The simulated appliance leaves the host as it found it: routes, rules, interfaces, addresses,
namespaces, mounts and processes, after a normal stop, Ctrl-C, SIGTERM, and SIGKILL (the next
start sweeps what a killed one left). It runs alone: another simulator's namespaces and mounts
would change what it compares (the serial run, as CI's, runs it; under xdist it is skipped)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from appliance_fixtures import require_appliance_simulator, start_appliance

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(os.environ.get("PYTEST_XDIST_WORKER")),
                                 reason="runs alone: compares the whole host, which other simulators change")]


def host_state() -> dict:
    def out(*argv):
        return subprocess.run(argv, capture_output=True, text=True).stdout

    mounts = [" ".join(line.split()[3:5]) for line in open("/proc/self/mountinfo")]
    return {"routes": out("ip", "route", "show", "table", "all"), "rules": out("ip", "rule"),
            "links": out("ip", "-o", "link"), "addresses": out("ip", "-o", "addr"),
            "namespaces": out("ip", "netns", "list"), "mounts": sorted(mounts),
            "guests": out("pgrep", "-f", "tkgs_lib.simulators.appliance.guest")}


def wait_gone(pattern: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode != 0:
            return True
        time.sleep(0.1)
    return False


def start_command() -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tkgs_lib.simulators.appliance"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    assert first.startswith("simulated appliance at 10.64.2.10"), first + proc.stderr.read()
    return proc


def test_every_way_a_simulator_ends_leaves_the_host_as_it_was(tmp_path):
    require_appliance_simulator()
    before = host_state()
    assert "tkgs-" not in before["namespaces"], "another simulator is running: this test must run alone"

    lab = start_appliance(tmp_path)
    during = host_state()
    assert lab.sim.lab in during["namespaces"] and during["guests"]
    assert during["routes"] == before["routes"] and during["addresses"] == before["addresses"]  # nothing on the host
    lab.sim.stop()
    assert host_state() == before

    for how in (signal.SIGINT, signal.SIGTERM):
        proc = start_command()
        proc.send_signal(how)
        assert proc.wait(timeout=30) == 0
        assert host_state() == before, signal.Signals(how).name

    proc = start_command()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert wait_gone("tkgs_lib.simulators.appliance.guest"), "the guest outlived a SIGKILLed owner"
    left = host_state()["namespaces"]
    assert f"tkgs-lab-{proc.pid}-" in left  # named after the dead owner, for the sweep
    again = start_appliance(tmp_path)  # the next start sweeps them
    again.sim.stop()
    assert host_state() == before
