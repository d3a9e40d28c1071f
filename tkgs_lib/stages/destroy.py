"""Stage destroy: what this run made in vCenter, removed in the reverse order of making, and nothing else.

Run only when named (``--stages destroy``). It works from the run folder's record of what the stages
made and found in vCenter (:class:`~tkgs_lib.stages.provided.VCenterObjects`, written by prepare, deploy,
enable, namespace and cluster from what vCenter and the Supervisor answered and the ledger), never from
names: an object of the site's name that the run did not make is never touched.

Facts: each object of the record read again by its id: whether vCenter (for a Tanzu Kubernetes cluster,
its Supervisor, by the cluster's uid) still holds it, and what uses it (the VMs on a port group, the
objects a tag is attached to, the tags of a category, the items of a library, the namespaces on a
Supervisor, the clusters in a namespace). Plan: one row per object, the last made first:

    delete   the run made it, it is there, and nothing that stays uses it
    keep     found, not made by this run; or in use by what stays (another VM on the port group...)
    gone     the run made it and vCenter no longer holds it

Apply removes each in turn (a Tanzu Kubernetes cluster deleted through the Supervisor's Kubernetes API,
logged in as the cluster stage logs in, and waited for until it is gone; a namespace deleted and waited
for through REMOVING; a Supervisor disabled and waited for through REMOVING until vCenter says it is
gone, with the patience of the enable stage; a VM powered off, then destroyed); a failure
names what was removed before it and what is left, and a rerun plans only ``gone`` and ``keep`` rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ..display.tables import Table
from ..planning import Plan, Step, VALUES_ONLY
from . import stage_named
from .provided import RemovedObjects, RunObject, VCenterObjects, made_by_run

STAGE = stage_named("destroy")
Key = tuple[str, str, str]  # (kind, id, within): one object of vCenter's


def key_of(obj: RunObject) -> Key:
    return obj.kind, obj.id, obj.within


@dataclass
class DestroyFacts:
    """The record, and what vCenter holds of it now."""

    objects: list[RunObject]  # in the order the stages made or found them
    present: dict[Key, str] = field(default_factory=dict)  # what vCenter holds now: how it was found
    users: dict[Key, dict[Key, str]] = field(default_factory=dict)  # what uses each object, in words
    unknown: dict[Key, str] = field(default_factory=dict)  # objects of a kind this stage cannot read, and why


# --- read ------------------------------------------------------------------------------------------

def read_facts(run) -> DestroyFacts:
    """The record of what the run made and found, and each object as vCenter holds it now, by its id."""
    record = run.provided.get(VCenterObjects)
    facts = DestroyFacts(record.entries() if record is not None else [])
    kinds = {obj.kind for obj in facts.objects}
    session = run.require_vcenter()
    if kinds & {"VM", "port group"}:
        _read_vms_and_portgroups(session, facts)
    if kinds & {"tag category", "tag", "tag attachment"}:
        _read_tagging(session, facts)
    if "storage policy" in kinds:
        from ..vsphere.storage import policy_ids

        held = policy_ids(session)
        facts.present.update({key_of(o): "there" for o in facts.objects if o.kind == "storage policy" and o.id in held})
    if kinds & {"subscribed library", "local library", "library item"}:
        _read_libraries(session, facts)
    if kinds & {"Supervisor", "namespace", "TanzuKubernetesCluster", "storage policy"}:
        _read_workload_management(run, session, facts)
    for obj in facts.objects:
        if obj.kind not in REMOVERS:
            facts.unknown[key_of(obj)] = f"the destroy stage cannot read or remove a {obj.kind}"
    return facts


def _read_vms_and_portgroups(session, facts: DestroyFacts) -> None:
    from ..vsphere.portgroups import portgroup_users
    from ..vsphere.vm import vm_power_states

    vms = vm_power_states(session)
    for obj in (o for o in facts.objects if o.kind == "VM" and o.id in vms):
        facts.present[key_of(obj)] = vms[obj.id][1]
    users = portgroup_users(session)
    for obj in (o for o in facts.objects if o.kind == "port group" and o.id in users):
        facts.present[key_of(obj)] = "there"
        facts.users[key_of(obj)] = {("VM", moid, ""): f"VM {name} ({moid})" for moid, name in users[obj.id]}


def _read_tagging(session, facts: DestroyFacts) -> None:
    from ..vsphere.storage import tagging_by_id

    categories, tags = tagging_by_id(session.rest, [o.id for o in facts.objects if o.kind == "tag category"],
                                     [o.id for o in facts.objects if o.kind == "tag"])
    for obj in facts.objects:
        if obj.kind == "tag category" and obj.id in categories:
            facts.present[key_of(obj)] = "there"
            facts.users[key_of(obj)] = {("tag", tag_id, obj.id): f"tag {tag_id}" for tag_id in categories[obj.id]}
        elif obj.kind == "tag" and obj.id in tags:
            facts.present[key_of(obj)] = "there"
            facts.users[key_of(obj)] = {("tag attachment", oid, obj.id): f"{kind} {oid}" for kind, oid in tags[obj.id]}
        elif obj.kind == "tag attachment" and ("Datastore", obj.id) in tags.get(obj.within, ()):
            facts.present[key_of(obj)] = "attached"


def _read_workload_management(run, session, facts: DestroyFacts) -> None:
    """Each Supervisor and the namespaces vCenter lists on its cluster; each storage policy and the namespaces
    holding it; each namespace and the Tanzu Kubernetes clusters its Supervisor lists in it (read there only
    when a namespace of the record is still held)."""
    from ..errors import RestError
    from ..vsphere.namespace_management import NamespaceManagement
    from ..vsphere.namespaces import Namespaces

    client = Namespaces(session.rest)
    try:
        listed = {(str(s.namespace), str(s.cluster)): str(s.config_status) for s in client.list()}
    except RestError as exc:  # a vCenter whose /api has no namespaces holds none
        if exc.status != 404:
            raise
        listed = {}
    policies = {o.id for o in facts.objects if o.kind == "storage policy"}
    for name, cluster in listed if policies else ():
        info = client.get(name)
        for spec in (info.storage_specs or []) if info is not None else []:
            if spec.policy in policies:
                facts.users.setdefault(("storage policy", spec.policy, ""), {})[("namespace", name, cluster)] = \
                    f"namespace {name}"
    for obj in (o for o in facts.objects if o.kind == "Supervisor"):
        info = NamespaceManagement(session.rest).find(obj.id)
        if info is not None:
            facts.present[key_of(obj)] = f"{info.config_status}, Kubernetes {info.kubernetes_status}"
            facts.users[key_of(obj)] = {("namespace", name, cluster): f"namespace {name}"
                                        for name, cluster in listed if cluster == obj.id}
    held = {obj.id for obj in facts.objects if obj.kind == "namespace" and (obj.id, obj.within) in listed}
    clusters = _tanzu_clusters(run, held) if held else {}
    for obj in facts.objects:
        if obj.kind == "namespace" and obj.id in held:
            facts.present[key_of(obj)] = listed[(obj.id, obj.within)]
            facts.users[key_of(obj)] = {("TanzuKubernetesCluster", uid, obj.id):
                                        f"TanzuKubernetesCluster {obj.id}/{name}"
                                        for uid, (name, _) in clusters.get(obj.id, {}).items()}
        elif obj.kind == "TanzuKubernetesCluster" and obj.id in clusters.get(obj.within, {}):
            facts.present[key_of(obj)] = clusters[obj.within][obj.id][1]


def _tanzu_clusters(run, namespaces: set[str]) -> dict[str, dict[str, tuple[str, str]]]:
    """The Tanzu Kubernetes clusters the Supervisor lists in each namespace: uid → (name, how it is), read as the
    cluster stage reads them (its login)."""
    from ..kubernetes.tanzu import GROUP, PLURAL, ready_of, tkc_version

    session = run.connect_supervisor()
    version = tkc_version(session)
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for ns in sorted(namespaces):
        items = session.read(f"list the TanzuKubernetesClusters of namespace {ns}", lambda ns=ns: (
            session.custom.list_namespaced_custom_object(GROUP, version, ns, PLURAL))).get("items", [])
        out[ns] = {c["metadata"]["uid"]: (c["metadata"]["name"], _cluster_found(c, ready_of(c))) for c in items}
    return out


def _cluster_found(obj: dict, ready: str) -> str:
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "being deleted"
    return f"Ready {ready}"


def _read_libraries(session, facts: DestroyFacts) -> None:
    from ..vsphere.content_api import ContentLibraryApi

    api = ContentLibraryApi(session.rest)
    items: dict[str, list[str]] = {}
    for obj in (o for o in facts.objects if o.kind in ("subscribed library", "local library")):
        library = api.library_or_none(obj.id)
        if library is not None:
            facts.present[key_of(obj)] = f"{library.type.lower()}"
            items[obj.id] = api.item_ids(obj.id)
            if obj.kind == "local library":  # a subscribed library's items are its subscription's
                facts.users[key_of(obj)] = {("library item", i, obj.id): f"item {i}" for i in items[obj.id]}
    for obj in (o for o in facts.objects if o.kind == "library item"):
        held = items[obj.within] if obj.within in items else (
            api.item_ids(obj.within) if api.library_or_none(obj.within) is not None else [])
        if obj.id in held:
            facts.present[key_of(obj)] = "there"


def provides(run, facts: DestroyFacts) -> list:
    """What this stage removed of what the run made: gone now, after a delete row of this run folder was sent."""
    removed = [o for o in facts.objects if o.made and key_of(o) not in facts.present
               and made_by_run(run.output, row_object(o), ("delete",))]
    return [RemovedObjects([dataclasses.asdict(o) for o in removed])] if removed else []


# --- plan ------------------------------------------------------------------------------------------

def row_object(obj: RunObject) -> str:
    """How the plan names an object: its kind, name and vCenter's id."""
    return f"{obj.kind} {obj.name} ({obj.id})"


def plan_destroy(facts: DestroyFacts, ops: "DestroyOps" = VALUES_ONLY) -> Plan:
    """One row per object of the record, the last made first: delete what the run made and nothing that stays
    uses; keep what it found or what is in use; gone for what it made that vCenter no longer holds."""
    plan = Plan(STAGE.title)
    removed: set[Key] = set()  # what the rows before this one remove
    for obj in reversed(facts.objects):
        key, name = key_of(obj), row_object(obj)
        found = facts.present.get(key, "gone")
        if key in facts.unknown:
            plan.add(Step.keep(name, "not read", f"{facts.unknown[key]}: remove it by hand"))
        elif not obj.made:
            plan.add(Step.keep(name, found, f"found, not made by this run (stage {obj.stage} found it there)"))
        elif key not in facts.present:
            plan.add(Step.gone(name))
        else:
            staying = [label for user, label in facts.users.get(key, {}).items() if user not in removed]
            if staying:
                plan.add(Step.keep(name, found, f"in use by {', '.join(staying)}"))
            else:
                plan.add(Step.delete(name, found, lambda o=obj: ops.remove(o), f"made by this run (stage {obj.stage})"))
                removed.add(key)
    return plan


def plan(run, facts: DestroyFacts) -> Plan:
    return plan_destroy(facts, run.operations(DestroyOps))


# --- apply -----------------------------------------------------------------------------------------

class DestroyOps:
    """Removing each kind of object by its id, through vCenter's SOAP and REST boundaries (the ledger)."""

    @classmethod
    def for_run(cls, run) -> Optional["DestroyOps"]:
        return cls(run) if run.vcenter is not None else None

    def __init__(self, run) -> None:
        self.run = run

    def remove(self, obj: RunObject) -> None:
        REMOVERS[obj.kind](self, obj)

    def supervisor(self, obj: RunObject) -> None:
        """Disable Workload Management on the cluster, then wait through REMOVING until vCenter says it has
        no Supervisor, with the enable stage's patience (workload_management.timeout and error_grace)."""
        from ..vsphere.namespace_management import NamespaceManagement

        settings = self.run.network.supervisor
        timeout = float(settings.timeout) if settings is not None else 1800.0
        grace = float(settings.error_grace) if settings is not None else 300.0
        client = NamespaceManagement(self.run.require_vcenter().rest)
        client.disable(obj.id)
        print(f"Asked vCenter to disable Workload Management on cluster {obj.id}; waiting up to {timeout:,.0f} s "
              f"until it no longer lists the Supervisor.", flush=True)
        client.wait_until_gone(obj.id, timeout=timeout, poll=max(0.1, min(5.0, timeout / 10)), error_grace=grace,
                               on_poll=_said_once(), progress=f"waiting for the Supervisor on {obj.id} to go",
                               show_progress=self.run.progress)

    def tanzu_cluster(self, obj: RunObject) -> None:
        """Delete the cluster through the Supervisor's Kubernetes API, only if it is still the one of the record
        (its uid, a precondition the API checks), then wait until the Supervisor no longer lists it."""
        from kubernetes import client

        from ..errors import ClusterFailed
        from ..kubernetes.tanzu import GROUP, PLURAL, tkc_version
        from ..polling import wait_until
    
        session = self.run.connect_supervisor()
        version, (ns, name) = tkc_version(session), obj.name.split("/", 1)
        tkc = self.run.site.tanzu_cluster
        timeout = float(tkc.timeout) if tkc is not None else 1800.0
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=obj.id))
        session.change(f"delete TanzuKubernetesCluster {obj.name}", lambda: (
            session.custom.delete_namespaced_custom_object(GROUP, version, ns, PLURAL, name, body=options)))
        print(f"Asked the Supervisor to delete cluster {obj.name}; waiting up to {timeout:,.0f} s until it no longer "
              f"lists it.", flush=True)

        def read():
            held = session.read_or_none(f"read TanzuKubernetesCluster {obj.name}", lambda: (
                session.custom.get_namespaced_custom_object(GROUP, version, ns, PLURAL, name)))
            return held if held is not None and held["metadata"]["uid"] == obj.id else None

        wait_until(read, lambda held: held is None, timeout=timeout, interval=0.2,
                   max_interval=max(0.2, min(5.0, timeout / 10)), progress=f"waiting for cluster {obj.name} to go",
                   show_progress=self.run.progress, timed_out=lambda held, elapsed: ClusterFailed(
                       f"Tanzu Kubernetes cluster {obj.name} is still listed {elapsed:.0f} s after it was deleted "
                       f"(tanzu_cluster.timeout is {timeout:g}): see its conditions with `kubectl get tkc -n {ns}`."))
        _remove_kubeconfig(self.run, obj)

    def namespace(self, obj: RunObject) -> None:
        """Delete the namespace in vCenter, then wait through REMOVING until vCenter no longer holds it."""
        from ..vsphere.namespaces import Namespaces

        ns = self.run.site.namespace
        timeout = float(ns.timeout) if ns is not None else 600.0
        client = Namespaces(self.run.require_vcenter().rest)
        client.delete(obj.id)
        print(f"Asked vCenter to delete namespace {obj.id}; waiting up to {timeout:,.0f} s until it no longer lists "
              f"it.", flush=True)
        client.wait_until_gone(obj.id, timeout=timeout, poll=max(0.1, min(2.0, timeout / 10)),
                               on_poll=_said_once(), progress=f"waiting for namespace {obj.id} to go",
                               show_progress=self.run.progress)

    def vm(self, obj: RunObject) -> None:
        from ..vsphere.vm import VmOps

        VmOps(self.run.require_vcenter(), self.run.inventory, progress=self.run.progress).destroy(obj.id)

    def library_item(self, obj: RunObject) -> None:
        from ..vsphere.content_api import ContentLibraryApi

        ContentLibraryApi(self.run.require_vcenter().rest).delete_item(obj.id)

    def library(self, obj: RunObject) -> None:
        from ..vsphere.content_api import ContentLibraryApi, Library

        kind = "LOCAL" if obj.kind == "local library" else "SUBSCRIBED"
        ContentLibraryApi(self.run.require_vcenter().rest).delete_library(Library(obj.id, obj.name, kind, ()))

    def storage(self, obj: RunObject) -> None:
        from ..vsphere.storage import StorageOps

        ops = StorageOps(self.run.require_vcenter())
        if obj.kind == "storage policy":
            ops.delete_policy(obj.id)
        elif obj.kind == "tag attachment":
            ops.detach(obj.within, obj.id)
        elif obj.kind == "tag":
            ops.delete_tag(obj.id)
        else:
            ops.delete_category(obj.id)

    def portgroup(self, obj: RunObject) -> None:
        from ..vsphere.portgroups import PortgroupOps

        PortgroupOps(self.run.inventory).delete_portgroup(obj.id)


def _remove_kubeconfig(run, obj: RunObject) -> None:
    """The kubeconfig the cluster stage saved for the cluster just deleted: its credentials open nothing any more,
    and a file of secrets is not left behind (it is outside the run folder, so this says where it was)."""
    from .provided import KubeconfigFile

    saved = run.provided.get(KubeconfigFile)
    if saved is None or obj.name.split("/", 1)[-1] not in saved.contexts:
        return
    path = Path(saved.path)
    if path.exists():
        path.unlink()
        print(f"Removed the kubeconfig the cluster stage saved for {obj.name}: {path}.", flush=True)


def _said_once() -> Callable[[object], None]:
    """Prints each config_status vCenter reports while an object goes, once (nothing once it is gone)."""
    from ..vsphere.namespace_management import Unanswered

    last: list = [None]

    def said(info) -> None:
        if not isinstance(info, Unanswered) and not hasattr(info, "config_status"):
            return  # gone: the wait says so
        now = "no answer from vCenter" if isinstance(info, Unanswered) else str(info.config_status)
        if now != last[0]:
            last[0] = now
            print(f"  {now}", flush=True)
    return said


REMOVERS: dict[str, Callable[[DestroyOps, RunObject], None]] = {
    "TanzuKubernetesCluster": DestroyOps.tanzu_cluster, "namespace": DestroyOps.namespace,
    "Supervisor": DestroyOps.supervisor, "VM": DestroyOps.vm, "library item": DestroyOps.library_item,
    "local library": DestroyOps.library, "subscribed library": DestroyOps.library,
    "storage policy": DestroyOps.storage, "tag attachment": DestroyOps.storage, "tag": DestroyOps.storage,
    "tag category": DestroyOps.storage, "port group": DestroyOps.portgroup,
}


# --- reports ---------------------------------------------------------------------------------------

def record_table(facts: DestroyFacts) -> Table:
    """The run's record, an object a row in the order made: who made or found it, and what vCenter holds now."""
    rows = [{"object": row_object(o), "stage": o.stage, "record": "made by this run" if o.made else "found there",
             "now": facts.present.get(key_of(o), "gone")} for o in facts.objects]
    return Table(rows, ["object", "stage", "record", "now"],
                 empty="The run's record names no object in vCenter: nothing was made, nothing is removed.")


def reports(run, facts: DestroyFacts) -> dict[str, Table]:
    return {"what this run made and found in vCenter, and what is there now": record_table(facts)}


def summary(run, facts: Optional[DestroyFacts] = None) -> str:
    """One sentence: what this run removed, and whether vCenter holds anything it made."""
    facts = run.latest_read() if facts is None else facts
    removed = run.provided.get(RemovedObjects)
    left = [row_object(o) for o in facts.objects if o.made and key_of(o) in facts.present]
    said = (f"removed {len(removed.objects)} object(s) this run made: "
            f"{', '.join(row_object(o) for o in removed.entries())}" if removed and removed.objects
            else "removed nothing")
    return (f"{said}; " + (f"vCenter still holds {len(left)} object(s) the run made: {', '.join(left)}." if left
                           else "vCenter holds nothing the run made."))


__all__ = ["STAGE", "DestroyFacts", "DestroyOps", "read_facts", "plan", "plan_destroy", "reports", "summary"]
