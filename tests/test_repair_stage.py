"""Stage 5, repair: the planner on recorded output, then against the simulated appliance (the
article's line fixed, a route table fixed, the rollback when the unit still fails, a rerun that
plans nothing)."""

from __future__ import annotations

import pytest

from appliance_fixtures import PASSWORD_ENV, start_appliance
from test_verify_checks import ARTICLE_LOG, HEADER, NETWORK, healthy
from tkgs_lib.appliance.checks import gather_appliance_facts
from tkgs_lib.appliance.commands import CommandResult, RecordedRunner
from tkgs_lib.appliance.facts import ANYIP_FILE, ROUTE_TABLES_FILE, anyip_unit, config_file, routes, unit_log
from tkgs_lib.appliance.repair import RepairOps, plan_repair
from tkgs_lib.errors import ApplianceError, SessionLost, TkgsError
from tkgs_lib.stages import repair
from tkgs_lib.stages.flow import StageRun


def planned(outputs):
    return plan_repair(NETWORK, gather_appliance_facts(RecordedRunner(outputs), NETWORK))


def test_a_healthy_appliance_plans_nothing():
    plan = planned(healthy())
    assert [s.action for s in plan.steps] == ["ok", "ok"] and plan.is_noop


def test_the_articles_line_plans_a_change_shown_as_a_diff():
    outputs = healthy(**{config_file(ANYIP_FILE).command: HEADER + "10.64.0.1/23\n",
                         anyip_unit().command: CommandResult("", 3, "failed\n"),
                         unit_log("anyip-routes.service").command: ARTICLE_LOG, routes("local").command: "[]"})
    plan = planned(outputs)
    (change,) = plan.changes
    assert change.object == f"{ANYIP_FILE} (and anyip-routes.service)" and change.found == "10.64.0.1/23"
    assert change.desired == "10.64.1.0/24"
    facts = gather_appliance_facts(RecordedRunner(outputs), NETWORK)
    (diff,) = repair.diffs_markdown(NETWORK, facts).changes
    assert "-10.64.0.1/23\n+10.64.1.0/24\n" in diff.diff()
    with pytest.raises(TkgsError, match=r"made from values only; plan with StageRun\.plan\(\) on a run connected"):
        change.run()


def test_the_diff_is_coloured_in_a_notebook_and_plain_in_a_terminal():
    """Removed lines red, added lines green, in the notebook's HTML; what the appliance holds is escaped
    (its file is not ours to trust); the terminal and the record keep the plain diff."""
    outputs = healthy(**{config_file(ANYIP_FILE).command: HEADER + "10.64.0.1/23\n<b>not a range</b>\n"})
    diffs = repair.diffs_markdown(NETWORK, gather_appliance_facts(RecordedRunner(outputs), NETWORK))
    shown = diffs._repr_html_()
    removed, added = "background-color: #ffebe9; color: #82071e", "background-color: #e6ffec; color: #116329"
    assert f'<span style="{removed}">-10.64.0.1/23</span>\n' in shown, shown
    assert f'<span style="{removed}">-&lt;b&gt;not a range&lt;/b&gt;</span>\n' in shown, shown
    assert f'<span style="{added}">+10.64.1.0/24</span>\n' in shown, shown
    assert f'<span style="font-weight: bold">--- {ANYIP_FILE} (on the appliance)</span>' in shown  # a name, not a line
    assert "<b>not" not in shown
    assert repr(diffs) == diffs.changes[0].diff() and "<span" not in repr(diffs)
    assert "-10.64.0.1/23\n-<b>not a range</b>\n+10.64.1.0/24\n" in repr(diffs)


def test_grown_ranges_are_added_and_said_so():
    site_ranges = ["10.64.1.0/25", "10.64.1.128/25"]
    import yaml

    from helpers import variant
    from tkgs_lib.site import parse_site
    from tkgs_lib.site.layout import network_layout

    network = network_layout(parse_site(yaml.safe_dump(variant({"haproxy.load_balancer_ranges": site_ranges}))))
    outputs = healthy(**{config_file(ANYIP_FILE).command: HEADER + "10.64.1.0/25\n"})
    (change,) = plan_repair(network, gather_appliance_facts(RecordedRunner(outputs), network)).changes
    assert change.why.startswith("the site's ranges grew: 10.64.1.128/25 added")


def test_a_local_route_of_a_dropped_range_is_removed_first_then_the_file_rewritten():
    from test_verify_checks import DROPPED_RANGE

    outputs = healthy(**{config_file(ANYIP_FILE).command: HEADER + "10.64.1.0/24\n10.64.3.0/24\n",
                         routes("local").command: DROPPED_RANGE})
    plan = planned(outputs)
    assert [(s.object, s.action) for s in plan.steps] == [
        ("local route for 10.64.3.0/24 on the appliance", "change"),
        ("/etc/vmware/route-tables.cfg (and route-tables.service)", "ok"),
        (f"{ANYIP_FILE} (and anyip-routes.service)", "change")]
    route = plan.steps[0]
    assert (route.desired, route.found) == ("none: not in haproxy.load_balancer_ranges", "local 10.64.3.0/24 dev lo")
    assert route.why.startswith("the appliance answers for 10.64.3.0/24, which the plan's ranges do not hold")
    # The file already the plan's: the route alone is planned, and no restart of the unit (it would not remove it).
    alone = planned(healthy(**{routes("local").command: DROPPED_RANGE}))
    assert [s.action for s in alone.steps] == ["change", "ok", "ok"]


def test_a_failed_unit_on_the_right_file_is_started_again():
    outputs = healthy(**{anyip_unit().command: CommandResult("", 3, "failed\n"), routes("local").command: "[]"})
    (change,) = planned(outputs).changes
    assert "started again" in change.why


class _LostAtTheCheck:
    """Every command answers; the read of the appliance after the change finds the session lost."""

    def __init__(self):
        self.ran = []

    def run(self, command, timeout=60):
        self.ran.append(command)
        return CommandResult(command, 0, "")

    def run_batch(self, commands, timeout=60):
        raise SessionLost("the SSH session to 10.64.2.10 was lost while the facts were read", "the facts")


def test_a_session_lost_while_the_change_is_checked_is_not_taken_for_success():
    """A check that could read nothing is no pass: the session lost after the file was replaced is said
    so, with what had been done, and nothing is left to look repaired."""
    outputs = healthy(**{config_file(ANYIP_FILE).command: HEADER + "10.64.0.1/23\n",
                         anyip_unit().command: CommandResult("", 3, "failed\n"),
                         unit_log("anyip-routes.service").command: ARTICLE_LOG, routes("local").command: "[]"})
    runner = _LostAtTheCheck()
    ops = RepairOps(runner, NETWORK)
    (change,) = plan_repair(NETWORK, gather_appliance_facts(RecordedRunner(outputs), NETWORK), ops).changes
    with pytest.raises(ApplianceError) as lost:
        change.run()
    sentence = str(lost.value)
    assert "was lost while the facts were read, after these steps: anyip-routes.service stopped and its local " \
           f"routes removed; {ANYIP_FILE} replaced by the plan's" in sentence, sentence
    assert "could not be reconnected" in sentence and "Nothing had been changed" not in sentence
    assert ops.take_read_after_change() is None  # no read to show as the state after the repair


# --- against the simulated appliance --------------------------------------------------------------

@pytest.fixture
def secrets_in_env(monkeypatch):
    for name, value in PASSWORD_ENV.items():
        monkeypatch.setenv(name, value)


def repair_run(lab) -> StageRun:
    return StageRun("repair", lab.site, lab.run_folder, progress=False)


def carry_out(lab, apply=True, execs: list | None = None):
    """The stage's plan, carried out, and its reports; the SSH execs it made appended to ``execs``."""
    def work():
        run = repair_run(lab)
        try:
            plan = run.plan()
            outcome = run.carry_out(plan, apply)
            reports = run.reports()
            if execs is not None:
                execs.append(run.appliance.execs)
            return plan, outcome, reports
        finally:
            run.close()
    return lab.sim.in_lab(work)


def appliance_file(lab, path: str) -> str:
    def work():
        run = repair_run(lab)
        try:
            return run.connect_appliance().run(f"cat {path}").stdout
        finally:
            run.close()
    return lab.sim.in_lab(work)


@pytest.mark.slow
def test_the_articles_line_is_repaired_with_a_backup_and_a_rerun_plans_nothing(tmp_path, secrets_in_env):
    lab = start_appliance(tmp_path, faults={"service_ip_range": "10.64.0.1/23"})
    try:
        execs = []
        plan, outcome, reports = carry_out(lab, execs=execs)
        assert [s.action for s in plan.steps] == ["ok", "change"] and len(outcome.ran) == 1
        # One read, then backup, stop, replace, start and the check's read; the read after apply and the
        # reports are that last read (nothing changed since), not execs of their own.
        assert execs == [6]
        assert appliance_file(lab, ANYIP_FILE).endswith("\n10.64.1.0/24\n")
        listing = appliance_file(lab, "/etc/vmware/anyip-routes.cfg.tkgs-*.bak")
        assert "10.64.0.1/23" in listing  # the dated backup holds the file as it was
        table = reports["the appliance, checked"]
        assert set(table["status"]) == {"ok"}, table.to_text()
        rerun, again, _ = carry_out(lab)
        assert rerun.is_noop and again.ran == []
    finally:
        lab.sim.stop()


@pytest.mark.slow
def test_a_wrong_route_table_is_repaired(tmp_path, secrets_in_env):
    lab = start_appliance(tmp_path, faults={"route_tables": ["2,workload,00:50:56:00:00:01,10.64.8.10/21,10.64.8.254"]})
    try:
        plan, outcome, reports = carry_out(lab)
        assert [s.action for s in plan.steps] == ["change", "ok"]
        text = appliance_file(lab, ROUTE_TABLES_FILE)
        assert f"2,workload,{lab.sim.macs['workload']},10.64.8.10/21,10.64.8.1" in text
        assert f"3,frontend,{lab.sim.macs['frontend']},10.64.0.10/23,10.64.0.1" in text
        assert set(reports["the appliance, checked"]["status"]) == {"ok"}
    finally:
        lab.sim.stop()


@pytest.mark.slow
def test_when_the_unit_still_fails_the_backup_is_put_back(tmp_path, secrets_in_env):
    """A route for the same prefix on another device: the kernel answers "File exists" to a correct
    file, so the repair must roll back, leaving the file and the unit as they were."""
    lab = start_appliance(tmp_path, faults={"service_ip_range": "10.64.0.1/23"})
    try:
        lab.sim.appliance_run(["ip", "route", "add", "local", "10.64.1.0/24", "dev", "frontend", "table", "local"],
                              check=True)
        before = appliance_file(lab, ANYIP_FILE)
        with pytest.raises(ApplianceError) as failed:
            carry_out(lab)
        sentence = str(failed.value)
        assert "File exists" in sentence and "backup" in sentence and "put back" in sentence
        assert "it is now failed, as before" in sentence
        assert appliance_file(lab, ANYIP_FILE) == before
    finally:
        lab.sim.stop()


# --- a lost SSH session: never "nothing had been changed" when something was ------------------------

@pytest.mark.slow
def test_a_session_lost_after_the_file_was_replaced_is_reconnected_and_rolled_back(tmp_path, secrets_in_env):
    lab = start_appliance(tmp_path, faults={"service_ip_range": "10.64.0.1/23",
                                            "lose_session_at": ["systemctl start anyip-routes.service"]})
    try:
        before = appliance_file(lab, ANYIP_FILE)
        with pytest.raises(ApplianceError) as lost:
            carry_out(lab)
        sentence = str(lost.value)
        assert "the SSH session to 10.64.2.10 was lost while `systemctl start anyip-routes.service` ran" in sentence
        assert "after these steps: anyip-routes.service stopped and its local routes removed; " \
               "/etc/vmware/anyip-routes.cfg replaced by the plan's" in sentence
        assert "reconnected (host key checked) and put the backups back: anyip-routes.service is failed again, as " \
               "before; the backups stay at /etc/vmware/anyip-routes.cfg.tkgs-" in sentence
        assert "Nothing was changed" not in sentence
        assert appliance_file(lab, ANYIP_FILE) == before  # rolled back
    finally:
        lab.sim.stop()


@pytest.mark.slow
def test_a_session_that_cannot_be_reconnected_says_what_state_the_appliance_is_in(tmp_path, secrets_in_env):
    lab = start_appliance(tmp_path, faults={"service_ip_range": "10.64.0.1/23",
                                            "lose_sshd_at": ["systemctl start anyip-routes.service"]})
    try:
        with pytest.raises(ApplianceError) as lost:
            carry_out(lab)
        sentence = str(lost.value)
        assert "It could not be reconnected to put things back (reconnecting to 10.64.2.10 failed 3 times: cannot " \
               "open SSH to root@10.64.2.10:22: the connection was refused" in sentence
        assert "the appliance is now: anyip-routes.service stopped and its local routes removed, /etc/vmware/" \
               "anyip-routes.cfg replaced by the plan's, the backups at /etc/vmware/anyip-routes.cfg.tkgs-" in sentence
        assert "`systemctl stop anyip-routes.service; cp -p /etc/vmware/anyip-routes.cfg.tkgs-" in sentence
        # What was sent, from the ledger: never "nothing was changed" when something was.
        assert "May have changed (rerun without apply to see whether it did): change /etc/vmware/anyip-routes.cfg " \
               "(and anyip-routes.service) (`if [ -e /etc/vmware/anyip-routes.cfg ]" in sentence
        assert "`systemctl stop anyip-routes.service && ip route flush table local dev lo prot...`: done; " \
               "`printf %s '#...`: done; `systemctl start anyip-routes.service` to the appliance 10.64.2.10: sent, " \
               "no answer came)" in sentence
        assert "Nothing was changed" not in sentence
        replaced = lab.sim.appliance_run(["nsenter", "-t", str(lab.sim.guest_pid), "-m", "cat", ANYIP_FILE],
                                         capture_output=True, text=True, check=True).stdout
        assert replaced.endswith("\n10.64.1.0/24\n")  # exactly as the sentence says (its sshd is gone: read it inside)
    finally:
        lab.sim.stop()


@pytest.mark.slow
def test_a_session_lost_while_a_failed_unit_is_started_again_is_reconnected_and_started(tmp_path, secrets_in_env):
    """The restart path (the files are right, the unit failed) loses its session after the stop and the
    table flush: the appliance is left with no rtctl rules or routes unless the repair starts the unit
    again, and the sentence says what was done, never that nothing was."""
    lab = start_appliance(tmp_path, faults={"lose_session_at": ["systemctl start route-tables.service"]})
    try:
        # v0.1.10's own restart fails on a healthy appliance ("File exists": its down keeps the link-scoped
        # routes, tkgs_lib.appliance.releases), leaving the files right and the unit failed.
        lab.sim.in_lab(lambda: repair_run(lab).connect_appliance().run("systemctl restart route-tables.service"))
        with pytest.raises(ApplianceError) as lost:
            carry_out(lab)
        sentence = str(lost.value)
        assert "was lost while `systemctl start route-tables.service` ran" in sentence, sentence
        assert "after these steps: route-tables.service stopped; its routing tables and their rules flushed" in sentence
        assert "reconnected (host key checked) and started route-tables.service again: it is active" in sentence
        assert "`systemctl stop route-tables.service`: done" in sentence and "Nothing was changed" not in sentence
        plan, _, reports = carry_out(lab, apply=False)
        assert plan.is_noop and set(reports["the appliance, checked"]["status"]) == {"ok"}  # rules and routes back
    finally:
        lab.sim.stop()


# --- a range the site dropped -----------------------------------------------------------------------

@pytest.mark.slow
def test_a_range_dropped_from_the_site_is_no_longer_answered_for_after_the_repair_nor_after_a_reboot(tmp_path,
                                                                                                   secrets_in_env):
    """Booted with two ranges, the site then holds one: verify flags the dropped range's line and its local route,
    repair removes the route itself (first) and rewrites the file, and the appliance answers for the plan's range
    alone, also after a reboot."""
    from test_verify_stage import verify_in_lab

    dropped = "10.64.0.128/26"
    lab = start_appliance(tmp_path, appliance_changes={"haproxy.load_balancer_ranges": ["10.64.1.0/24", dropped]})
    stale = f"local route for {dropped} (not a range of the plan)"

    def anyip_routes() -> list[str]:
        shown = lab.sim.appliance_run(["ip", "route", "show", "table", "local", "dev", "lo"], capture_output=True,
                                      text=True, check=True).stdout
        return [line.split()[1] for line in shown.splitlines()
                if line.startswith("local ") and "proto kernel" not in line]

    try:
        assert anyip_routes() == [dropped, "10.64.1.0/24"]
        rows = verify_in_lab(lab)
        assert {name for name, c in rows.items() if c.status != "ok"} == {ANYIP_FILE, stale}
        assert rows[stale].found == f"local {dropped} dev lo"
        plan, outcome, reports = carry_out(lab)
        assert [(s.object, s.action) for s in plan.steps] == [
            (f"local route for {dropped} on the appliance", "change"),
            (f"{ROUTE_TABLES_FILE} (and route-tables.service)", "ok"),
            (f"{ANYIP_FILE} (and anyip-routes.service)", "change")]
        assert len(outcome.ran) == 2 and set(reports["the appliance, checked"]["status"]) == {"ok"}
        assert anyip_routes() == ["10.64.1.0/24"]
        rerun, again, _ = carry_out(lab)
        assert rerun.is_noop and again.ran == []
        lab.sim.reboot()
        assert anyip_routes() == ["10.64.1.0/24"]
        assert {name: c.found for name, c in verify_in_lab(lab).items() if c.status != "ok"} == {}
    finally:
        lab.sim.stop()
