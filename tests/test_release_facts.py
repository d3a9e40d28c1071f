"""Each appliance release as tkgs-runbook believes it (tkgs_lib/appliance/releases.py, and the checks that
read it) against the simulated appliance's own reading of that release's scripts at its tag
(tkgs_simulators/appliance/scripts, which imports nothing of the product): two readings of the
scripts, compared on what can be observed. First the files first boot writes, byte for byte; then the
kernel's rules and route tables in a booted appliance, after its first boot, after route-tables.service
is stopped (its ``down``) and started again, and after a stop with a table's rule gone. The product's
side is predicted from its facts alone (``route_table_lines``, ``rules_per_table``, ``link_scoped_lines``,
``down_deletes_rules``, ``down_deletes_every_route``, ``down_tolerates_missing``,
``additional_workload_networks``, ``TABLE_IDS``, the text functions); a fact changed on either side
fails a case here. Sites: the article's (3 NICs), its default deployment (2 NICs), and v0.2.0 with two
additional workload networks."""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from appliance_fixtures import appliance_for_site, deployed_properties, require_appliance_simulator
from helpers import variant
from test_appliance_releases import DEFAULT_SITE, FURTHER
from tkgs_lib.appliance.checks import ApplianceFacts, expected_route_tables
from tkgs_lib.appliance.facts import ANYIP_FILE, ROUTE_TABLES_FILE, Interface
from tkgs_lib.appliance.releases import (ARTICLE_RELEASE, KNOWN, TABLE_IDS, WORKLOAD_NETWORKS_FILE, Release,
                                         anyip_routes_text, choose_release, lines_text, release_named,
                                         route_tables_text)
from tkgs_simulators.appliance import ROLES
from tkgs_simulators.appliance import ARTICLE_RELEASE as PLAYED_ARTICLE_RELEASE
from tkgs_simulators.appliance.scripts import PLAYED, played
from tkgs_lib.site import parse_site
from tkgs_lib.site.layout import NetworkLayout, network_layout

SITES = {"frontend site": {}, "default site": DEFAULT_SITE, "further networks": FURTHER}
CASES = [(release, site) for release in KNOWN for site in SITES
         if site != "further networks" or release_named(release).additional_workload_networks]
IDS = [f"{release}-{site.replace(' ', '-')}" for release, site in CASES]
MACS = {"management": "00:50:56:a1:00:01", "workload": "00:50:56:a1:00:02", "frontend": "00:50:56:a1:00:03"}


def site_of(name: str):
    return parse_site(yaml.safe_dump(variant(SITES[name])))


def test_the_same_releases_are_known_and_played():
    assert KNOWN == tuple(PLAYED) and ARTICLE_RELEASE == PLAYED_ARTICLE_RELEASE


# What a simulator may take from the product is tests/test_layers.py's to hold (the imports of every module,
# names included).


# --- the files first boot writes --------------------------------------------------------------------

def product_files(release: str, network: NetworkLayout, nics: dict[str, str]) -> dict[str, str]:
    """The network files as the product believes ``release``'s first boot writes them for the plan."""
    choice = choose_release(release, "the test")
    facts = ApplianceFacts(interfaces={role: Interface(role, mac, ("UP",), "UP", ()) for role, mac in nics.items()})
    files = {ANYIP_FILE: anyip_routes_text(network.load_balancer_lines),
             ROUTE_TABLES_FILE: route_tables_text(expected_route_tables(network, facts, choice))}
    if choice.release.additional_workload_networks and network.additional_workload_networks:
        files[WORKLOAD_NETWORKS_FILE] = lines_text(network.additional_workload_networks)
    return files


def played_files(release: str, properties: dict[str, str], nics: dict[str, str]) -> dict[str, str]:
    """The network files the simulated appliance's first boot writes (the CA files left out)."""
    written = played(release).first_boot(properties, nics).first_boot()
    return {path: text for path, text in written.items() if path.startswith("/etc/vmware/")}


@pytest.mark.parametrize("release, site", CASES, ids=IDS)
def test_first_boot_writes_the_files_the_product_expects_byte_for_byte(release, site):
    deployed = site_of(site)
    properties = deployed_properties(deployed, release)
    nics = {role: MACS[role] for role in ROLES if properties.get(f"network.{role}_ip")}
    assert played_files(release, properties, nics) == product_files(release, network_layout(deployed), nics)


def test_a_users_ca_is_read_back_as_the_product_believes(tmp_path):
    """writeCAfiles (formatCertificate) at every tag against the product's pem_from_property: both give
    back the very PEM files the site named."""
    from appliance_material import write_ca
    from tkgs_lib.appliance.ca import pem_from_property
    from tkgs_simulators.appliance.scripts.ovf_to_cloud_init import CA_CRT, CA_KEY

    cert, key = write_ca(tmp_path)
    deployed = parse_site(yaml.safe_dump(variant({"haproxy.ca_cert_file": str(cert),
                                                  "haproxy.ca_key_file": str(key)})), source=tmp_path / "site.yaml")
    for release in KNOWN:
        properties = deployed_properties(deployed, release)
        written = played(release).first_boot(properties, MACS).first_boot()
        assert written[CA_CRT] == pem_from_property(properties["appliance.ca_cert"]) == cert.read_text()
        assert written[CA_KEY] == pem_from_property(properties["appliance.ca_cert_key"])


# --- the kernel, in a booted appliance ---------------------------------------------------------------

@dataclass
class Routing:
    """The rules and rtctl tables' routes, as ``ip rule`` and ``ip route show table N`` print them
    (outside the appliance's view, so a table is named by its number)."""

    rules: Counter = field(default_factory=Counter)
    tables: dict[str, list[str]] = field(default_factory=dict)  # table id → its routes, sorted

    def without(self, rules: Counter) -> "Routing":
        return Routing(self.rules - rules, dict(self.tables))


def read_routing(sim) -> Routing:
    def shown(*args: str) -> list[str]:
        result = sim.appliance_run(["ip", *args], capture_output=True, text=True)
        return [" ".join(line.split()) for line in result.stdout.splitlines()] if result.returncode == 0 else []

    rules = Counter(line.split(":", 1)[1].strip() for line in shown("rule", "show"))
    for default in ("from all lookup local", "from all lookup main", "from all lookup default"):
        del rules[default]
    return Routing(rules, {table: sorted(shown("route", "show", "table", table)) for table in TABLE_IDS.values()})


def first_boot(rel: Release, network: NetworkLayout, nics: dict[str, str]) -> Routing:
    """As the product believes a healthy first boot of ``rel`` leaves the kernel: per network in
    route-tables.cfg, ``rules_per_table`` identical ``from`` rules, the default route and (with
    link-scoped lines) the link-scoped route; v0.2.0's ``to`` rule per additional workload network."""
    choice = choose_release(rel.version, "the test")
    facts = ApplianceFacts(interfaces={role: Interface(role, mac, ("UP",), "UP", ()) for role, mac in nics.items()})
    routed = {line.split(",")[1] for line in expected_route_tables(network, facts, choice)}
    routing = Routing(tables={table: [] for table in TABLE_IDS.values()})
    for role in sorted(routed):
        planned, table = network.networks[role], TABLE_IDS[role]
        routing.rules[f"from {planned.appliance} lookup {table}"] = rel.rules_per_table()
        routing.tables[table] = sorted([f"default via {planned.gateway} dev {role} proto static"] + (
            [f"{planned.appliance.cidr} dev {role} proto kernel scope link src {planned.appliance.ip}"]
            if rel.link_scoped_lines else []))
    if rel.additional_workload_networks:
        for cidr in network.additional_workload_networks:
            routing.rules[f"from all to {cidr} lookup {TABLE_IDS['workload']}"] = 1
    return routing


def stopped(rel: Release, before: Routing) -> Routing:
    """route-tables.service's ``down`` on ``before``: the tables' rules (unless it deletes none) and their
    default routes, or every route."""
    rules = Counter() if rel.down_deletes_rules else before.rules
    tables = {table: [] if rel.down_deletes_every_route else [r for r in routes if not r.startswith("default ")]
              for table, routes in before.tables.items()}
    return Routing(Counter(rules), tables)


def started_again(rel: Release, first: Routing) -> tuple[str, Routing]:
    """``up`` after ``down`` adds first boot's routes and rules again: a route ``down`` left makes it fail
    ("File exists"), and then its ``down`` runs again (ExecStopPost); rules ``down`` kept pile up."""
    down = stopped(rel, first)
    if any(down.tables.values()):
        return "failed", stopped(rel, down)
    return "active", Routing(down.rules + first.rules, dict(first.tables))


def stopped_without_rule(rel: Release, first: Routing, gone: Counter) -> Routing:
    """``down`` with the workload table's rules already gone: a release that does not tolerate it stops at
    that table, the first in rt_tables, so nothing is removed."""
    before = first.without(gone)
    return stopped(rel, before) if rel.down_tolerates_missing else before


def in_guest(sim, *argv: str):
    """A command in the appliance's own view (its /etc, its systemctl), as its console would run it."""
    return sim.appliance_run(["nsenter", "-t", str(sim.guest_pid), "-m", *argv], capture_output=True, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("release, site", CASES, ids=IDS)
def test_the_kernel_holds_what_the_product_believes_after_boot_stop_and_start(release, site):
    require_appliance_simulator()
    rel, network = release_named(release), network_layout(site_of(site))
    sim = appliance_for_site(site_of(site), release=release)
    sim.start()
    try:
        first = first_boot(rel, network, sim.macs)
        assert read_routing(sim) == first, "after first boot"
        in_guest(sim, "systemctl", "stop", "route-tables.service")
        assert read_routing(sim) == stopped(rel, first), "after route-tables.service's stop"
        state, routing = started_again(rel, first)
        in_guest(sim, "systemctl", "start", "route-tables.service")
        assert (in_guest(sim, "systemctl", "is-active", "route-tables.service").stdout.strip(),
                read_routing(sim)) == (state, routing), "after its start"
        sim.reboot()
        assert read_routing(sim) == first, "after a reboot"
        workload = f"from {network.networks['workload'].appliance} lookup {TABLE_IDS['workload']}"
        gone = Counter({workload: first.rules[workload]})
        for _ in range(gone[workload]):
            assert sim.appliance_run(["ip", "rule", "del", *workload.split()], capture_output=True).returncode == 0
        in_guest(sim, "systemctl", "stop", "route-tables.service")
        assert read_routing(sim) == stopped_without_rule(rel, first, gone), "after a stop without the workload rule"
    finally:
        sim.stop()


def test_the_played_anyiproutectl_tests_a_route_as_the_script_does_and_can_read_a_present_one_as_absent(
        tmp_path, monkeypatch):
    """anyiproutectl.sh (v0.1.7 to v0.2.0) tests each route with `ip route show table local | grep -qF ...` under
    `set -o pipefail`: grep leaves at its first match, ip dies of SIGPIPE on its next write, and the pipeline fails.
    With a local table many times what a pipe holds, ip is still writing when grep leaves, every time: down then leaves
    the route ("route already removed") and up fails on it ("File exists"), as the script does on an appliance."""
    from tkgs_simulators.appliance.netns import add_netns, del_netns, ip, new_name, run_in_netns
    from tkgs_simulators.appliance.scripts import anyiproutectl
    from tkgs_simulators.appliance.scripts.shell import ScriptExit, Shell

    require_appliance_simulator()
    config = tmp_path / "anyip-routes.cfg"
    config.write_text("10.64.1.0/24\n")
    monkeypatch.setattr(anyiproutectl, "CONFIG_FILE", config)
    namespace = new_name("app")
    add_netns(namespace)
    try:
        ip("link", "set", "lo", "up", netns=namespace)
        ip("route", "add", "local", "10.64.1.0/24", "dev", "lo", netns=namespace)
        # some 700 KiB as ip shows them: ten times what a pipe holds, so ip is still writing when grep leaves
        others = "".join(f"route add local 10.96.{i // 250}.{i % 250} dev lo\n" for i in range(20000))
        (tmp_path / "batch").write_text(others)
        ip("-batch", str(tmp_path / "batch"), netns=namespace)
        said: list[str] = []
        script = anyiproutectl.AnyIpRouteCtl(Shell("anyiproutectl.sh", said.append))

        def down_then_up() -> tuple[bool, str]:
            present = script.present("10.64.1.0/24")
            script.down_routes()
            left = "local 10.64.1.0/24 dev lo" in ip("route", "show", "table", "local").stdout
            try:
                script.up_routes()
            except ScriptExit as exc:
                return present, f"{left} {exc.status}"
            return present, f"{left} 0"

        assert run_in_netns(namespace, down_then_up) == (False, "True 2")  # read absent; left; up exited 2
        assert said == ["route already removed for 10.64.1.0/24", "adding route for 10.64.1.0/24",
                        "RTNETLINK answers: File exists"]
    finally:
        del_netns(namespace)
