"""The verify stage's checks as pure functions of recorded output: no appliance, no SSH."""

from __future__ import annotations

import json

import yaml

from helpers import variant
from test_appliance_facts import ARTICLE_IP_A
from tkgs_lib.appliance.checks import appliance_checks, gather_appliance_facts
from tkgs_lib.appliance.commands import CommandResult, RecordedRunner
from tkgs_lib.appliance.facts import (ANYIP_FILE, FAILED_UNITS, INTERFACES, INTERFACES_TEXT, RULES, anyip_unit,
                                      config_file, ping, route_tables_file, routes, unit_log)
from tkgs_lib.site import parse_site
from tkgs_lib.site.network import plan_networks

NETWORK = plan_networks(parse_site(yaml.safe_dump(variant())))
MACS = {"management": "00:50:56:8f:ce:26", "workload": "00:50:56:8f:e5:ba", "frontend": "00:50:56:8f:3d:28"}
HEADER = "#\n# Configuration file ...\n#\n"
ARTICLE_LOG = """\
Nov 20 15:30:07 haproxy01.test.corp anyiproutectl.sh[777]: adding route for 10.64.0.1/23
Nov 20 15:30:07 haproxy01.test.corp anyiproutectl.sh[777]: RTNETLINK answers: Invalid argument
"""
NO_JSON = CommandResult(INTERFACES.command, 255, "", 'Option "-j" is unknown, try "ip -help".\n')


def healthy(**changes) -> dict:
    """What a healthy appliance answers (the article's interfaces, its one range, both tables)."""
    outputs = {
        INTERFACES.command: NO_JSON,  # the article's appliance: ip without JSON, so the text form is read
        INTERFACES_TEXT.command: ARTICLE_IP_A,
        FAILED_UNITS.command: "",
        anyip_unit().command: "active\n",
        unit_log("anyip-routes.service").command: "... adding route for 10.64.1.0/24\n",
        config_file(ANYIP_FILE).command: HEADER + "10.64.1.0/24\n",
        routes("local").command: json.dumps([{"type": "local", "dst": "10.64.1.0/24", "dev": "lo", "scope": "host"},
                                             {"type": "local", "dst": "10.64.2.10", "dev": "management"}]),
        route_tables_file().command: (f"2,workload,{MACS['workload']},10.64.8.10/21,10.64.8.1\n"
                                      f"3,frontend,{MACS['frontend']},10.64.0.10/23,10.64.0.1\n"),
        RULES.command: json.dumps([{"priority": 0, "src": "all", "table": "local"},
                                   {"priority": 32764, "src": "10.64.0.10", "srclen": 23, "table": "rtctl_frontend"},
                                   {"priority": 32765, "src": "10.64.8.10", "srclen": 21, "table": "rtctl_workload"}]),
        routes("rtctl_workload").command: json.dumps([{"dst": "default", "gateway": "10.64.8.1", "dev": "workload"}]),
        routes("rtctl_frontend").command: json.dumps([{"dst": "default", "gateway": "10.64.0.1", "dev": "frontend"}]),
    }
    for role, gateway in (("management", "10.64.2.1"), ("workload", "10.64.8.1"), ("frontend", "10.64.0.1")):
        outputs[ping(role, gateway).command] = "1 packets transmitted, 1 received, 0% packet loss, time 0ms\n"
    outputs.update(changes)
    return outputs


def checked(outputs: dict):
    return {c.check: c for c in appliance_checks(NETWORK, gather_appliance_facts(RecordedRunner(outputs), NETWORK))}


def test_a_healthy_appliance_passes_every_check_read_from_the_articles_ip_a():
    rows = checked(healthy())
    assert {name: c.status for name, c in rows.items() if c.status != "ok"} == {}
    assert rows["interface frontend"].found == "10.64.0.10/23, up"
    assert len(rows) == 15


def test_the_articles_fault_names_the_line_and_its_network_address():
    rows = checked(healthy(**{
        FAILED_UNITS.command: "anyip-routes.service loaded failed failed AnyIP Routes\n",
        anyip_unit().command: CommandResult(anyip_unit().command, 3, "failed\n"),
        unit_log("anyip-routes.service").command: ARTICLE_LOG,
        config_file(ANYIP_FILE).command: HEADER + "10.64.0.1/23\n",
        routes("local").command: "[]"}))
    unit = rows["anyip-routes.service"]
    assert unit.status == "failed" and "RTNETLINK answers: Invalid argument' on the line 10.64.0.1/23" in unit.found
    assert "write 10.64.0.0/23 (its network address)" in unit.fix
    assert rows["failed units (systemctl list-units --state failed)"].found == "anyip-routes.service"
    assert rows[ANYIP_FILE].status == "failed" and "missing 10.64.1.0/24" in rows[ANYIP_FILE].fix
    assert rows["local route for 10.64.1.0/24"].found == "missing"


def test_newer_iproute2_words_and_an_overlap_are_recognised_too():
    newer = checked(healthy(**{anyip_unit().command: CommandResult("", 3, "failed\n"), unit_log(
        "anyip-routes.service").command: ARTICLE_LOG.replace("RTNETLINK answers: Invalid argument",
                                                             "Error: Invalid prefix for given prefix length.")}))
    assert "write 10.64.0.0/23" in newer["anyip-routes.service"].fix
    taken = checked(healthy(**{anyip_unit().command: CommandResult("", 3, "failed\n"), unit_log(
        "anyip-routes.service").command: "x: adding route for 10.64.1.0/24\nx: RTNETLINK answers: File exists\n"}))
    assert "'File exists' on the line 10.64.1.0/24" in taken["anyip-routes.service"].found
    assert "already exists on another device" in taken["anyip-routes.service"].fix


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
    assert "MAC 00:50:56:8f:3d:28 of the workload line belongs to interface frontend" in table.fix
    assert "the workload line's gateway is 10.64.8.254, the plan's 10.64.8.1" in table.fix
    assert "has 3 fields, not 5" in table.fix and "no line for the frontend network" in table.fix
    assert rows["routing table rtctl_workload"].status == "failed"  # its default route goes via 10.64.8.1


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
