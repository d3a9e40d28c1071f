"""Stage 7, the vSphere Namespace on the Supervisor: who may use it, the VM classes bound to it and the
site's storage policy with its limit (the article series' part 3, "creating namespaces").

Facts: vCenter's API version, the cluster and its Supervisor (it must be RUNNING), the storage policy's
id (the prepare stage's, else looked up by name), vCenter's VM classes, and the namespace as vCenter
reports it. Plan: one row, the namespace: create it; ok when it runs with the site's values; a conflict
naming each difference otherwise (nothing is changed on a namespace that exists), or while vCenter is
configuring, removing or failing it. Apply: the create call (VMware's ``Instances.CreateSpec``,
:mod:`tkgs_lib.vsphere.namespaces`), then a wait until RUNNING, vCenter's messages printed as they
change. Checks (``namespace-checks.csv``): RUNNING, each VM class bound, the storage policy and its limit,
each access entry, as vCenter reports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..findings import Finding
from ..planning import Plan, Step
from ..site.tanzu import storage_class_of, version_findings
from ..display.tables import Sentence, Table
from . import stage_named
from .provided import NamespaceState, PreparedIds, RunObject, VCenterObjects, made_by_run

STAGE = stage_named("namespace")
POLL_SECONDS = 2.0


@dataclass
class NamespaceFacts:
    api_version: str = ""
    cluster: str = ""  # the Supervisor's cluster, its managed object id
    cluster_name: str = ""
    supervisor: str = ""  # the Supervisor's config_status, or "not enabled"
    storage_policy: str = ""  # its id
    vm_classes: dict[str, Any] = field(default_factory=dict)  # vCenter's classes by id (VirtualMachineClasses.Info)
    namespace: Any = None  # Instances.Info, or None when vCenter has none of the site's name
    findings: list[Finding] = field(default_factory=list)

    def table(self) -> Table:
        rows = [{"what": "vCenter API", "value": self.api_version or "unknown"},
                {"what": "cluster", "value": f"{self.cluster_name} ({self.cluster})"},
                {"what": "Supervisor", "value": self.supervisor or "unknown"},
                {"what": "storage policy", "value": self.storage_policy or "missing"},
                {"what": "VM classes in vCenter", "value": ", ".join(sorted(self.vm_classes)) or "none"},
                {"what": "namespace", "value": _found(self.namespace)}]
        return Table(rows, ["what", "value"])

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def __repr__(self) -> str:
        return self.table().to_text()


def _client(run):
    from ..vsphere.namespaces import Namespaces

    return Namespaces(run.require_vcenter().rest)


def read_facts(run) -> NamespaceFacts:
    from ..errors import RestError
    from ..vsphere.namespace_management import NamespaceManagement
    from ..vsphere.storage import read_policies

    site, ns = run.site, run.site.namespace
    facts = NamespaceFacts()
    if ns is None:
        facts.findings.append(Finding.warning("namespace", "the site has no namespace block, so this stage makes "
                                                           "nothing.", "add the block (`tkgs-runbook fields` lists "
                                                                       "its keys) to make a namespace."))
        return facts
    vcenter = run.require_vcenter()
    facts.api_version = str(vcenter.content.about.apiVersion or "")
    facts.findings += version_findings(site, facts.api_version)
    settings = run.network.supervisor
    name = settings.cluster if settings is not None else site.vcenter.cluster
    cluster = run.inventory.cluster_named(name, "workload_management.cluster")
    facts.cluster, facts.cluster_name = cluster._moId, name
    try:
        facts.supervisor = str(NamespaceManagement(vcenter.rest).get(facts.cluster).config_status)
    except RestError as exc:
        if exc.status != 404:
            raise
        facts.supervisor = "not enabled"
    if facts.supervisor != "RUNNING":
        facts.findings.append(Finding.error("workload_management", f"the cluster {name}'s Supervisor is "
                                                                   f"{facts.supervisor}: a namespace needs a running "
                                                                   f"one.", "run the enable stage with apply first."))
    prepared = run.provided.get(PreparedIds)
    if site.storage is not None:
        if prepared is not None and prepared.storage_policy:
            facts.storage_policy = prepared.storage_policy
        else:
            policies = read_policies(vcenter, site.storage.policy)
            if len(policies) == 1:
                facts.storage_policy = policies[0].id
            else:
                facts.findings.append(Finding.error("storage.policy", f"{'no' if not policies else len(policies)} "
                                                                      f"VM storage policy named "
                                                                      f"'{site.storage.policy}' in vCenter.",
                                                    "run the prepare stage with apply first."))
    client = _client(run)
    facts.vm_classes = {info.id: info for info in client.vm_classes()}
    for i, wanted in enumerate(ns.vm_classes):
        if facts.vm_classes and wanted not in facts.vm_classes:
            facts.findings.append(Finding.error(f"namespace.vm_classes[{i}]", f"vCenter has no VM class {wanted}.",
                                                f"write one of {', '.join(sorted(facts.vm_classes))}."))
    facts.namespace = client.get(ns.name)
    return facts


def provides(run, facts: NamespaceFacts) -> list:
    ns = run.site.namespace
    if ns is None:
        return []
    info = facts.namespace
    state = NamespaceState(ns.name, f"{facts.cluster_name} ({facts.cluster})",
                           str(info.config_status) if info is not None else "missing",
                           storage_class_of(run.site.storage.policy) if run.site.storage else "",
                           sorted(info.vm_service_spec.vm_classes or []) if info is not None and
                           info.vm_service_spec else [])
    if info is None:
        return [state]
    # vCenter's id of a namespace is its name; made by this run when its create row left this run folder
    return [state, VCenterObjects.of([RunObject("namespace", ns.name, ns.name, made_by_run(
        run.output, f"namespace {ns.name}"), STAGE.name, within=info.cluster)])]


# --- the request and the comparison ---------------------------------------------------------------

def build_spec(run, facts: NamespaceFacts):
    from ..vsphere.namespaces import AccessEntry, build_create_spec

    ns = run.site.namespace
    return build_create_spec(
        cluster=facts.cluster, namespace=ns.name, description=ns.description,
        access=[AccessEntry(a.subject_type, a.subject, a.domain, a.role) for a in ns.access],
        storage_policy=facts.storage_policy, storage_limit_mib=ns.storage_limit_mib, vm_classes=ns.vm_classes)


def _access(entries) -> set[str]:
    return {f"{str(a.subject_type)} {a.subject}@{a.domain} {str(a.role)}".lower() for a in entries or []}


def differences(run, facts: NamespaceFacts, info) -> list[str]:
    """Each value of the site the namespace vCenter reports does not hold: ``what: found X, the site wants Y``."""
    ns = run.site.namespace
    out = []
    if info.cluster != facts.cluster:
        out.append(f"cluster: found {info.cluster}, the site wants {facts.cluster}")
    wanted, found = _access(build_spec(run, facts).access_list), _access(info.access_list)
    if wanted != found:
        out.append(f"access: found {', '.join(sorted(found)) or 'none'}, the site wants {', '.join(sorted(wanted))}")
    storage = {(s.policy, s.limit or 0) for s in info.storage_specs or []}
    if (facts.storage_policy, ns.storage_limit_mib) not in storage:
        shown = ", ".join(f"{p} limit {limit or 'none'}" for p, limit in sorted(storage)) or "none"
        out.append(f"storage: found {shown}, the site wants {facts.storage_policy} limit "
                   f"{ns.storage_limit_mib or 'none'} (namespace.storage_limit_mib)")
    classes = set(info.vm_service_spec.vm_classes or []) if info.vm_service_spec else set()
    if classes != set(ns.vm_classes):
        out.append(f"vm_classes: found {', '.join(sorted(classes)) or 'none'}, the site wants "
                   f"{', '.join(sorted(ns.vm_classes)) or 'none'}")
    return out


def _found(info) -> str:
    if info is None:
        return "missing"
    from ..vsphere.namespaces import namespace_messages

    said = namespace_messages(info)
    return f"{info.config_status}" + (f": {'; '.join(said)}" if said else "")


def _desired(run, facts: NamespaceFacts) -> str:
    ns = run.site.namespace
    access = ", ".join(f"{a.subject}@{a.domain} {a.role}" for a in ns.access)
    policy = run.site.storage.policy if run.site.storage else "none"
    limit = f"{ns.storage_limit_mib:,} MiB" if ns.storage_limit_mib else "no limit"
    return (f"RUNNING on {facts.cluster_name}: access {access}; storage policy '{policy}' ({limit}); VM classes "
            f"{', '.join(ns.vm_classes) or 'none'}")


def plan(run, facts: NamespaceFacts) -> Plan:
    result = Plan(STAGE.title, findings=list(facts.findings))
    ns = run.site.namespace
    if ns is None or [f for f in facts.findings if f.is_error]:
        return result
    obj = f"namespace {ns.name}"
    desired, info = _desired(run, facts), facts.namespace
    if info is None:
        return result.extend(Plan(STAGE.title, [Step.create(obj, desired, lambda: create(run, facts))]))
    status = str(info.config_status)
    different = differences(run, facts, info)
    if status == "RUNNING" and not different:
        return result.extend(Plan(STAGE.title, [Step.ok(obj, desired, _found(info))]))
    if status == "RUNNING":
        why = ("it exists with other values: " + "; ".join(different) + ". Nothing is changed on a namespace that "
               "exists: change the site to match, or remove the namespace in vCenter (Workload Management, "
               "Namespaces) and rerun with apply.")
    elif status == "CONFIGURING":
        why = "vCenter is still configuring it: wait and rerun."
    elif status == "REMOVING":
        why = "it is being removed: rerun once vCenter no longer lists it."
    else:
        why = (f"it is in ERROR: {_found(info)}. Remove it in vCenter (Workload Management, Namespaces) and rerun "
               f"with apply.")
    return result.extend(Plan(STAGE.title, [Step.conflict(obj, desired, _found(info), why)]))


def create(run, facts: NamespaceFacts):
    """The create call, then the wait until RUNNING (vCenter's messages printed as they change)."""
    from ..vsphere.namespaces import namespace_messages

    ns = run.site.namespace
    client = _client(run)
    client.create(build_spec(run, facts))
    print(f"Asked vCenter to create namespace {ns.name} on {facts.cluster_name}; waiting up to {ns.timeout} s for "
          f"RUNNING.", flush=True)
    last: list = [None]

    def said(info) -> None:
        if info is None or not hasattr(info, "config_status"):
            return
        now = (str(info.config_status), tuple(namespace_messages(info)))
        if now != last[0]:
            last[0] = now
            print(f"  {now[0]}" + (f": {'; '.join(now[1])}" if now[1] else ""), flush=True)

    return client.wait_until_running(ns.name, timeout=ns.timeout, poll=max(0.1, min(POLL_SECONDS, ns.timeout / 10)),
                                     on_poll=said, progress=f"waiting for namespace {ns.name}",
                                     show_progress=run.progress)


# --- after apply -----------------------------------------------------------------------------------

def namespace_table(run, facts: NamespaceFacts) -> Table:
    info = facts.namespace
    if run.site.namespace is None or info is None:
        return Table([], ["what", "value"], empty="No namespace: the site has none, or a dry run made none.")
    rows = [{"what": "config status", "value": str(info.config_status)},
            {"what": "cluster", "value": info.cluster},
            {"what": "description", "value": info.description or ""}]
    rows += [{"what": "access", "value": f"{a.subject_type} {a.subject}@{a.domain}: {a.role}"}
             for a in info.access_list or []]
    rows += [{"what": "storage", "value": f"policy {s.policy}, limit {f'{s.limit:,} MiB' if s.limit else 'none'}"}
             for s in info.storage_specs or []]
    classes = sorted(info.vm_service_spec.vm_classes or []) if info.vm_service_spec else []
    rows.append({"what": "VM classes", "value": ", ".join(classes) or "none"})
    return Table(rows, ["what", "value"])


def reports(run, facts: NamespaceFacts) -> dict[str, Table]:
    return {"the namespace, as vCenter reports it": namespace_table(run, facts)}


def check_namespace(run, facts: Optional[NamespaceFacts] = None) -> list:
    """The namespace as vCenter reports it, against the site: RUNNING, each class bound (vCenter's VM classes
    name it), its storage policy and limit, each access entry; saved as ``namespace-checks.csv``."""
    from ..appliance.checks import Check, checks_table

    facts = run.latest_read() if facts is None else facts
    target = run.output / STAGE.checks_file
    ns, info = run.site.namespace, facts.namespace
    if ns is None or info is None:
        target.unlink(missing_ok=True)
        return []
    rows = [Check("namespace status", "RUNNING", str(info.config_status),
                  "ok" if str(info.config_status) == "RUNNING" else "failed",
                  "" if str(info.config_status) == "RUNNING" else f"vCenter says: {_found(info)}.")]
    for name in ns.vm_classes:
        bound = facts.vm_classes.get(name)
        names = sorted(bound.namespaces or []) if bound is not None else []
        rows.append(Check(f"VM class {name} bound", f"lists namespace {ns.name}", ", ".join(names) or "no namespace",
                          "ok" if ns.name in names else "failed",
                          "" if ns.name in names else
                          f"bind {name} to the namespace in vCenter (namespace.vm_classes)."))
    storage = {s.policy: s.limit or 0 for s in info.storage_specs or []}
    held = storage.get(facts.storage_policy)
    rows.append(Check("storage policy", f"{facts.storage_policy}, limit {ns.storage_limit_mib or 'none'}",
                      ", ".join(f"{p}, limit {limit or 'none'}" for p, limit in storage.items()) or "none",
                      "ok" if held == ns.storage_limit_mib else "failed",
                      "" if held == ns.storage_limit_mib else "give the namespace storage.policy with "
                                                              "namespace.storage_limit_mib in vCenter."))
    found = _access(info.access_list)
    for a in ns.access:
        key = f"{a.subject_type} {a.subject}@{a.domain} {a.role}".lower()
        rows.append(Check(f"access {a.subject}@{a.domain}", a.role, "held" if key in found else "missing",
                          "ok" if key in found else "failed",
                          "" if key in found else f"give {a.subject}@{a.domain} the role {a.role} in vCenter."))
    checks_table(rows).to_csv(target)
    return rows


def conclude(run, rows: list) -> Sentence:
    from ..errors import VerificationFailed

    if not rows:
        return Sentence("No namespace to check.")
    failed = [c for c in rows if c.status != "ok"]
    if not failed:
        return Sentence(f"All {len(rows)} checks of the namespace passed.")
    lines = "\n".join(f"  - {c.check}: {c.found}. {c.fix}" for c in failed)
    raise VerificationFailed(f"{len(failed)} of {len(rows)} checks of the namespace failed:\n{lines}", failed)


__all__ = ["STAGE", "NamespaceFacts", "read_facts", "plan", "reports", "check_namespace", "conclude", "provides"]
