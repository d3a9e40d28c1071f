"""The content-library planner as a pure function of (site, facts): no vCenter, no simulator."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from helpers import variant
from tkgs_lib.errors import OvaError, TkgsError
from tkgs_lib.ova import DIGEST_PREFIX, OvaContent
from tkgs_lib.site import parse_site
from tkgs_lib.vsphere.content_api import Library, LibraryItem
from tkgs_lib.vsphere.library import ContentLibraryFacts, OvaFacts, library_item_table, library_table, plan_content_libraries

import yaml

URL = "https://wp-content.vmware.com/v2/latest/lib.json"
CONTENT = OvaContent("ab" * 32, (("haproxy.ovf", 9000), ("haproxy.mf", 200), ("haproxy.vmdk", 1 << 20)))
OVA = OvaFacts(Path("/nowhere/haproxy-v0.1.10.ova"), CONTENT, verified=True)
SUBSCRIBED = Library("lib-1", "Tanzu VMware", "SUBSCRIBED", ("datastore-1",), URL, on_demand=False,
                     automatic_sync=True)
LOCAL = Library("lib-2", "HAProxy", "LOCAL", ("datastore-1",))
ITEM = LibraryItem("item-1", "haproxy-v0.1.10", "ovf", f"{DIGEST_PREFIX}{CONTENT.manifest_digest}",
                   tuple(sorted(CONTENT.files)))


def site(changes=None):
    return parse_site(yaml.safe_dump(variant(changes)))


def facts(**changes) -> ContentLibraryFacts:
    base = ContentLibraryFacts("vsanDatastore", "datastore-1", {"datastore-1": "vsanDatastore",
                                                                 "datastore-2": "nfs01"},
                               subscribed=[SUBSCRIBED], local=[LOCAL], items=[ITEM], ova=OVA)
    return dataclasses.replace(base, **changes)


def rows(plan):
    return [(s.object, s.action) for s in plan.steps]


def test_an_empty_vcenter_plans_both_libraries_and_the_upload():
    plan = plan_content_libraries(site(), facts(subscribed=[], local=[], items=[]))
    assert rows(plan) == [("subscribed library 'Tanzu VMware'", "create"), ("local library 'HAProxy'", "create"),
                          ("OVA item 'haproxy-v0.1.10' in 'HAProxy'", "create")]
    assert {s.found for s in plan.steps} == {"missing"}
    assert "download immediately, automatic sync on, on vsanDatastore" in plan.steps[0].desired


def test_everything_in_place_is_all_ok():
    plan = plan_content_libraries(site(), facts())
    assert {s.action for s in plan.steps} == {"ok"} and plan.is_noop and plan.findings == []


def test_a_subscription_elsewhere_is_a_conflict_that_lists_each_difference():
    other = dataclasses.replace(SUBSCRIBED, subscription_url="https://example.com/lib.json", on_demand=True,
                                automatic_sync=False)
    (step, *_) = plan_content_libraries(site(), facts(subscribed=[other])).steps
    assert step.action == "conflict"
    assert "it subscribes to https://example.com/lib.json, the site to " + URL in step.why
    assert "it downloads on_demand, the site wants immediately" in step.why
    assert "its automatic sync is off" in step.why


def test_a_local_library_on_another_datastore_stops_before_the_item():
    moved = dataclasses.replace(LOCAL, datastore_ids=("datastore-2",))
    plan = plan_content_libraries(site(), facts(local=[moved], items=[], ova=None))
    assert rows(plan)[1:] == [("local library 'HAProxy'", "conflict")]  # no item row: it cannot be planned
    assert "content_libraries.datastore: nfs01" in plan.steps[1].why


@pytest.mark.parametrize("item, words", [
    (dataclasses.replace(ITEM, description=f"{DIGEST_PREFIX}{'cd' * 32}"), "the item holds another OVA"),
    (dataclasses.replace(ITEM, description="made by hand"), "records no sha256-manifest: digest"),
    (dataclasses.replace(ITEM, files=(("haproxy.ovf", 9000),)), "it is damaged"),
])
def test_an_item_with_other_content_is_a_conflict(item, words):
    step = plan_content_libraries(site(), facts(items=[item])).steps[-1]
    assert step.action == "conflict" and words in step.why


def test_a_values_only_upload_refuses_to_run():
    plan = plan_content_libraries(site(), facts(items=[]))
    (upload,) = plan.changes
    with pytest.raises(TkgsError, match=r"made from values only; plan with StageRun\.plan\(\) on a run connected"):
        upload.run()


def test_an_upload_is_never_planned_from_an_unchecked_ova():
    with pytest.raises(OvaError, match="was not checked against its manifest"):
        plan_content_libraries(site(), facts(items=[], ova=dataclasses.replace(OVA, verified=False)))


def test_a_site_without_libraries_warns_and_plans_nothing():
    plan = plan_content_libraries(site({"content_libraries": None}), None)
    assert plan.steps == [] and [f.path for f in plan.findings] == ["content_libraries"]


def test_the_reports_read_facts_not_a_session():
    assert [r["library"] for r in library_table(site(), facts()).records()] == ["Tanzu VMware", "HAProxy"]
    (item,) = library_item_table(site(), facts()).records()
    assert item["found"] == "yes" and item["total size"].endswith("(1.0 MiB)")
    (none,) = library_item_table(site(), facts(items=[])).records()
    assert none["found"] == "no"


def test_two_libraries_of_the_name_are_a_conflict_naming_both():
    twin = dataclasses.replace(SUBSCRIBED, id="lib-9")
    (step, *_) = plan_content_libraries(site(), facts(subscribed=[SUBSCRIBED, twin])).steps
    assert step.action == "conflict" and "(id lib-1, id lib-9); delete all but one" in step.why
