"""The simulated appliance follows its VM's power in the vCenter simulator, as the demo plays it: booted by
the first-boot player at the VM's first power-on, shut down (nothing answering at its addresses) when the VM
powers off, and booted again from its disk, with the same CA, when it powers on again. An upgrade's "power the
old VM off before the new one powers on" means this in the simulators.
"""

from __future__ import annotations

import socket
import ssl
import time

import pytest
import yaml
from pyVmomi import vim

from appliance_fixtures import deployed_properties
from helpers import variant
from tkgs_lib.credentials import plain
from tkgs_lib.site import parse_site

pytestmark = [pytest.mark.slow, pytest.mark.vcsim]


def _answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def _power(vm, on: bool) -> None:
    task = vm.PowerOnVM_Task() if on else vm.PowerOffVM_Task()
    while task.info.state not in ("success", "error"):
        time.sleep(0.05)
    assert task.info.state == "success", task.info.error


def _until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.2)


def test_the_appliance_shuts_down_with_its_vm_and_boots_again_with_the_same_ca(vcsim_binary, tmp_path):
    from pyVim.connect import Disconnect, SmartConnect

    from tkgs_lib.appliance.dataplane import presented_certificate
    from tkgs_lib.demo import Appliances
    from tkgs_simulators.appliance import available
    from tkgs_simulators.appliance.netns import Namespace, entered
    from tkgs_simulators.first_boot import FirstBoot
    from tkgs_simulators.vcsim import VCenterSimulator

    if available():
        pytest.skip(available())
    properties = {k: plain(v) for k, v in deployed_properties(parse_site(yaml.safe_dump(variant()))).items()}
    address = properties["network.management_ip"].split("/", 1)[0]
    with Namespace("lab") as lab, entered(lab.name), VCenterSimulator(binary=vcsim_binary,
                                                                      workdir=tmp_path / "vcsim") as sim, \
            Appliances(lab.name, {}, "v0.1.10") as appliances, FirstBoot(sim, appliance=appliances.boot) as player:
        si = SmartConnect(host=sim.host, port=sim.port, user=sim.username, pwd=sim.password,
                          sslContext=ssl.create_default_context(cafile=str(sim.ca_file)))
        try:
            view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
            vm = view.view[0]
            _power(vm, False)
            task = vm.ReconfigVM_Task(vim.vm.ConfigSpec(extraConfig=[
                vim.option.OptionValue(key=k, value=v) for k, v in
                {**properties, "guest_rpc.auth.cloud-init.set": "FALSE"}.items()]))
            while task.info.state not in ("success", "error"):
                time.sleep(0.05)
            _power(vm, True)
            _until(lambda: vm.name in player.boots and player.boots[vm.name].configured, "the first boot")
            ca = player.boots[vm.name].ca_pem
            _until(lambda: _answers(address, 5556), "the Data Plane API answering")
            first = presented_certificate(address, 5556, ca, trusted_by="its CA")

            _power(vm, False)
            _until(lambda: not _answers(address, 5556), "nothing answering once the VM is off")
            [appliance] = appliances.running
            assert not appliance.running

            _power(vm, True)
            _until(lambda: _answers(address, 5556), "the Data Plane API answering again")
            assert appliance.running and appliance.ca_pem == ca
            assert presented_certificate(address, 5556, ca, trusted_by="its CA") == first  # from its disk
            assert len(appliances.running) == 1  # booted again, not a second first boot

            # Destroyed straight after a power-off (VmOps.destroy's two tasks), quicker than the player looks: nothing
            # answers any more.
            player.poll = 5.0
            time.sleep(0.5)  # the player's current look ends; the next is 5 s away
            _power(vm, False)
            task = vm.Destroy_Task()
            while task.info.state not in ("success", "error"):
                time.sleep(0.05)
            _until(lambda: not appliance.running and not _answers(address, 5556), "nothing answering once destroyed", 15)
        finally:
            Disconnect(si)


def test_a_new_appliance_at_the_old_ones_addresses_is_reached_at_its_own_mac_at_once(tmp_path):
    """An upgrade's new VM boots at the old one's addresses with other MACs: it announces each address as it
    comes up (gratuitous ARP), so a neighbour that held an address at the old MAC (the lab, where the runner and
    the Supervisor are) takes the new one at once rather than once its entry has failed (seconds of nothing)."""
    import json
    import sys

    from tkgs_simulators.appliance import ApplianceSimulator, available
    from tkgs_simulators.appliance.netns import Namespace, ip, netns_exec

    if available():
        pytest.skip(available())
    properties = {k: plain(v) for k, v in deployed_properties(parse_site(yaml.safe_dump(variant()))).items()}
    workload = properties["network.workload_ip"].split("/", 1)[0]  # not the address start() waits for sshd at

    def neighbour() -> str:
        shown = json.loads(netns_exec(lab.name, ["ip", "-j", "neigh", "show", workload], capture_output=True,
                                      text=True, check=True).stdout)
        return (shown[0].get("lladdr") or "").lower() if shown else ""

    # Refused or taken, an answer: the address was resolved to a MAC.
    probe = [sys.executable, "-c", f"import socket\ntry: socket.create_connection(('{workload}', 22), 2)\n"
                                   f"except ConnectionRefusedError: pass"]
    with Namespace("lab") as lab:
        with ApplianceSimulator(dict(properties), lab=lab.name) as old:
            # Another machine on the workload network (the Supervisor's VMs in the demo) keeps the lab's bridge up
            # while the old appliance is off, and the bridge's MAC is its own: a bridge without ports loses its
            # carrier, one whose MAC follows its ports' changes it, and either way the lab forgets its entries.
            for argv in (["link", "add", "other", "type", "veth", "peer", "name", "other-nic"],
                         ["link", "set", "other", "master", "br-workload", "up"], ["link", "set", "other-nic", "up"],
                         ["link", "set", "br-workload", "address", "02:00:00:00:00:01"]):
                ip(*argv, netns=lab.name)
            assert netns_exec(lab.name, probe, capture_output=True).returncode == 0
            assert neighbour() == old.macs["workload"]
        with ApplianceSimulator(dict(properties), lab=lab.name) as new:
            assert new.macs["workload"] != old.macs["workload"]
            assert neighbour() == new.macs["workload"]


def test_a_first_boot_tried_again_after_a_failure_boots_the_appliance_once():
    """The player tries a VM's first boot again after a failure (a dropped session, a reconfigure refused); the
    appliance it booted before the failure is the one it goes on with, never a second one on the same NICs (which
    fails every later try, and the VM never reports its address). The VM and vCenter here are stand-ins of the
    objects' shape: only the player's bookkeeping is under test."""
    from types import SimpleNamespace

    from pyVmomi import vim

    from tkgs_simulators.appliance.dataplane_server import make_ca
    from tkgs_simulators.first_boot import CLOUD_INIT_KEY, FirstBoot

    ca_pem, _ = make_ca("haproxy.local")
    booted: list = []

    class Appliance:  # its CA cannot be read the first time: the try fails after the boot
        running, release, reads = True, "v0.1.10", 0

        @property
        def ca_pem(self):
            self.reads += 1
            if self.reads == 1:
                raise ConnectionError("the session dropped")
            return ca_pem

    def boot(name, properties, macs):
        booted.append(Appliance())
        return booted[-1]

    properties = {"network.management_ip": "10.64.2.10/24", "network.hostname": "haproxy.local",
                  "appliance.root_pwd": "x", "loadbalance.haproxy_pwd": "y"}
    options = [vim.option.OptionValue(key=k, value=v) for k, v in {**properties, CLOUD_INIT_KEY: "FALSE"}.items()]
    done = SimpleNamespace(info=SimpleNamespace(state="success"))
    vm = SimpleNamespace(name="haproxy01", _moId="vm-1", config=SimpleNamespace(
        extraConfig=options, hardware=SimpleNamespace(device=[])), ReconfigVM_Task=lambda spec: done)
    player = FirstBoot(SimpleNamespace(), appliance=boot)
    with pytest.raises(ConnectionError):
        player._boot(vm)
    player._boot(vm)
    assert len(booted) == 1 and player.boots["haproxy01"].configured
