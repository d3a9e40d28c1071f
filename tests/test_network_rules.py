"""Every validation rule of the plan: the article's site passes, each broken variant is caught at its field."""

from __future__ import annotations

import pytest

from helpers import at, findings_for


def test_article_site_has_no_error_and_only_the_broadcast_warning():
    findings = findings_for()
    assert [f for f in findings if f.is_error] == []
    (warning,) = findings
    assert warning.severity == "warning"
    assert warning.path == "haproxy.load_balancer_ranges[0]"
    assert "10.64.1.255" in warning.message and "broadcast" in warning.message
    assert "Workload Management" in warning.fix


# Rule 1: a network is written as its network address.
def test_network_with_host_bits_is_an_error_with_the_network_address_as_fix():
    (f,) = at(findings_for({"networks.management.cidr": "10.64.2.10/23"}), "networks.management.cidr")
    assert "host bits" in f.message
    assert "10.64.2.0/23" in f.fix


@pytest.mark.parametrize("cidr, words", [
    ("10.64.2.0", "no prefix"),
    ("10.64.2.0/33", "not a prefix"),
    ("10.64.2/23", "not an IPv4 address"),
    ("10.64.300.0/23", "0-255"),
    ("fd00::/64", "IPv6"),
    ("10.64.2.0/31", "no room"),
])
def test_malformed_networks_name_the_field(cidr, words):
    (f,) = at(findings_for({"networks.management.cidr": cidr}), "networks.management.cidr")
    assert words in f.message


# Rule 2: gateways inside their network, not its network or broadcast address.
@pytest.mark.parametrize("gateway, words", [
    ("10.64.4.1", "outside the frontend network"),
    ("10.64.0.0", "network address"),
    ("10.64.1.255", "broadcast address"),
])
def test_gateway_rules(gateway, words):
    (f,) = at(findings_for({"networks.frontend.gateway": gateway}), "networks.frontend.gateway")
    assert words in f.message


# Rule 3: appliance addresses.
def test_appliance_address_outside_its_network():
    (f,) = at(findings_for({"haproxy.workload_ip": "10.64.2.20/21"}), "haproxy.workload_ip")
    assert "outside the workload network 10.64.8.0/21" in f.message


def test_appliance_address_with_the_wrong_prefix_says_which_to_write():
    (f,) = at(findings_for({"haproxy.management_ip": "10.64.2.10/24"}), "haproxy.management_ip")
    assert "/24" in f.message and f.fix == "write 10.64.2.10/23."


def test_bare_appliance_address_takes_the_networks_prefix():
    from tkgs_lib.site.layout import network_layout
    from tkgs_lib.site import parse_site
    from helpers import variant
    import yaml

    site = parse_site(yaml.safe_dump(variant({"haproxy.management_ip": "10.64.2.10"})))
    plan = network_layout(site)
    assert not [f for f in plan.findings if f.is_error]
    assert str(plan.networks["management"].appliance) == "10.64.2.10/23"


@pytest.mark.parametrize("address, words", [
    ("10.64.2.0/23", "network address"),
    ("10.64.3.255/23", "broadcast address"),
    ("10.64.2.1/23", "management gateway"),
])
def test_appliance_address_must_not_be_network_broadcast_or_gateway(address, words):
    (f,) = at(findings_for({"haproxy.management_ip": address}), "haproxy.management_ip")
    assert words in f.message


# Rule 4: networks do not overlap, except workload == frontend.
def test_overlapping_networks():
    findings = findings_for({"networks.frontend.cidr": "10.64.8.0/22", "networks.frontend.gateway": "10.64.8.1",
                             "haproxy.frontend_ip": "10.64.8.11/22", "haproxy.load_balancer_ranges": ["10.64.9.0/24"]})
    (f,) = at(findings, "networks.frontend.cidr")
    assert "overlaps the workload network 10.64.8.0/21" in f.message


def test_workload_and_frontend_may_be_the_very_same_network():
    findings = findings_for({
        "networks.frontend": {"vlan": 27, "portgroup": "tkgs-workload", "cidr": "10.64.8.0/21", "gateway": "10.64.8.1"},
        "haproxy.frontend_ip": "10.64.8.11/21",
        "haproxy.load_balancer_ranges": ["10.64.14.0/24"],
        "networks.workload.ranges": ["10.64.8.50-10.64.13.255"],
    })
    assert [f for f in findings if f.is_error] == []


def test_on_a_shared_network_the_range_rules_still_apply():
    findings = findings_for({
        "networks.frontend": {"vlan": 27, "portgroup": "tkgs-workload", "cidr": "10.64.8.0/21", "gateway": "10.64.8.1"},
        "haproxy.frontend_ip": "10.64.8.11/21",
        "haproxy.load_balancer_ranges": ["10.64.12.0/24"],  # inside the workload range below
    })
    (f,) = at(findings, "haproxy.load_balancer_ranges[0]")
    assert "overlaps 10.64.8.50-10.64.15.150" in f.message


# Rule 5: workload ranges.
@pytest.mark.parametrize("ranges, index, words", [
    (["10.64.16.1-10.64.16.9"], 0, "not inside the workload network"),
    (["10.64.8.0-10.64.8.9"], 0, "network address"),
    (["10.64.15.200-10.64.15.255"], 0, "broadcast address"),
    (["10.64.8.1-10.64.8.5"], 0, "gateway 10.64.8.1"),
    (["10.64.8.5-10.64.8.20"], 0, "appliance's workload address 10.64.8.10"),
    (["10.64.8.50-10.64.8.99", "10.64.8.90-10.64.8.120"], 1, "overlaps 10.64.8.50-10.64.8.99"),
    (["10.64.8.99-10.64.8.50"], 0, "ends before it starts"),
    (["10.64.8.0/24"], 0, "first-last"),
])
def test_workload_range_rules(ranges, index, words):
    findings = findings_for({"networks.workload.ranges": ranges})
    matching = [f for f in at(findings, f"networks.workload.ranges[{index}]") if words in f.message]
    assert matching, [str(f) for f in findings]


# Rule 6: load-balancer ranges.
def test_the_articles_anyip_failure_host_bits_in_a_load_balancer_range():
    f, *more = at(findings_for({"haproxy.load_balancer_ranges": ["10.64.0.1/23"]}), "haproxy.load_balancer_ranges[0]")
    assert "host bits" in f.message and "RTNETLINK answers: Invalid argument" in f.message
    # Not the network the address lies in (the plan refuses it, below): the free block of it the article meant.
    assert f.fix.startswith("write 10.64.1.0/24: 10.64.0.0/23, the network that 10.64.0.1 lies in, is refused")
    assert f.suggested == ("10.64.1.0/24",)
    # Even written right, the whole frontend network would hold its gateway and the appliance.
    assert {"frontend gateway 10.64.0.1", "frontend address 10.64.0.10"} <= {
        m for g in more for m in ("frontend gateway 10.64.0.1", "frontend address 10.64.0.10") if m in g.message}


def test_first_last_load_balancer_range_lists_exact_blocks_to_write():
    findings = findings_for({"haproxy.load_balancer_ranges": ["10.64.1.1-10.64.1.254"]})
    (f,) = at(findings, "haproxy.load_balancer_ranges[0]")
    assert "not one CIDR block" in f.message
    assert "14 blocks 10.64.1.1/32, 10.64.1.2/31, 10.64.1.4/30" in f.message
    assert "10.64.1.128/26, 10.64.1.192/27" in f.message
    assert f.fix.startswith("write those blocks as separate ranges: 10.64.1.1/32, 10.64.1.2/31")
    assert len(f.suggested) == 14


def test_first_last_that_is_exactly_one_block_says_which_to_write():
    (f,) = at(findings_for({"haproxy.load_balancer_ranges": ["10.64.1.0-10.64.1.127"]}),
              "haproxy.load_balancer_ranges[0]")
    assert f.fix == "write 10.64.1.0/25."


@pytest.mark.parametrize("block, words", [
    ("10.64.4.0/24", "not inside the frontend network"),
    ("10.64.0.0/28", "frontend gateway 10.64.0.1"),
    ("10.64.0.8/29", "appliance's frontend address 10.64.0.10"),
    ("10.64.1.5", "no prefix length"),
])
def test_load_balancer_range_errors(block, words):
    findings = findings_for({"haproxy.load_balancer_ranges": [block]})
    assert [f for f in at(findings, "haproxy.load_balancer_ranges[0]") if words in f.message], \
        [str(f) for f in findings]


def test_load_balancer_ranges_must_not_overlap_each_other():
    findings = findings_for({"haproxy.load_balancer_ranges": ["10.64.1.0/25", "10.64.1.64/26"]})
    (f,) = at(findings, "haproxy.load_balancer_ranges[1]")
    assert "overlaps 10.64.1.0/25" in f.message


def test_load_balancer_range_holding_the_network_address_is_only_a_warning():
    findings = findings_for({"networks.frontend.gateway": "10.64.1.254", "haproxy.frontend_ip": "10.64.1.10/23",
                             "haproxy.load_balancer_ranges": ["10.64.0.0/24"]})
    assert at(findings, "haproxy.load_balancer_ranges[0]") == []
    (w,) = at(findings, "haproxy.load_balancer_ranges[0]", "warning")
    assert "network address" in w.message


def test_under_default_deployment_virtual_ips_live_on_the_workload_network():
    findings = findings_for({"haproxy.deployment": "default"})
    # The frontend range 10.64.1.0/24 is not inside the workload network.
    (f,) = at(findings, "haproxy.load_balancer_ranges[0]")
    assert "not inside the workload network" in f.message
    ok = findings_for({"haproxy.deployment": "default", "haproxy.load_balancer_ranges": ["10.64.15.192/26"],
                       "networks.workload.ranges": ["10.64.8.50-10.64.15.150"]}, remove=("networks.frontend",
                                                                                         "haproxy.frontend_ip"))
    assert [f for f in ok if f.is_error] == []


def test_no_load_balancer_range_is_an_error():
    assert at(findings_for({"haproxy.load_balancer_ranges": []}), "haproxy.load_balancer_ranges")


# Rule 7: VLANs and port groups.
@pytest.mark.parametrize("vlan", [-1, 4095])
def test_vlan_out_of_range(vlan):
    assert at(findings_for({"networks.workload.vlan": vlan}), "networks.workload.vlan")


def test_two_networks_must_not_share_a_vlan_or_port_group():
    findings = findings_for({"networks.frontend.vlan": 26, "networks.frontend.portgroup": "tkgs-management"})
    assert "also the management network's VLAN" in at(findings, "networks.frontend.vlan")[0].message
    assert at(findings, "networks.frontend.portgroup")


def test_shared_network_needs_different_appliance_addresses():
    findings = findings_for({
        "networks.frontend": {"vlan": 27, "portgroup": "tkgs-workload", "cidr": "10.64.8.0/21", "gateway": "10.64.8.1"},
        "haproxy.frontend_ip": "10.64.8.10/21",
        "haproxy.load_balancer_ranges": ["10.64.14.0/24"],
        "networks.workload.ranges": ["10.64.8.50-10.64.13.255"],
    })
    (f,) = at(findings, "haproxy.frontend_ip")
    assert "also the appliance's workload address" in f.message


# Rule 8: host name, name servers, ports, deployment.
@pytest.mark.parametrize("name, words", [
    ("haproxy01", "not fully qualified"),
    ("-bad.test.corp", "RFC 1123"),
    ("haproxy_01.test.corp", "RFC 1123"),
])
def test_hostname_must_be_fully_qualified(name, words):
    (f,) = at(findings_for({"haproxy.hostname": name}), "haproxy.hostname")
    assert words in f.message


def test_nameservers_are_ipv4_addresses():
    assert at(findings_for({"haproxy.nameservers": ["10.64.2.1", "dns.test.corp"]}), "haproxy.nameservers[1]")


@pytest.mark.parametrize("port", [0, 65536])
def test_dataplane_port_range(port):
    assert at(findings_for({"haproxy.dataplane_port": port}), "haproxy.dataplane_port")


def test_deployment_must_be_default_or_frontend():
    (f,) = at(findings_for({"haproxy.deployment": "split"}), "haproxy.deployment")
    assert "'default' or 'frontend'" in f.message


def test_default_deployment_reports_frontend_values_as_ignored():
    findings = findings_for({"haproxy.deployment": "default", "haproxy.load_balancer_ranges": ["10.64.15.192/26"]})
    assert at(findings, "networks.frontend", "warning")
    assert at(findings, "haproxy.frontend_ip", "warning")
    assert [f for f in findings if f.is_error] == []


def test_frontend_deployment_requires_the_frontend_network_and_address():
    findings = findings_for(remove=("networks.frontend", "haproxy.frontend_ip"))
    assert at(findings, "networks.frontend")
    findings = findings_for(remove=("haproxy.frontend_ip",))
    assert at(findings, "haproxy.frontend_ip")


# Values that are there but say nothing are errors, not silently skipped.
@pytest.mark.parametrize("dotted, value, path", [
    ("haproxy.load_balancer_ranges", ["-"], "haproxy.load_balancer_ranges[0]"),
    ("haproxy.load_balancer_ranges", [""], "haproxy.load_balancer_ranges[0]"),
    ("haproxy.load_balancer_ranges", ["10.64.1.0-"], "haproxy.load_balancer_ranges[0]"),
    ("networks.workload.ranges", [""], "networks.workload.ranges[0]"),
    ("networks.workload.ranges", ["10.64.8.50-"], "networks.workload.ranges[0]"),
    ("networks.workload.ranges", [" - "], "networks.workload.ranges[0]"),
    ("haproxy.nameservers", ["10.64.2.1", ""], "haproxy.nameservers[1]"),
])
def test_empty_parts_of_ranges_and_lists_are_errors(dotted, value, path):
    assert at(findings_for({dotted: value}), path)


@pytest.mark.parametrize("dotted, value", [
    ("haproxy.load_balancer_ranges", ["10.64.1.0/024"]),  # iproute2 would read the prefix as octal 20
    ("networks.management.cidr", "10.64.2.0/٢٣"),  # Arabic-Indic digits are not ASCII digits
    ("networks.management.gateway", "10.64.2.١"),
    ("haproxy.management_ip", "10.64.2.10/"),
    ("haproxy.load_balancer_ranges", ["10.064.1.0/24"]),
])
def test_only_plain_ascii_decimal_forms_pass(dotted, value):
    path = dotted + ("[0]" if isinstance(value, list) else "")
    assert at(findings_for({dotted: value}), path)


def test_on_a_shared_network_gateway_and_vlan_must_agree():
    findings = findings_for({
        "networks.frontend": {"vlan": 28, "portgroup": "tkgs-frontend", "cidr": "10.64.8.0/21", "gateway": "10.64.8.2"},
        "haproxy.frontend_ip": "10.64.8.11/21",
        "haproxy.load_balancer_ranges": ["10.64.14.0/24"],
        "networks.workload.ranges": ["10.64.8.50-10.64.13.255"],
    })
    assert "VLAN 28, not 27" in at(findings, "networks.frontend.vlan")[0].message
    assert "gateway 10.64.8.2, not 10.64.8.1" in at(findings, "networks.frontend.gateway")[0].message


def test_a_missing_appliance_address_is_reported_once():
    findings = findings_for(remove=("haproxy.management_ip",))
    assert len([f for f in findings if f.path == "haproxy.management_ip"]) == 1


def test_a_load_balancer_block_outside_its_network_is_told_to_use_a_block():
    (f, *_) = at(findings_for({"haproxy.load_balancer_ranges": ["10.64.4.0/24"]}), "haproxy.load_balancer_ranges[0]")
    assert f.fix == "use a block inside 10.64.0.0/23."


def test_each_overlapping_range_is_reported_once_with_a_count_of_the_rest():
    """3,000 aliases of one block: 2,999 findings (one each), not 4.5 million pairs."""
    findings = findings_for({"haproxy.load_balancer_ranges": ["10.64.1.0/24"] * 3000})
    overlaps = [f for f in findings if "overlaps" in f.message]
    assert len(overlaps) == 2999 and len({f.path for f in overlaps}) == 2999
    assert any(f.message.endswith("and 2998 other ranges.") for f in overlaps)


def test_a_load_balancer_range_over_several_workload_ranges_counts_them():
    findings = findings_for({"networks.workload.ranges": ["10.64.12.1-10.64.12.9", "10.64.12.20-10.64.12.29",
                                                           "10.64.12.40-10.64.12.49"],
                             "networks.frontend": None, "haproxy.deployment": "default", "haproxy.frontend_ip": None,
                             "haproxy.load_balancer_ranges": ["10.64.12.0/26"]})
    (f,) = [f for f in at(findings, "haproxy.load_balancer_ranges[0]") if "overlaps" in f.message]
    assert f.message.endswith("and 2 other ranges.")


def test_more_ranges_than_any_appliance_can_use_are_refused_with_the_limit():
    from tkgs_lib.site.network import MAX_RANGES

    (f,) = at(findings_for({"networks.workload.ranges": ["10.64.8.50-10.64.8.60"] * (MAX_RANGES + 1)}),
              "networks.workload.ranges")
    assert f"more than the {MAX_RANGES:,} any appliance can use" in f.message
