"""What stages provide for the stages after them: typed values in the run folder's ``provided.json``.

Each kind of value is declared once here (:data:`VALUES`): its type (a small dataclass), the stage
that provides it, and the site field that stands in when no stage of this run folder did. A stage
*needs* a value it cannot do without (the runner checks it is provided, or stood in for, before the
stage's kernel starts) or *takes* one it uses when provided and otherwise finds for itself (vCenter's
ids, looked up by name; the CA, read from the VM). Choosing among those is the business of the code
that owns the value, one resolver each: the CA's beside :mod:`tkgs_lib.appliance.ca` (``ca_for``), the
release's beside :mod:`tkgs_lib.appliance.releases` (``release_for``), the Data Plane API's address
beside :mod:`tkgs_lib.appliance.dataplane` (``dataplane_for``), the port groups' ids beside
:mod:`tkgs_lib.vsphere.inventory` (``Inventory.portgroup_ids``); each takes plain values, so the
transports know nothing of this file.
The stage registry (:mod:`tkgs_lib.stages`) says which values each stage needs and provides; the
runner checks a stage's needs before its kernel starts, so a stage started without what it needs
stops in one sentence (:func:`missing`).

One writer per value: the stage that provides it writes it (:func:`provide`, through
``StageRun.provide``), whether a runner or a person in JupyterLab runs the stage. Nothing secret is
ever a value.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, TypeVar

from ..errors import TkgsError

__all__ = ["PROVIDED_FILE", "Value", "VALUES", "value_of", "Provided", "provide", "missing", "ApplianceCa",
           "ApplianceRelease", "DataplaneAddress", "ApplianceVm", "PreparedIds", "SupervisorState", "NamespaceState",
           "ClusterState", "ServiceAddress", "KubeconfigFile", "ReissuedCertificate", "RunObject", "VCenterObjects",
           "RemovedObjects", "made_by_run"]

PROVIDED_FILE = "provided.json"
T = TypeVar("T")


@dataclass(frozen=True)
class PreparedIds:
    """vCenter's ids of what the prepare stage made or found: the site's port groups, its storage policy and
    its subscribed library, so later stages need not look them up by name."""

    portgroups: dict = dataclasses.field(default_factory=dict)  # name → managed object id
    storage_policy: str = ""
    kubernetes_library: str = ""


@dataclass(frozen=True)
class ApplianceRelease:
    """The release a run deploys, as its OVA's descriptor says it."""

    version: str  # the OVA's ProductSection version, e.g. v0.1.10 ("" when it says none)
    source: str  # where it was read, e.g. "the descriptor of the OVA haproxy-v0.1.10.ova"
    declares_additional_workload_networks: bool = False


@dataclass(frozen=True)
class ApplianceCa:
    """The appliance's CA as the deploy stage collected it."""

    file: str  # its name in the run folder


@dataclass(frozen=True)
class DataplaneAddress:
    """Where the appliance's Data Plane API listens."""

    host: str
    port: int


@dataclass(frozen=True)
class ApplianceVm:
    """The appliance's VM as the deploy stage made or found it."""

    name: str
    moid: str


@dataclass(frozen=True)
class SupervisorState:
    """The cluster's Supervisor as vCenter last reported it to this run."""

    cluster: str  # its name and managed object id, "DC0_C0 (domain-c8)"
    status: str  # config_status, or "not enabled"
    kubernetes: str = ""
    endpoint: str = ""  # api_server_cluster_endpoint: the Supervisor's virtual IP


@dataclass(frozen=True)
class NamespaceState:
    """The vSphere Namespace as vCenter last reported it to this run."""

    name: str
    cluster: str  # the Supervisor's cluster, "DC0_C0 (domain-c8)"
    status: str  # config_status, or "missing"
    storage_class: str = ""  # the storage policy it holds, as Kubernetes names it
    vm_classes: list = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class ClusterState:
    """The Tanzu Kubernetes cluster as the Supervisor last reported it to this run."""

    name: str
    namespace: str
    api_version: str  # run.tanzu.vmware.com/v1alpha2, or v1alpha1
    ready: str  # its Ready condition: True, False (with its reason), or "missing"
    endpoint: str = ""  # its API's address and port, through the load balancer


@dataclass(frozen=True)
class ServiceAddress:
    """The LoadBalancer Service that proved the appliance: its address and what answered there."""

    service: str  # namespace/name in the cluster
    address: str  # status.loadBalancer.ingress[0].ip
    port: int
    answered_by: str = ""  # the pod that named itself, or "" when it did not answer
    removed: bool = False  # the Service was removed after, and its address stopped answering


@dataclass(frozen=True)
class KubeconfigFile:
    """Where the cluster stage saved the kubeconfig (its contexts: the Supervisor's namespace and the cluster):
    outside the run folder, mode 0600, for it holds credentials; never its content."""

    path: str
    contexts: list = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class ReissuedCertificate:
    """The Data Plane API's server certificate the rotate stage issued, and the one it replaced."""

    fingerprint: str  # SHA-256, AA:BB:...
    valid: str  # its validity, "2025-01-01 10:00 to 2034-12-30 10:00 UTC (3,650 days)"
    replaced: str  # the fingerprint of the certificate it replaced
    replaced_valid: str


@dataclass(frozen=True)
class RunObject:
    """One object a stage made or found in vCenter (or, for a Tanzu Kubernetes cluster, in its Supervisor), by
    its id there."""

    kind: str  # "port group", "tag category", "tag", "tag attachment", "storage policy", "subscribed library",
    # "local library", "library item", "VM", "Supervisor", "namespace", "TanzuKubernetesCluster"
    name: str  # as the stage's plan names it: tkgs-workload, haproxy-v0.1.10, tkgs-demo/tkc-01...
    id: str  # vCenter's: dvportgroup-21, urn:vmomi:InventoryServiceTag:..., a library's UUID, vm-44, domain-c8, a
    # namespace's name; a cluster's metadata.uid in the Supervisor
    made: bool  # True: this run made it (its create row was sent); False: it was there already
    stage: str  # the stage that made or found it
    within: str = ""  # the id of what holds it: an item's library, an attachment's tag, a namespace's cluster, a
    # Tanzu Kubernetes cluster's namespace

    @property
    def shown(self) -> str:
        return f"{self.kind} {self.name} ({self.id})"


@dataclass(frozen=True)
class VCenterObjects:
    """What this run's stages made or found in vCenter, in the order they make them (prepare's, deploy's,
    enable's, namespace's, cluster's, each in its plan's order): the destroy stage removes exactly what the run
    made, in reverse.
    Each stage writes its own entries (:class:`RunObject` as a mapping); those of the others are kept."""

    objects: list = dataclasses.field(default_factory=list)

    def entries(self) -> list[RunObject]:
        return [RunObject(**entry) for entry in self.objects]

    @classmethod
    def of(cls, entries) -> "VCenterObjects":
        return cls([dataclasses.asdict(entry) for entry in entries])


@dataclass(frozen=True)
class RemovedObjects:
    """What the destroy stage removed of what the run made (:class:`RunObject` as a mapping), by vCenter's ids."""

    objects: list = dataclasses.field(default_factory=list)

    def entries(self) -> list[RunObject]:
        return [RunObject(**entry) for entry in self.objects]


def made_by_run(folder: Path, obj: str, rows: tuple[str, ...] = ("create",)) -> bool:
    """Whether the run folder's ledger holds a request of the plan row that makes ``obj`` (``create <obj>``;
    a VM replaced: ``change <obj>`` too) that was done, or sent with no answer. A create row is planned only
    for what a read did not find: so an object that exists after such a request is one this run made."""
    from ..effects import EFFECTS_FILE, read_effects

    wanted = {f"{row} {obj}" for row in rows}
    return any(e.step in wanted and (e.happened or e.may_have_happened)
               for e in read_effects(Path(folder) / EFFECTS_FILE))


def _merged_objects(held: Optional[VCenterObjects], new: VCenterObjects) -> VCenterObjects:
    """A stage's entries replace its own earlier ones; the other stages' stay, in the registry's order."""
    from . import STAGE_NAMES

    stages = {entry["stage"] for entry in new.objects}
    kept = [entry for entry in (held.objects if held is not None else []) if entry["stage"] not in stages]
    order = {name: float(i) for i, name in enumerate(STAGE_NAMES)}
    # An upgrade's VM is the appliance again: it takes the deploy's place, so destroy removes it with the appliance,
    # after the Supervisor and clusters whose virtual IPs it serves.
    order["upgrade"] = order["deploy"] + 0.5
    return VCenterObjects(sorted(kept + list(new.objects), key=lambda e: order.get(e["stage"], len(order))))


@dataclass(frozen=True)
class Value:
    """One kind of value a stage provides for later ones."""

    type: type
    key: str  # its key in provided.json
    what: str  # what it is, for sentences: "the appliance's CA"
    provider: str  # the stage that provides it
    stands_in: str = ""  # the site field(s) that stand in when no stage provided it
    given: Callable[[object], bool] = lambda site: False  # whether the site gives that stand-in
    merge: Optional[Callable] = None  # (held, new) → the value kept, for a value more than one stage writes to

    def shown(self, value) -> str:
        """The value in a few words, for the run's index."""
        if isinstance(value, ApplianceRelease):
            return f"{value.version or 'unknown'} ({value.source})"
        if isinstance(value, ApplianceCa):
            return value.file
        if isinstance(value, ApplianceVm):
            return f"{value.name} ({value.moid})"
        if isinstance(value, DataplaneAddress):
            return f"https://{value.host}:{value.port}"
        if isinstance(value, PreparedIds):
            parts = [f"port group {name}: {moid}" for name, moid in sorted(value.portgroups.items())]
            parts += [f"storage policy: {value.storage_policy}"] if value.storage_policy else []
            parts += [f"subscribed library: {value.kubernetes_library}"] if value.kubernetes_library else []
            return ", ".join(parts)
        if isinstance(value, (SupervisorState, NamespaceState, ClusterState)):
            return ", ".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}"
                             for k, v in dataclasses.asdict(value).items() if v)
        if isinstance(value, ServiceAddress):
            answered = f"answered by {value.answered_by}" if value.answered_by else "did not answer"
            after = "; removed, and its address no longer answers" if value.removed else ""
            return f"{value.service} at {value.address}:{value.port}, {answered}{after}"
        if isinstance(value, KubeconfigFile):
            return f"{value.path} (contexts: {', '.join(value.contexts) or 'none'})"
        if isinstance(value, VCenterObjects):
            made = [e.shown for e in value.entries() if e.made]
            found = [e.shown for e in value.entries() if not e.made]
            return "; ".join(part for part in (f"created: {', '.join(made)}" if made else "",
                                               f"found already there: {', '.join(found)}" if found else "") if part)
        if isinstance(value, RemovedObjects):
            return f"removed: {', '.join(e.shown for e in value.entries())}" if value.objects else "removed: nothing"
        if isinstance(value, ReissuedCertificate):
            return f"{value.fingerprint[:23]}…, valid {value.valid} (replaced {value.replaced[:23]}…)"
        return str(value)


def _site_ova(site) -> bool:
    path, _ = site.ova()
    return path is not None and path.is_file()


VALUES: tuple[Value, ...] = (
    Value(PreparedIds, "prepared_ids", "vCenter's ids of the port groups, the storage policy and the subscribed "
          "library", "prepare"),
    Value(ApplianceRelease, "appliance_release", "the appliance's release", "deploy",
          stands_in="the site's OVA (content_libraries.haproxy.ova or haproxy.ova), else v0.1.10 with a warning",
          given=lambda site: True),
    Value(ApplianceCa, "appliance_ca", "the appliance's CA", "deploy", stands_in="haproxy.ca_cert_file",
          given=lambda site: bool(site.haproxy.ca_cert_file)),
    Value(DataplaneAddress, "dataplane", "the Data Plane API's address", "deploy",
          stands_in="haproxy.management_ip and haproxy.dataplane_port", given=lambda site: True),
    Value(ApplianceVm, "appliance_vm", "the appliance's VM", "deploy"),
    Value(SupervisorState, "supervisor", "the Supervisor", "enable"),
    Value(NamespaceState, "namespace", "the vSphere Namespace", "namespace"),
    Value(ClusterState, "tanzu_cluster", "the Tanzu Kubernetes cluster", "cluster"),
    Value(KubeconfigFile, "kubeconfig", "the kubeconfig", "cluster"),
    Value(ServiceAddress, "service_address", "the LoadBalancer Service's address", "cluster"),
    Value(VCenterObjects, "vcenter_objects", "the record of what this run made and found in vCenter (prepare, "
          "deploy, enable, namespace, cluster and upgrade write it)", "prepare", merge=_merged_objects),
    Value(RemovedObjects, "removed_objects", "what the destroy stage removed", "destroy"),
    Value(ReissuedCertificate, "reissued_certificate", "the Data Plane API's reissued certificate", "rotate"),
)


def value_of(kind: type) -> Value:
    for value in VALUES:
        if value.type is kind:
            return value
    raise KeyError(f"{kind.__name__} is not a value a stage provides (tkgs_lib.stages.provided.VALUES)")


class Provided:
    """The values a run folder's stages provided, by type (read afresh: a stage may just have added one)."""

    def __init__(self, values: dict[type, object]) -> None:
        self.values = values

    @classmethod
    def load(cls, folder: Path) -> "Provided":
        try:
            data = json.loads((Path(folder) / PROVIDED_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls({})
        values = {}
        for value in VALUES:
            raw = data.get(value.key) if isinstance(data, dict) else None
            if isinstance(raw, dict):
                known = {f.name for f in dataclasses.fields(value.type)}
                try:
                    values[value.type] = value.type(**{k: v for k, v in raw.items() if k in known})
                except TypeError:  # a value written by another version, missing a field: not provided
                    continue
        return cls(values)

    def get(self, kind: type[T]) -> Optional[T]:
        return self.values.get(kind)  # type: ignore[return-value]

    def rows(self) -> list[tuple[str, str]]:
        """(what, the value in words) of each value provided, in the order stages provide them."""
        return [(value.what, value.shown(self.values[value.type])) for value in VALUES if value.type in self.values]


def provide(folder: Path, *values) -> Provided:
    """Add ``values`` to the run folder's provided.json (a stage's kernel calls it); returns what it holds."""
    from ..files import write_text_whole

    held = Provided.load(folder).values
    for item in values:
        kind = value_of(type(item))  # only a declared kind of value
        held[type(item)] = kind.merge(held.get(type(item)), item) if kind.merge else item
    data = {value.key: dataclasses.asdict(held[value.type]) for value in VALUES if value.type in held}
    Path(folder).mkdir(parents=True, exist_ok=True)
    try:
        write_text_whole(Path(folder) / PROVIDED_FILE, json.dumps(data, indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        raise TkgsError(f"{Path(folder) / PROVIDED_FILE} cannot be written ({exc.strerror or exc}): the stages "
                        f"after this one could not take what it found; free the disk and run again.") from None
    return Provided(held)


def missing(stage, folder: Path, site) -> list[str]:
    """One sentence for each value ``stage`` needs that nothing gives it: no stage of ``folder`` provided it
    and no site field stands in for it."""
    provided = Provided.load(folder)
    out = []
    for kind in stage.needs:
        value = value_of(kind)
        if provided.get(kind) is not None or value.given(site):
            continue
        stand_in = f", or set {value.stands_in}" if value.stands_in else ""
        out.append(f"stage {stage.name!r} needs {value.what}, which no stage of the run folder {folder} provided: run "
                   f"stage {value.provider!r} into it first (--run-folder){stand_in}.")
    return out
