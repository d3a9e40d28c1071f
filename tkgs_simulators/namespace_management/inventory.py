"""What the stand-in reads from the simulator it belongs to: its sessions, clusters and appliances.

A request's ``vmware-api-session-id`` is good when the simulator's own vAPI session service knows
it (``POST /rest/com/vmware/cis/session?~action=get``; this govmomi serves sessions only under
``/rest``, not ``/api/session``). Clusters and VMs come over SOAP with the simulator's
credentials. An appliance is the VM whose property values (the simulator keeps them in the VM's
``extraConfig``, the last value of each key) say ``network.management_ip`` is the load
balancer's address; ``loadbalance.service_ip_range`` is what it was deployed to serve.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import threading
from dataclasses import dataclass
from typing import Optional

import requests
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tkgs_lib.https import ContextAdapter

from ..extra_config import extra_config_values

log = logging.getLogger(__name__)

__all__ = ["Appliance", "SimulatorInventory", "SESSION_HEADER"]

SESSION_HEADER = "vmware-api-session-id"
SESSION_CHECK = "/rest/com/vmware/cis/session?~action=get"
MANAGEMENT_IP, SERVICE_RANGES = "network.management_ip", "loadbalance.service_ip_range"


@dataclass(frozen=True)
class Appliance:
    """An HAProxy appliance as vCenter holds it: its VM and the ranges it was deployed to serve."""

    vm: str
    management_ip: str
    service_ranges: tuple[ipaddress.IPv4Network, ...]
    service_ip_range: str  # the property's value, as it was sent


class SimulatorInventory:
    """Reads the simulator at ``host:port`` (TLS verified against ``ca_file``) as ``username``."""

    def __init__(self, host: str, port: int, ca_file: str, username: str, password: str) -> None:
        self.host, self.port, self.username = host, port, username
        self._password = password
        self._context = ssl.create_default_context(cafile=ca_file)
        self._http = requests.Session()
        self._http.trust_env = False  # REQUESTS_CA_BUNDLE must not decide what is trusted
        self._http.mount("https://", ContextAdapter(self._context))
        self._lock = threading.Lock()
        self._si = None

    def __repr__(self) -> str:  # never the password
        return f"<SimulatorInventory https://{self.host}:{self.port} user={self.username}>"

    def session_is_valid(self, session_id: str) -> bool:
        if not session_id:
            return False
        try:
            answer = self._http.post(f"https://{self.host}:{self.port}{SESSION_CHECK}", json={},
                                     headers={SESSION_HEADER: session_id}, timeout=10, allow_redirects=False)
        except requests.RequestException as exc:
            log.warning("checking a session with the simulator failed: %s", type(exc).__name__)
            return False
        return answer.status_code == 200

    def login_works(self, username: str, password: str) -> bool:
        """Whether the simulator takes ``username`` and ``password``: a SOAP login, logged out again (its REST
        session service takes any password; its SOAP login checks them)."""
        try:
            si = SmartConnect(host=self.host, port=self.port, user=username, pwd=password, sslContext=self._context)
        except vim.fault.InvalidLogin:
            return False
        except Exception as exc:  # noqa: BLE001 (the simulator unreachable: not a login)
            log.warning("checking a login with the simulator failed: %s", type(exc).__name__)
            return False
        try:
            Disconnect(si)
        except Exception:  # noqa: BLE001
            pass
        return True

    def storage_policy_name(self, policy_id: str) -> str:
        """The name of the storage policy ``policy_id`` (SPBM, on the SOAP session), or ""."""
        from pyVmomi import SoapStubAdapter, pbm

        self._objects(vim.Datacenter)  # logged in
        with self._lock:
            session = self._si._stub.GetSessionId() if self._si is not None else ""
        stub = SoapStubAdapter(host=self.host, port=self.port, path="/pbm", version="pbm.version.version11",
                               sslContext=self._context, sessionId=session, requestContext={"vcSessionCookie": session})
        manager = pbm.ServiceInstance("ServiceInstance", stub).RetrieveContent().profileManager
        try:
            profiles = manager.PbmRetrieveContent([pbm.profile.ProfileId(uniqueId=policy_id)])
        except Exception as exc:  # noqa: BLE001 (an unknown id: no name)
            log.info("storage policy %s: %s", policy_id, exc)
            return ""
        return profiles[0].name if profiles else ""

    def _objects(self, kind) -> list:
        with self._lock:
            for attempt in (1, 2):  # a dropped SOAP session (a loaded machine): log in once more
                try:
                    if self._si is None:
                        self._si = SmartConnect(host=self.host, port=self.port, user=self.username,
                                                pwd=self._password, sslContext=self._context)
                    content = self._si.content
                    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
                    try:
                        return list(view.view)
                    finally:
                        view.Destroy()
                except (vim.fault.NotAuthenticated, ConnectionError, OSError):
                    self._si = None
                    if attempt == 2:
                        raise
        return []

    def clusters(self) -> dict[str, str]:
        """Each cluster's managed object id and name. (vCenter's ids read ``domain-c8``; this
        govmomi's ``clustercomputeresource-27``.)"""
        return {obj._moId: obj.name for obj in self._objects(vim.ClusterComputeResource)}

    def appliance_at(self, address: str) -> Optional[Appliance]:
        """The VM deployed as the HAProxy appliance whose management address is ``address``."""
        for vm in self._objects(vim.VirtualMachine):
            values = extra_config_values(vm.config.extraConfig if vm.config else ())
            if values.get(MANAGEMENT_IP, "").split("/", 1)[0].strip() != address:
                continue
            text = values.get(SERVICE_RANGES, "")
            ranges = []
            for part in filter(None, (p.strip() for p in text.split(","))):
                try:  # strict: the appliance's kernel refuses a block with host bits (10.64.0.1/23)
                    ranges.append(ipaddress.IPv4Network(part))
                except ValueError:
                    log.info("appliance %s: %s holds %r, which it cannot serve", vm.name, SERVICE_RANGES, part)
            return Appliance(vm.name, address, tuple(ranges), text)
        return None

    def close(self) -> None:
        with self._lock:
            si, self._si = self._si, None
        if si is not None:
            try:
                Disconnect(si)
            except Exception:  # noqa: BLE001 (the simulator may be gone already)
                pass
        self._http.close()
