"""The Tanzu storage tag and tag-based storage policy, against the vCenter simulator.

The simulator has LocalDS_0 and LocalDS_1; the site names only LocalDS_0, so LocalDS_1 is the
datastore that must stay untagged and not satisfy the policy."""

from __future__ import annotations

import copy

import pytest
from pyVmomi import pbm

from sim_site import site_for
from tkgs_lib.errors import ConflictError, TkgsError, ValidationFailed
from tkgs_lib.planning import PendingId, ValuesOnly
from tkgs_lib.vsphere.connection import connect
from tkgs_lib.vsphere.inventory import Inventory
from tkgs_lib.vsphere.storage import (ASSOCIATION_PATH, CATEGORY_PATH, TAG_PATH, PolicyFacts, StorageFacts,
                                      StorageOps, TagRule, compliance_table, plan_storage, read_storage)

pytestmark = pytest.mark.vcsim

CATEGORY, TAG, POLICY = "tkgs", "tkgs-storage", "Tanzu Storage Policy"


@pytest.fixture
def session(vcsim):
    with connect(site_for(vcsim).vcenter, password=vcsim.password) as session:
        yield session


def _state(session) -> dict:
    """Every category, tag, attachment and storage policy, by id: what a stage could change."""
    rest = session.rest
    categories = {i: rest.get(f"{CATEGORY_PATH}/id:{i}") for i in rest.get(CATEGORY_PATH) or []}
    tags = {i: rest.get(f"{TAG_PATH}/id:{i}") for i in rest.get(TAG_PATH) or []}
    attached = {i: sorted(o["id"] for o in rest.post(f"{ASSOCIATION_PATH}/id:{i}", action="list-attached-objects")
                          or [])
                for i in tags}
    manager = session.pbm.profileManager
    ids = manager.PbmQueryProfile(resourceType=pbm.profile.ResourceType(resourceType="STORAGE"),
                                  profileCategory="REQUIREMENT")
    policies = sorted((p.profileId.uniqueId, p.name) for p in manager.PbmRetrieveContent(ids))
    return {"categories": categories, "tags": tags, "attached": attached, "policies": policies}


def _read(session, site) -> StorageFacts:
    return read_storage(session, Inventory(session, site.vcenter), site)


def prepare_storage(session, site):
    """Read the tags, attachments and policies and plan the site's storage, with operations on this vCenter."""
    return plan_storage(site, _read(session, site), StorageOps(session))


def test_creates_category_tag_attachment_and_policy_from_scratch(vcsim, session):
    site = site_for(vcsim)
    plan = prepare_storage(session, site)
    assert [(s.object, s.action) for s in plan.steps] == [
        (f"tag category {CATEGORY}", "create"), (f"tag {TAG}", "create"),
        (f"tag {TAG} on datastore LocalDS_0", "create"), (f"storage policy {POLICY}", "create")]
    assert len(plan.apply(progress=False)) == 4

    facts = _read(session, site)
    assert facts.category.associable_types == ("Datastore",) and facts.category.cardinality == "SINGLE"
    assert facts.tags[TAG].category_id == facts.category.id
    assert facts.attached == {"LocalDS_0": (TAG,), "LocalDS_1": ()}
    (policy,) = facts.policies
    assert policy.rule_sets == ((TagRule(CATEGORY, (TAG,)),),) and policy.other_rules == ()
    table = compliance_table(site, facts).frame.set_index("datastore")
    assert table.loc["LocalDS_0"].tolist() == ["yes", "yes", "yes"]  # in site, tagged, satisfies policy
    assert table.loc["LocalDS_1"].tolist() == ["no", "no", "no"]


def test_rerun_plans_only_ok_rows_and_changes_nothing(vcsim, session):
    site = site_for(vcsim)
    prepare_storage(session, site).apply(progress=False)
    before = _state(session)
    rerun = prepare_storage(session, site)
    assert {s.action for s in rerun.steps} == {"ok"} and rerun.is_noop
    assert rerun.apply(progress=False) == []
    assert _state(session) == before


def test_category_not_associable_to_datastores_is_a_conflict_and_nothing_changes(vcsim, session):
    session.rest.post(CATEGORY_PATH, {"create_spec": {"name": CATEGORY, "description": "", "cardinality": "MULTIPLE",
                                                      "associable_types": ["VirtualMachine"]}})
    before = _state(session)
    plan = prepare_storage(session, site_for(vcsim))
    assert [s.action for s in plan.steps] == ["conflict", "create", "create", "create"]
    assert "cannot be attached to datastores" in plan.steps[0].why
    with pytest.raises(ConflictError, match="nothing was changed"):
        plan.apply(progress=False)
    assert _state(session) == before


def test_policy_of_that_name_without_the_tag_rule_is_a_conflict(vcsim, session):
    StorageOps(session).create_policy(POLICY, "other-category", "gold")
    plan = prepare_storage(session, site_for(vcsim))
    step = plan.steps[-1]
    assert (step.action, step.found) == ("conflict", "tag other-category/gold")
    assert f"does not require tag {CATEGORY}/{TAG}" in step.why


def test_single_cardinality_datastore_already_tagged_in_the_category_is_a_conflict(vcsim, session):
    site = site_for(vcsim)
    ops = StorageOps(session)
    other = ops.create_tag("tkgs-old", ops.create_category(CATEGORY))
    ops.attach(other, Inventory(session, site.vcenter).datastore("LocalDS_0")._moId)
    plan = prepare_storage(session, site)
    actions = {s.object: s.action for s in plan.steps}
    assert actions[f"tag category {CATEGORY}"] == "ok"
    assert actions[f"tag {TAG} on datastore LocalDS_0"] == "conflict"
    assert "one tag per object" in plan.conflicts[0].why


def test_both_datastores_named_are_both_tagged(vcsim, session):
    site = site_for(vcsim, **{"vcenter.datastores": ["LocalDS_0", "LocalDS_1"]})
    prepare_storage(session, site).apply(progress=False)
    facts = _read(session, site)
    assert facts.attached == {"LocalDS_0": (TAG,), "LocalDS_1": (TAG,)}
    assert compliance_table(site, facts)["satisfies policy"].tolist() == ["yes", "yes"]


def test_article_style_policy_with_more_rules_is_accepted():
    """Values only: the article clones the vSAN default policy and adds the tag rule, so vSAN rules
    sit beside it; the tag rule is what this stage needs, and the other rules are shown, not judged."""
    site = _values_site()
    policy = PolicyFacts("p-1", POLICY, ((TagRule(CATEGORY, (TAG,)),),), ("VSAN.hostFailuresToTolerate",))
    facts = StorageFacts(None, {}, {"vsanDatastore": "datastore-1", "nfs01": "datastore-2"},
                         {"vsanDatastore": (), "nfs01": ()}, [policy])
    plan = plan_storage(site, facts)
    assert [s.action for s in plan.steps] == ["create", "create", "create", "ok"]
    assert plan.steps[-1].found == f"tag {CATEGORY}/{TAG} (+ VSAN.hostFailuresToTolerate)"
    with pytest.raises(TkgsError, match=r"made from values only; plan with StageRun\.plan\(\) on a run connected"):
        plan.steps[0].run()
    # Nothing is tagged yet: no datastore satisfies the policy.
    assert compliance_table(site, facts)["satisfies policy"].tolist() == ["no", "no"]


def test_values_only_facts_without_a_site_datastore_are_an_error_finding_not_a_key_error():
    """read_storage checks every site datastore exists; facts built from values need not list them."""
    site = _values_site()  # names vsanDatastore
    facts = StorageFacts(None, {}, {"nfs01": "datastore-2"}, {"nfs01": ()})
    plan = plan_storage(site, facts)
    assert [s.object for s in plan.steps] == [f"tag category {CATEGORY}", f"tag {TAG}", f"storage policy {POLICY}"]
    (error,) = [f for f in plan.findings if f.is_error]
    assert error.path == "vcenter.datastores[0]"
    assert error.message.startswith("datastore 'vsanDatastore' does not exist in datacenter 'Datacenter' "
                                    "(found: nfs01)")
    with pytest.raises(ValidationFailed, match="vsanDatastore"):
        plan.apply(progress=False)


def test_a_values_only_plan_answers_only_public_names():
    """Notebook display, copy and pickle probe special names; they must not get a refusing function."""
    values_only = ValuesOnly("a StorageOps")
    for probe in ("_repr_html_", "_ipython_display_", "__deepcopy__", "_private"):
        assert not hasattr(values_only, probe), probe
    assert copy.deepcopy(values_only) is not values_only
    with pytest.raises(TkgsError, match="made from values only; plan with a StorageOps"):
        values_only.create_tag("t", "c")


def test_an_id_read_before_the_step_that_makes_it_ran_says_so():
    category = PendingId(f"tag category {CATEGORY}")
    with pytest.raises(TkgsError, match=f"the id of tag category {CATEGORY} is not known"):
        category.get()
    assert category.set("urn:cat:1") == "urn:cat:1" and category.get() == "urn:cat:1"


def _values_site():
    from pathlib import Path

    from tkgs_lib.site import load_site

    return load_site(Path(__file__).resolve().parent.parent / "examples" / "example-site.yaml")
