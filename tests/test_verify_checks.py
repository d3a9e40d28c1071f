"""The verify stage's checks as pure functions of recorded output: no appliance, no SSH."""

from __future__ import annotations

import json

import pytest
import yaml

from helpers import variant
from test_appliance_facts import ARTICLE_IP_A
from tkgs_lib.appliance.checks import appliance_checks, gather_appliance_facts
from tkgs_lib.appliance.commands import CommandResult, RecordedRunner
from tkgs_lib.appliance.facts import (ANYIP_FILE, FAILED_UNITS, INTERFACES, INTERFACES_TEXT, RULES, anyip_unit,
                                      config_file, ping, route_tables_file, routes, unit_log, unit_state)
from tkgs_lib.appliance.releases import WORKLOAD_NETWORKS_FILE, choose_release
from tkgs_lib.site import parse_site
from tkgs_lib.site.layout import network_layout

NETWORK = network_layout(parse_site(yaml.safe_dump(variant())))
MACS = {"management": "00:50:56:8f:ce:26", "workload": "00:50:56:8f:e5:ba", "frontend": "00:50:56:8f:3d:28"}
HEADER = "#\n# Configuration file ...\n#\n"
ARTICLE_LOG = """\
Nov 20 15:30:07 haproxy01.test.corp anyiproutectl.sh[777]: adding route for 10.64.0.1/23
Nov 20 15:30:07 haproxy01.test.corp anyiproutectl.sh[777]: RTNETLINK answers: Invalid argument
"""
NO_JSON = CommandResult(INTERFACES.command, 255, "", 'Option "-j" is unknown, try "ip -help".\n')
V0110, V020 = choose_release("v0.1.10", "the test"), choose_release("v0.2.0", "the test")
FURTHER = ["10.64.16.0/21", "10.64.24.0/21"]
NETWORK_V020 = network_layout(parse_site(yaml.safe_dump(variant({"haproxy.additional_workload_networks": FURTHER}))))


def route_tables(release=V0110, **lines) -> str:
    """route-tables.cfg as the release's first boot writes it (v0.1.10 and v0.2.0
    ovf-to-cloud-init.sh, writeRouteTableConfig): per network its gateway line, then its link-scoped one."""
    text = HEADER
    for role, table, address, gateway in (("workload", 2, "10.64.8.10/21", "10.64.8.1"),
                                          ("frontend", 3, "10.64.0.10/23", "10.64.0.1")):
        text += f"{table},{role},{MACS[role]},{address},{gateway}\n"
        if release.release.link_scoped_lines:
            text += f"{table},{role},{MACS[role]},{address}\n"
    return text


# As iproute2 6.1 prints them on the simulated appliance after each release's route-tables.service ran:
# v0.1.10 adds the `from` rule for every line (twice per table), v0.2.0 for the gateway line only, plus its
# `to` rules from workload-networks.cfg; the tables by number (rt_tables of the reader's view may not name them).
def rules(release=V0110, further=()) -> str:
    entries = [{"priority": 0, "src": "all", "table": "local"}]
    times = release.release.rules_per_table()
    priority = 32765
    for cidr in further:
        network, length = cidr.split("/")
        entries.append({"priority": priority, "src": "all", "dst": network, "dstlen": int(length), "table": "2"})
        priority -= 1
    for source, length, table in (("10.64.8.10", 21, "2"), ("10.64.0.10", 23, "3")):
        for _ in range(times):
            entries.append({"priority": priority, "src": source, "srclen": length, "table": table})
            priority -= 1
    entries += [{"priority": 32766, "src": "all", "table": "main"}, {"priority": 32767, "src": "all", "table": "default"}]
    return json.dumps(entries)


def table_routes(role: str, release=V0110) -> str:
    network, address, gateway = {"workload": ("10.64.8.0/21", "10.64.8.10", "10.64.8.1"),
                                 "frontend": ("10.64.0.0/23", "10.64.0.10", "10.64.0.1")}[role]
    held = [{"dst": "default", "gateway": gateway, "dev": role, "protocol": "static", "flags": []}]
    if release.release.link_scoped_lines:
        held.append({"dst": network, "dev": role, "protocol": "kernel", "scope": "link", "prefsrc": address,
                     "flags": []})
    return json.dumps(held)


def healthy(release=V0110, further=(), **changes) -> dict:
    """What a healthy appliance of ``release`` answers (the article's interfaces, its one range, both tables)."""
    outputs = {
        INTERFACES.command: NO_JSON,  # the article's appliance: ip without JSON, so the text form is read
        INTERFACES_TEXT.command: ARTICLE_IP_A,
        FAILED_UNITS.command: "",
        anyip_unit().command: "active\n",
        unit_state("route-tables.service").command: "active\n",
        unit_log("route-tables.service").command: "... Started route-tables.service.\n",
        unit_log("anyip-routes.service").command: "... adding route for 10.64.1.0/24\n",
        config_file(ANYIP_FILE).command: HEADER + "10.64.1.0/24\n",
        routes("local").command: json.dumps([{"type": "local", "dst": "10.64.1.0/24", "dev": "lo", "scope": "host"},
                                             {"type": "local", "dst": "10.64.2.10", "dev": "management"}]),
        route_tables_file().command: route_tables(release),
        RULES.command: rules(release, further),
        routes("2").command: table_routes("workload", release),
        routes("3").command: table_routes("frontend", release),
    }
    if release.release.additional_workload_networks:
        outputs[config_file(WORKLOAD_NETWORKS_FILE, missing_is_empty=True).command] = (
            "".join(f"{n}\n" for n in further) if further else
            CommandResult("", 1, "", "cat: /etc/vmware/workload-networks.cfg: No such file or directory\n"))
    for role, gateway in (("management", "10.64.2.1"), ("workload", "10.64.8.1"), ("frontend", "10.64.0.1")):
        outputs[ping(role, gateway).command] = "1 packets transmitted, 1 received, 0% packet loss, time 0ms\n"
    outputs.update(changes)
    return outputs


def checked(outputs: dict, release=V0110, network=NETWORK):
    facts = gather_appliance_facts(RecordedRunner(outputs), network, release)
    return {c.check: c for c in appliance_checks(network, facts, release)}


def not_ok(rows: dict) -> dict:
    return {name: c.status for name, c in rows.items() if c.status != "ok"}


def test_a_healthy_appliance_passes_every_check_read_from_the_articles_ip_a():
    rows = checked(healthy())
    assert not_ok(rows) == {}
    assert rows["interface frontend"].found == "10.64.0.10/23, up"
    assert rows["appliance release"].found == "v0.1.10 (the test)"
    assert len(rows) == 17
    # v0.1.10 adds the rule once per line: twice per table on a healthy appliance, said and ok
    assert rows["rule for rtctl_workload"].found.startswith("present 2 times (v0.1.10's route-tables.service adds one")
    table = rows["routing table rtctl_workload (2)"]
    assert table.expected == ("default via 10.64.8.1 dev workload proto static; "
                              "10.64.8.0/21 dev workload proto kernel scope link src 10.64.8.10")


def test_each_known_release_is_judged_by_what_its_own_first_boot_makes():
    v018 = choose_release("v0.1.8", "the test")  # one gateway line per network, no link-scoped route
    assert not_ok(checked(healthy(v018), v018)) == {}
    rows = checked(healthy(V020, FURTHER), V020, NETWORK_V020)
    assert not_ok(rows) == {}
    assert rows["rule for rtctl_workload"].found == "present"  # v0.2.0: the gateway line's rule only
    assert rows["/etc/vmware/workload-networks.cfg"].found == "10.64.16.0/21, 10.64.24.0/21"
    assert rows["rule to 10.64.24.0/21"].expected == "to 10.64.24.0/21 lookup rtctl_workload"
    # what one release makes is a fault on another: v0.1.10's file read as v0.1.8 has four-field lines
    wrong = checked(healthy(), v018)
    assert "has 4 fields: v0.1.8 reads only" in wrong["/etc/vmware/route-tables.cfg"].fix


def test_on_v020_identical_rules_piling_up_are_not_a_fault_but_are_said():
    piled = json.loads(rules(V020))
    piled[1:1] = [dict(piled[1], priority=32000), dict(piled[1], priority=31999)]
    rows = checked(healthy(V020, **{RULES.command: json.dumps(piled)}), V020)
    row = rows["rule for rtctl_workload"]
    assert row.status == "ok" and row.found.startswith("present 3 times (identical rules: v0.2.0's")
    assert "each restart adds them again" in row.found


def test_an_unknown_release_is_a_warning_and_the_tables_say_which_they_assume():
    assumed = choose_release("v0.2.1", "the OVA's descriptor")
    rows = checked(healthy(V020), assumed)
    release = rows["appliance release"]
    assert release.status == "warning" and "v0.1.7, v0.1.8, v0.1.9, v0.1.10, v0.2.0" in release.fix
    assert "assume it behaves as v0.2.0, the nearest known one" in release.fix
    assert "(as v0.2.0 writes it (assuming v0.2.0 for v0.2.1))" in rows["/etc/vmware/route-tables.cfg"].expected
    assert not [c for c in rows.values() if c.failed]  # a warning fails nothing


@pytest.mark.parametrize("release", [V0110, V020], ids=str)
def test_a_wrong_mac_a_wrong_gateway_or_a_lost_link_scoped_line_each_fail_the_file_with_the_fix(release):
    good = route_tables(release)
    cases = {
        "MAC 00:50:56:8f:3d:28 of the workload gateway line belongs to interface frontend":
            good.replace(f"2,workload,{MACS['workload']},10.64.8.10/21,10.64.8.1",
                         f"2,workload,{MACS['frontend']},10.64.8.10/21,10.64.8.1"),
        "the workload gateway line's gateway is 10.64.8.254, the plan's 10.64.8.1":
            good.replace("10.64.8.10/21,10.64.8.1", "10.64.8.10/21,10.64.8.254"),
        "no link-scoped line for the frontend network (":
            good.replace(f"3,frontend,{MACS['frontend']},10.64.0.10/23\n", ""),
    }
    for words, text in cases.items():
        row = checked(healthy(release, **{route_tables_file().command: text}), release)["/etc/vmware/route-tables.cfg"]
        assert row.status == "failed" and words in row.fix, (words, row)
        assert "The repair stage rewrites the file from the plan" in row.fix


def test_a_table_without_its_link_scoped_route_fails_naming_what_goes_wrong():
    rows = checked(healthy(**{routes("2").command: table_routes("workload", choose_release("v0.1.8", "x"))}))
    row = rows["routing table rtctl_workload (2)"]
    assert row.status == "failed" and row.found == "default via 10.64.8.1 dev workload proto static"
    assert "the link-scoped route to 10.64.8.0/21 (replies to hosts on the workload network go through" in row.fix


def test_on_v020_a_lost_workload_network_fails_its_file_and_rule_rows_with_the_fix():
    outputs = healthy(V020, FURTHER, **{
        config_file(WORKLOAD_NETWORKS_FILE, missing_is_empty=True).command: "10.64.16.0/21\n",
        RULES.command: rules(V020, FURTHER[:1])})
    rows = checked(outputs, V020, NETWORK_V020)
    assert not_ok(rows) == {"/etc/vmware/workload-networks.cfg": "failed", "rule to 10.64.24.0/21": "failed"}
    assert rows["/etc/vmware/workload-networks.cfg"].fix.startswith("missing 10.64.24.0/21. The repair stage")
    assert "leaves by the management network's default route" in rows["rule to 10.64.24.0/21"].fix


def test_further_workload_networks_on_a_release_without_them_fail_with_the_fix():
    rows = checked(healthy(), V0110, NETWORK_V020)
    row = rows["additional workload networks"]
    assert row.status == "failed" and "deploy the v0.2.0 OVA" in row.fix


def test_lines_are_read_as_the_scripts_read_them():
    """`while IFS= read -r line` keeps white space and never reads text after the last line break."""
    rows = checked(healthy(**{config_file(ANYIP_FILE).command: HEADER + "10.64.1.0/24 \n10.64.9.0/24"}))
    row = rows[ANYIP_FILE]
    assert row.status == "failed" and row.found == "'10.64.1.0/24 '"
    assert "'10.64.9.0/24' has no line break after it, so anyiproutectl.sh never reads it" in row.fix
    spaced = route_tables().replace("10.64.8.10/21,10.64.8.1", "10.64.8.10/21, 10.64.8.1")
    table = checked(healthy(**{route_tables_file().command: spaced}))["/etc/vmware/route-tables.cfg"]
    assert "has white space around a field" in table.fix


def test_the_articles_fault_names_the_line_and_the_plans_own_ranges():
    """Not 10.64.0.0/23, the line's network: that is the whole frontend network, with its gateway and the
    appliance's own address, which the plan refuses and AnyIP would answer for."""
    rows = checked(healthy(**{
        FAILED_UNITS.command: "anyip-routes.service loaded failed failed AnyIP Routes\n",
        anyip_unit().command: CommandResult(anyip_unit().command, 3, "failed\n"),
        unit_log("anyip-routes.service").command: ARTICLE_LOG,
        config_file(ANYIP_FILE).command: HEADER + "10.64.0.1/23\n",
        routes("local").command: "[]"}))
    unit = rows["anyip-routes.service"]
    assert unit.status == "failed" and "RTNETLINK answers: Invalid argument' on the line 10.64.0.1/23" in unit.found
    assert ("write the plan's line, 10.64.1.0/24 (haproxy.load_balancer_ranges), in /etc/vmware/anyip-routes.cfg"
            in unit.fix)
    assert unit.suggested == ("10.64.1.0/24",) and "10.64.0.0/23" not in unit.fix
    assert rows["failed units (systemctl list-units --state failed)"].found == "anyip-routes.service"
    assert rows[ANYIP_FILE].status == "failed" and "missing 10.64.1.0/24" in rows[ANYIP_FILE].fix
    assert rows["local route for 10.64.1.0/24"].found == "missing"


def test_the_lines_a_fix_names_are_the_ones_the_plan_accepts():
    """Written into the file (and served), the suggested lines pass the file's own row and the routes'."""
    plans = [NETWORK, network_layout(parse_site(yaml.safe_dump(variant({
        "haproxy.load_balancer_ranges": ["10.64.1.0/25", "10.64.0.128/26"]}))))]
    for network in plans:
        assert not [f for f in network.findings if f.is_error]
        failed = checked(healthy(**{anyip_unit().command: CommandResult("", 3, "failed\n"),
                                    unit_log("anyip-routes.service").command: ARTICLE_LOG}), network=network)
        suggested = failed["anyip-routes.service"].suggested
        assert suggested == tuple(network.load_balancer_lines)
        served = json.dumps([{"type": "local", "dst": line, "dev": "lo", "scope": "host"} for line in suggested])
        rows = checked(healthy(**{config_file(ANYIP_FILE).command: HEADER + "".join(f"{s}\n" for s in suggested),
                                  routes("local").command: served}), network=network)
        assert not_ok(rows) == {}, rows


# journalctl -u anyip-routes.service after the article's first boot, a hand edit of anyip-routes.cfg to another
# bad line and `systemctl restart` (ip's words as iproute2 6.1 prints them)
TWO_STARTS = "".join(f"Nov 20 {when} haproxy01 {who}: {said}\n" for when, who, said in [
    ("15:30:07", "systemd[1]", "Starting anyip-routes.service..."),
    ("15:30:07", "anyiproutectl.sh[777]", "adding route for 10.64.0.1/23"),
    ("15:30:07", "anyiproutectl.sh[777]", "RTNETLINK answers: Invalid argument"),
    ("15:30:07", "systemd[1]", "anyip-routes.service: Control process exited, code=exited, status=2/INVALIDARGUMENT"),
    ("15:30:07", "anyiproutectl.sh[781]", "route already removed for 10.64.0.1/23"),
    ("15:30:07", "systemd[1]", "anyip-routes.service: Failed with result 'exit-code'."),
    ("15:30:07", "systemd[1]", "Failed to start anyip-routes.service."),
    ("15:41:12", "systemd[1]", "Starting anyip-routes.service..."),
    ("15:41:12", "anyiproutectl.sh[912]", "adding route for 10.64.1.0/33"),
    ("15:41:12", "anyiproutectl.sh[912]", 'Error: any valid prefix is expected rather than "10.64.1.0/33".'),
    ("15:41:12", "systemd[1]", "anyip-routes.service: Control process exited, code=exited, status=1/FAILURE"),
    ("15:41:12", "anyiproutectl.sh[915]", "route already removed for 10.64.1.0/33"),
    ("15:41:12", "systemd[1]", "anyip-routes.service: Failed with result 'exit-code'."),
    ("15:41:12", "systemd[1]", "Failed to start anyip-routes.service.")])


def test_the_last_start_decides_and_an_unknown_error_is_shown_in_the_units_words():
    def unit(log: str):
        return checked(healthy(**{anyip_unit().command: CommandResult("", 3, "failed\n"),
                                  unit_log("anyip-routes.service").command: log}))["anyip-routes.service"]

    later = unit(TWO_STARTS)
    assert later.found == ("failed: 'Error: any valid prefix is expected rather than \"10.64.1.0/33\".' on the line "
                           "10.64.1.0/33")
    assert "10.64.0.1/23" not in later.found + later.fix and later.suggested == ()
    assert later.fix.startswith("read its log (`journalctl -u anyip-routes.service`): its last start failed on the "
                                "line 10.64.1.0/33")
    # the later start got past the line: the earlier failure no longer speaks for the unit
    healed = TWO_STARTS.replace("10.64.1.0/33", "10.64.1.0/24").replace(
        'Error: any valid prefix is expected rather than "10.64.1.0/24".', "bash: /etc/vmware/x: Permission denied")
    assert unit(healed).found == "failed: 'bash: /etc/vmware/x: Permission denied' on the line 10.64.1.0/24"
    # a journal cut by `journalctl -n` before the start's first line still reads
    assert "on the line 10.64.1.0/33" in unit(TWO_STARTS.split("Starting anyip-routes.service...\n")[-1]).found


def test_route_tables_last_start_decides_too():
    earlier = ("x systemd[1]: Starting route-tables.service...\n"
               "x routetablectl.sh[5]: create route with cmd: ip route add table rtctl_workload default via 10.64.8.1\n"
               "x routetablectl.sh[5]: Error: Nexthop has invalid gateway.\n"
               "x systemd[1]: route-tables.service: Control process exited, code=exited, status=2/INVALIDARGUMENT\n")
    later = ("x systemd[1]: Starting route-tables.service...\n"
             "x routetablectl.sh[9]: create new route table id=2 name=rtctl_workload\n"
             "x systemd[1]: route-tables.service: Control process exited, code=exited, status=1/FAILURE\n")
    rows = checked(healthy(**{unit_state("route-tables.service").command: CommandResult("", 3, "failed\n"),
                              unit_log("route-tables.service").command: earlier + later}))
    assert rows["route-tables.service"].found == "failed"


def test_newer_iproute2_words_and_an_overlap_are_recognised_too():
    newer = checked(healthy(**{anyip_unit().command: CommandResult("", 3, "failed\n"), unit_log(
        "anyip-routes.service").command: ARTICLE_LOG.replace("RTNETLINK answers: Invalid argument",
                                                             "Error: Invalid prefix for given prefix length.")}))
    assert "write the plan's line, 10.64.1.0/24" in newer["anyip-routes.service"].fix
    taken = checked(healthy(**{anyip_unit().command: CommandResult("", 3, "failed\n"), unit_log(
        "anyip-routes.service").command: "x: adding route for 10.64.1.0/24\nx: RTNETLINK answers: File exists\n"}))
    assert "'File exists' on the line 10.64.1.0/24" in taken["anyip-routes.service"].found
    assert "already exists on another device" in taken["anyip-routes.service"].fix


# `ip -j route show table local` on an appliance booted with two ranges after the site dropped 10.64.3.0/24 (iproute2
# 6.1): anyip's routes on lo carry no protocol; the kernel's, for lo and for each interface's address, "kernel".
DROPPED_RANGE = json.dumps([
    {"type": "local", "dst": "10.64.1.0/24", "dev": "lo", "scope": "host", "flags": []},
    {"type": "local", "dst": "10.64.3.0/24", "dev": "lo", "scope": "host", "flags": []},
    {"type": "local", "dst": "10.64.0.10", "dev": "frontend", "protocol": "kernel", "scope": "host",
     "prefsrc": "10.64.0.10", "flags": []},
    {"type": "broadcast", "dst": "10.64.1.255", "dev": "frontend", "protocol": "kernel", "scope": "link",
     "prefsrc": "10.64.0.10", "flags": []},
    {"type": "local", "dst": "127.0.0.0/8", "dev": "lo", "protocol": "kernel", "scope": "host", "prefsrc": "127.0.0.1",
     "flags": []},
    {"type": "local", "dst": "127.0.0.1", "dev": "lo", "protocol": "kernel", "scope": "host", "prefsrc": "127.0.0.1",
     "flags": []}])


def test_a_local_route_for_a_range_the_plan_does_not_hold_is_flagged():
    """The file already the plan's, the route of the dropped range left on lo (anyiproutectl.sh's down removes only
    the file's lines, and its grep -q under pipefail can miss those): the appliance answers for it."""
    rows = checked(healthy(**{routes("local").command: DROPPED_RANGE}))
    assert not_ok(rows) == {"local route for 10.64.3.0/24 (not a range of the plan)": "failed"}
    stale = rows["local route for 10.64.3.0/24 (not a range of the plan)"]
    assert stale.found == "local 10.64.3.0/24 dev lo" and stale.unit == ""  # no unit's restart removes it
    assert stale.expected == "none outside the plan's ranges (10.64.1.0/24, haproxy.load_balancer_ranges)"
    assert stale.fix.startswith("the appliance answers for every address of 10.64.3.0/24, which the site's "
                                "haproxy.load_balancer_ranges no longer holds")
    assert stale.fix.endswith("the repair stage removes it (`ip route del table local 10.64.3.0/24 dev lo`).")
    # A block inside a range of the plan is the plan's (a /25 of its /24), whoever added it.
    inside = json.dumps([{"type": "local", "dst": "10.64.1.0/24", "dev": "lo"},
                         {"type": "local", "dst": "10.64.1.128/25", "dev": "lo"}])
    assert not_ok(checked(healthy(**{routes("local").command: inside}))) == {}


def test_a_wrong_address_and_a_missing_nic_are_named():
    text = ARTICLE_IP_A.replace("10.64.8.10/21", "10.64.8.11/21").split("4: frontend")[0]
    rows = checked(healthy(**{INTERFACES_TEXT.command: text}))
    assert rows["interface workload"].status == "failed" and rows["interface workload"].found == "10.64.8.11/21, up"
    assert "another network.workload_ip" in rows["interface workload"].fix
    assert rows["interface frontend"].found == "no interface named frontend"
    assert "default option (2 NICs)" in rows["interface frontend"].fix
    assert rows["gateway 10.64.0.1 from frontend"].status == "not checked"


def test_route_tables_are_checked_line_by_line_against_the_plan_and_the_nics():
    rows = checked(healthy(**{route_tables_file().command: (
        f"2,workload,{MACS['frontend']},10.64.8.10/21,10.64.8.254\n3,frontend,{MACS['frontend']}\n")}))
    table = rows["/etc/vmware/route-tables.cfg"]
    assert table.status == "failed"
    assert "MAC 00:50:56:8f:3d:28 of the workload gateway line belongs to interface frontend" in table.fix
    assert "the workload gateway line's gateway is 10.64.8.254, the plan's 10.64.8.1" in table.fix
    assert "has 3 fields, not 4 or 5" in table.fix and "no gateway line for the frontend network" in table.fix


def test_a_missing_rule_and_a_silent_gateway_fail_with_their_fix():
    rows = checked(healthy(**{RULES.command: "[]", ping("frontend", "10.64.0.1").command: CommandResult(
        "", 1, "1 packets transmitted, 0 received, 100% packet loss\n")}))
    assert rows["rule for rtctl_workload"].found == "missing"
    gateway = rows["gateway 10.64.0.1 from frontend"]
    assert gateway.status == "failed" and "tkgs-frontend port group's VLAN (28)" in gateway.fix


def test_a_fact_that_cannot_be_read_is_not_checked_rather_than_failed():
    rows = checked(healthy(**{config_file(ANYIP_FILE).command: CommandResult(
        "", 1, "", "cat: /etc/vmware/anyip-routes.cfg: No such file or directory\n")}))
    row = rows[ANYIP_FILE]
    assert row.status == "not checked" and "No such file or directory" in row.found


def test_a_ping_that_cannot_run_is_reported_as_such_with_its_reason_not_as_no_answer():
    rows = checked(healthy(**{ping("workload", "10.64.8.1").command: CommandResult(
        "", 2, "", "ping: SO_BINDTODEVICE workload: Operation not permitted\n")}))
    row = rows["gateway 10.64.8.1 from workload"]
    assert row.status == "not checked" and "Operation not permitted" in row.found
    assert "VLAN" not in row.fix and row.found != "no answer"
