"""The VM changes an upgrade adds to the VM transport (power-off, rename) against the vCenter simulator: each
sent through the guarded stub, so on the ledger, and a refusal worded after what was being done."""

from __future__ import annotations

import pytest

from sim_site import site_for
from tkgs_lib import effects
from tkgs_lib.errors import VSphereError
from tkgs_lib.vsphere.connection import connect
from tkgs_lib.vsphere.inventory import Inventory
from tkgs_lib.vsphere.vm import VmOps, read_vms

pytestmark = pytest.mark.vcsim

# The simulator's own VMs (its default VPX inventory), powered on.
VM, OTHER = "DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1"


def test_power_off_and_rename_are_entered_on_the_ledger_and_done(vcsim):
    site = site_for(vcsim)
    with connect(site.vcenter, password=vcsim.password) as session, effects.keeping(effects.Ledger()) as ledger:
        inventory = Inventory(session, site.vcenter)
        ops = VmOps(session, inventory, progress=False)
        (vm,) = read_vms(inventory, VM)
        assert vm.powered_on

        assert ops.power_off(vm.moid) is True
        assert ops.power_off(vm.moid) is False  # already off: nothing sent
        ops.rename(vm.moid, "haproxy01-v0.1.10")

        assert read_vms(inventory, VM) == []
        (renamed,) = read_vms(inventory, "haproxy01-v0.1.10")
        assert renamed.moid == vm.moid and renamed.power_state == "poweredOff"
        assert [(e.request, e.outcome) for e in ledger.effects] == [("PowerOffVM_Task", effects.DONE),
                                                                   ("Rename_Task", effects.DONE)]


def test_a_rename_to_a_name_taken_is_refused_in_one_sentence(vcsim):
    site = site_for(vcsim)
    with connect(site.vcenter, password=vcsim.password) as session, effects.keeping(effects.Ledger()):
        inventory = Inventory(session, site.vcenter)
        (vm,) = read_vms(inventory, VM)
        with pytest.raises(VSphereError, match=f"renaming VM '{VM}' to '{OTHER}' failed: ") as refused:
            VmOps(session, inventory, progress=False).rename(vm.moid, OTHER)
        assert "Traceback" not in str(refused.value)
        assert [v.moid for v in read_vms(inventory, VM)] == [vm.moid]
