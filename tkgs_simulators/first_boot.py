"""The HAProxy appliance's first boot, played in the vCenter simulator, where nothing reacts to a
power-on.

:class:`FirstBoot` watches the simulator from its own session. When a VM powers on, it reads what
the appliance would read, the VM's property values (the simulator keeps them in the VM's
``extraConfig``; the last value of each key) and the advanced setting
``guest_rpc.auth.cloud-init.set``, and then behaves as the appliance does:

* without ``guest_rpc.auth.cloud-init.set = FALSE`` it stays unconfigured (on vSphere 8.0U3 the
  real appliance never configures itself then): no address, no CA;
* otherwise it reports its management address to the VM (the simulator's ``SET.guest.ipAddress``),
  publishes the cloud-config its ``ovf-to-cloud-init.sh`` made, as its ``publishUserdata`` does
  (``guestinfo.userdata``, base64 of userdata.txt with root's password hashed with the salt SaltSalt,
  and ``guestinfo.userdata.encoding``: :mod:`tkgs_simulators.appliance.scripts`), and publishes its CA in
  ``guestinfo.dataplaneapi.cacert`` (base64 of the PEM): the user's own CA when ``appliance.ca_cert``
  and ``appliance.ca_cert_key`` were sent, else one it makes as its ``new-ca.sh`` does (SHA-1 signed).
  In the end-to-end run it first boots a full simulated appliance from those values and the VM's MACs
  (:mod:`tkgs_simulators.appliance`), and publishes that appliance's CA.
  That appliance then follows its VM's power: powered off, it shuts down and its NICs leave the lab
  (nothing answers at its addresses); powered on again, it boots from its disk; its VM destroyed, it is shut down for good.

What it saw at each power-on is kept in :attr:`FirstBoot.boots`, for the tests. The tests and
``tkgs-runbook demo`` start one beside the simulator.
"""

from __future__ import annotations

import base64
import logging
import ssl
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from .appliance.scripts import ARTICLE_RELEASE, played
from .appliance.scripts.new_ca import new_ca
from .appliance.scripts.ovf_to_cloud_init import CA_CRT
from .extra_config import extra_config_values

log = logging.getLogger(__name__)

__all__ = ["FirstBoot", "Boot", "make_ca"]

CLOUD_INIT_KEY = "guest_rpc.auth.cloud-init.set"
# Where the appliance publishes its CA, base64 of /etc/haproxy/ca.crt (userdata.txt's last runcmd, v0.1.7 to
# v0.2.0: vmware-rpctool "info-set guestinfo.dataplaneapi.cacert $(base64 -w0 /etc/haproxy/ca.crt)").
CA_GUESTINFO = "guestinfo.dataplaneapi.cacert"
PROPERTY_CLASSES = ("appliance.", "network.", "loadbalance.")


class Appliance(Protocol):
    """A simulated appliance a VM's first boot booted: it powers off and on with its VM."""

    ca_pem: str
    running: bool

    def power_off(self) -> object: ...

    def power_on(self) -> object: ...


@dataclass
class Boot:
    """What the appliance saw when its VM powered on, and what it did."""

    vm: str
    properties: dict[str, str]
    cloud_init_set: Optional[str]
    configured: bool
    ca_pem: str = ""
    extra_config: dict[str, str] = field(default_factory=dict)


def make_ca(local_ipv4: str) -> str:
    """A fresh CA certificate, as the appliance's new-ca.sh makes at first boot when given none (PEM)."""
    return new_ca(local_ipv4)[0]


class FirstBoot:
    """Watches a :class:`~tkgs_simulators.vcsim.VCenterSimulator`; plays each VM's first boot."""

    def __init__(self, sim, *, poll: float = 0.2,
                 appliance: Optional[Callable[[str, dict[str, str], list[str]], "Appliance"]] = None,
                 release: str = ARTICLE_RELEASE) -> None:
        """``appliance(vm name, property values, NIC MACs in order)`` boots a full simulated appliance from what
        vCenter holds (the end-to-end run) and returns it; without it, a CA is made here. ``release``: the
        appliance's, whose first-boot script publishes the userdata."""
        self.sim, self.poll, self.appliance, self.release = sim, poll, appliance, release
        self.boots: dict[str, Boot] = {}
        self._appliances: dict[str, Appliance] = {}  # managed object id → the appliance its first boot booted
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._seen: set[str] = set()  # managed object ids already booted (or left unconfigured)

    def __enter__(self) -> "FirstBoot":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "FirstBoot":
        self._thread = threading.Thread(target=self._run, name="first-boot", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        si = None
        while not self._stop.wait(self.poll):
            try:
                if si is None:  # (again) after a lost session: a loaded machine may drop one
                    context = ssl.create_default_context(cafile=str(self.sim.ca_file))
                    si = SmartConnect(host=self.sim.host, port=self.sim.port, user=self.sim.username,
                                      pwd=self.sim.password, sslContext=context)
                self._look(si)
            except Exception as exc:  # noqa: BLE001 (a VM destroyed mid-read, a dropped session: try again)
                log.info("first boot: %s: %s (tried again)", type(exc).__name__, exc)
                si = None if not isinstance(exc, vim.fault.VimFault) else si
        if si is not None:
            try:
                Disconnect(si)
            except Exception:  # noqa: BLE001 (the simulator may be gone already)
                pass

    def _look(self, si) -> None:
        content = si.content
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        try:
            vms = list(view.view)
        finally:
            view.Destroy()
        present = {vm._moId for vm in vms}
        for moid in [m for m in self._appliances if m not in present]:  # a VM destroyed: its appliance goes with it
            gone = self._appliances.pop(moid)
            if gone.running:
                gone.power_off()
                log.info("%s: its VM was destroyed, its appliance shut down", moid)
        for vm in vms:
            state = vm.runtime.powerState
            booted = self._appliances.get(vm._moId)
            if booted is not None and booted.running != (state == "poweredOn"):
                (booted.power_on if state == "poweredOn" else booted.power_off)()
                log.info("%s: its appliance %s", vm.name, "booted again" if booted.running else "shut down")
                continue
            if vm._moId in self._seen or state != "poweredOn":
                continue
            self._boot(vm)
            self._seen.add(vm._moId)  # only once booted: a boot cut short by a dropped session is tried again

    def _boot(self, vm) -> None:
        extra = extra_config_values(vm.config.extraConfig)
        properties = {k: v for k, v in extra.items() if k.startswith(PROPERTY_CLASSES)}
        if not properties:  # not an appliance (the simulator's own VMs start powered on)
            return
        boot = Boot(vm.name, properties, extra.get(CLOUD_INIT_KEY), configured=False, extra_config=extra)
        self.boots[vm.name] = boot
        if extra.get(CLOUD_INIT_KEY, "").upper() != "FALSE" or not properties.get("network.management_ip"):
            log.info("first boot of %s: unconfigured (cloud-init setting %r)", vm.name, extra.get(CLOUD_INIT_KEY))
            return
        address = properties["network.management_ip"].split("/", 1)[0]
        release = self.release
        if self.appliance is not None:
            booted = self._appliances.get(vm._moId)  # booted by a try that failed after it (a dropped session)
            if booted is None:
                macs = [d.macAddress for d in vm.config.hardware.device
                        if isinstance(d, vim.vm.device.VirtualEthernetCard)]
                booted = self._appliances[vm._moId] = self.appliance(vm.name, properties, macs)
            pem, release = booted.ca_pem, getattr(booted, "release", release)  # an upgrade's: the later release
        else:  # the user's CA as writeCAfiles writes it (the same at every tag), else one made as cloud-init makes it
            first_boot = played(self.release).first_boot(properties, {})
            first_boot.write_ca_files()
            pem = first_boot.files.get(CA_CRT) or make_ca(address)
        script = played(release).first_boot(properties, {})
        script.publish_userdata()  # `ovf-rpctool set userdata ...`: the guestinfo the VM then holds
        published = base64.b64encode(pem.encode()).decode()
        spec = vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key="SET.guest.ipAddress", value=address),
                                              *(vim.option.OptionValue(key=k, value=v) for k, v in
                                                script.published.items()),
                                              vim.option.OptionValue(key=CA_GUESTINFO, value=published)])
        task = vm.ReconfigVM_Task(spec)
        while task.info.state not in ("success", "error"):
            self._stop.wait(0.05)
        boot.configured, boot.ca_pem = task.info.state == "success", pem
        log.info("first boot of %s: reports %s, CA published", vm.name, address)
