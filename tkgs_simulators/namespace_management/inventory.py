"""What the stand-in reads from the simulator it belongs to: its sessions, clusters and appliances.

A request's ``vmware-api-session-id`` is good when the simulator's own vAPI session service knows
it (``POST /rest/com/vmware/cis/session?~action=get``; this govmomi serves sessions only under
``/rest``, not ``/api/session``). Clusters, hosts, switches, licences and VMs come over SOAP with
the simulator's credentials. An appliance is the VM whose property values (the simulator keeps them
in the VM's ``extraConfig``, the last value of each key) say ``network.management_ip`` is the load
balancer's address; ``loadbalance.service_ip_range`` is what it was deployed to serve.

A host's licence, as this stand-in decides it (its choice: the simulator has no licence that names
Workload Management): the host is licensed while the licence vCenter reports assigned to it
(``LicenseAssignmentManager.QueryAssignedLicenses`` with the host's id) is one the
``LicenseManager`` still holds (its ``licenses``). The simulator assigns its evaluation licence to
every host and holds it until ``LicenseManager.RemoveLicense`` removes it (``AddLicense`` with the
same key brings it back); vSphere's evaluation mode has every feature, Workload Management among them.
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

__all__ = ["Appliance", "Host", "Cluster", "Switch", "SimulatorInventory", "SESSION_HEADER"]

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


@dataclass(frozen=True)
class Host:
    """A host as the simulator holds it: its product (``summary.config.product``) and licence."""

    moid: str
    name: str
    version: str  # e.g. 7.0.3
    build: str
    licensed: bool


@dataclass(frozen=True)
class Cluster:
    """A cluster's DRS and vSphere HA (``configurationEx``) and its hosts."""

    moid: str
    name: str
    datacenter: str  # the datacenter's managed object id
    drs_enabled: bool
    drs_behavior: str  # defaultVmBehavior: fullyAutomated, partiallyAutomated, manual; "" when unset
    ha_enabled: bool
    hosts: tuple[Host, ...]


@dataclass(frozen=True)
class Switch:
    """A distributed switch: its version (``summary.productInfo.version``), member hosts and port groups."""

    moid: str
    name: str
    datacenter: str
    version: str
    members: frozenset[str]  # the hosts' managed object ids
    portgroups: tuple[str, ...]  # its port groups' managed object ids, the uplink port groups left out


def _datacenter(entity) -> str:
    while entity is not None and not isinstance(entity, vim.Datacenter):
        entity = entity.parent
    return entity._moId if entity is not None else ""


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

    def _read(self, read):
        """``read(content)`` on the simulator's service content, under the lock, logged in."""
        with self._lock:
            for attempt in (1, 2):  # a dropped SOAP session (a loaded machine): log in once more
                try:
                    if self._si is None:
                        self._si = SmartConnect(host=self.host, port=self.port, user=self.username,
                                                pwd=self._password, sslContext=self._context)
                    return read(self._si.content)
                except (vim.fault.NotAuthenticated, ConnectionError, OSError):
                    self._si = None
                    if attempt == 2:
                        raise
        return None

    def _objects(self, kind) -> list:
        def listed(content) -> list:
            view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
            try:
                return list(view.view)
            finally:
                view.Destroy()
        return self._read(listed)

    def compute(self) -> tuple[list[Cluster], list[Switch]]:
        """Every cluster (its DRS, HA, hosts, their products and licences) and every distributed switch."""
        def read(content) -> tuple[list[Cluster], list[Switch]]:
            view = content.viewManager.CreateContainerView(content.rootFolder, [vim.ClusterComputeResource,
                                                                                vim.DistributedVirtualSwitch], True)
            try:
                objects = list(view.view)
            finally:
                view.Destroy()
            licences = content.licenseManager
            held = {licence.licenseKey for licence in licences.licenses or ()}
            assignments = licences.licenseAssignmentManager

            def host(h) -> Host:
                product = h.summary.config.product
                assigned = {a.assignedLicense.licenseKey for a in assignments.QueryAssignedLicenses(entityId=h._moId)
                            if a.assignedLicense is not None}
                return Host(h._moId, h.name, product.version or "", product.build or "", bool(assigned & held))

            clusters, switches = [], []
            for obj in objects:
                if isinstance(obj, vim.ClusterComputeResource):
                    config = obj.configurationEx
                    clusters.append(Cluster(obj._moId, obj.name, _datacenter(obj.parent),
                                            bool(config.drsConfig.enabled), config.drsConfig.defaultVmBehavior or "",
                                            bool(config.dasConfig.enabled), tuple(host(h) for h in obj.host or ())))
                else:
                    summary = obj.summary
                    product = summary.productInfo
                    uplinks = {pg._moId for pg in obj.config.uplinkPortgroup or ()}
                    switches.append(Switch(obj._moId, obj.name, _datacenter(obj.parent),
                                           (product.version if product is not None else "") or "",
                                           frozenset(h._moId for h in summary.hostMember or ()),
                                           tuple(pg._moId for pg in obj.portgroup or ()
                                                 if pg._moId not in uplinks and not pg.config.uplink)))
            return clusters, switches
        return self._read(read)

    def clusters(self) -> dict[str, str]:
        """Each cluster's managed object id and name. (vCenter's ids read ``domain-c8``; this
        govmomi's ``clustercomputeresource-27``.)"""
        return {obj._moId: obj.name for obj in self._objects(vim.ClusterComputeResource)}

    def api_version(self) -> tuple[int, ...]:
        """The API version the simulator reports (``ServiceContent.about.apiVersion``), e.g. (7, 0, 3, 0)."""
        text = self._read(lambda content: content.about.apiVersion) or ""
        return tuple(int(part) for part in text.split(".") if part.isdigit())

    def appliance_at(self, address: str) -> Optional[Appliance]:
        """The VM deployed as the HAProxy appliance whose management address is ``address``: a powered-on one
        first (an upgrade keeps the old appliance's VM beside the new one, powered off)."""
        vms = sorted(self._objects(vim.VirtualMachine), key=lambda vm: vm.runtime.powerState != "poweredOn")
        for vm in vms:
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
