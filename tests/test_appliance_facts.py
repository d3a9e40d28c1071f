"""The appliance's facts: commands and pure parsers, tested on recorded output (no appliance)."""

from __future__ import annotations

import pytest

from tkgs_lib.appliance.commands import CommandResult, Fact, RecordedRunner, gather
from tkgs_lib.appliance.facts import FAILED_UNITS, INTERFACES, INTERFACES_TEXT, parse_ip_json, parse_ip_text
from tkgs_lib.errors import ApplianceError, CommandFailed

# The article's own `ip a` on the appliance, as printed there.
ARTICLE_IP_A = """\
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
2: management: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP group default qlen 1000
    link/ether 00:50:56:8f:ce:26 brd ff:ff:ff:ff:ff:ff
    inet 10.64.2.10/23 brd 10.64.3.255 scope global management
       valid_lft forever preferred_lft forever
3: workload: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP group default qlen 1000
    link/ether 00:50:56:8f:e5:ba brd ff:ff:ff:ff:ff:ff
    inet 10.64.8.10/21 brd 10.64.15.255 scope global workload
       valid_lft forever preferred_lft forever
4: frontend: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP group default qlen 1000
    link/ether 00:50:56:8f:3d:28 brd ff:ff:ff:ff:ff:ff
    inet 10.64.0.10/23 brd 10.64.1.255 scope global frontend
       valid_lft forever preferred_lft forever
"""

# `ip -j addr show` from iproute2 6.1 (a veth end renamed as on the appliance, and one that is down).
IP_JSON = (
    '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue",'
    '"operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00",'
    '"broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,'
    '"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295}]},'
    '{"ifindex":7,"link_index":6,"ifname":"management","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],'
    '"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether",'
    '"address":"00:50:56:8F:CE:26","broadcast":"ff:ff:ff:ff:ff:ff","link_netnsid":0,"addr_info":[{"family":"inet",'
    '"local":"10.64.2.10","prefixlen":23,"broadcast":"10.64.3.255","scope":"global","label":"management",'
    '"valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::250:56ff:fe8f:ce26",'
    '"prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]},'
    '{"ifindex":9,"link_index":8,"ifname":"workload","flags":["BROADCAST","MULTICAST"],"mtu":1500,"qdisc":"noop",'
    '"operstate":"DOWN","group":"default","txqlen":1000,"link_type":"ether","address":"00:50:56:8f:e5:ba",'
    '"broadcast":"ff:ff:ff:ff:ff:ff","link_netnsid":0,"addr_info":[]}]')


def test_the_text_parser_reads_the_articles_ip_a():
    interfaces = parse_ip_text(ARTICLE_IP_A)
    assert list(interfaces) == ["lo", "management", "workload", "frontend"]
    management = interfaces["management"]
    assert management.addresses == ("10.64.2.10/23",) and management.mac == "00:50:56:8f:ce:26" and management.up
    assert interfaces["workload"].addresses == ("10.64.8.10/21",)
    assert interfaces["frontend"].addresses == ("10.64.0.10/23",)
    assert interfaces["lo"].up  # state UNKNOWN, as a loopback reports it


def test_the_json_parser_reads_ip_j_addr_and_tells_down_from_up():
    interfaces = parse_ip_json(IP_JSON)
    assert interfaces["management"].addresses == ("10.64.2.10/23",)  # IPv6 left out
    assert interfaces["management"].mac == "00:50:56:8f:ce:26" and interfaces["management"].up
    assert not interfaces["workload"].up and interfaces["workload"].addresses == ()


def test_both_parsers_agree_on_the_same_interface():
    text = parse_ip_text(ARTICLE_IP_A)["management"]
    assert parse_ip_json(IP_JSON)["management"] == text


def test_a_veth_end_is_named_without_its_peer():
    line = "7: management@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default\n"
    assert list(parse_ip_text(line)) == ["management"]


def test_gather_runs_the_facts_command_through_the_runner():
    runner = RecordedRunner({INTERFACES.command: IP_JSON, FAILED_UNITS.command: (
        "anyip-routes.service loaded failed failed AnyIP Routes\n")})
    assert set(gather(runner, INTERFACES)) == {"lo", "management", "workload"}
    assert gather(runner, FAILED_UNITS) == ["anyip-routes.service"]
    assert runner.ran == [INTERFACES.command, FAILED_UNITS.command]
    assert gather(RecordedRunner({FAILED_UNITS.command: ""}), FAILED_UNITS) == []


def test_a_failed_command_is_command_failed_with_its_result():
    failed = CommandResult(INTERFACES.command, 255, "", 'Option "-j" is unknown, try "ip -help".\n')
    with pytest.raises(CommandFailed) as failure:
        gather(RecordedRunner({INTERFACES.command: failed}), INTERFACES)
    assert failure.value.result is failed
    assert str(failure.value) == ('`ip -j addr show` (the interfaces) failed with exit status 255: '
                                  'Option "-j" is unknown, try "ip -help".')
    # That appliance's ip has no JSON: the text form of the same fact reads it.
    assert "frontend" in gather(RecordedRunner({INTERFACES_TEXT.command: ARTICLE_IP_A}), INTERFACES_TEXT)


def test_output_a_parser_cannot_read_is_one_sentence():
    with pytest.raises(ApplianceError, match=r"the output of `ip -j addr show` is not what reading the interfaces"):
        gather(RecordedRunner({INTERFACES.command: "<html>not json</html>"}), INTERFACES)


def test_a_recorded_runner_refuses_a_command_it_has_no_answer_for():
    with pytest.raises(ApplianceError, match="no recorded output for `reboot`"):
        gather(RecordedRunner({}), Fact("a reboot", "reboot", str))


# iputils' arping -D and ping, as they print (iputils 20221126, the output's shape unchanged since 2015).
ARPING_ANSWERED = """\
ARPING 10.64.2.22 from 0.0.0.0 management
Unicast reply from 10.64.2.22 [36:40:AC:54:22:8E]  0.525ms
Sent 1 probes (1 broadcast(s))
Received 1 response(s)
"""
ARPING_SILENT = """\
ARPING 10.64.2.23 from 0.0.0.0 management
Sent 1 probes (1 broadcast(s))
Received 0 response(s)
"""
PING_SILENT = """\
PING 10.64.2.23 (10.64.2.23) from 10.64.2.10 management: 56(84) bytes of data.

--- 10.64.2.23 ping statistics ---
1 packets transmitted, 0 received, 100% packet loss, time 0ms
"""


@pytest.mark.parametrize("output, status, seen", [
    (ARPING_ANSWERED, 1, "10.64.2.22 answered ARP from 36:40:ac:54:22:8e"),  # arping -D: exit 1, a reply came
    (ARPING_SILENT, 0, "10.64.2.22: no answer to ARP"),
    (PING_SILENT, 1, "10.64.2.22: no answer to ping"),  # an appliance without arping
    (PING_SILENT.replace("0 received, 100%", "1 received, 0%"), 0, "10.64.2.22 answered ping"),
])
def test_whether_an_address_is_in_use_is_read_from_arping_or_ping(output, status, seen):
    from tkgs_lib.appliance.facts import address_in_use

    fact = address_in_use("management", "10.64.2.22")
    assert "arping -D -c 1 -w 1 -I management 10.64.2.22" in fact.command
    assert "ping -c 1 -W 1 -I management 10.64.2.22" in fact.command
    assert str(gather(RecordedRunner({fact.command: CommandResult(fact.command, status, output)}), fact)) == seen


def test_an_address_probe_that_cannot_run_or_says_something_else_is_an_error_naming_it():
    from tkgs_lib.appliance.facts import address_in_use

    fact = address_in_use("management", "10.64.2.22")
    with pytest.raises(CommandFailed, match="arping: Device management not available"):
        gather(RecordedRunner({fact.command: CommandResult(fact.command, 2, "", "arping: Device management not "
                                                                               "available.")}), fact)
    with pytest.raises(ApplianceError, match="is not what reading whether 10.64.2.22 answers on management expects"):
        gather(RecordedRunner({fact.command: "something else"}), fact)
