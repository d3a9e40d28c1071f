"""The look-before-you-change shape every stage shares (pure logic: plain functions as steps)."""

from __future__ import annotations

import pytest

from tkgs_lib import effects
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


def sent(outcome: str):
    """A step's request, as a transport enters it on the ledger and closes it with what came back."""
    def run():
        ledger = effects.current()
        ledger.close(ledger.enter("vCenter vc:443", "POST /rest/x"), outcome)
    return run


def test_a_failed_step_names_its_object_and_what_the_ledger_says_was_changed():
    def fail():
        sent(effects.REFUSED)()
        raise TkgsError("vCenter said no")

    plan = Plan("stage", [Step("tag t", "x", "missing", "create", run=sent(effects.DONE)),
                          Step("policy p", "y", "missing", "create", run=fail)])
    with effects.keeping(effects.Ledger()), pytest.raises(TkgsError) as failure:
        plan.apply(progress=False)
    assert failure.value.message.startswith("policy p: vCenter said no")
    assert "Changed: create tag t." in failure.value.message  # the refused request changed nothing
    assert "create policy p" not in failure.value.message


def test_a_step_whose_request_got_no_answer_may_have_happened():
    def lost():
        ledger = effects.current()
        ledger.close(ledger.enter("vCenter vc:443", "POST /rest/item"), effects.UNKNOWN, "reset")
        raise TkgsError("the connection to vCenter was lost")

    plan = Plan("stage", [Step("item i", "x", "missing", "create", run=lost)])
    with effects.keeping(effects.Ledger()), pytest.raises(TkgsError) as failure:
        plan.apply(progress=False)
    assert ("May have changed (rerun without apply to see whether it did): create item i (POST /rest/item to "
            "vCenter vc:443: sent, no answer came).") in failure.value.message
    assert "Nothing was changed" not in failure.value.message


def test_an_unexpected_fault_is_wrapped_with_the_object_and_the_ledger_says_nothing_was_sent():
    plan = Plan("stage", [Step("item i", "x", "missing", "create", run=lambda: 1 / 0)])
    # A fault of our own code before any request: the ledger holds none, so nothing was changed.
    with effects.keeping(effects.Ledger()), \
            pytest.raises(TkgsError, match=r"^stage: create item i failed: division by zero\. Nothing was changed\.$"):
        plan.apply(progress=False)


def test_an_unexpected_fault_after_a_request_left_says_it_may_have_happened():
    def cut():
        effects.current().enter("vCenter vc:443", "POST /rest/item")  # sent; the answer never read
        raise EOFError()  # paramiko's bare EOFError once read "failed: ." here

    plan = Plan("stage", [Step("item i", "x", "missing", "create", run=cut)])
    with effects.keeping(effects.Ledger()), \
            pytest.raises(TkgsError, match=r"^stage: create item i failed: EOFError\. May have changed"):
        plan.apply(progress=False)


def test_a_plan_of_ok_rows_is_a_no_op():
    plan = Plan("stage", [Step("a", "x", "x", "ok")])
    assert plan.is_noop and plan.apply(progress=False) == []


def test_a_wait_row_runs_on_apply_is_no_change_and_leaves_the_ledger_empty():
    """A row that waits for another system (vCenter configuring what an earlier run asked for) runs when
    the plan is applied, after the changes before it, yet sends nothing: the ledger holds nothing for it,
    and a plan holding one is not all done (carry_out then insists on a plan all ok)."""
    ran = []
    plan = Plan("stage", [Step.create("a", "x", lambda: ran.append("a")),
                          Step.wait("Supervisor s", "RUNNING", "CONFIGURING", lambda: ran.append("waited"),
                                    "vCenter is still configuring it: apply waits for it, sending nothing.")])
    assert [s.action for s in plan.waits] == ["wait"] and [s.action for s in plan.changes] == ["create"]
    assert not plan.is_noop and not Plan("stage", [plan.steps[1]]).is_noop
    told = []
    plan.before_changes = lambda: told.append(True)
    with effects.keeping(effects.Ledger()) as ledger:
        assert [s.object for s in plan.apply(progress=False)] == ["a", "Supervisor s"]
        assert ledger.effects == []
    assert ran == ["a", "waited"] and told == [True]
    waiting = Plan("stage", [Step.wait("Supervisor s", "RUNNING", "CONFIGURING", lambda: ran.append("again"), "")])
    waiting.raise_for_blockers()  # a wait is no conflict: a dry run passes
    assert waiting.table().records()[0]["action"] == "wait"
    with pytest.raises(ValueError, match="would wait but has nothing to run"):
        Step("Supervisor s", "RUNNING", "CONFIGURING", "wait")
