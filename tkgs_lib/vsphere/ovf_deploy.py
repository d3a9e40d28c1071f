"""Deploying an OVF library item: vCenter's ``ovf/library-item ... ?~action=deploy``, as the article
deploys from its content library.

vCenter answers HTTP 200 even when the deployment failed, with the error in the body: that is an
error here. Every value was checked against the OVA's descriptor before this call (the simulator
accepts undeclared keys, bad values and unknown options, so nothing here may rely on it to refuse).
A failed deployment that left a VM behind is cleaned up.
"""

from __future__ import annotations

from typing import Callable

from ..credentials import plain
from ..errors import TkgsError, VSphereError

__all__ = ["deploy_library_item", "DEPLOY_PATH"]

DEPLOY_PATH = "/rest/com/vmware/vcenter/ovf/library-item"


def deploy_body(spec) -> dict:
    """The request body: where, which deployment option, the network mapping and every property."""
    placement = spec.placement
    deployment_spec = {
        "name": spec.name,
        "accept_all_EULA": True,
        "default_datastore_id": placement.datastore_id,
        "storage_provisioning": spec.provisioning,
        "network_mappings": [{"key": ovf, "value": moid} for ovf, (_, moid) in spec.networks.items()],
        "additional_parameters": [
            {"@class": "com.vmware.vcenter.ovf.deployment_option_params", "type": "DeploymentOptionParams",
             "selected_key": spec.deployment},
            {"@class": "com.vmware.vcenter.ovf.property_params", "type": "PropertyParams",
             "properties": [{"id": key, "value": plain(value)} for key, value in spec.properties.items()]},
        ],
    }
    if placement.policy_id:
        deployment_spec["storage_profile_id"] = placement.policy_id
    return {"target": {"resource_pool_id": placement.pool_id, "folder_id": placement.folder_id},
            "deployment_spec": deployment_spec}


def _errors(value: dict) -> str:
    error = value.get("error") or {}
    messages = []
    for item in error.get("errors") or []:
        inner = item.get("error") or {}
        for message in inner.get("messages") or []:
            if message.get("default_message"):
                messages.append(message["default_message"])
    return "; ".join(messages) or "vCenter gave no reason"


def deploy_library_item(session, inventory, source, spec, *, destroy: Callable[[str], bool]) -> str:
    """Deploy ``source`` (a library item) as ``spec`` says; returns the VM's managed object id."""
    try:
        value = session.rest.post(f"{DEPLOY_PATH}/id:{source.item_id}", deploy_body(spec), action="deploy") or {}
    except TkgsError as exc:  # no answer, or a refusal: vCenter may still have made the VM, whole or half
        try:
            left = destroy(spec.name)
        except TkgsError as failed:  # vCenter still out of reach: what it did stays unknown
            raise exc.reworded(f"{exc.message.rstrip('.')}; whether it left a VM could not be seen ({failed.message})") \
                from None
        exc.effect = (f"vCenter held a VM '{spec.name}', which was then removed, so none is left" if left
                      else f"vCenter holds no VM '{spec.name}'")
        raise
    except BaseException:
        destroy(spec.name)  # a request cut off half way may have left a VM
        raise
    resource = value.get("resource_id") or {}
    if value.get("succeeded") and resource.get("id"):
        return resource["id"]
    left = destroy(spec.name)
    raise VSphereError(f"deploying VM '{spec.name}' from {source.describe()} failed: {_errors(value)}."
                       + (" The VM it left behind was removed." if left else ""))
