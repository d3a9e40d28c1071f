"""The site file's model: one YAML file describing one deployment.

The dataclasses below are the only place a field's meaning is written down (``doc=``);
``tkgs-runbook fields`` and the README's field table are generated from them (:func:`field_docs`).
Reading a file into this model is :mod:`tkgs_lib.site.loading`; what the values must be is
:mod:`tkgs_lib.site.rules` (names, TLS settings, libraries), :mod:`tkgs_lib.site.network`
(the address plan) and :mod:`tkgs_lib.site.workload_management` (the Supervisor's settings), which
read these values as the strings the person wrote.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from ..findings import Finding

MISSING = dataclasses.MISSING


def doc(text: str, default: Any = MISSING, *, path: bool = False, example: Any = None):
    """A dataclass field with its documentation; ``path`` fields resolve against the site file."""
    meta = {"doc": text, "path": path, "example": example}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


Deployment = Literal["default", "frontend"]
Download = Literal["immediately", "on_demand"]
Provisioning = Literal["thin", "thick", "eagerZeroedThick"]
SupervisorSize = Literal["tiny", "small", "medium", "large"]
SubjectType = Literal["USER", "GROUP"]
NamespaceRole = Literal["OWNER", "EDIT", "VIEW"]


@dataclass
class VCenter:
    server: str = doc("vCenter's host name or address, as its certificate names it.")
    username: str = doc("vCenter user, e.g. administrator@vsphere.local.")
    datacenter: str = doc("Datacenter that holds the cluster.")
    cluster: str = doc("Cluster the appliance and, later, Workload Management run on.")
    distributed_switch: str = doc("Distributed switch (VDS) that carries the three port groups.")
    datastores: list[str] = doc(
        "Datastores to tag for the Tanzu storage policy; the first also backs the content libraries.",
        example="[vsanDatastore]")
    port: int = doc("vCenter's HTTPS port.", 443)
    password_env: str = doc(
        "Environment variable holding vCenter's password; when unset the notebook asks for it.",
        "TKGS_VCENTER_PASSWORD")
    ca_file: Optional[str] = doc(
        "PEM bundle that signs vCenter's certificate. With thumbprint also null, the system's CA "
        "store is trusted, as a browser would.", None, path=True)
    thumbprint: Optional[str] = doc(
        "vCenter's pinned SHA-256 certificate fingerprint (AA:BB:...), instead of a CA file.", None)
    insecure: bool = doc(
        "Skip TLS verification entirely. Dangerous: only for a throwaway lab; every connection warns.",
        False)


@dataclass
class Network:
    vlan: int = doc("VLAN id of the network's distributed port group (0-4094; 0 is untagged).")
    portgroup: str = doc("Name of the distributed port group.")
    cidr: str = doc("The network, written as its network address with prefix, e.g. 10.64.2.0/23.")
    gateway: str = doc("The network's gateway: inside the network, not its network or broadcast address.")


@dataclass
class WorkloadNetwork(Network):
    ranges: list[str] = doc(
        "Address ranges (first-last) Tanzu hands to workload VMs; must avoid gateway and appliance.",
        [], example="10.64.8.50-10.64.15.150")


@dataclass
class Networks:
    management: Network = doc("Where the appliance is administered (SSH) and its Data Plane API listens.")
    workload: WorkloadNetwork = doc("Where the Kubernetes node VMs live.")
    frontend: Optional[Network] = doc(
        "Where load-balanced virtual IPs live (frontend deployment only; may be the workload network itself).",
        None)


@dataclass
class Storage:
    tag_category: str = doc("Tag category (associable to datastores) for the Tanzu datastore tag.")
    tag: str = doc("Tag attached to each datastore in vcenter.datastores.")
    policy: str = doc("Name of the tag-based VM storage policy that requires the tag.")


@dataclass
class SubscribedLibrary:
    name: str = doc("Name of the subscribed content library for Tanzu Kubernetes releases.")
    subscription_url: str = doc("Subscription URL, e.g. https://wp-content.vmware.com/v2/latest/lib.json.")
    download: Download = doc("When content is downloaded: immediately or on_demand.", "immediately")
    ssl_thumbprint: Optional[str] = doc(
        "The subscription server's certificate fingerprint, if vCenter asks for it.", None)


@dataclass
class LocalLibrary:
    name: str = doc("Name of the local content library that holds the HAProxy OVA.")
    ova: str = doc("The HAProxy OVA file, as downloaded (a path, relative to the site file).", path=True)
    item: str = doc("Name of the library item for the OVA, e.g. haproxy-v0.1.10.")


@dataclass
class ContentLibraries:
    kubernetes: SubscribedLibrary = doc("The subscribed library Tanzu fetches node images from.")
    haproxy: LocalLibrary = doc("The local library holding the HAProxy appliance OVA.")
    datastore: Optional[str] = doc("Datastore backing both libraries; null: the first of vcenter.datastores.", None)


@dataclass
class HAProxy:
    vm_name: str = doc("Name of the appliance VM.")
    hostname: str = doc("The appliance's fully qualified host name, e.g. haproxy01.test.corp.")
    management_ip: str = doc("Appliance address on the management network, with prefix (10.64.2.10/23).")
    workload_ip: str = doc("Appliance address on the workload network, with prefix.")
    nameservers: list[str] = doc("DNS servers (IPv4 addresses) for the appliance.")
    load_balancer_ranges: list[str] = doc(
        "CIDR blocks of virtual IPs, written verbatim to the appliance's anyip-routes.cfg.",
        example="10.64.1.0/24")
    deployment: Deployment = doc(
        "OVA deployment option: frontend (3 NICs) or default (2 NICs; virtual IPs on the workload network).",
        "frontend")
    frontend_ip: Optional[str] = doc("Appliance address on the frontend network, with prefix (frontend only).", None)
    dataplane_port: int = doc("TCP port of the Data Plane API on the management address.", 5556)
    dataplane_username: str = doc("Data Plane API user (not root).", "admin")
    dataplane_password_env: str = doc(
        "Environment variable holding the Data Plane API password.", "TKGS_HAPROXY_DATAPLANE_PASSWORD")
    root_password_env: str = doc(
        "Environment variable holding the appliance's root password.", "TKGS_HAPROXY_ROOT_PASSWORD")
    permit_root_login: bool = doc("Allow root to log in over SSH (the article: yes, to check the appliance).", True)
    ca_cert_file: Optional[str] = doc(
        "PEM CA certificate for the appliance to use; with ca_key_file null both, it makes its own.", None, path=True)
    ca_key_file: Optional[str] = doc("PEM private key of that CA.", None, path=True)
    additional_workload_networks: list[str] = doc(
        "Further workload networks (CIDR) the appliance routes to; appliance v0.2.0 and later only.", [],
        example="10.64.16.0/21")
    vm_folder: Optional[str] = doc(
        "VM folder for the appliance, a path under the datacenter's VM folder (e.g. tanzu/lb); null: the "
        "datacenter's VM folder.", None)
    resource_pool: Optional[str] = doc(
        "Resource pool of the cluster for the appliance, by name; null: the cluster's own pool.", None)
    datastore: Optional[str] = doc(
        "Datastore for the appliance's disk; null: the first of vcenter.datastores. With a storage block, "
        "its policy is asked for too.", None)
    disk_provisioning: Provisioning = doc("The appliance's disk provisioning: thin, thick or eagerZeroedThick.",
                                          "thin")
    boot_timeout: int = doc(
        "Seconds to wait after power-on for the appliance to report its management address and publish "
        "its CA.", 600)
    replace_existing: bool = doc(
        "Replace a VM named vm_name that differs from the plan (destroyed and deployed again, once the plan "
        "has shown it). false: such a VM is a conflict.", False)
    ova: Optional[str] = doc(
        "The HAProxy OVA to deploy from when the site has no content_libraries block (a path, relative to "
        "the site file).", None, path=True)
    ssh_user: str = doc("User the verify and repair stages log in as over SSH (the article: root).", "root")
    ssh_key_file: Optional[str] = doc(
        "Private key for that SSH login (no passphrase); the harden stage puts its public half in place for root "
        "and then turns root's password login off. Until the appliance takes the key, and when null: the root "
        "password from root_password_env (or a prompt).", None, path=True)
    ssh_known_hosts: Optional[str] = doc(
        "known_hosts file holding the appliance's SSH host key (checked on every connection).", None, path=True)
    ssh_host_key: Optional[str] = doc(
        "The appliance's SSH host key fingerprint, pinned (SHA256:... as `ssh-keygen -lf` prints it), instead "
        "of a known_hosts file.", None)
    ssh_trust_on_first_use: bool = doc(
        "Accept the SSH host key seen first and record it in the run folder's known_hosts. Dangerous: nothing "
        "proves it is the appliance's; every connection says so.", False)


@dataclass(kw_only=True)  # the keys in the order a person fills them in, required ones among them
class WorkloadManagement:
    """Workload Management (the Supervisor) on this load balancer. What is not here comes from the
    rest of the site (port groups, policy, library, the Data Plane API) and from vCenter."""

    cluster: Optional[str] = doc("Cluster to enable Workload Management on; null: vcenter.cluster.", None)
    size: SupervisorSize = doc(
        "Size of the Supervisor's control plane VMs (the API's size_hint): tiny, small, medium or large.", "tiny")
    services_cidr: str = doc(
        "Network (CIDR) Kubernetes gives its services' cluster addresses; it must overlap no site network.",
        "10.96.0.0/23")
    supervisor_start: str = doc(
        "The first of the Supervisor's 5 consecutive addresses on the management network, clear of its gateway, "
        "the appliance and every range.", example="10.64.2.20")
    dns_servers: list[str] = doc("DNS servers (IPv4 addresses) of the Supervisor's control plane (the API's "
                                 "master_DNS), on the management network.", example="[10.64.2.1]")
    workload_dns_servers: Optional[list[str]] = doc(
        "DNS servers (IPv4 addresses) of the Supervisor's workloads (the API's worker_DNS), reached from the "
        "workload network; null: dns_servers (write others when the workload network cannot reach those).", None,
        example="[10.64.8.1]")
    dns_search_domains: list[str] = doc("DNS search domains of the Supervisor's control plane, e.g. test.corp.", [])
    ntp_servers: list[str] = doc(
        "NTP servers (addresses or host names) of the Supervisor, those the ESXi hosts use: required, as a clock "
        "that drifts fails every certificate check.", example="[10.64.2.1]")
    workload_network_name: str = doc(
        "Name of the Supervisor's primary workload network: a DNS label (a-z, 0-9 and inner '-', at most 63).",
        "network-1")
    workload_ranges: Optional[list[str]] = doc(
        "Addresses (first-last) of the workload network Workload Management gives node VMs; null: "
        "networks.workload.ranges.", None)
    load_balancer_id: str = doc("The Supervisor's name for this load balancer: a DNS label.", "haproxy")
    virtual_ip_ranges: Optional[list[str]] = doc(
        "Virtual-server addresses (first-last or CIDR), within haproxy.load_balancer_ranges; null: those ranges "
        "less each network's network and broadcast addresses.", None)
    # A real enable takes 20 to 40 minutes or more: VMware's own Ansible module waits up to 7200 s, and
    # vCenter reports ERRORs that pass for many minutes (William Lam's notes: expect them for about 25).
    timeout: int = doc(
        "Seconds to wait after enabling for the Supervisor to report RUNNING (a real enable takes 20 to 40 minutes "
        "or more; VMware's own tooling waits 2 hours). A wait that times out sends nothing more: a rerun with apply "
        "waits on.", 7200)
    error_grace: int = doc(
        "Seconds vCenter may report ERROR while the Supervisor retries (it does, for many minutes, while its VMs "
        "deploy), or not answer at all, before the wait gives up with vCenter's messages; at most timeout.", 1500)


@dataclass
class NamespaceAccess:
    subject: str = doc("The user or group given the role, without its domain, e.g. administrator or devops.")
    domain: str = doc("Its identity source's domain, e.g. vsphere.local.", "vsphere.local")
    subject_type: SubjectType = doc("USER or GROUP.", "USER")
    role: NamespaceRole = doc("EDIT or VIEW; OWNER only where vCenter's API is 7.0.2.00100 (7.0 Update 2a) or later.",
                              "EDIT")


@dataclass(kw_only=True)  # the keys in the order a person fills them in, required ones among them
class Namespace:
    """A vSphere Namespace on the Supervisor's cluster (vCenter's /api/vcenter/namespaces/instances): who may use
    it, the VM classes bound to it and the site's storage policy with its limit."""

    name: str = doc("The namespace's name: a DNS label (a-z, 0-9 and inner '-', at most 63).", example="tkgs-demo")
    description: str = doc("What the namespace is for, as vCenter shows it.", "Made by tkgs-runbook")
    access: list[NamespaceAccess] = doc(
        "Who may use the namespace: a list of subject, domain, subject_type and role.",
        example="[{subject: administrator, domain: vsphere.local, role: EDIT}]")
    vm_classes: list[str] = doc(
        "VM classes bound to the namespace (vCenter 7.0 Update 2a and later); the cluster's classes must be among "
        "them.", ["best-effort-xsmall", "best-effort-small"])
    storage_limit_mib: int = doc("The namespace's limit on the storage policy (storage.policy), in MiB; 0: none.", 0)
    timeout: int = doc("Seconds to wait after creating for the namespace to report RUNNING.", 300)


@dataclass(kw_only=True)
class TanzuCluster:
    """A Tanzu Kubernetes cluster (TanzuKubernetesCluster) in the namespace, and the proof that its
    LoadBalancer Services get addresses from haproxy.load_balancer_ranges."""

    name: str = doc("The cluster's name: a DNS label (a-z, 0-9 and inner '-', at most 63).", example="tkc-01")
    release: str = doc("The Tanzu Kubernetes release (TanzuKubernetesRelease name) of its nodes.",
                       example="v1.21.6---vmware.1-tkg.1.b3d708a")
    control_plane_count: int = doc("Control-plane nodes: 1 or 3.", 1)
    control_plane_class: str = doc("VM class of the control-plane nodes (one of namespace.vm_classes).",
                                   "best-effort-small")
    worker_count: int = doc("Worker nodes (one node pool).", 2)
    worker_class: str = doc("VM class of the worker nodes (one of namespace.vm_classes).", "best-effort-small")
    storage_class: Optional[str] = doc(
        "Storage class of the nodes' disks: the namespace's storage policy as Kubernetes names it; null: "
        "storage.policy so named.", None)
    pods_cidr: str = doc("Network (CIDR) of the cluster's pods; clear of every site network and the Supervisor's "
                         "addresses (the API's default 192.168.0.0/16 collides with any 192.168.x site).",
                         "192.168.0.0/16")
    services_cidr: str = doc("Network (CIDR) of the cluster's services; clear of every site network and the "
                             "Supervisor's addresses.", "10.96.0.0/12")
    probe_image: str = doc(
        "Image of the small workload that proves a LoadBalancer Service: it answers /hostname with its pod's name "
        "(Kubernetes' agnhost netexec).", "registry.k8s.io/e2e-test-images/agnhost:2.39")
    timeout: int = doc("Seconds to wait for the cluster to be Ready, and for a Service's address.", 1800)


@dataclass
class Rotation:
    """What the rotate stage changes on the running appliance (and, for the Data Plane API's password, in the
    Supervisor too). Each new password comes from the environment variable named here, or a prompt."""

    dataplane_password_env: Optional[str] = doc(
        "Environment variable holding the Data Plane API's new password (set in the appliance's haproxy.cfg and "
        "in the Supervisor, which needs vCenter 7.0 U3); null: not rotated. Afterwards put it in "
        "haproxy.dataplane_password_env's variable.", None, example="TKGS_HAPROXY_NEW_DATAPLANE_PASSWORD")
    root_password_env: Optional[str] = doc(
        "Environment variable holding the appliance's new root password (set over SSH, then a login with it "
        "checked); null: not rotated. Afterwards put it in haproxy.root_password_env's variable.", None,
        example="TKGS_HAPROXY_NEW_ROOT_PASSWORD")
    certificate: bool = doc(
        "Reissue the Data Plane API's server certificate from the appliance's own CA (its new-cert.sh, 3,650 "
        "days); vCenter needs no change.", False)
    supervisor_timeout: int = doc(
        "Seconds to wait, once vCenter holds the new Data Plane API password, for the Supervisor to program the "
        "appliance with it (its control-plane servers up) before both are put back.", 300)


@dataclass
class Upgrade:
    """The running appliance replaced by a later release, deployed beside it with the same settings and CA (the
    appliance's docs/upgrade.md at v0.2.0: an upgrade swaps the VM for a new one)."""

    ova: str = doc("The OVA of the release to upgrade to (a path, relative to the site file), e.g. "
                   "haproxy-v0.2.0.ova.", path=True)
    remove_old: bool = doc(
        "Destroy the old appliance's VM once the new one serves. false: it is kept, powered off and renamed "
        "<vm_name>-<its release>, to go back to.", False)
    supervisor_timeout: int = doc(
        "Seconds to wait, once the new appliance passes verify's checks, for the Supervisor's virtual IP to answer "
        "through it (the appliance's upgrade notes: routes within about 5 minutes) before the old one is put back.",
        600)


@dataclass
class Site:
    site: str = doc("Short name of the deployment; names run folders.")
    vcenter: VCenter = doc("How to reach vCenter and which inventory objects to use.")
    networks: Networks = doc("The three networks of the article.")
    haproxy: HAProxy = doc("The appliance's vApp properties (passwords by environment variable only).")
    storage: Optional[Storage] = doc("The datastore tag and storage policy.", None)
    content_libraries: Optional[ContentLibraries] = doc("The two content libraries.", None)
    workload_management: Optional[WorkloadManagement] = doc(
        "Workload Management (the Supervisor) with this appliance as its load balancer.", None)
    namespace: Optional[Namespace] = doc("A vSphere Namespace on the Supervisor (the namespace stage).", None)
    tanzu_cluster: Optional[TanzuCluster] = doc(
        "A Tanzu Kubernetes cluster in that namespace and a LoadBalancer Service proving the appliance (the cluster "
        "stage).", None)
    rotate: Optional[Rotation] = doc("Secrets the rotate stage changes on the running appliance.", None)
    upgrade: Optional[Upgrade] = doc("The release the upgrade stage replaces the running appliance with.", None)

    # Not site keys: where the file came from and what loading it found.
    source: Optional[Path] = field(default=None, metadata={"internal": True}, compare=False)
    findings: list[Finding] = field(default_factory=list, metadata={"internal": True}, compare=False)

    def ova(self) -> tuple[Optional[Path], str]:
        """The HAProxy OVA the site names (None: none) and the field naming it: the local content
        library's item when the site has libraries, else the file deployed directly."""
        if self.content_libraries is not None:
            return Path(self.content_libraries.haproxy.ova), "content_libraries.haproxy.ova"
        return (Path(self.haproxy.ova) if self.haproxy.ova else None), "haproxy.ova"


def field_docs(cls: type = Site, prefix: str = "") -> list[dict]:
    """Every site key with its type, default and meaning, in file order."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        path = f"{prefix}.{f.name}" if prefix else f.name
        hint = hints[f.name]
        inner = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        target = inner[0] if typing.get_origin(hint) in (Union, types.UnionType) else hint
        if f.default is not MISSING:
            default = "null" if f.default is None else str(f.default).lower() if isinstance(f.default, bool) else str(f.default)
        elif f.default_factory is not MISSING:
            default = "[]"
        else:
            default = "(required)"
        rows.append({"key": path, "type": _type_name(hint), "default": default, "meaning": f.metadata["doc"]})
        if dataclasses.is_dataclass(target):
            rows.extend(field_docs(target, path))
    return rows


def _type_name(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + " or null"
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is Literal:
        return " | ".join(args)
    if dataclasses.is_dataclass(hint):
        return "mapping"
    return {str: "text", int: "number", bool: "true/false"}.get(hint, getattr(hint, "__name__", str(hint)))
