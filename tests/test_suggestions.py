"""Every value a fix names is one the plan accepts (issue 23: the fix for the article's own fault named
10.64.0.0/23, the whole frontend network with its gateway and the appliance, which the plan refuses).

For each finding of the desk plan (the address plan's, the workload_management block's, the site rules')
whose fix names a value, ``Finding.suggested`` holds it; written at the finding's field, that field has
no error left and no error appears elsewhere. Shown over broken sites, one per rule that suggests a
value, and over sites hypothesis breaks at random."""

from __future__ import annotations

import copy
import re
from collections import Counter

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import variant
from tkgs_lib.site import parse_site
from tkgs_lib.site.layout import network_layout

WM = "workload_management"
LB = "haproxy.load_balancer_ranges"

# A broken site per rule that suggests a value: (changes to the article's site, the field, what its fix names;
# None: the plan refuses every value the rule could name there, so the fix says what to write in words).
BROKEN = {
    # the address plan (network.py)
    "article's anyip line": ({LB: ["10.64.0.1/23"]}, f"{LB}[0]", ("10.64.1.0/24",)),
    "host bits, the network free": ({LB: ["10.64.1.5/24"]}, f"{LB}[0]", ("10.64.1.0/24",)),
    "host bits beside another range": ({LB: ["10.64.1.0/25", "10.64.1.77/24"]}, f"{LB}[1]", ("10.64.1.128/25",)),
    "host bits in the middle": ({LB: ["10.64.0.100/23"]}, f"{LB}[0]", ("10.64.1.0/24",)),
    "host bits, Workload Management's virtual IPs in it": (  # not 10.64.1.0/24: they would lose their range
        {LB: ["10.64.0.77/23"], f"{WM}.virtual_ip_ranges": ["10.64.0.64-10.64.0.90"]}, f"{LB}[0]", ("10.64.0.64/26",)),
    "host bits, Workload Management's virtual IPs beside the gateway": (
        {LB: ["10.64.0.77/23"], f"{WM}.virtual_ip_ranges": ["10.64.0.20-10.64.0.40"]}, f"{LB}[0]", None),
    "host bits outside the frontend network": ({LB: ["10.64.8.5/24"]}, f"{LB}[0]", None),
    "host bits in a /32's network": ({LB: ["10.64.1.0/25", "10.64.0.1/31"]}, f"{LB}[1]", None),
    "first-last, one block": ({LB: ["10.64.1.0-10.64.1.255"]}, f"{LB}[0]", ("10.64.1.0/24",)),
    "first-last, several blocks": ({LB: ["10.64.1.10-10.64.1.20"]}, f"{LB}[0]",
                                   ("10.64.1.10/31", "10.64.1.12/30", "10.64.1.16/30", "10.64.1.20/32")),
    "first-last turned round": ({LB: ["10.64.1.255-10.64.1.0"]}, f"{LB}[0]", ("10.64.1.0/24",)),
    "first-last on the gateway": ({LB: ["10.64.0.0-10.64.0.20"]}, f"{LB}[0]", None),
    "no prefix": ({LB: ["10.64.1.7"]}, f"{LB}[0]", ("10.64.1.7/32",)),
    "a network with host bits": ({"networks.frontend.cidr": "10.64.0.5/23"}, "networks.frontend.cidr",
                                 ("10.64.0.0/23",)),
    "a network with host bits overlapping another": ({"networks.frontend.cidr": "10.64.2.5/23"},
                                                     "networks.frontend.cidr", None),
    "a further workload network with host bits": (
        {"haproxy.additional_workload_networks": ["10.64.16.9/21"]}, "haproxy.additional_workload_networks[0]",
        ("10.64.16.0/21",)),
    "a workload range as a block": ({"networks.workload.ranges": ["10.64.12.0/24"]}, "networks.workload.ranges[0]",
                                    ("10.64.12.1-10.64.12.254",)),
    "a workload range as a block holding the gateway": ({"networks.workload.ranges": ["10.64.8.0/24"]},
                                                        "networks.workload.ranges[0]", None),
    "a workload range turned round": ({"networks.workload.ranges": ["10.64.15.150-10.64.8.50"]},
                                      "networks.workload.ranges[0]", ("10.64.8.50-10.64.15.150",)),
    "an appliance prefix": ({"haproxy.frontend_ip": "10.64.0.10/24"}, "haproxy.frontend_ip", ("10.64.0.10/23",)),
    "an appliance prefix that is no number": ({"haproxy.frontend_ip": "10.64.0.10/x"}, "haproxy.frontend_ip",
                                              ("10.64.0.10/23",)),
    "an appliance prefix on the gateway": ({"haproxy.frontend_ip": "10.64.0.1/24"}, "haproxy.frontend_ip", None),
    "a shared subnet's VLAN": ({"networks.frontend.cidr": "10.64.8.0/21", "networks.frontend.gateway": "10.64.8.1",
                                "networks.frontend.vlan": 99, "haproxy.frontend_ip": "10.64.8.11/21",
                                LB: ["10.64.15.160/27"]}, "networks.frontend.vlan", ("27",)),
    "a shared subnet's VLAN that the management network has": (
        {"networks.frontend.cidr": "10.64.8.0/21", "networks.frontend.gateway": "10.64.8.1",
         "networks.frontend.vlan": 99, "networks.management.vlan": 27, "haproxy.frontend_ip": "10.64.8.11/21",
         LB: ["10.64.15.160/27"]}, "networks.frontend.vlan", None),
    "a shared subnet's gateway": ({"networks.frontend.cidr": "10.64.8.0/21", "networks.frontend.gateway": "10.64.8.2",
                                   "networks.frontend.vlan": 27, "haproxy.frontend_ip": "10.64.8.11/21",
                                   LB: ["10.64.15.160/27"]}, "networks.frontend.gateway", ("10.64.8.1",)),
    "a shared subnet's gateway the appliance has": (
        {"networks.frontend.cidr": "10.64.8.0/21", "networks.frontend.gateway": "10.64.8.2",
         "networks.frontend.vlan": 27, "haproxy.frontend_ip": "10.64.8.1/21", LB: ["10.64.15.160/27"]},
        "networks.frontend.gateway", None),
    # the workload_management block (workload_management.py)
    "Supervisor on the appliance": ({f"{WM}.supervisor_start": "10.64.2.8"}, f"{WM}.supervisor_start",
                                    ("10.64.2.5",)),
    "Supervisor past the end": ({f"{WM}.supervisor_start": "10.64.3.252"}, f"{WM}.supervisor_start",
                                ("10.64.3.250",)),
    "Supervisor outside": ({f"{WM}.supervisor_start": "10.64.9.1"}, f"{WM}.supervisor_start", ("10.64.2.2",)),
    "Supervisor with a prefix": ({f"{WM}.supervisor_start": "10.64.2.20/23"}, f"{WM}.supervisor_start",
                                 ("10.64.2.20",)),
    "Supervisor with a prefix, on the gateway": ({f"{WM}.supervisor_start": "10.64.2.1/23"},
                                                 f"{WM}.supervisor_start", ("10.64.2.2",)),
    "services overlapping": ({f"{WM}.services_cidr": "10.64.0.0/16"}, f"{WM}.services_cidr", ("10.96.0.0/16",)),
    "services overlapping vCenter's default": (
        {f"{WM}.services_cidr": "10.96.0.0/23", "haproxy.additional_workload_networks": ["10.96.0.0/16"]},
        f"{WM}.services_cidr", ("172.20.0.0/23",)),
    "services with host bits": ({f"{WM}.services_cidr": "10.96.0.7/23"}, f"{WM}.services_cidr", ("10.96.0.0/23",)),
    "services empty": ({f"{WM}.services_cidr": ""}, f"{WM}.services_cidr", ("10.96.0.0/23",)),
    "virtual IPs with host bits": ({f"{WM}.virtual_ip_ranges": ["10.64.1.5/25"]}, f"{WM}.virtual_ip_ranges[0]",
                                   ("10.64.1.0/25",)),
    "virtual IPs ending in a prefix": ({f"{WM}.virtual_ip_ranges": ["10.64.1.0-25"]}, f"{WM}.virtual_ip_ranges[0]",
                                       ("10.64.1.0/25",)),
    "virtual IPs ending in a count": ({f"{WM}.virtual_ip_ranges": ["10.64.1.0-24"]}, f"{WM}.virtual_ip_ranges[0]",
                                      ("10.64.1.0-10.64.1.23",)),
    "virtual IPs turned round": ({f"{WM}.virtual_ip_ranges": ["10.64.1.254-10.64.1.0"]},
                                 f"{WM}.virtual_ip_ranges[0]", ("10.64.1.0-10.64.1.254",)),
    "virtual IPs holding the broadcast address": ({f"{WM}.virtual_ip_ranges": ["10.64.1.0-10.64.1.255"]},
                                                  f"{WM}.virtual_ip_ranges[0]", ("10.64.1.0-10.64.1.254",)),
    "virtual IPs holding two special addresses": (
        {LB: ["10.64.1.0/24", "10.64.0.128/25"], f"{WM}.virtual_ip_ranges": ["10.64.0.128-10.64.1.255"]},
        f"{WM}.virtual_ip_ranges[0]", ("10.64.0.128-10.64.1.254",)),
    "virtual IPs on the gateway, unserved": ({f"{WM}.virtual_ip_ranges": ["10.64.0.0-10.64.0.20"]},
                                             f"{WM}.virtual_ip_ranges[0]", None),
    "Workload Management's workload range as a block": ({f"{WM}.workload_ranges": ["10.64.12.0/24"]},
                                                        f"{WM}.workload_ranges[0]", ("10.64.12.1-10.64.12.254",)),
    "Workload Management's workload range on the gateway": (
        {f"{WM}.workload_ranges": ["10.64.8.1-10.64.8.40"]}, f"{WM}.workload_ranges[0]",
        ("10.64.8.2-10.64.8.9", "10.64.8.11-10.64.8.40")),
    "a network name that is no DNS label": ({f"{WM}.workload_network_name": "Network_1"},
                                            f"{WM}.workload_network_name", ("network-1",)),
    "a load balancer id that is no DNS label": ({f"{WM}.load_balancer_id": "--"}, f"{WM}.load_balancer_id",
                                                ("haproxy",)),
    "a timeout out of range": ({f"{WM}.timeout": 0}, f"{WM}.timeout", ("7200",)),
    "a timeout out of range below the grace": ({f"{WM}.timeout": 999999, f"{WM}.error_grace": 9000},
                                               f"{WM}.timeout", ("9000",)),
    "an error grace past the timeout": ({f"{WM}.timeout": 100, f"{WM}.error_grace": 500}, f"{WM}.error_grace",
                                        ("100",)),
    "a primary workload range without the control plane's 3 addresses": (
        {"networks.workload.ranges": ["10.64.8.50-10.64.8.51"]}, "networks.workload.ranges", None),
    "Workload Management's workload range without the control plane's 3 addresses": (
        {f"{WM}.workload_ranges": ["10.64.9.7"]}, f"{WM}.workload_ranges", None),
    "no workload DNS server": ({f"{WM}.workload_dns_servers": []}, f"{WM}.workload_dns_servers", None),
    "no NTP server": ({f"{WM}.ntp_servers": []}, f"{WM}.ntp_servers", None),
    # the site rules (rules.py)
    "vCenter as a URL": ({"vcenter.server": "https://vc01.test.corp/ui"}, "vcenter.server", ("vc01.test.corp",)),
}


def _plan(data: dict):
    return network_layout(parse_site(yaml.safe_dump(data)))


def _written(data: dict, path: str, values: tuple[str, ...]) -> tuple[dict, str, int]:
    """``data`` with ``values`` written at field ``path`` (several take the place of a list's item), and
    the list's path and how far its later items moved ("" and 0 for a field that is no list item)."""
    data = copy.deepcopy(data)
    item = re.fullmatch(r"(.+)\[([0-9]+)\]", path)
    dotted = item.group(1) if item else path
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node[key]
    if item:
        index = int(item.group(2))
        node[last][index:index + 1] = list(values)
        return data, dotted, len(values) - 1
    (node[last],) = values
    return data, "", 0


def _moved(path: str, listed: str, index: int, shift: int) -> str:
    """A later item's path as it was before ``shift`` items were added at ``index`` of list ``listed``."""
    item = re.fullmatch(rf"{re.escape(listed)}\[([0-9]+)\](.*)", path) if listed else None
    if item and int(item.group(1)) > index + shift:
        return f"{listed}[{int(item.group(1)) - shift}]{item.group(2)}"
    return path


def _rule(f) -> tuple:
    """Which rule a finding is, at its field: its message's shape (values and what it lists in parentheses
    left out) up to what it names as held or overlapped (lists that change with the ranges around it)."""
    shape = re.sub(r" \([^)]*\)", "", re.sub(r"[0-9][0-9.,:/-]*", "#", f.message))
    return f.path, f.severity, re.split(r" (?:holds?|hold|overlaps) ", shape)[0]


def _errors_by_kind(findings) -> Counter:
    return Counter(_rule(f) for f in findings if f.is_error)


def accepted(data: dict) -> list:
    """Check every suggestion of ``data``'s plan; the findings that made one."""
    plan = _plan(data)
    before = _errors_by_kind(plan.findings)
    suggesting = [f for f in plan.findings if f.suggested]
    for f in suggesting:
        assert all(value in f.fix for value in f.suggested), f  # the fix names what it suggests
        fixed, listed, shift = _written(data, f.path, f.suggested)
        after = _plan(fixed).findings
        index = int(re.fullmatch(r".*\[([0-9]+)\]", f.path).group(1)) if listed else 0
        written = {f.path} | {f"{listed}[{index + k}]" for k in range(shift + 1)} if listed else {f.path}
        left = [g for g in after if g.is_error and g.path in written]
        assert left == [], f"{f}\nwritten {f.suggested}, the plan still finds:\n" + "\n".join(map(str, left))
        moved = Counter({(_moved(p, listed, index, shift), *k): n for (p, *k), n in _errors_by_kind(after).items()})
        new = moved - before
        assert not new, f"{f}\nwritten {f.suggested}, new errors: {sorted(new)}"
    return suggesting


NAMES_A_VALUE = re.compile(r"\b(write|use)( supervisor_start:| VLAN)? [0-9]")


@pytest.mark.parametrize("changes, path, expected", BROKEN.values(), ids=BROKEN.keys())
def test_each_value_a_fix_names_is_accepted_where_it_is_written(changes, path, expected):
    data = variant(changes)
    accepted(data)
    findings = _plan(data).findings
    at_field = [f for f in findings if f.path == path and f.is_error]
    assert at_field, f"no error at {path}"
    named = [f.suggested for f in at_field if f.suggested]
    assert named == ([expected] if expected else []), "\n".join(map(str, at_field))
    for f in findings:  # a fix that names a value to write says so where a program finds it
        assert f.suggested or not NAMES_A_VALUE.search(f.fix), f


def test_the_articles_site_needs_no_suggestion():
    assert accepted(variant()) == []


# --- sites broken at random ----------------------------------------------------------------------------------

def _address(network: str, prefix: int):
    base = int.from_bytes(bytes(map(int, network.split("."))), "big")
    return st.integers(0, 2 ** (32 - prefix) - 1).map(lambda n: ".".join(str((base + n) >> s & 255)
                                                                          for s in (24, 16, 8, 0)))


FRONTEND = _address("10.64.0.0", 22)  # the frontend network and the management one above it
WORKLOAD = _address("10.64.8.0", 21)
MANAGEMENT = _address("10.64.2.0", 23)


def _range(addresses):
    """A range as a person might get it wrong: a block (with host bits or not), first-last (either way
    round), one address, or a prefix length where the last address belongs."""
    return st.one_of(
        st.tuples(addresses, st.integers(20, 32)).map(lambda t: f"{t[0]}/{t[1]}"),
        st.tuples(addresses, addresses).map(lambda t: f"{t[0]}-{t[1]}"),
        addresses,
        st.tuples(addresses, st.integers(1, 32)).map(lambda t: f"{t[0]}-{t[1]}"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lb=st.lists(_range(FRONTEND), min_size=1, max_size=3),
       vips=st.one_of(st.none(), st.lists(_range(FRONTEND), min_size=1, max_size=2)),
       workload=st.lists(_range(WORKLOAD), min_size=1, max_size=2),
       supervisor=st.one_of(MANAGEMENT, MANAGEMENT.map(lambda a: f"{a}/23")),
       frontend_ip=st.tuples(FRONTEND, st.sampled_from(["23", "24", "x", ""])).map(
           lambda t: f"{t[0]}/{t[1]}" if t[1] else t[0]))
def test_every_value_a_fix_names_on_a_site_broken_at_random_is_accepted(lb, vips, workload, supervisor, frontend_ip):
    accepted(variant({LB: lb, f"{WM}.virtual_ip_ranges": vips, "networks.workload.ranges": workload,
                      f"{WM}.supervisor_start": supervisor, "haproxy.frontend_ip": frontend_ip}))
