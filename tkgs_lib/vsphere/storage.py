"""The Tanzu storage policy: a tag category for datastores, a tag on each site datastore, and a
tag-based VM storage policy (SPBM) that requires the tag.

Read → plan → apply, like every stage. Which datastores satisfy the policy is worked out from
the tag attachments (:func:`compliance_table`), not asked of SPBM: the simulator's placement
check returns every datastore whatever the policy, and a tag rule means exactly "carries the tag".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from pyVmomi import pbm

from ..findings import Finding
from ..site import Site
from ..planning import PendingId, Plan, Step, VALUES_ONLY
from .inventory import Inventory
from .rest import RestClient
from .tasks import vsphere_call

__all__ = ["Category", "Tag", "TagRule", "PolicyFacts", "StorageFacts", "StorageOps", "read_storage",
           "plan_storage", "compliance_table", "tag_rule_spec", "TITLE", "TAG_NAMESPACE"]

TITLE = "storage policy"
TAG_NAMESPACE = "http://www.vmware.com/storage/tag"  # SPBM's namespace for tag-based placement rules
CATEGORY_PATH = "/rest/com/vmware/cis/tagging/category"
TAG_PATH = "/rest/com/vmware/cis/tagging/tag"
ASSOCIATION_PATH = "/rest/com/vmware/cis/tagging/tag-association"
DATASTORE = "Datastore"
CARDINALITY = "SINGLE"  # vSphere's default, "one tag per object", as VMware's Tanzu storage guide uses
DESCRIPTION = "Datastores for vSphere with Tanzu (tkgs-runbook)"


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    cardinality: str
    associable_types: tuple[str, ...]  # empty: every object type

    @property
    def for_datastores(self) -> bool:
        return not self.associable_types or DATASTORE in self.associable_types


@dataclass(frozen=True)
class Tag:
    id: str
    name: str
    category_id: str


@dataclass(frozen=True)
class TagRule:
    """A tag-based placement rule: the datastore carries one of ``tags`` of ``category``."""

    category: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class PolicyFacts:
    id: str
    name: str
    rule_sets: tuple[tuple[TagRule, ...], ...]  # one per sub-profile (rule set); rule sets are alternatives
    other_rules: tuple[str, ...] = ()  # namespace.id of capabilities that are not tag rules (vSAN...)

    def requires(self, category: str, tag: str) -> bool:
        return any(r.category == category and tag in r.tags for rules in self.rule_sets for r in rules)


@dataclass
class StorageFacts:
    category: Optional[Category]
    tags: dict[str, Tag]  # the category's tags, by name
    datastores: dict[str, str]  # every datastore of the datacenter: name → managed object id
    attached: dict[str, tuple[str, ...]]  # datastore name → names of the category's tags on it
    policies: list[PolicyFacts] = field(default_factory=list)  # storage policies with the site's name


# --- read ------------------------------------------------------------------------------------

def read_storage(session, inventory: Inventory, site: Site) -> StorageFacts:
    """The site's category, its tags and their datastores, and the policies of the site's name."""
    rest: RestClient = session.rest
    storage = site.storage
    inventory.resolve(("datacenter", "datastores"))
    datastores = {name: ds._moId for name, ds in inventory.all_datastores.items()}
    category = _find_category(rest, storage.tag_category)
    tags: dict[str, Tag] = {}
    attached: dict[str, list[str]] = {name: [] for name in datastores}
    if category is not None:
        by_moid = {moid: name for name, moid in datastores.items()}
        for tag_id in rest.post(f"{TAG_PATH}/id:{category.id}", action="list-tags-for-category") or []:
            value = rest.get(f"{TAG_PATH}/id:{tag_id}")
            tag = Tag(value["id"], value["name"], value.get("category_id", category.id))
            tags[tag.name] = tag
            for obj in rest.post(f"{ASSOCIATION_PATH}/id:{tag.id}", action="list-attached-objects") or []:
                if obj.get("type") == DATASTORE and obj.get("id") in by_moid:
                    attached[by_moid[obj["id"]]].append(tag.name)
    return StorageFacts(category, tags, datastores, {k: tuple(sorted(v)) for k, v in attached.items()},
                        read_policies(session, storage.policy))


def _find_category(rest: RestClient, name: str) -> Optional[Category]:
    for category_id in rest.get(CATEGORY_PATH) or []:
        value = rest.get(f"{CATEGORY_PATH}/id:{category_id}")
        if value.get("name") == name:
            return Category(value["id"], value["name"], value.get("cardinality", ""),
                            tuple(value.get("associable_types") or ()))
    return None


def read_policies(session, name: str) -> list[PolicyFacts]:
    """Every VM storage policy (requirement profile) called ``name``, with its tag rules."""
    manager = session.pbm.profileManager
    ids = manager.PbmQueryProfile(resourceType=pbm.profile.ResourceType(resourceType="STORAGE"),
                                  profileCategory="REQUIREMENT")
    if not ids:
        return []
    return [_policy_facts(p) for p in manager.PbmRetrieveContent(ids) if p.name == name]


def _policy_facts(profile) -> PolicyFacts:
    rule_sets, others = [], []
    for sub in getattr(profile.constraints, "subProfiles", None) or ():
        rules = []
        for capability in sub.capability or ():
            if capability.id.namespace != TAG_NAMESPACE:
                others.append(f"{capability.id.namespace}.{capability.id.id}")
                continue
            tags = [str(v) for c in capability.constraint or () for p in c.propertyInstance or ()
                    for v in (getattr(p.value, "values", None) or ())]
            rules.append(TagRule(capability.id.id, tuple(tags)))
        rule_sets.append(tuple(rules))
    return PolicyFacts(profile.profileId.uniqueId, profile.name, tuple(rule_sets), tuple(others))


# --- plan ------------------------------------------------------------------------------------

class StorageOps:
    """The changes a storage plan makes; each is one API call, so a failure leaves nothing half-made."""

    @classmethod
    def for_run(cls, run) -> Optional["StorageOps"]:
        return cls(run.vcenter) if run.vcenter is not None else None

    def __init__(self, session) -> None:
        self.session = session

    def create_category(self, name: str) -> str:
        return self.session.rest.post(CATEGORY_PATH, {"create_spec": {
            "name": name, "description": DESCRIPTION, "cardinality": CARDINALITY, "associable_types": [DATASTORE]}})

    def create_tag(self, name: str, category_id: str) -> str:
        return self.session.rest.post(TAG_PATH, {"create_spec": {
            "name": name, "description": DESCRIPTION, "category_id": category_id}})

    def attach(self, tag_id: str, datastore_id: str) -> None:
        body = {"object_id": {"type": DATASTORE, "id": datastore_id}}
        self.session.rest.post(f"{ASSOCIATION_PATH}/id:{tag_id}", body, action="attach")

    def create_policy(self, name: str, category: str, tag: str) -> str:
        spec = pbm.profile.CapabilityBasedProfileCreateSpec(
            name=name, description=DESCRIPTION, category="REQUIREMENT",
            resourceType=pbm.profile.ResourceType(resourceType="STORAGE"),
            constraints=pbm.profile.SubProfileCapabilityConstraints(subProfiles=[tag_rule_spec(category, tag)]))
        with vsphere_call(f"creating VM storage policy '{name}'"):
            return self.session.pbm.profileManager.PbmCreate(spec).uniqueId


    def detach(self, tag_id: str, datastore_id: str) -> None:
        body = {"object_id": {"type": DATASTORE, "id": datastore_id}}
        self.session.rest.post(f"{ASSOCIATION_PATH}/id:{tag_id}", body, action="detach")

    def delete_tag(self, tag_id: str) -> None:
        self.session.rest.delete(f"{TAG_PATH}/id:{tag_id}")

    def delete_category(self, category_id: str) -> None:
        self.session.rest.delete(f"{CATEGORY_PATH}/id:{category_id}")

    def delete_policy(self, policy_id: str) -> None:
        with vsphere_call(f"removing VM storage policy {policy_id}"):
            self.session.pbm.profileManager.PbmDelete([pbm.profile.ProfileId(uniqueId=policy_id)])


def tagging_by_id(rest: RestClient, category_ids, tag_ids) -> tuple[dict, dict]:
    """Of the categories and tags ``category_ids`` and ``tag_ids`` (vCenter's ids), those vCenter still holds:
    each category's tag ids, and each tag's attachments as (type, id)."""
    categories = {}
    for category_id in category_ids:
        if _exists(rest, f"{CATEGORY_PATH}/id:{category_id}"):
            categories[category_id] = tuple(rest.post(f"{TAG_PATH}/id:{category_id}",
                                                      action="list-tags-for-category") or ())
    tags = {}
    for tag_id in tag_ids:
        if _exists(rest, f"{TAG_PATH}/id:{tag_id}"):
            attached = rest.post(f"{ASSOCIATION_PATH}/id:{tag_id}", action="list-attached-objects") or ()
            tags[tag_id] = tuple((o.get("type", ""), o.get("id", "")) for o in attached)
    return categories, tags


def _exists(rest: RestClient, path: str) -> bool:
    """Whether ``GET path`` finds the object (vCenter answers 404 for an id it does not hold)."""
    from ..errors import RestError

    try:
        rest.get(path)
    except RestError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def policy_ids(session) -> set[str]:
    """The ids of every VM storage policy (requirement profile) vCenter holds."""
    ids = session.pbm.profileManager.PbmQueryProfile(resourceType=pbm.profile.ResourceType(resourceType="STORAGE"),
                                                     profileCategory="REQUIREMENT")
    return {profile_id.uniqueId for profile_id in ids or ()}


def tag_rule_spec(category: str, tag: str):
    """The rule set "Tag based placement": datastores carrying ``tag`` of ``category`` (as vCenter's UI writes it)."""
    cap = pbm.capability
    return pbm.profile.SubProfileCapabilityConstraints.SubProfile(name="Tag based placement", capability=[
        cap.CapabilityInstance(
            id=cap.CapabilityMetadata.UniqueId(namespace=TAG_NAMESPACE, id=category),
            constraint=[cap.ConstraintInstance(propertyInstance=[cap.PropertyInstance(
                id=f"com.vmware.storage.tag.{category}.property", value=cap.types.DiscreteSet(values=[tag]))])])])


def plan_storage(site: Site, facts: StorageFacts, ops: "StorageOps" = VALUES_ONLY) -> Plan:
    """Compare the site's storage block with ``facts``; ``ops`` (a StorageOps) runs the create steps."""
    plan = Plan(TITLE)
    storage = site.storage
    if storage is None:
        plan.findings.append(Finding.warning(
            "storage", "is not in the site, so no datastore tag or storage policy is prepared (Workload "
                       "Management needs a storage policy).",
            "add storage (tag_category, tag, policy) to the site file; see `tkgs-runbook fields`."))
        return plan
    c_name, t_name, p_name = storage.tag_category, storage.tag, storage.policy
    # Known now when the object exists; set by its create step otherwise, for the steps after it.
    category_id, tag_id = PendingId(f"tag category {c_name}"), PendingId(f"tag {t_name}")

    category = facts.category
    desired = f"{CARDINALITY.lower()} cardinality, associable to {DATASTORE}"
    if category is None:
        plan.add(Step.create(f"tag category {c_name}", desired, lambda: category_id.set(ops.create_category(c_name))))
    else:
        category_id.set(category.id)
        found = (f"{category.cardinality.lower()} cardinality, associable to "
                 f"{', '.join(category.associable_types) or 'every object type'}")
        if category.for_datastores:
            plan.add(Step.ok(f"tag category {c_name}", desired, found))
        else:
            plan.add(Step.conflict(f"tag category {c_name}", desired, found,
                                   f"tag category '{c_name}' exists but its tags cannot be attached to datastores: add "
                                   f"{DATASTORE} to its associable object types in vCenter, or name another category "
                                   f"in storage.tag_category."))

    tag = facts.tags.get(t_name)
    if tag is None:
        plan.add(Step.create(f"tag {t_name}", f"in category {c_name}",
                             lambda: tag_id.set(ops.create_tag(t_name, category_id.get()))))
    else:
        tag_id.set(tag.id)
        plan.add(Step.ok(f"tag {t_name}", f"in category {c_name}", f"in category {c_name}"))

    single = category is None or category.cardinality.upper() == "SINGLE"
    for index, name in enumerate(site.vcenter.datastores):
        on_it = facts.attached.get(name, ())
        obj, desired = f"tag {t_name} on datastore {name}", "attached"
        if name not in facts.datastores:
            # read_storage checks every site datastore exists; facts made from values may not list it.
            listing = ", ".join(sorted(facts.datastores)) or "none"
            plan.findings.append(Finding.error(
                f"vcenter.datastores[{index}]",
                f"datastore '{name}' does not exist in datacenter '{site.vcenter.datacenter}' (found: {listing}), "
                f"so tag {t_name} cannot be attached to it.",
                "name an existing datastore in vcenter.datastores."))
        elif t_name in on_it:
            plan.add(Step.ok(obj, desired, "attached"))
        elif single and on_it:
            plan.add(Step.conflict(obj, desired, f"carries {', '.join(on_it)}",
                                   f"datastore '{name}' already carries tag {', '.join(on_it)} of category "
                                   f"'{c_name}', which allows one tag per object: detach it in vCenter, or use "
                                   f"another category."))
        else:
            plan.add(Step.create(obj, desired, lambda moid=facts.datastores[name]: ops.attach(tag_id.get(), moid),
                                 found="not attached"))

    desired = f"requires tag {c_name}/{t_name}"
    if not facts.policies:
        plan.add(Step.create(f"storage policy {p_name}", desired, lambda: ops.create_policy(p_name, c_name, t_name)))
    elif len(facts.policies) > 1:
        plan.add(Step.conflict(f"storage policy {p_name}", desired, f"{len(facts.policies)} policies of that name",
                               f"{len(facts.policies)} VM storage policies are named '{p_name}': rename all but one "
                               f"in vCenter, or name another policy in storage.policy."))
    else:
        policy = facts.policies[0]
        found = _describe_rules(policy)
        if policy.requires(c_name, t_name):
            plan.add(Step.ok(f"storage policy {p_name}", desired, found))
        else:
            plan.add(Step.conflict(f"storage policy {p_name}", desired, found,
                                   f"VM storage policy '{p_name}' exists but does not require tag {c_name}/{t_name}: "
                                   f"add that tag-based placement rule to it in vCenter, or name another policy in "
                                   f"storage.policy."))
    return plan


def _describe_rules(policy: PolicyFacts) -> str:
    rules = [f"tag {r.category}/{' or '.join(r.tags) or '?'}" for rules in policy.rule_sets for r in rules]
    text = "; ".join(rules) or "no tag rule"
    return text + (f" (+ {', '.join(policy.other_rules)})" if policy.other_rules else "")


def compliance_table(site: Site, facts: StorageFacts):
    """Every datastore of the datacenter: named by the site, tagged, and whether it satisfies the policy.

    Worked out from the tag attachments, against the policy as found or, while it does not exist
    yet, as the site wants it. Rules that are not tag rules (vSAN...) are not judged here."""
    from ..display.tables import Table

    storage = site.storage
    if len(facts.policies) == 1:
        rule_sets = [rules for rules in facts.policies[0].rule_sets if rules]
    else:
        rule_sets = [(TagRule(storage.tag_category, (storage.tag,)),)]
    rows = []
    for name in sorted(facts.datastores):
        on_it = set(facts.attached.get(name, ()))
        # Only the site's category was read, so rules of other categories count as unmet.
        satisfies = any(all(r.category == storage.tag_category and on_it & set(r.tags) for r in rules)
                        for rules in rule_sets)
        rows.append({"datastore": name, "in site": name in site.vcenter.datastores,
                     "tagged": storage.tag in on_it, "satisfies policy": satisfies})
    return Table(rows, ["datastore", "in site", "tagged", "satisfies policy"],
                 empty=f"Datacenter '{site.vcenter.datacenter}' has no datastore.")
