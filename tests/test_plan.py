"""The look-before-you-change shape every stage shares (pure logic: plain functions as steps)."""

from __future__ import annotations

import pytest

from tkgs_lib.errors import ConflictError, TkgsError, ValidationFailed
from tkgs_lib.findings import Finding
from tkgs_lib.planning import Plan, Step


def test_apply_runs_create_steps_in_order_and_leaves_ok_rows_alone():
    ran = []
    plan = Plan("stage", [Step("a", "x", "missing", "create", run=lambda: ran.append("a")),
                          Step("b", "y", "y", "ok"),
                          Step("c", "z", "missing", "create", run=lambda: ran.append("c"))])
    assert [s.object for s in plan.apply(progress=False)] == ["a", "c"]
    assert ran == ["a", "c"]
    assert list(plan.table().columns) == ["object", "desired", "found", "action", "note"]


def test_a_conflict_or_an_error_finding_stops_before_anything_runs():
    ran = []
    conflicted = Plan("stage", [Step("a", "x", "missing", "create", run=lambda: ran.append("a")),
                                Step("port group w", "VLAN 27", "VLAN 99", "conflict", why="another VLAN")])
    with pytest.raises(ConflictError, match="port group w: another VLAN"):
        conflicted.apply(progress=False)
    erred = Plan("stage", [Step("a", "x", "missing", "create", run=lambda: ran.append("a"))],
                 [Finding.error("vcenter.datastores", "bad")])
    with pytest.raises(ValidationFailed):
        erred.apply(progress=False)
    assert ran == []


def test_a_failed_step_names_its_object_and_what_already_ran():
    def fail():
        raise TkgsError("vCenter said no")

    plan = Plan("stage", [Step("tag t", "x", "missing", "create", run=lambda: None),
                          Step("policy p", "y", "missing", "create", run=fail)])
    with pytest.raises(TkgsError) as failure:
        plan.apply(progress=False)
    assert failure.value.message.startswith("policy p: vCenter said no")
    assert "Already done before it: create tag t" in failure.value.message


def test_an_unexpected_fault_is_wrapped_with_the_object_and_nothing_ran_before_it():
    plan = Plan("stage", [Step("item i", "x", "missing", "create", run=lambda: 1 / 0)])
    # A fault of our own code says nothing of whether the step's call reached vCenter: the message
    # says the step may have happened, and that nothing before it had.
    with pytest.raises(TkgsError, match=r"stage: create item i failed: division by zero\. As for this step, it may "
                                        r"have been carried out before it failed: rerun without apply to see whether\. "
                                        r"Nothing else had been changed\."):
        plan.apply(progress=False)


def test_an_unexpected_fault_that_says_nothing_is_named_by_its_kind():
    def reset():
        raise EOFError()  # paramiko's bare EOFError once read "failed: ." here

    plan = Plan("stage", [Step("item i", "x", "missing", "create", run=reset)])
    with pytest.raises(TkgsError, match=r"^stage: create item i failed: EOFError\. As for this step"):
        plan.apply(progress=False)


def test_a_plan_of_ok_rows_is_a_no_op():
    plan = Plan("stage", [Step("a", "x", "x", "ok")])
    assert plan.is_noop and plan.apply(progress=False) == []
