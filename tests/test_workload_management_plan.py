"""The workload_management block: the Supervisor's settings resolved from the site, and each desk
check caught at its field. The article's site with the block passes; each broken variant fails at
the field that is wrong, saying what to write; a written fix passes."""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from netaddr import IPAddress

from helpers import EXAMPLE_SITE, at, findings_for, variant
from tkgs_lib.site import parse_site
from tkgs_lib.site.layout import network_layout
from tkgs_lib.site.workload_management import SUPERVISOR_ADDRESSES, supervisor_settings

WM = "workload_management"
SHARED_FRONTEND = {  # virtual IPs on the workload network itself, as the address plan's own tests do
    "networks.frontend": {"vlan": 27, "portgroup": "tkgs-workload", "cidr": "10.64.8.0/21", "gateway": "10.64.8.1"},
    "haproxy.frontend_ip": "10.64.8.11/21",
    "haproxy.load_balancer_ranges": ["10.64.14.0/24"],
    "networks.workload.ranges": ["10.64.8.50-10.64.13.255"],
}
WIDE_FRONTEND = {  # a /22 frontend network, so a /24 inside it can hold none of its special addresses
    "networks.frontend.cidr": "10.64.4.0/22", "networks.frontend.gateway": "10.64.4.1",
    "haproxy.frontend_ip": "10.64.4.10/22", "haproxy.load_balancer_ranges": ["10.64.5.0/24"],
}


def planned(changes: dict | None = None, remove: tuple[str, ...] = ()):
    """The variant's network plan: its Supervisor plan and every finding."""
    plan = network_layout(parse_site(yaml.safe_dump(variant(changes, remove)), source=EXAMPLE_SITE))
    return plan.supervisor, plan.findings


def errors(findings) -> list[str]:
    return [str(f) for f in findings if f.is_error]


def _written_start(fix: str) -> str:
    (start,) = re.findall(r"supervisor_start: (\S+) \(", fix)
    return start


# --- the article's site ------------------------------------------------------------------------------

def test_the_articles_site_with_the_block_has_no_error_and_no_new_warning():
    supervisor, findings = planned()
    assert errors(findings) == []
    assert [f.path for f in findings] == ["haproxy.load_balancer_ranges[0]"]  # only the address plan's own
    assert supervisor.findings == ()


def test_the_articles_site_resolves_to_what_an_enable_request_takes():
    s, _ = planned()
    assert (s.cluster, s.size, s.load_balancer_id, s.timeout) == ("Cluster", "tiny", "haproxy", 7200)
    assert (str(s.services_cidr.network), s.services_cidr.prefixlen) == ("10.96.0.0", 23)
    m = s.management
    assert (m.start, m.count, m.subnet_mask, m.gateway) == (IPAddress("10.64.2.20"), SUPERVISOR_ADDRESSES,
                                                            IPAddress("255.255.254.0"), IPAddress("10.64.2.1"))
    assert str(m.last) == "10.64.2.24"
    assert s.workload_network_name == "network-1"
    assert [(str(r.start), r.count) for r in s.workload_ranges] == [("10.64.8.50", 1893)]
    assert (s.workload_gateway, s.workload_subnet_mask) == (IPAddress("10.64.8.1"), IPAddress("255.255.248.0"))
    assert [(str(r.start), r.count) for r in s.virtual_ip_ranges] == [("10.64.1.0", 255)]
    assert (s.dns_servers, s.dns_search_domains, s.ntp_servers) == (("10.64.2.1",), ("test.corp",), ("10.64.2.1",))


def test_a_site_without_the_block_plans_no_supervisor():
    supervisor, findings = planned(remove=(WM,))
    assert supervisor is None
    assert not [f for f in findings if f.path.startswith(WM)]
    site = parse_site(yaml.safe_dump(variant(remove=(WM,))), source=EXAMPLE_SITE)
    (f,) = supervisor_settings(site, network_layout(site)).findings  # asked for anyway: said why
    assert f.path == WM and f.is_error and "add a workload_management block" in f.fix


# --- defaults, and where each value came from ---------------------------------------------------------

def test_defaults_come_from_the_rest_of_the_site_and_say_so():
    s, _ = planned()
    assert s.sources["cluster"] == "vcenter.cluster"
    assert s.sources["workload_ranges"] == "networks.workload.ranges"
    assert s.sources["virtual_ip_ranges"].startswith("haproxy.load_balancer_ranges")
    assert s.sources["management.start"] == f"{WM}.supervisor_start"
    assert (s.sources["management.subnet_mask"], s.sources["management.gateway"]) == (
        "networks.management.cidr", "networks.management.gateway")
    assert [(r.source, r.text) for r in s.workload_ranges] == [("networks.workload.ranges[0]",
                                                                "10.64.8.50-10.64.15.150")]
    assert [(r.source, r.text) for r in s.virtual_ip_ranges] == [("haproxy.load_balancer_ranges[0]", "10.64.1.0/24")]
    rows = {r["what"]: r for r in s.rows()}
    assert rows["cluster"]["value"] == "Cluster" and rows["cluster"]["from"] == "vcenter.cluster"
    assert rows["virtual_ip_ranges[0]"]["value"] == "10.64.1.0 + 255 (10.64.1.0-10.64.1.254)"
    assert rows["virtual_ip_ranges[0]"]["from"].startswith("haproxy.load_balancer_ranges[0] (10.64.1.0/24), less")


def test_written_values_win_over_the_defaults_and_say_so():
    s, findings = planned({f"{WM}.cluster": "Tanzu-Cluster", f"{WM}.workload_ranges": ["10.64.9.0-10.64.9.99"],
                           f"{WM}.virtual_ip_ranges": ["10.64.1.16/28"]})
    assert errors(findings) == []
    assert (s.cluster, s.sources["cluster"]) == ("Tanzu-Cluster", f"{WM}.cluster")
    assert [(str(r.start), r.count, r.source) for r in s.workload_ranges] == [
        ("10.64.9.0", 100, f"{WM}.workload_ranges[0]")]
    assert [(str(r.start), r.count, r.source) for r in s.virtual_ip_ranges] == [
        ("10.64.1.16", 16, f"{WM}.virtual_ip_ranges[0]")]


def test_the_default_virtual_ips_are_the_load_balancer_ranges_less_network_and_broadcast_addresses():
    # Under the default deployment the ranges live on the workload network: 10.64.15.192/26 holds its broadcast.
    s, findings = planned({"haproxy.deployment": "default", "haproxy.load_balancer_ranges": ["10.64.15.192/26"]},
                          remove=("networks.frontend", "haproxy.frontend_ip"))
    assert errors(findings) == []
    assert [(str(r.start), r.count) for r in s.virtual_ip_ranges] == [("10.64.15.192", 63)]
    # A block that holds neither keeps every address.
    s, findings = planned(WIDE_FRONTEND)
    assert errors(findings) == []
    assert [(str(r.start), r.count) for r in s.virtual_ip_ranges] == [("10.64.5.0", 256)]


# --- the count of a range: its size, never a prefix length ------------------------------------------------

def test_a_cidr_block_counts_its_addresses_never_its_prefix_length():
    """The Ansible role sent 10.64.1.0/24 as address 10.64.1.0, count 24."""
    s, findings = planned({**WIDE_FRONTEND, f"{WM}.virtual_ip_ranges": ["10.64.5.0/24"]})
    assert errors(findings) == []
    (r,) = s.virtual_ip_ranges
    assert (str(r.start), r.count, str(r.last)) == ("10.64.5.0", 256, "10.64.5.255")
    assert r.count != 24


def test_a_first_last_range_counts_exactly_its_addresses():
    s, findings = planned({f"{WM}.virtual_ip_ranges": ["10.64.1.10-10.64.1.19", "10.64.1.100"]})
    assert errors(findings) == []
    assert [(str(r.start), r.count) for r in s.virtual_ip_ranges] == [("10.64.1.10", 10), ("10.64.1.100", 1)]


def test_a_block_the_size_of_a_slash_8_costs_no_more_than_a_slash_24():
    """Counted, never enumerated: a /9 of virtual IPs in a /8 frontend network."""
    s, findings = planned({"networks.frontend.cidr": "30.0.0.0/8", "networks.frontend.gateway": "30.0.0.1",
                           "haproxy.frontend_ip": "30.0.0.10/8", "haproxy.load_balancer_ranges": ["30.128.0.0/9"],
                           f"{WM}.virtual_ip_ranges": ["30.128.0.0/10", "30.192.0.0-30.255.255.254"]})
    assert errors(findings) == []
    assert [r.count for r in s.virtual_ip_ranges] == [2 ** 22, 2 ** 22 - 1]


def test_a_prefix_length_written_where_the_last_address_belongs_gets_the_reading_the_plan_accepts():
    """10.64.1.0-24 as the /24 holds the frontend network's broadcast address, which no virtual IP may be:
    the fix names the other reading, and the block in words."""
    (f,) = at(findings_for({f"{WM}.virtual_ip_ranges": ["10.64.1.0-24"]}), f"{WM}.virtual_ip_ranges[0]")
    assert "ends in 24, not an address" in f.message
    assert f.fix == ("write 10.64.1.0-10.64.1.23 for 24 addresses from 10.64.1.0 (if you meant the /24 block of 256 "
                     "addresses, write the block instead).") and f.suggested == ("10.64.1.0-10.64.1.23",)
    (f,) = at(findings_for({f"{WM}.virtual_ip_ranges": ["10.64.1.0-25"]}), f"{WM}.virtual_ip_ranges[0]")
    assert f.suggested == ("10.64.1.0/25",)
    assert f.fix.startswith("write 10.64.1.0/25 for the /25 block of 128 addresses")
    (f,) = at(findings_for({f"{WM}.virtual_ip_ranges": ["10.64.0.0-23"]}), f"{WM}.virtual_ip_ranges[0]")
    assert f.suggested == () and "neither the /23 block of 512 addresses nor 23 addresses from 10.64.0.0 is" in f.fix


def test_a_virtual_ip_block_with_host_bits_says_which_network_to_write():
    found = at(findings_for({f"{WM}.virtual_ip_ranges": ["10.64.1.5/25"]}), f"{WM}.virtual_ip_ranges[0]")
    assert [f.fix for f in found if "host bits" in f.message] == ["write 10.64.1.0/25 (the network that 10.64.1.5 "
                                                                  "lies in)."]


# --- the Supervisor's 5 management addresses --------------------------------------------------------------

@pytest.mark.parametrize("start, words", [
    ("10.64.2.8", "10.64.2.8-10.64.2.12 hold the appliance's management address 10.64.2.10 (haproxy.management_ip)"),
    ("10.64.2.1", "10.64.2.1-10.64.2.5 hold the management gateway 10.64.2.1 (networks.management.gateway)"),
    ("10.64.1.254", "outside the management network 10.64.2.0/23"),
    ("10.64.2.0", "10.64.2.0, the network address of the management network 10.64.2.0/23"),
    ("10.64.3.252", "10.64.3.252-10.64.4.0 run past the end of the management network 10.64.2.0/23: its last usable "
                    "address is 10.64.3.254"),
    ("10.64.3.251", "run past the end"),  # its fifth address would be the broadcast address
])
def test_supervisor_addresses_that_collide_are_caught_and_the_fix_names_a_free_start(start, words):
    (f,) = at(findings_for({f"{WM}.supervisor_start": start}), f"{WM}.supervisor_start")
    assert words in f.message
    fixed = _written_start(f.fix)
    assert errors(findings_for({f"{WM}.supervisor_start": fixed})) == [], f.fix


def test_the_fix_for_supervisor_addresses_is_the_nearest_free_start():
    fix = at(findings_for({f"{WM}.supervisor_start": "10.64.3.252"}), f"{WM}.supervisor_start")[0].fix
    assert fix == "write supervisor_start: 10.64.3.250 (10.64.3.250-10.64.3.254 is free)."
    fix = at(findings_for({f"{WM}.supervisor_start": "10.64.2.8"}), f"{WM}.supervisor_start")[0].fix
    assert _written_start(fix) == "10.64.2.5"  # 10.64.2.5-10.64.2.9, just below the appliance


def test_supervisor_addresses_overlapping_a_virtual_ip_range_are_caught():
    findings = findings_for({f"{WM}.virtual_ip_ranges": ["10.64.1.0/25", "10.64.2.22-10.64.2.40"]})
    (f,) = at(findings, f"{WM}.supervisor_start")
    assert "hold the virtual IP range 10.64.2.22-10.64.2.40 (workload_management.virtual_ip_ranges[1])" in f.message


def test_supervisor_addresses_overlapping_a_dns_server_are_caught():
    (f,) = at(findings_for({f"{WM}.dns_servers": ["10.64.2.22"]}), f"{WM}.supervisor_start")
    assert "the DNS server 10.64.2.22 (workload_management.dns_servers[0])" in f.message


def test_supervisor_start_written_with_a_prefix_says_to_write_the_address_alone():
    (f,) = at(findings_for({f"{WM}.supervisor_start": "10.64.2.20/23"}), f"{WM}.supervisor_start")
    assert f.fix == "write the address alone: 10.64.2.20."


# --- virtual IP ranges ----------------------------------------------------------------------------------

def test_the_blocks_a_fix_adds_to_the_load_balancer_ranges_are_ones_the_address_plan_takes():
    """10.64.0.8-10.64.0.15 holds the appliance's frontend address: 10.64.0.8/29 added to the appliance's
    ranges would make AnyIP answer for it, so the blocks to add leave it out."""
    found = at(findings_for({f"{WM}.virtual_ip_ranges": ["10.64.0.8-10.64.0.15"]}), f"{WM}.virtual_ip_ranges[0]")
    (served,) = [f for f in found if "not inside the appliance's anyip ranges" in f.message]
    blocks = ["10.64.0.8/31", "10.64.0.11/32", "10.64.0.12/30"]
    assert served.fix.startswith("add 10.64.0.8/31, 10.64.0.11/32 and 10.64.0.12/30 to haproxy.load_balancer_ranges")
    added = findings_for({f"{WM}.virtual_ip_ranges": ["10.64.0.8-10.64.0.15"],
                          "haproxy.load_balancer_ranges": ["10.64.1.0/24", *blocks]})
    assert [f for f in added if f.is_error and f.path.startswith("haproxy.load_balancer_ranges")] == []


def test_a_virtual_ip_range_outside_the_anyip_ranges_names_the_address_and_what_to_add():
    """Known field problems: the ranges must lie inside anyip-routes.cfg's, or HAProxy cannot bind."""
    (f,) = at(findings_for({f"{WM}.virtual_ip_ranges": ["10.64.0.200-10.64.1.50"]}), f"{WM}.virtual_ip_ranges[0]")
    assert "not inside the appliance's anyip ranges (haproxy.load_balancer_ranges: 10.64.1.0/24)" in f.message
    assert "10.64.0.200 and 55 more are outside" in f.message
    assert f.fix.startswith("add 10.64.0.200/29, 10.64.0.208/28 and 10.64.0.224/27 to haproxy.load_balancer_ranges")
    # Written as told, it passes.
    fixed = {"haproxy.load_balancer_ranges": ["10.64.0.200/29", "10.64.0.208/28", "10.64.0.224/27", "10.64.1.0/24"],
             f"{WM}.virtual_ip_ranges": ["10.64.0.200-10.64.1.50"]}
    assert errors(findings_for(fixed)) == []


def test_one_address_outside_is_named_alone():
    (f,) = at(findings_for({f"{WM}.virtual_ip_ranges": ["10.64.0.255-10.64.1.9"]}), f"{WM}.virtual_ip_ranges[0]")
    assert "10.64.0.255 is outside" in f.message and f.fix.startswith("add 10.64.0.255/32 to")


def test_a_virtual_ip_range_outside_the_virtual_ip_network_is_told_to_stay_within_the_anyip_ranges():
    found = at(findings_for({f"{WM}.virtual_ip_ranges": ["10.64.4.0/28"]}), f"{WM}.virtual_ip_ranges[0]")
    (f,) = [f for f in found if "anyip" in f.message]
    assert f.fix == "keep the range within 10.64.1.0/24 (the frontend network's virtual IPs)."


def test_a_virtual_ip_range_holding_the_broadcast_address_is_an_error():
    """The address plan lets the appliance's block hold it (a warning); the Supervisor must not hand it out."""
    findings = findings_for({f"{WM}.virtual_ip_ranges": ["10.64.1.0/24"]})
    (f,) = at(findings, f"{WM}.virtual_ip_ranges[0]")
    assert "holds 10.64.1.255, the broadcast address of the frontend network 10.64.0.0/23" in f.message
    assert f.fix == "leave it out: write 10.64.1.0-10.64.1.254."
    assert at(findings, "haproxy.load_balancer_ranges[0]", "warning")  # the appliance's block: still a warning


def test_a_gateway_inside_a_virtual_ip_range_is_an_error_saying_anyip_would_answer_for_it():
    findings = findings_for({"networks.frontend.gateway": "10.64.1.1", f"{WM}.virtual_ip_ranges": ["10.64.1.0/27"]})
    (f,) = at(findings, f"{WM}.virtual_ip_ranges[0]")
    assert "holds the frontend gateway 10.64.1.1 (networks.frontend.gateway)" in f.message
    assert "AnyIP would answer for the gateway" in f.message
    assert f.fix == "leave it out: write 10.64.1.0 and 10.64.1.2-10.64.1.31 as separate ranges."


def test_virtual_ip_ranges_must_not_overlap_each_other():
    (f,) = at(findings_for({f"{WM}.virtual_ip_ranges": ["10.64.1.0/25", "10.64.1.100-10.64.1.110"]}),
              f"{WM}.virtual_ip_ranges[1]")
    assert "overlaps 10.64.1.0/25 (10.64.1.0-10.64.1.127) (workload_management.virtual_ip_ranges[0])" in f.message


def test_written_virtual_ips_overlapping_the_workload_ranges_are_caught_at_the_virtual_ip_range():
    findings = findings_for({**SHARED_FRONTEND, "haproxy.load_balancer_ranges": ["10.64.13.0/24", "10.64.14.0/24"],
                             "networks.workload.ranges": ["10.64.8.50-10.64.13.100"],
                             f"{WM}.virtual_ip_ranges": ["10.64.13.50-10.64.13.200"]})
    (f,) = [f for f in at(findings, f"{WM}.virtual_ip_ranges[0]") if "overlaps" in f.message]
    assert "overlaps the workload range 10.64.8.50-10.64.13.100 (networks.workload.ranges[0])" in f.message


def test_written_workload_ranges_overlapping_the_default_virtual_ips_are_caught_at_the_workload_range():
    findings = findings_for({**SHARED_FRONTEND, f"{WM}.workload_ranges": ["10.64.8.50-10.64.14.20"]})
    (f,) = at(findings, f"{WM}.workload_ranges[0]")
    assert "overlaps the virtual IP range 10.64.14.0/24 (10.64.14.0-10.64.14.255) (haproxy.load_balancer_ranges[0])" \
        in f.message


def test_on_a_shared_network_the_defaults_pass():
    supervisor, findings = planned(SHARED_FRONTEND)
    assert errors(findings) == []
    assert [(str(r.start), r.count) for r in supervisor.virtual_ip_ranges] == [("10.64.14.0", 256)]


def test_many_ranges_are_checked_as_a_sweep_each_reported_once_with_a_count():
    """1,500 workload and 1,501 virtual IP ranges: one finding per virtual IP range, not all pairs."""
    addresses = [str(IPAddress(int(IPAddress("10.64.9.0")) + i)) for i in range(1500)]
    findings = findings_for({**SHARED_FRONTEND, f"{WM}.workload_ranges": addresses,
                             f"{WM}.virtual_ip_ranges": addresses + ["10.64.9.0-10.64.14.219"]})
    overlaps = [f for f in findings if f.path.startswith(f"{WM}.virtual_ip_ranges") and "overlaps the workload" in
                f.message]
    assert len(overlaps) == 1501 and len({f.path for f in overlaps}) == 1501
    assert overlaps[-1].message.endswith("and 1,499 other ranges.")


# --- the services CIDR -------------------------------------------------------------------------------------

def test_a_services_cidr_overlapping_site_networks_names_each_and_a_free_block():
    (f,) = at(findings_for({f"{WM}.services_cidr": "10.64.0.0/20"}), f"{WM}.services_cidr")
    assert "overlaps the management network 10.64.2.0/23 (networks.management.cidr)" in f.message
    assert "the workload network 10.64.8.0/21" in f.message and "the frontend network 10.64.0.0/23" in f.message
    assert f.fix == "use a network that overlaps no site network, e.g. 10.96.0.0/20."
    (f,) = at(findings_for({f"{WM}.services_cidr": "10.64.2.0/23"}), f"{WM}.services_cidr")
    assert f.fix.endswith("e.g. 10.96.0.0/23 (vCenter's default).")


def test_a_services_cidr_overlapping_an_additional_workload_network_is_caught():
    (f,) = at(findings_for({"haproxy.additional_workload_networks": ["10.96.0.0/21"]}), f"{WM}.services_cidr")
    assert "additional workload network 10.96.0.0/21 (haproxy.additional_workload_networks[0])" in f.message
    assert f.fix.endswith("e.g. 172.20.0.0/23.")  # the default overlaps too: not offered


def test_a_services_cidr_with_host_bits_says_which_network_to_write():
    (f,) = at(findings_for({f"{WM}.services_cidr": "10.96.0.5/23"}), f"{WM}.services_cidr")
    assert "host bits" in f.message and "10.96.0.0/23" in f.fix


# --- DNS, NTP, names, size, timeout --------------------------------------------------------------------------

@pytest.mark.parametrize("changes, remove", [({f"{WM}.dns_servers": []}, ()), ({}, (f"{WM}.dns_servers",))])
def test_no_dns_server_is_an_error(changes, remove):
    (f,) = at(findings_for(changes, remove), f"{WM}.dns_servers")
    assert "is required" in f.message and "dns_servers" in f.fix


def test_dns_servers_are_ipv4_addresses():
    (f,) = at(findings_for({f"{WM}.dns_servers": ["10.64.2.1", "dns.test.corp"]}), f"{WM}.dns_servers[1]")
    assert "not an IPv4 address" in f.message


@pytest.mark.parametrize("changes, remove", [({f"{WM}.ntp_servers": []}, ()), ({}, (f"{WM}.ntp_servers",))])
def test_no_ntp_server_is_an_error_for_a_clock_that_drifts_fails_every_certificate(changes, remove):
    findings = findings_for(changes, remove)
    (f,) = at(findings, f"{WM}.ntp_servers")
    assert "is required" in f.message and "a clock that drifts fails every certificate check" in f.fix, f
    assert at(findings, f"{WM}.ntp_servers", "warning") == []


def test_the_workload_dns_servers_default_to_the_management_ones_and_may_differ():
    s, findings = planned()
    assert s.workload_dns_servers == ("10.64.2.1",) and s.sources["workload_dns_servers"] == f"{WM}.dns_servers"
    rows = {r["what"]: r for r in s.rows()}
    assert rows["workload_dns_servers"] == {"what": "workload_dns_servers", "value": "10.64.2.1",
                                            "from": f"{WM}.dns_servers"}
    s, findings = planned({f"{WM}.workload_dns_servers": ["10.64.8.1", "10.64.8.2"]})
    assert errors(findings) == []
    assert (s.dns_servers, s.workload_dns_servers) == (("10.64.2.1",), ("10.64.8.1", "10.64.8.2"))
    assert s.sources["workload_dns_servers"] == f"{WM}.workload_dns_servers"


@pytest.mark.parametrize("written, path, words", [
    ([], f"{WM}.workload_dns_servers", "is empty: the Supervisor's workloads would have no DNS server."),
    (["10.64.8.1", "dns.test.corp"], f"{WM}.workload_dns_servers[1]", "not an IPv4 address"),
])
def test_workload_dns_servers_are_ipv4_addresses(written, path, words):
    (f,) = at(findings_for({f"{WM}.workload_dns_servers": written}), path)
    assert words in f.message


def test_supervisor_addresses_on_a_workload_dns_server_are_caught():
    (f,) = at(findings_for({f"{WM}.workload_dns_servers": ["10.64.2.23"]}), f"{WM}.supervisor_start")
    assert "the workload DNS server 10.64.2.23 (workload_management.workload_dns_servers[0])" in f.message


# --- room on the primary workload network -----------------------------------------------------------------

@pytest.mark.parametrize("changes, path, usable", [
    ({"networks.workload.ranges": ["10.64.8.50-10.64.8.51"]}, "networks.workload.ranges", 2),
    ({f"{WM}.workload_ranges": ["10.64.9.7"]}, f"{WM}.workload_ranges", 1),
    # The gateway in the range is no address for a VM (its own finding says so), so it is not counted.
    ({f"{WM}.workload_ranges": ["10.64.8.1-10.64.8.3"]}, f"{WM}.workload_ranges", 2),
])
def test_a_primary_workload_range_without_the_control_planes_three_addresses_is_an_error(changes, path, usable):
    """The Supervisor's three control-plane VMs take an address each of the primary workload network
    (VMware's vSphere 7 requirements for vSphere networking with HAProxy)."""
    (f,) = [f for f in at(findings_for(changes), path) if "control-plane VMs" in f.message]
    assert f.message.startswith(f"the Supervisor's primary workload network has {usable} usable address"), f.message
    assert "its 3 control-plane VMs take an address each." in f.message
    assert f.fix.startswith("widen the range, or add one, to hold at least 10 addresses: 3 for the control-plane VMs")
    assert f.suggested == ()


def test_a_primary_workload_range_with_little_room_for_clusters_is_a_warning():
    findings = findings_for({f"{WM}.workload_ranges": ["10.64.9.10-10.64.9.14", "10.64.9.12-10.64.9.16"]})
    (w,) = at(findings, f"{WM}.workload_ranges", "warning")  # overlapping ranges count once: 7 addresses
    assert w.message == ("the Supervisor's primary workload network has 7 usable addresses in all: its 3 "
                         "control-plane VMs take an address each, leaving 4 for the nodes of Tanzu Kubernetes "
                         "clusters, fewer than one cluster of 3 control-plane and 3 worker nodes takes while a rolling "
                         "update adds one (7)."), w.message
    assert at(findings_for({f"{WM}.workload_ranges": ["10.64.9.10-10.64.9.19"]}), f"{WM}.workload_ranges",
              "warning") == []  # 10: room for one such cluster


def test_ntp_servers_are_addresses_or_host_names():
    findings = findings_for({f"{WM}.ntp_servers": ["pool.ntp.org", "10.64.2.1", "ntp_1.corp", "10.64.2.300"]})
    assert [f.path for f in findings if f.is_error] == [f"{WM}.ntp_servers[2]", f"{WM}.ntp_servers[3]"]


def test_dns_search_domains_are_domain_names():
    (f,) = at(findings_for({f"{WM}.dns_search_domains": ["test..corp"]}), f"{WM}.dns_search_domains[0]")
    assert "RFC 1123" in f.message


@pytest.mark.parametrize("key", ["workload_network_name", "load_balancer_id"])
@pytest.mark.parametrize("name, suggestion", [
    ("Network_1", "network-1"),
    ("-lb", "lb"),
    ("net.1", "net-1"),
    ("a" * 64, "a" * 63),
    ("", None),
])
def test_names_must_be_dns_labels(key, name, suggestion):
    (f,) = at(findings_for({f"{WM}.{key}": name}), f"{WM}.{key}")
    if not name:  # refused as empty when the site is read, its fix saying what the field takes
        assert "is empty" in f.message and "DNS label" in f.fix
        return
    assert "DNS label" in f.message
    if suggestion:
        assert f.fix == f"write a DNS label, e.g. {suggestion}."


def test_an_unknown_size_is_an_error_listing_the_sizes():
    (f,) = at(findings_for({f"{WM}.size": "huge"}), f"{WM}.size")
    assert f.fix == "write one of: tiny, small, medium, large."


@pytest.mark.parametrize("timeout", [0, 86401])
def test_timeout_out_of_range(timeout):
    assert at(findings_for({f"{WM}.timeout": timeout}), f"{WM}.timeout")


@pytest.mark.parametrize("grace", [-1, 7201])
def test_an_error_grace_beyond_the_timeout_is_refused(grace):
    (f,) = at(findings_for({f"{WM}.error_grace": grace}), f"{WM}.error_grace")
    assert "from 0 to the timeout (7,200)" in f.message


def test_the_block_is_read_as_strictly_as_the_rest():
    (f,) = at(findings_for({f"{WM}.virtual_ip_range": ["10.64.1.0/25"]}), f"{WM}.virtual_ip_range")
    assert "did you mean `virtual_ip_ranges`" in f.fix
    assert at(findings_for({WM: "yes"}), WM)
    assert at(findings_for({WM: {"dns_servers": ["10.64.2.1"]}}), f"{WM}.supervisor_start")
    assert at(findings_for({f"{WM}.timeout": "half an hour"}), f"{WM}.timeout")


def test_written_workload_ranges_follow_the_workload_range_rules():
    findings = findings_for({f"{WM}.workload_ranges": ["10.64.12.0/24", "10.64.8.5-10.64.8.20", "10.64.16.1-10.64.16.9",
                                                       "10.64.8.15-10.64.8.30"]})
    (block,) = at(findings, f"{WM}.workload_ranges[0]")  # one finding, and the plan goes on with its usable addresses
    assert "first-last, not as a CIDR block" in block.message and block.suggested == ("10.64.12.1-10.64.12.254",)
    assert "appliance's workload address 10.64.8.10" in at(findings, f"{WM}.workload_ranges[1]")[0].message
    assert "not inside the workload network" in at(findings, f"{WM}.workload_ranges[2]")[0].message
    assert "overlaps 10.64.8.5-10.64.8.20" in at(findings, f"{WM}.workload_ranges[3]")[0].message
    assert at(findings_for({f"{WM}.workload_ranges": []}), f"{WM}.workload_ranges")


def test_no_workload_range_anywhere_is_an_error_once_workload_management_is_enabled():
    findings = findings_for({"networks.workload.ranges": []})
    assert at(findings, "networks.workload.ranges", "warning")  # the address plan's
    assert at(findings, f"{WM}.workload_ranges")


# --- reaching validate ---------------------------------------------------------------------------------------

def test_validate_reports_the_blocks_findings(tmp_path):
    from tkgs_lib.validate import check_site

    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(variant({f"{WM}.supervisor_start": "10.64.2.8",
                                            f"{WM}.virtual_ip_ranges": ["10.64.1.0/24"]})))
    check = check_site(path)
    assert sorted(f.path for f in check.findings if f.is_error) == [f"{WM}.supervisor_start",
                                                                   f"{WM}.virtual_ip_ranges[0]"]
    assert check.exit_status == 1


# --- no input makes it crash ---------------------------------------------------------------------------------

_ADDRESSY = st.sampled_from(["10.64.1.0/24", "10.64.1.0-24", "10.64.2.20", "10.64.3.254", "0.0.0.0/0", "255.255.255.255",
                             "10.64.1.9-10.64.1.0", "fd00::/64", "10.64.1.0/33", "-", "", " ", "1-2-3", "10.64.1.0/024",
                             "10.064.1.0", "a" * 70, "Network_1", "10.96.0.0/23", "4294967295"])
_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20) | _ADDRESSY,
                       lambda children: st.lists(children, max_size=4), max_leaves=6)


@given(st.dictionaries(st.sampled_from([f"{WM}.{key}" for key in variant()[WM]] + ["haproxy.load_balancer_ranges",
                                                                                    "networks.management.cidr"]),
                       _VALUES, min_size=1, max_size=4))
@settings(max_examples=200, deadline=None)
def test_no_value_in_the_block_makes_planning_crash(changes):
    """Whatever the block holds, planning answers with findings, each at a field."""
    supervisor, findings = planned(changes)
    assert supervisor is not None and all(f.path for f in findings)
