"""Importing the appliance from the OVA file itself, when the site keeps no content library.

The OVF way: an import spec from the descriptor (with the deployment option, the network mapping
and every property), ``ImportVApp`` for a lease, each disk streamed from inside the OVA to the
lease's address with a progress bar (the lease's own progress kept alive as it goes), then
``HttpNfcLeaseComplete``. On any failure, an interrupt included, the lease is aborted and the VM
it made is destroyed: aborting alone leaves it in place (on the simulator, and on a real vCenter
too), so nothing is left behind.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from pyVmomi import vim

from ..credentials import plain
from ..errors import VSphereError
from ..ova import CHUNK_SIZE, Ova
from ..display.progress import progress_bar
from .tasks import fault_sentence, vsphere_call, wait_for_task
from .upload import StreamedBody, lost_connection

log = logging.getLogger(__name__)

__all__ = ["import_ova"]

LEASE_PROGRESS_EVERY = 2.0  # seconds; a lease that hears nothing times out


def _import_spec(session, inventory, source, spec):
    stub = session.si._stub
    networks = inventory.networks()
    params = vim.OvfManager.CreateImportSpecParams(
        entityName=spec.name, diskProvisioning=spec.provisioning, deploymentOption=spec.deployment,
        networkMapping=[vim.OvfManager.NetworkMapping(name=ovf, network=networks[portgroup])
                        for ovf, (portgroup, _) in spec.networks.items()],
        propertyMapping=[vim.KeyValue(key=key, value=plain(value)) for key, value in spec.properties.items()])
    pool = vim.ResourcePool(spec.placement.pool_id, stub)
    datastore = vim.Datastore(spec.placement.datastore_id, stub)
    with vsphere_call(f"making the import spec for VM '{spec.name}'"):
        result = session.content.ovfManager.CreateImportSpec(source.descriptor, pool, datastore, params)
    if result.error:
        raise VSphereError(f"vCenter cannot import {source.ova.name} as VM '{spec.name}': "
                           f"{'; '.join(fault_sentence(e) for e in result.error)}.")
    return pool, result


def _wait_ready(lease, name: str, timeout: float = 300.0) -> None:
    from ..polling import wait_until

    def read():
        with vsphere_call(f"waiting for the import lease of VM '{name}'"):
            state = lease.state
            if state == vim.HttpNfcLease.State.error:  # only now is lease.error set, and safe to read
                raise VSphereError(f"the import lease of VM '{name}' failed: {fault_sentence(lease.error)}.")
            return state

    wait_until(read, lambda state: state == vim.HttpNfcLease.State.ready, timeout=timeout,
               timed_out=lambda state, elapsed: VSphereError(
                   f"the import lease of VM '{name}' was not ready within {timeout:.0f} s (it is {state})."))


def _target(session, url: str) -> str:
    """The address to send a disk to: vCenter's own when the lease writes its host as ``*``."""
    if "://*" in url:
        scheme, rest = url.split("://*", 1)
        return session.rest.base_url + rest[rest.index("/"):] if "/" in rest else session.rest.base_url
    return url


def import_ova(session, inventory, source, spec, *, progress: bool = True,
               on_chunk: Optional[Callable[[int], object]] = None) -> str:
    """Import ``source.ova`` as ``spec`` says; returns the new VM's managed object id."""
    pool, result = _import_spec(session, inventory, source, spec)
    folder = vim.Folder(spec.placement.folder_id, session.si._stub)
    with vsphere_call(f"importing VM '{spec.name}'"):
        lease = pool.ImportVApp(result.importSpec, folder)
    entity = None
    try:
        _wait_ready(lease, spec.name)
        with vsphere_call(f"reading the import lease of VM '{spec.name}'"):
            info = lease.info
            entity = info.entity  # taken now: the lease is gone after HttpNfcLeaseComplete
        ova = Ova(source.ova)
        items = {item.deviceId: item for item in result.fileItem or ()}
        total = sum(int(item.size or 0) for item in items.values()) or 1
        sent, last_progress = 0, time.monotonic()
        with progress_bar(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=f"importing {source.ova.name}", disable=not progress) as bar:
            def chunk_sent(n: int) -> None:
                nonlocal sent, last_progress
                sent += n
                bar.update(n)
                if on_chunk is not None:
                    on_chunk(sent)
                if time.monotonic() - last_progress > LEASE_PROGRESS_EVERY:
                    last_progress = time.monotonic()
                    with vsphere_call(f"reporting the import progress of VM '{spec.name}'"):
                        lease.HttpNfcLeaseProgress(min(99, int(100 * sent / total)))

            for device in info.deviceUrl or ():
                item = items.get(device.importKey)
                if item is None:
                    continue
                _send_disk(session, ova, item.path, _target(session, device.url), chunk_sent,
                           put=item.create)
        with vsphere_call(f"completing the import of VM '{spec.name}'"):
            lease.HttpNfcLeaseComplete()
        return entity._moId
    except BaseException as exc:
        _undo(session, lease, entity, spec.name, exc)
        raise


def _send_disk(session, ova: Ova, name: str, url: str, on_chunk, put: bool) -> None:
    import requests

    reader = ova.open(name, CHUNK_SIZE)
    with reader:
        body = StreamedBody(reader, on_chunk)
        headers = {"Content-Type": "application/x-vnd.vmware-streamVmdk",
                   "Cookie": f"vmware_soap_session={session.session_id}"}
        try:
            method = "PUT" if put else "POST"
            response = session.rest.send(method, url, f"{method} the disk {name} to the import lease", data=body,
                                         headers=headers, timeout=(15.0, 600.0))
        except requests.RequestException as exc:
            raise VSphereError(lost_connection(name, body, exc)) from None
    if response.status_code >= 300:
        raise VSphereError(f"vCenter refused {name}: HTTP {response.status_code} ({response.reason}).")


def _undo(session, lease, entity, name: str, cause: BaseException) -> None:
    """Abort the lease and destroy the VM it made; never raises over the error that got us here."""
    try:
        fault = vim.LocalizedMethodFault(localizedMessage=f"tkgs-runbook: {type(cause).__name__}")
        lease.HttpNfcLeaseAbort(fault)
    except Exception as exc:  # noqa: BLE001 (cleanup)
        log.warning("could not abort the import lease of VM '%s': %s", name, exc)
    if entity is None:
        return
    try:
        vm = vim.VirtualMachine(entity._moId, session.si._stub)
        if vm.runtime.powerState == "poweredOn":
            wait_for_task(vm.PowerOffVM_Task(), f"powering off VM '{name}'")
        wait_for_task(vm.Destroy_Task(), f"destroying the half-imported VM '{name}'")
    except Exception as exc:  # noqa: BLE001 (cleanup)
        log.warning("could not destroy the half-imported VM '%s' (%s): delete it in vCenter", name, exc)
