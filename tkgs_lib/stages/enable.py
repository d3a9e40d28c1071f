"""Stage 6, enable Workload Management (the Supervisor) with this HAProxy appliance as its load balancer.

vSphere networking, no NSX: the Supervisor's control plane on the management network, its primary
workload network on the workload port group, and the appliance's Data Plane API programming the
virtual IPs. Every value of the request is either the site's ``workload_management`` block, checked
at the desk (:mod:`tkgs_lib.site.workload_management`, before vCenter is asked anything), or what
the run holds: the port groups', the storage policy's and the subscribed library's ids (read from
vCenter), the appliance's Data Plane API address, user and CA (the deploy stage's), the password (its
environment variable, or a prompt, read only when the request is sent).

Facts: the cluster, the ids, the CA and the cluster's namespace-management state; and, read before
any request, whether the cluster can take a Supervisor as vCenter judges it (its licence, the
cluster's compatibility with vSphere networking, the switch and the port groups it offers a
Supervisor, :mod:`tkgs_lib.vsphere.cluster_readiness`): each reason vCenter gives is an error
finding in its words, with the fix, so nothing is sent to a cluster vCenter would refuse. Plan: one
row, the Supervisor (enable it; ok when it runs with the same values; wait, sending nothing, while
vCenter is still configuring it with the same values, as after a wait that timed out; a conflict
naming each difference when it runs or is configured with others, or when it is in error or being
removed, with vCenter's messages). A real enable takes 20 to 40 minutes or more, so the wait is as
patient as VMware's own tooling (``workload_management.timeout``, ``error_grace``). The request
is VMware's own ``Clusters.EnableSpec`` (:mod:`tkgs_lib.vsphere.namespace_management`); the table a
person reads before applying is that spec, field by field in vCenter's wire names, each with where
it came from. After apply: the Supervisor as vCenter reports it, and the Supervisor through the load
balancer (:mod:`tkgs_lib.appliance.supervisor_checks`): its virtual IP answering from the frontend
side, the appliance's HAProxy and its anyip ranges.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ..credentials import MASK
from ..errors import SupervisorFailed, SupervisorStillConfiguring, TkgsError, VerificationFailed
from ..findings import Finding
from ..planning import Plan, Step
from ..polling import wait_until
from ..site.workload_management import SupervisorSettings
from ..display.tables import Sentence, Table
from . import stage_named
from .provided import PreparedIds, RunObject, SupervisorState, VCenterObjects, made_by_run
from .supervisor import supervisor_view

STAGE = stage_named("enable")
REQUEST_FILE = "enable-request.csv"
READINESS_FILE = "enable-readiness.csv"  # the cluster as vCenter judged it for a Supervisor, and which vCenter
POLL_SECONDS = 5.0  # vCenter's own UI polls about this often; the Supervisor takes many minutes
PASSWORD_FIELD = "load_balancer_config_spec.ha_proxy_config_create_spec.password"


@dataclass
class EnableFacts:
    """What the request needs from vCenter and the run, and the cluster's Supervisor now."""

    settings: Optional[SupervisorSettings]  # None: the site has no workload_management block
    cluster: str = ""  # the cluster's managed object id, e.g. domain-c8
    cluster_name: str = ""
    switch_name: str = ""  # the site's distributed switch (vcenter.distributed_switch)
    portgroups: dict[str, str] = field(default_factory=dict)  # the site's port groups that exist: name → id
    storage_policy: str = ""  # its id
    content_library: str = ""  # the subscribed library's id
    library_state: str = ""  # its items and last sync, as vCenter reports them
    ca_chain: str = field(default="", repr=False)
    ca_source: str = ""
    ca_certificates: list = field(default_factory=list)  # the chain's CaCertificate, checked
    dataplane: tuple[str, int, str] = ("", 0, "")  # the Data Plane API's host, port, and where they came from
    supervisor: Any = None  # Clusters.Info, or None when the cluster has no Supervisor
    readiness: Any = None  # the cluster as vCenter judges it for a Supervisor (a ClusterReadiness); None: not read
    free_addresses: str = ""  # what the appliance found at the Supervisor's management addresses before enabling
    findings: list[Finding] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "not enabled" if self.supervisor is None else str(self.supervisor.config_status)

    def table(self) -> Table:
        """What the read found, a row each: the CA chain by its subject, fingerprint and source, not its text."""
        if self.settings is None:
            return Table([], ["what", "value"], empty="The site has no workload_management block: nothing was read.")
        host, port, where = self.dataplane
        chain = "; ".join(f"{c.subject} (SHA-256 {c.fingerprint})" for c in self.ca_certificates)
        rows = [{"what": "cluster", "value": f"{self.cluster_name} ({self.cluster})"},
                {"what": "Supervisor", "value": "not enabled" if self.supervisor is None else _found(self.supervisor)},
                *([{"what": "Supervisor's management addresses", "value": self.free_addresses}]
                  if self.free_addresses else []),
                *({"what": f"port group {name}", "value": moid} for name, moid in self.portgroups.items()),
                {"what": "storage policy", "value": self.storage_policy or "missing"},
                {"what": "subscribed library", "value": (f"{self.content_library}: {self.library_state}"
                                                         if self.content_library else "missing")},
                {"what": "Data Plane API", "value": f"{host}:{port}, from {where}"},
                {"what": "CA chain", "value": f"{chain}, from {self.ca_source}" if chain else "missing"}]
        rows += [{"what": row["what"], "value": row["found"]} for row in self.readiness_rows()]
        return Table(rows, ["what", "value"])

    def readiness_rows(self) -> list[dict]:
        from ..vsphere.cluster_readiness import readiness_rows

        if self.readiness is None:
            return []
        return readiness_rows(self.readiness, cluster_name=self.cluster_name, switch_name=self.switch_name)

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def __repr__(self) -> str:
        return self.table().to_text()


# --- read ------------------------------------------------------------------------------------------

def _client(run):
    from ..vsphere.namespace_management import NamespaceManagement

    return NamespaceManagement(run.require_vcenter().rest)


def read_supervisor_info(run, cluster: str):
    """The cluster's ``Clusters.Info``, or None when vCenter says it has no Supervisor (UNSUPPORTED or NOT_FOUND)."""
    return _client(run).find(cluster)


def _portgroup_ids(run, facts: EnableFacts, prepared: Optional[PreparedIds]) -> None:
    names = {role: run.network.networks[role].portgroup for role in ("management", "workload")}
    ids = run.inventory.portgroup_ids(names.values(), prepared.portgroups if prepared is not None else {})
    for role, name in names.items():
        if name in ids:
            facts.portgroups[name] = ids[name]
        else:
            facts.findings.append(Finding.error(f"networks.{role}.portgroup", f"port group '{name}' does not exist "
                                                                              f"in vCenter.",
                                                "run the prepare stage with apply first."))


def _storage_policy(run, facts: EnableFacts, prepared: Optional[PreparedIds]) -> None:
    from ..vsphere.storage import read_policies

    storage = run.site.storage
    if storage is None:
        facts.findings.append(Finding.error("storage", "the site has no storage block: the Supervisor's control plane "
                                                       "and images need a storage policy.",
                                            "add a storage block and run the prepare stage with apply."))
        return
    if prepared is not None and prepared.storage_policy:  # the prepare stage's, as deploy takes it
        facts.storage_policy = prepared.storage_policy
        return
    policies = read_policies(run.require_vcenter(), storage.policy)
    if len(policies) != 1:
        facts.findings.append(Finding.error("storage.policy", f"{'no' if not policies else len(policies)} VM storage "
                                                              f"policy named '{storage.policy}' in vCenter.",
                                            "run the prepare stage with apply first (one policy of that name)."))
        return
    facts.storage_policy = policies[0].id


def _content_library(run, facts: EnableFacts, prepared: Optional[PreparedIds]) -> None:
    from ..vsphere.content_api import ContentLibraryApi

    libraries = run.site.content_libraries
    if libraries is None:
        facts.findings.append(Finding.error("content_libraries", "the site has no content_libraries block: the "
                                                                 "Supervisor takes its Kubernetes releases from the "
                                                                 "subscribed library.",
                                            "add a content_libraries block and run the prepare stage with apply."))
        return
    api = ContentLibraryApi(run.require_vcenter().rest)
    name = libraries.kubernetes.name
    if prepared is not None and prepared.kubernetes_library:  # the prepare stage's, as deploy takes its ids
        library = api.library(prepared.kubernetes_library)
    else:
        found = [lib for lib in api.libraries_named(name) if lib.type == "SUBSCRIBED"]
        if len(found) != 1:
            facts.findings.append(Finding.error("content_libraries.kubernetes.name",
                                                f"{'no' if not found else len(found)} subscribed library named "
                                                f"'{name}' in vCenter.", "run the prepare stage with apply first."))
            return
        library = found[0]
    facts.content_library = library.id
    _library_synced(api, facts, library, name)


def _library_synced(api, facts: EnableFacts, library, name: str) -> None:
    """Warn when the subscribed library holds no item: Workload Management is enabled all the same, and
    every Tanzu Kubernetes cluster made later fails (William Lam's script refuses a library that has not
    synced). Its sync is started from vCenter: the /rest content-library API's ``sync`` on the
    subscribed library, or the vSphere Client's Synchronize."""
    items = len(api.item_ids(library.id))
    synced = f"last synchronized {library.last_sync_time}" if library.last_sync_time else "never synchronized"
    facts.library_state = f"{items:,} item{'s' if items != 1 else ''}, {synced}"
    if items:
        return
    facts.findings.append(Finding.warning(
        "content_libraries.kubernetes.name",
        f"the subscribed library '{name}' holds no Kubernetes release ({synced}): Workload Management is enabled all "
        f"the same, but every Tanzu Kubernetes cluster made later fails until it holds them.",
        f"synchronize it and wait until it lists the releases: in the vSphere Client, Content Libraries > {name} > "
        f"Actions > Synchronize, or POST /rest/com/vmware/content/subscribed-library/id:{library.id}?~action=sync; "
        f"if it stays empty, check that vCenter reaches its subscription URL "
        f"(content_libraries.kubernetes.subscription_url)."))


CA_FIX = ("use the appliance's own CA certificate, whole (PEM, from -----BEGIN CERTIFICATE----- to -----END "
          "CERTIFICATE-----): the deploy stage saves it in the run folder as haproxy-ca.pem, and the appliance's VM "
          "publishes it, base64-encoded, in guestinfo.dataplaneapi.cacert.")


def _ca_chain(run, facts: EnableFacts) -> None:
    """The appliance's CA chain as the request will carry it, checked first: PEM certificates only, each a
    CA, and the Data Plane API's certificate signed by it (a handshake from here), for vCenter takes a
    wrong one without a word and the Supervisor then stays in ERROR."""
    from ..appliance.ca import CaCertificate
    from ..appliance.dataplane import signed_by
    from ..errors import ApplianceError

    pem, source = run.appliance_ca()
    if pem is None:
        facts.findings.append(Finding.error("haproxy", f"the Supervisor needs the appliance's CA chain: {source}",
                                            "run the deploy stage into this run folder (it saves haproxy-ca.pem)."))
        return
    host, port, _ = facts.dataplane
    try:
        chain = CaCertificate.chain_from_pem(pem, source)
    except ApplianceError as exc:
        facts.findings.append(Finding.error("haproxy", exc.message, CA_FIX))
        return
    try:
        unknown = signed_by(host, port, pem, trusted_by=source)
    except ApplianceError as exc:
        facts.findings.append(Finding.error("haproxy", exc.message, (
            "use the CA of the appliance that answers there: rerun the deploy stage into this run folder, or "
            "remove the stale haproxy-ca.pem so that the CA the VM publishes is read from vCenter; if another "
            "appliance answers at that address, check haproxy.management_ip.")))
        return
    if unknown:
        facts.findings.append(Finding.warning("haproxy", f"{source} could not be checked against the Data Plane API's "
                                                         f"certificate: {unknown}.",
                                              "vCenter checks it once the request is sent; the verify stage, run from "
                                              "where the management network is reached, shows whether it is right."))
    facts.ca_chain, facts.ca_source, facts.ca_certificates = pem, source, chain


def read_facts(run) -> EnableFacts:
    """The cluster, the ids the request takes, the appliance's CA, and the cluster's Supervisor."""
    settings = run.network.supervisor
    if settings is None:
        return EnableFacts(None, findings=[Finding.warning(
            "workload_management", "the site has no workload_management block, so this stage enables nothing.",
            "add the block (`tkgs-runbook fields` lists its keys) to enable Workload Management with this appliance.")])
    inventory = run.inventory
    cluster = inventory.cluster_named(settings.cluster, settings.sources.get("cluster", "workload_management.cluster"))
    facts = EnableFacts(settings, cluster._moId, settings.cluster, run.site.vcenter.distributed_switch)
    prepared = run.provided.get(PreparedIds)  # the prepare stage's ids, when it ran in this run folder
    _portgroup_ids(run, facts, prepared)
    _storage_policy(run, facts, prepared)
    _content_library(run, facts, prepared)
    facts.dataplane = run.dataplane()
    _ca_chain(run, facts)
    facts.supervisor = read_supervisor_info(run, facts.cluster)
    _readiness(run, facts, cluster)
    if facts.supervisor is None and settings.management is not None:
        _management_addresses_free(run, facts)
    return facts


def _readiness(run, facts: EnableFacts, cluster) -> None:
    """Whether vCenter would take an enable of the cluster: read always, judged while it has no Supervisor
    (with one, this stage sends nothing)."""
    from ..vsphere.cluster_readiness import read_readiness, readiness_findings

    facts.readiness = read_readiness(run.require_vcenter(), cluster, run.inventory.switch)
    if facts.supervisor is not None:
        return
    names = {role: run.network.networks[role].portgroup for role in ("management", "workload")}
    portgroups = {f"networks.{role}.portgroup": (name, facts.portgroups[name]) for role, name in names.items()
                  if name in facts.portgroups}
    facts.findings += readiness_findings(
        facts.readiness, cluster_name=facts.cluster_name,
        cluster_field=facts.settings.sources.get("cluster", "workload_management.cluster"),
        switch_name=facts.switch_name, portgroups=portgroups)


CHECK_BY_HAND = ("before applying, check from a machine on the management network that none answers (arping -D -c 1 "
                 "-I <its interface> <address>).")


def _management_addresses_free(run, facts: EnableFacts) -> None:
    """None of the Supervisor's management addresses may answer before it is enabled: asked from the
    appliance's management interface, which sits on that network (an address already in use is the
    classic Supervisor stuck CONFIGURING)."""
    from netaddr import IPAddress

    from ..appliance.commands import gather_many
    from ..appliance.facts import address_in_use

    m = facts.settings.management
    addresses = [str(IPAddress(int(m.start) + i)) for i in range(m.count)]
    span = f"{addresses[0]}-{addresses[-1]}"
    path = facts.settings.sources.get("management.start", "workload_management.supervisor_start")
    try:  # the appliance names its NICs by role (v0.1.10: ansible/roles/vmware/files/.../10-management.link)
        seen = gather_many(run.connect_appliance(), {a: address_in_use("management", a) for a in addresses})
    except TkgsError as exc:
        facts.free_addresses = f"{span}: not checked ({exc.message.rstrip('.')})"
        facts.findings.append(Finding.warning(path, f"whether the Supervisor's management addresses {span} are free "
                                                    f"could not be checked from the appliance: {exc.message}",
                                              CHECK_BY_HAND))
        return
    answered = [p for p in seen.values() if not isinstance(p, TkgsError) and p.answered]
    unread = [f"{a} ({v.message.rstrip('.')})" for a, v in seen.items() if isinstance(v, TkgsError)]
    by = next((p.by for p in seen.values() if not isinstance(p, TkgsError)), "a probe")
    if answered:
        who = "; ".join(str(p) for p in answered)
        facts.free_addresses = f"{span}: in use ({who})"
        facts.findings.append(Finding.error(
            path, f"the Supervisor's management addresses {span} are not free: {who}, asked from the appliance's "
                  f"management interface. A Supervisor given an address in use stays CONFIGURING.",
            "free the address (the MAC says which machine holds it), or move supervisor_start to 5 consecutive "
            "addresses nothing answers at."))
    elif unread:
        facts.free_addresses = f"{span}: not all checked"
        facts.findings.append(Finding.warning(path, f"whether the Supervisor's management addresses are free could "
                                                    f"not be read for {'; '.join(unread)}.",
                                              CHECK_BY_HAND))
    else:
        facts.free_addresses = f"{span}: free (no answer to {by} from the appliance's management interface)"


def provides(run, facts: EnableFacts) -> list:
    """The Supervisor as vCenter last reported it to this run, for the index and the stages after this one."""
    if facts.settings is None:
        return []
    info = facts.supervisor
    state = SupervisorState(f"{facts.cluster_name} ({facts.cluster})", facts.status,
                            str(info.kubernetes_status) if info is not None else "",
                            (info.api_server_cluster_endpoint or "") if info is not None else "")
    if info is None:
        return [state]
    name = f"on cluster {facts.cluster_name}"  # made by this run when its enable left this run folder
    return [state, VCenterObjects.of([RunObject("Supervisor", name, facts.cluster, made_by_run(
        run.output, f"Supervisor {name} ({facts.cluster})"), STAGE.name)])]


# --- the request -----------------------------------------------------------------------------------

def build_spec(run, facts: EnableFacts, password: str):
    """The ``Clusters.EnableSpec`` for the site and the run (VMware's bindings); ``password`` goes into
    it as sent (the table of :func:`request_rows` masks it)."""
    from ..vsphere.namespace_management import (AddressRange, HaproxyLoadBalancer, ManagementNetwork,
                                                WorkloadNetwork, build_enable_spec)

    wm, net = facts.settings, run.network.networks
    host, port, _ = facts.dataplane
    ranges = lambda rs: tuple(AddressRange(str(r.start), r.count) for r in rs)  # noqa: E731
    m = wm.management
    return build_enable_spec(
        size=wm.size, service_cidr=str(wm.services_cidr),
        management=ManagementNetwork(facts.portgroups[net["management"].portgroup], str(m.start), m.count,
                                     str(m.subnet_mask), str(m.gateway)),
        workload=WorkloadNetwork(wm.workload_network_name, facts.portgroups[net["workload"].portgroup],
                                 ranges(wm.workload_ranges), str(wm.workload_gateway), str(wm.workload_subnet_mask)),
        load_balancer=HaproxyLoadBalancer(wm.load_balancer_id, ((host, port),), run.site.haproxy.dataplane_username,
                                          password, facts.ca_chain, ranges(wm.virtual_ip_ranges)),
        storage_policy=facts.storage_policy, master_dns=wm.dns_servers, worker_dns=wm.workload_dns_servers,
        dns_search_domains=wm.dns_search_domains, ntp_servers=wm.ntp_servers, content_library=facts.content_library)


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """A decoded JSON body as ``{dotted wire path: value}``: lists of plain values joined, lists of
    objects indexed (``address_ranges[0].count``)."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else key))
    elif isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]"))
    elif isinstance(value, list):
        out[prefix] = ", ".join(str(item) for item in value)
    elif value is not None:
        out[prefix] = str(value)
    return out


def spec_fields(spec) -> dict[str, str]:
    """The spec as it is sent, field by field in vCenter's wire names (the password with it)."""
    from ..vsphere.namespace_management import enable_body

    return flatten(json.loads(enable_body(spec)))


def _sources(run, facts: EnableFacts) -> list[tuple[str, str]]:
    """Wire path prefixes → where the value came from; the first prefix that matches a field wins."""
    net, s = run.network.networks, facts.settings.sources
    _, _, dataplane_from = facts.dataplane
    lb = "load_balancer_config_spec"
    haproxy = f"{lb}.ha_proxy_config_create_spec"
    workload = "workload_networks_spec.supervisor_primary_workload_network"
    management = "master_management_network"
    policy = f"storage policy '{run.site.storage.policy}' in vCenter (storage.policy)" if run.site.storage else ""
    library = (f"subscribed library '{run.site.content_libraries.kubernetes.name}' in vCenter "
               f"(content_libraries.kubernetes.name)" if run.site.content_libraries else "")
    return [
        ("size_hint", s.get("size", "workload_management.size")),
        ("service_cidr", s.get("services_cidr", "workload_management.services_cidr")),
        ("network_provider", "vSphere networking (no NSX): the HAProxy design"),
        (f"{workload}.network_provider", "vSphere networking (no NSX): the HAProxy design"),
        (f"{workload}.network", s.get("workload_network_name", "workload_management.workload_network_name")),
        (f"{workload}.vsphere_network.portgroup",
         f"port group '{net['workload'].portgroup}' in vCenter (networks.workload.portgroup)"),
        (f"{workload}.vsphere_network.address_ranges", s.get("workload_ranges", "networks.workload.ranges")),
        (f"{workload}.vsphere_network.gateway", s.get("workload_gateway", "networks.workload.gateway")),
        (f"{workload}.vsphere_network.subnet_mask", s.get("workload_subnet_mask", "networks.workload.cidr")),
        (f"{lb}.id", s.get("load_balancer_id", "workload_management.load_balancer_id")),
        (f"{lb}.address_ranges", s.get("virtual_ip_ranges", "workload_management.virtual_ip_ranges")),
        (f"{lb}.provider", "the HAProxy appliance"),
        (f"{haproxy}.servers", dataplane_from),
        (f"{haproxy}.username", "haproxy.dataplane_username"),
        (PASSWORD_FIELD, f"the environment variable {run.site.haproxy.dataplane_password_env} "
                         f"(haproxy.dataplane_password_env), or a prompt"),
        (f"{haproxy}.certificate_authority_chain", facts.ca_source),
        (f"{management}.network",
         f"port group '{net['management'].portgroup}' in vCenter (networks.management.portgroup)"),
        (f"{management}.mode", "static addresses from supervisor_start"),
        (f"{management}.address_range.starting_address", s.get("management.start",
                                                               "workload_management.supervisor_start")),
        (f"{management}.address_range.address_count", "the Supervisor's 5 addresses"),
        (f"{management}.address_range.subnet_mask", s.get("management.subnet_mask", "networks.management.cidr")),
        (f"{management}.address_range.gateway", s.get("management.gateway", "networks.management.gateway")),
        ("master_DNS_search_domains", s.get("dns_search_domains", "workload_management.dns_search_domains")),
        ("master_DNS", s.get("dns_servers", "workload_management.dns_servers")),
        ("worker_DNS", s.get("workload_dns_servers", "workload_management.dns_servers")),
        ("master_NTP_servers", s.get("ntp_servers", "workload_management.ntp_servers")),
        ("master_storage_policy", policy), ("ephemeral_storage_policy", policy), ("image_storage", policy),
        ("default_kubernetes_service_content_library", library),
    ]


def _source_of(path: str, sources: list[tuple[str, str]]) -> str:
    for prefix, source in sources:
        if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "["):
            return source
    return ""


def ready_for_request(facts: EnableFacts) -> bool:
    return facts.settings is not None and not [f for f in facts.findings if f.is_error] and not [
        f for f in facts.settings.findings if f.is_error]


def request_rows(run, facts: EnableFacts) -> list[dict]:
    """The request as it will be sent: one row per field (vCenter's wire name), its value (the
    password masked) and where it came from."""
    if not ready_for_request(facts):
        return []
    sources = _sources(run, facts)
    sent = spec_fields(build_spec(run, facts, MASK))
    return [{"field": path, "value": MASK if path == PASSWORD_FIELD else value, "from": _source_of(path, sources)}
            for path, value in sent.items()]


def request_table(run, facts: EnableFacts) -> Table:
    """The table a person reads before applying (saved as ``enable-request.csv``; what vCenter said of the
    cluster beside it, as ``enable-readiness.csv``)."""
    rows = request_rows(run, facts)
    why = ("The site has no workload_management block: nothing is requested." if facts.settings is None else
           "No request can be made yet: the findings of the plan say what is missing.")
    table = Table(rows, ["field", "value", "from"], empty=why)
    table.to_csv(run.output / REQUEST_FILE)
    readiness_table(facts).to_csv(run.output / READINESS_FILE)
    return table


# --- compare an enabled Supervisor ------------------------------------------------------------------

# EnableSpec's paths → where Clusters.Info reports the same value (the rest are named alike).
_INFO_PATHS = (("workload_networks_spec.supervisor_primary_workload_network.",
                "workload_networks.supervisor_primary_workload_network."),
               ("load_balancer_config_spec.ha_proxy_config_create_spec.", "load_balancers[0].ha_proxy_info."),
               ("load_balancer_config_spec.", "load_balancers[0]."))
# Not reported back by vCenter, so not compared (HAProxyInfo has no password).
_NOT_REPORTED = (PASSWORD_FIELD,)


def _info_path(path: str) -> str:
    for spec_prefix, info_prefix in _INFO_PATHS:
        if path.startswith(spec_prefix):
            return info_prefix + path[len(spec_prefix):]
    return path


def info_fields(info) -> dict[str, str]:
    """A ``Clusters.Info`` as ``/api`` writes it, field by field (VMware's runtime serializes it)."""
    from com.vmware.vcenter.namespace_management_client import Clusters
    from vmware.vapi.bindings.converter import RestConverter, TypeConverter
    from vmware.vapi.data.serializers.cleanjson import DataValueConverter

    value = TypeConverter.convert_to_vapi(info, Clusters.Info.get_binding_type(), RestConverter.SWAGGER_REST)
    return flatten(json.loads(DataValueConverter.convert_to_json(value)))


def differences(wanted: dict[str, str], info) -> list[str]:
    """Each field of the request whose value the enabled Supervisor does not report: ``path: found X,
    the site wants Y`` (the password is never compared, nor shown)."""
    reported = info_fields(info)
    out = []
    for path, value in wanted.items():
        if path in _NOT_REPORTED:
            continue
        found = reported.get(_info_path(path), "none")
        if found != value:
            shown = (lambda text: text if len(text) <= 60 else f"{text[:57]}...")  # a CA chain is long
            out.append(f"{path}: found {shown(found)}, the site wants {shown(value)}")
    return out


# --- plan ------------------------------------------------------------------------------------------

# What vCenter and the Supervisor report, and what a person checks for each. Messages come as VMware shapes them,
# {severity, details{id, default_message, args}}, the failure's details in Go's own words, for the Supervisor's
# services are Go: crypto/x509's (go/src/crypto/x509/verify.go: "x509: certificate signed by unknown authority",
# "x509: certificate is valid for A, not B", "x509: cannot validate certificate for B because it doesn't contain any
# IP SANs", "x509: certificate has expired or is not yet valid: ..."), net's "i/o timeout" (go/src/net/net.go), and
# the system's words after "dial tcp <address>:<port>: connect: " ("connection refused", "no route to host",
# "network is unreachable"). The ids VMware gives its messages (vcenter.wcp.*) are read where one is known: a
# vSphere 7.0 U1 Supervisor with HAProxy, as `GET /api/vcenter/namespace-management/clusters/{cluster}` reported it
# (public lab notes, 2020-11; repository not identified), carried vcenter.wcp.cluster.k8s.health.endpoint.problem
# ("Kubernetes cluster health endpoint problem at 192.168.0.175. Details: Get https://192.168.0.175:6443/healthz?
# timeout=5s: dial tcp 192.168.0.175:6443: connect: no route to host", the floating management address) and
# vcenter.wcp.cluster.nic.config.error ("Error configuring cluster NIC on master VM. This operation is part of API
# server configuration and will be retried.").
HEALTH_ENDPOINT_PROBLEM = "vcenter.wcp.cluster.k8s.health.endpoint.problem"
CLUSTER_NIC_ERROR = "vcenter.wcp.cluster.nic.config.error"
_DIALED = re.compile(r"dial tcp (\[?[0-9A-Fa-f.:]+?\]?):(\d+)")
_NAMED_INSTEAD = re.compile(r"x509: certificate is valid for (.+?), not (\S+)|x509: cannot validate certificate for "
                            r"(\S+) because it doesn't contain any IP SANs")
_UNREACHABLE = {"i/o timeout": "nothing answered in time", "context deadline exceeded": "nothing answered in time",
                "Client.Timeout exceeded": "nothing answered in time", "no route to host": "no route to it",
                "network is unreachable": "no route to it", "connection refused": "the connection was refused"}
CA_HINT = ("the CA chain: it must be the appliance's own CA (haproxy-ca.pem of the deploy stage, or the VM's "
           "guestinfo.dataplaneapi.cacert), pasted whole")
PASSWORD_HINT = ("the Data Plane API user and password: haproxy.dataplane_username and the variable "
                 "haproxy.dataplane_password_env must hold what the appliance was deployed with")
RANGES_HINT = ("the virtual IP ranges: each must lie in haproxy.load_balancer_ranges and the appliance's "
               "anyip-routes.cfg (the verify stage shows it, the repair stage extends it)")
REACH_HINT = ("that vCenter reaches the Data Plane API at the management address and port (haproxy.management_ip, "
              "haproxy.dataplane_port; the verify stage checks it)")
GENERIC_HINT = ("the Supervisor's messages in vCenter (Workload Management, the cluster's Supervisor) and "
                "/var/log/vmware/wcp/wcpsvc.log on vCenter")


def _said(message) -> tuple[str, str]:
    """A message's id and its words (its text and its arguments), from a ``Clusters.Message`` or a sentence."""
    if isinstance(message, str):
        return "", message
    details = message.details
    if details is None:
        return message.id or "", ""
    return details.id or message.id or "", " ".join([details.default_message or "", *map(str, details.args or [])])


def _unreachable_hint(message_id: str, text: str, dataplane: Optional[tuple[str, int]]) -> Optional[str]:
    """What to check when a connection failed: by the address it was to (``dial tcp A:P``)."""
    why = next((meaning for words, meaning in _UNREACHABLE.items() if words in text), "")
    if not why:
        return None
    dialed = _DIALED.search(text)
    if dialed is None:
        return REACH_HINT
    host, port = dialed.group(1).strip("[]"), int(dialed.group(2))
    where = f"{host}:{port}"
    if dataplane is not None and (host, port) == (dataplane[0], int(dataplane[1])):
        if why == "the connection was refused":
            return (f"the Data Plane API at {where}, which refused the connection: dataplaneapi is not running on the "
                    f"appliance, or listens on another port than haproxy.dataplane_port (the verify stage checks it)")
        return (f"the route from the Supervisor's management network (and vCenter) to the Data Plane API at {where} "
                f"({why}): the management gateway, the management port group's VLAN, a firewall on port "
                f"haproxy.dataplane_port (the verify stage checks the API from where the runner is)")
    if message_id == HEALTH_ENDPOINT_PROBLEM:
        return (f"that vCenter reaches the Supervisor's API at {where} on the management network ({why}): the "
                f"management port group (networks.management.portgroup) with its VLAN and gateway, and that the 5 "
                f"addresses from workload_management.supervisor_start are free (nothing else answers for them)")
    return f"that the Supervisor's control plane reaches {where} ({why})"


def _hints(message_id: str, text: str, dataplane: Optional[tuple[str, int]]) -> list[str]:
    hints = []
    named = _NAMED_INSTEAD.search(text)
    if "unknown authority" in text or "not trusted" in text:
        hints.append(CA_HINT)
    if named:
        asked = named.group(2) or named.group(3)
        hints.append(f"the Data Plane API's address: its certificate does not name {asked}, so the server given to "
                     f"Workload Management must be the management address the appliance was deployed with "
                     f"(haproxy.management_ip; the certificate names every address it had at first boot)")
    if "x509: certificate has expired or is not yet valid" in text:
        hints.append("the clocks: the Data Plane API's certificate is not valid at vCenter's time (the appliance makes "
                     "it at first boot from its own clock): set the time of the appliance and of vCenter right (NTP), "
                     "then make the certificate again or deploy the appliance again")
    if "401" in text or "nauthorized" in text or "invalid username or password" in text or "password" in text:
        hints.append(PASSWORD_HINT)
    if "not served" in text or "cannot bind" in text:
        hints.append(RANGES_HINT)
    reach = _unreachable_hint(message_id, text, dataplane)
    if reach:
        hints.append(reach)
    if message_id == CLUSTER_NIC_ERROR:
        hints.append("the primary workload network the control-plane VMs join (networks.workload.portgroup on every "
                     "host's distributed switch, its VLAN and gateway, the first three addresses of "
                     "networks.workload.ranges free): vCenter retries it, so only a lasting one needs a fix")
    return hints


def hints(messages, dataplane: Optional[tuple[str, int]] = None) -> list[str]:
    """What a person checks for vCenter's messages (``Clusters.Message``, as vCenter reports them, or their
    sentences), each once, in the order of the messages; ``dataplane``: the Data Plane API's host and port,
    to tell a failed connection to it from one to the Supervisor's own API."""
    found: list[str] = []
    for message in messages:
        found += [hint for hint in _hints(*_said(message), dataplane) if hint not in found]
    return found


def what_to_check(messages, dataplane: Optional[tuple[str, int]] = None) -> str:
    """The :func:`hints` as one sentence (the general one when no message is of a form known here)."""
    return "Check " + "; ".join(hints(messages, dataplane) or [GENERIC_HINT]) + "."


def _desired(facts: EnableFacts, host: str, port: int) -> str:
    wm = facts.settings
    vips = ", ".join(f"{r.start}-{r.last}" for r in wm.virtual_ip_ranges)
    return (f"RUNNING, Kubernetes READY: size {wm.size}, load balancer {wm.load_balancer_id} (HAProxy at "
            f"{host}:{port}), virtual IPs {vips}")


def _found(info) -> str:
    from ..vsphere.namespace_management import messages_of

    said = messages_of(info)
    return f"{info.config_status}, Kubernetes {info.kubernetes_status}" + (f": {'; '.join(said)}" if said else "")


def plan(run, facts: EnableFacts) -> Plan:
    result = Plan(STAGE.title, findings=list(facts.findings))
    if not ready_for_request(facts):
        return result  # the findings say what is missing; nothing is planned on a broken base
    host, port, _ = facts.dataplane
    obj = f"Supervisor on cluster {facts.cluster_name} ({facts.cluster})"
    desired = _desired(facts, host, port)
    info = facts.supervisor
    if info is None:
        return result.extend(Plan(STAGE.title, [Step.create(obj, desired, lambda: enable(run, facts),
                                                             found="not enabled")]))
    status = str(info.config_status)
    wanted = spec_fields(build_spec(run, facts, MASK))
    different = differences(wanted, info) if status in ("RUNNING", "CONFIGURING") else []
    if status in ("RUNNING", "CONFIGURING") and not different:
        if not on_its_way(info):
            return result.extend(Plan(STAGE.title, [Step.ok(obj, desired, _found(info))]))
        # vCenter is still at the enable an earlier run (or person) sent with these very values.
        return result.extend(Plan(STAGE.title, [Step.wait(obj, desired, _found(info),
                                                           lambda: wait_for_supervisor(run, facts),
                                                           waits_on(info, facts.settings.timeout))]))
    if different:
        doing = "enabled" if status == "RUNNING" else "being configured"
        why = (f"it is {doing} with other values: " + "; ".join(different) + f". Nothing is changed on a Supervisor "
               f"{doing}: change the site to match, or disable Workload Management on the cluster and rerun with "
               f"apply once vCenter no longer lists it.")
    elif status == "ERROR":
        out = way_out(facts.cluster, _load_balancer_id(facts))
        why = (f"it is in ERROR. {what_to_check(_reported(info), facts.dataplane[:2])} vCenter keeps the values "
               f"it was sent, so {out}.")
    else:  # REMOVING
        why = "it is being removed (Workload Management was disabled): rerun once vCenter no longer lists it."
    return result.extend(Plan(STAGE.title, [Step.conflict(obj, desired, _found(info), why)]))


def on_its_way(info) -> bool:
    """Whether vCenter is still bringing the Supervisor up: CONFIGURING, or RUNNING with Kubernetes not READY."""
    status = str(info.config_status)
    return status == "CONFIGURING" or (status == "RUNNING" and str(info.kubernetes_status) != "READY")


def waits_on(info, timeout: int) -> str:
    """The note of a plan row that waits: vCenter is still at an enable sent before with the site's values."""
    state = ("still configuring it" if str(info.config_status) == "CONFIGURING" else
             f"running it, and Kubernetes is {info.kubernetes_status}")
    return (f"vCenter is {state}, with the site's values (an enable sent before): a run with apply sends nothing "
            f"and waits for it to run, up to workload_management.timeout ({timeout:,} s).")


def way_out(cluster: str, load_balancer: str) -> str:
    """How a Supervisor that vCenter keeps with wrong values gets the right ones: vCenter keeps the spec
    it accepted, so fixing the site or a variable never reaches it, and while the cluster has a
    Supervisor this stage sends no enable request (its plan is a conflict)."""
    # The update: VMware's bindings (vmware-vcenter, com/vmware/vcenter/namespace_management_client.py),
    # LoadBalancers.update: PATCH /vcenter/namespace-management/clusters/{cluster}/load-balancers/{id}
    # with a LoadBalancers.UpdateSpec whose union tag provider HA_PROXY brings ha_proxy_config_update_spec,
    # a HAProxyConfigUpdateSpec(username, password, certificate_authority_chain); each "added in vSphere
    # API 7.0.3.0", a value left None is kept.
    return (f"a fix in the site or in a password variable never reaches it, and a rerun sends nothing while the "
            f"cluster has this Supervisor: disable Workload Management on the cluster and rerun with apply once "
            f"vCenter no longer lists it, or, where vCenter's API is 7.0.3.0 or later (vCenter 7.0 Update 3), update "
            f"the load balancer's Data Plane API user, password or CA chain in place (PATCH "
            f"/api/vcenter/namespace-management/clusters/{cluster}/load-balancers/{load_balancer} with provider "
            f"HA_PROXY and ha_proxy_config_update_spec: username, password, certificate_authority_chain)")


def _load_balancer_id(facts: EnableFacts) -> str:
    """The id of the Supervisor's load balancer as vCenter reports it, else the site's."""
    balancers = (facts.supervisor.load_balancers if facts.supervisor is not None else None) or ()
    return next((b.id for b in balancers if b.id), facts.settings.load_balancer_id)


def _messages(info) -> list[str]:
    from ..vsphere.namespace_management import messages_of

    return messages_of(info)


def _reported(info) -> list:
    from ..vsphere.namespace_management import reported_messages

    return reported_messages(info)


# --- apply -----------------------------------------------------------------------------------------

def enable(run, facts: EnableFacts):
    """The enable call, then :func:`wait_for_supervisor`."""
    from ..credentials import plain

    hp, wm = run.site.haproxy, facts.settings
    password = run.secret(hp.dataplane_password_env, "the Data Plane API password", "haproxy.dataplane_password_env")
    _client(run).enable(facts.cluster, build_spec(run, facts, plain(password)))
    print(f"Asked vCenter to enable Workload Management on cluster {facts.cluster_name} ({facts.cluster}); waiting "
          f"up to {wm.timeout:,} s for RUNNING.", flush=True)
    return wait_for_supervisor(run, facts, sent=True)


def wait_for_supervisor(run, facts: EnableFacts, sent: bool = False):
    """The wait (progress shown, vCenter's messages printed as they change) until the Supervisor runs:
    after this run's enable call (``sent``), or for one vCenter is still configuring from an enable sent
    before, which sends nothing. An ERROR that passes within ``error_grace`` is reported, one that lasts
    fails with vCenter's messages and what to check; the timeout says a rerun waits on."""
    from ..vsphere.namespace_management import Unanswered

    wm = facts.settings
    client = _client(run)
    if not sent:
        print(f"vCenter is still configuring the Supervisor on cluster {facts.cluster_name} ({facts.cluster}) from an "
              f"enable sent before; nothing is sent, waiting up to {wm.timeout:,} s for RUNNING.", flush=True)
    last: list = [None]

    def said(info) -> None:
        if isinstance(info, Unanswered):
            now = ("no answer",)
            if now != last[0]:
                last[0] = now
                print(f"  vCenter did not answer: {info.error.message}", flush=True)
            return
        now = (str(info.config_status), str(info.kubernetes_status), tuple(_messages(info)))
        if now != last[0]:
            last[0] = now
            line = f"  {now[0]}, Kubernetes {now[1]}" + (f": {'; '.join(now[2])}" if now[2] else "")
            print(line, flush=True)
            facts.supervisor = info  # the record says what vCenter last reported, whatever ends the wait
            run.provide(*provides(run, facts))

    passed: list[str] = []
    try:
        info = client.wait_until_running(facts.cluster, timeout=wm.timeout, poll=run_poll_seconds(wm.timeout),
                                         error_grace=wm.error_grace, on_poll=said,
                                         what_to_check=lambda said: what_to_check(said, facts.dataplane[:2]),
                                         progress=f"waiting for the Supervisor on {facts.cluster_name}",
                                         show_progress=run.progress, passed_errors=passed)
    except SupervisorStillConfiguring as exc:
        raise exc.reworded(f"{exc.message} {RERUN_WAITS}") from None
    except SupervisorFailed as exc:
        raise exc.reworded(f"{exc.message} vCenter keeps the values it was sent, so "
                           f"{way_out(facts.cluster, wm.load_balancer_id)}") from None
    except TkgsError as exc:  # the wait's reads went unanswered: the request had been accepted
        reported = facts.supervisor
        seen = (f"the Supervisor {reported.config_status}, Kubernetes {reported.kubernetes_status}" if reported
                else "no Supervisor yet")
        raise exc.reworded(f"{exc.message.rstrip('.')}, while waiting for the Supervisor, whose enable vCenter had "
                           f"accepted{'' if sent else ' before this run'}; it last reported {seen}. Rerun without "
                           f"apply once vCenter answers, to see the Supervisor as vCenter then reports it.") from None
    finally:
        for error in passed:
            print(f"  An ERROR passed while vCenter retried: {error}", flush=True)
    return info


# A wait that timed out while vCenter was still at it: the plan of a rerun is a wait row, not a conflict.
RERUN_WAITS = ("vCenter goes on configuring it by itself, with the values it was sent: a rerun with apply sends "
               "nothing and waits on for it (a rerun without apply shows it as vCenter then reports it).")


def run_poll_seconds(timeout: float) -> float:
    """How often to ask: every 5 s, or a tenth of a short timeout (a test's, or a small lab's)."""
    return max(0.1, min(POLL_SECONDS, timeout / 10))


# --- after apply -----------------------------------------------------------------------------------

def supervisor_table(facts: EnableFacts) -> Table:
    """The Supervisor as vCenter reports it: status, endpoints, the load balancer and its messages."""
    info = facts.supervisor
    if facts.settings is None or info is None:
        return Table([], ["what", "value"], empty=(
            "The site has no workload_management block." if facts.settings is None else
            f"Cluster {facts.cluster_name} ({facts.cluster}) has no Supervisor (a dry run changes nothing; apply "
            f"enables it)."))
    rows = [{"what": "cluster", "value": f"{facts.cluster_name} ({facts.cluster})"},
            {"what": "config status", "value": str(info.config_status)},
            {"what": "Kubernetes status", "value": str(info.kubernetes_status)},
            {"what": "API endpoint (virtual IP)", "value": info.api_server_cluster_endpoint or "none yet"},
            {"what": "management endpoint", "value": info.api_server_management_endpoint or "none"}]
    for balancer in info.load_balancers or ():
        ranges = ", ".join(f"{r.address} + {r.count}" for r in balancer.address_ranges or ())
        rows.append({"what": f"load balancer {balancer.id}", "value": f"{balancer.provider}; virtual IPs {ranges}"})
        if balancer.ha_proxy_info is not None:
            servers = ", ".join(f"{s.host}:{s.port}" for s in balancer.ha_proxy_info.servers or ())
            rows.append({"what": f"load balancer {balancer.id}: Data Plane API",
                         "value": f"{servers} as {balancer.ha_proxy_info.username}"})
    rows += [{"what": "message", "value": m} for m in _messages(info)]
    return Table(rows, ["what", "value"])


def readiness_table(facts: EnableFacts) -> Table:
    """The cluster as vCenter judges it for a Supervisor: each read, what it found, and from which vCenter."""
    return Table(facts.readiness_rows(), ["what", "found", "read from"],
                 empty="The site has no workload_management block: nothing was read.")


def reports(run, facts: EnableFacts) -> dict[str, Table]:
    return {"the Supervisor, as vCenter reports it": supervisor_table(facts),
            "the cluster, as vCenter judges it for a Supervisor": readiness_table(facts)}


@dataclass
class SupervisorChecked:
    """The Supervisor through the load balancer, checked (or why it was not)."""

    rows: list = field(default_factory=list)  # Check rows
    note: str = ""
    coming_up: str = ""  # the Supervisor as vCenter reported it, when still on its way (its checks may not pass yet)

    def table(self) -> Table:
        from ..appliance.checks import checks_table

        return checks_table(self.rows) if self.rows else Table([], ["check", "expected", "found", "status", "fix"],
                                                               empty=self.note)

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def __repr__(self) -> str:
        return self.table().to_text()


FIRST_CHECKS_WAIT = 10.0  # seconds: HAProxy checks every server within its interval (2 s by default) after a reload


class _StillUnchecked(Exception):
    def __init__(self, facts) -> None:
        super().__init__("HAProxy has not checked every server yet")
        self.facts = facts


def check_supervisor(run, facts: Optional[EnableFacts] = None) -> SupervisorChecked:
    """From here (the frontend side), the Supervisor's API through the appliance: the TLS handshake with
    its virtual IP, the appliance's HAProxy (Data Plane API, read only) and its anyip ranges (SSH);
    saved as ``supervisor-checks.csv``. The Supervisor and the appliance's CA are those of ``facts``,
    else of the run's latest read (after an apply, the read after it)."""
    from ..appliance.supervisor_checks import gather_supervisor_facts, supervisor_checks

    target = run.output / STAGE.checks_file
    facts = run.latest_read() if facts is None else facts
    if facts.settings is None:
        target.unlink(missing_ok=True)
        return SupervisorChecked(note="The site has no workload_management block: no Supervisor to check.")
    if facts.supervisor is None:
        target.unlink(missing_ok=True)
        return SupervisorChecked(note=f"Cluster {facts.cluster_name} ({facts.cluster}) has no Supervisor to check (a "
                                      f"dry run changes nothing; apply enables it).")
    view = supervisor_view(facts.cluster, facts.supervisor)
    hp = run.site.haproxy
    pem = facts.ca_chain  # "" when the run has none (the plan's error finding says so)
    password = run.secret(hp.dataplane_password_env, "the Data Plane API password", "haproxy.dataplane_password_env")
    ca_file = run.site.vcenter.ca_file
    runner = run.connect_appliance()

    def read():
        return gather_supervisor_facts(view, ca_file=ca_file, runner=runner, dataplane_password=password,
                                       dataplane_ca_pem=pem, dataplane_username=hp.dataplane_username,
                                       ca_described=f"vcenter.ca_file ({ca_file})" if ca_file else "no CA bundle")

    try:  # a Supervisor just RUNNING may have had HAProxy reloaded a moment ago: its servers' first checks
        seen = wait_until(read, lambda s: s.load_balancer is None or not s.load_balancer.awaiting_first_check(),
                          timeout=FIRST_CHECKS_WAIT, timed_out=lambda s, _: _StillUnchecked(s), interval=1.0)
    except _StillUnchecked as still:  # their rows say HAProxy has not checked them yet
        seen = still.facts
    rows = supervisor_checks(seen, run.network.load_balancer_lines)
    info = facts.supervisor
    checked = SupervisorChecked(rows, coming_up=_found(info) if on_its_way(info) else "")
    checked.table().to_csv(target)
    return checked


def conclude(run, checked: SupervisorChecked) -> Sentence:
    """Raise VerificationFailed naming each failed check of the Supervisor, or one that could not run; of a
    Supervisor still configuring (a dry run), say so instead."""
    if not checked.rows:
        return Sentence(checked.note)
    failed = [c for c in checked.rows if c.status in ("failed", "not checked")]
    if not failed:
        return Sentence(f"All {len(checked.rows)} checks of the Supervisor through the load balancer passed.")
    if checked.coming_up:  # only a dry run gets here with one (a run with apply waits until it runs)
        return Sentence(f"The Supervisor is not running yet ({checked.coming_up}): {len(failed)} of "
                        f"{len(checked.rows)} checks through the load balancer do not pass yet (the table above says "
                        f"why); a run with apply waits for it, sending nothing.")
    lines = "\n".join(f"  - {c.check}: {c.found}. {c.fix}" for c in failed)
    raise VerificationFailed(f"{len(failed)} of {len(checked.rows)} checks of the Supervisor through the load "
                             f"balancer failed or could not run:\n{lines}", failed)


__all__ = ["STAGE", "EnableFacts", "read_facts", "plan", "reports", "request_table", "check_supervisor", "conclude"]
