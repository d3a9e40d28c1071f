"""The appliance's releases: what each one's first boot writes and its units do with the networks.

Facts read in haproxytech/vmware-haproxy at each release's tag (never its default branch, which is
older than v0.1.10 for these scripts), from
``ansible/roles/cloudinit/files/var/lib/vmware/ovf-to-cloud-init.sh`` (``writeRouteTableConfig``,
``writeWorkloadNetworks``) and ``ansible/roles/vmware/files/var/lib/vmware/routetablectl.sh``
(``up_routes``, ``down_routes``):

==========  ==================  =======================  ===================  ====================
release     route-tables.cfg    ``ip rule add from``     ``down`` deletes     additional networks
==========  ==================  =======================  ===================  ====================
v0.1.7      the gateway line    for every line           rule, default route  no
v0.1.8      the gateway line    for every line           rule, default route  no
v0.1.9      + link-scoped line  for every line (twice)   rule, default route  no
v0.1.10     + link-scoped line  for every line (twice)   rule, default route  no
v0.2.0      + link-scoped line  for the gateway line     every route, no rule no: yes
==========  ==================  =======================  ===================  ====================

v0.1.7's ``down`` stops (errexit) on a table whose rule or default route is gone; v0.1.8 and later
ignore it. From v0.1.9 a four-field line (no gateway) makes the link-scoped route ``<network> dev
<nic> proto kernel scope link src <address>``; v0.1.7 and v0.1.8 read five fields only. v0.2.0's ``down``
means to delete every rule of a table but calls ``ip call ...``, not an ``ip`` command, so no
rule is ever deleted and each restart adds the same rules again (routing is unchanged). v0.2.0
writes ``network.additional_workload_networks`` one CIDR per line to
``/etc/vmware/workload-networks.cfg`` and adds ``ip rule add to <cidr> lookup rtctl_workload``
for each. v0.1.10's ``down`` (v0.1.9's too: the same script) leaves the link-scoped route in its
table, so its own ``up`` then fails with "File exists" on the four-field line: a plain restart of
route-tables.service fails on a healthy v0.1.10 appliance (a repair cleans the tables itself,
:mod:`tkgs_lib.appliance.repair`). The simulated appliance reads the same scripts on its own
(:mod:`tkgs_simulators.appliance.scripts`); ``tests/test_release_facts.py`` holds the two readings
against each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Optional

__all__ = ["release_for", "Release", "RELEASES", "KNOWN", "ReleaseChoice", "choose_release", "release_named", "ARTICLE_RELEASE",
           "WORKLOAD_NETWORKS_FILE", "TABLE_IDS", "release_of", "ADDITIONAL_WORKLOAD_NETWORKS", "anyip_routes_text",
           "route_tables_text", "lines_text", "release_needed", "release_number", "RELEASES_URL"]

WORKLOAD_NETWORKS_FILE = "/etc/vmware/workload-networks.cfg"
ADDITIONAL_WORKLOAD_NETWORKS = "network.additional_workload_networks"  # the property v0.2.0 adds
# writeNetPostConfig (ovf-to-cloud-init.sh, v0.1.7 to v0.2.0): table 2 for the workload network, 3 for the frontend.
TABLE_IDS = {"workload": "2", "frontend": "3"}


# The comments the appliance's image ships its anyip-routes.cfg and route-tables.cfg with, byte for byte (the
# same at v0.1.7 to v0.2.0: ansible/roles/vmware/files/etc/vmware/*.cfg), below which first boot appends its
# lines (ovf-to-cloud-init.sh, writeAnyipConfig and writeRouteTableConfig: `>>`), so a file written from the
# plan is the one first boot writes. Trailing spaces are the image's own.
ANYIP_HEADER = (
    "#\n"
    "# Configuration file that contains a line-delimited list of CIDR values\n"
    "# that define the network ranges used to bind the load balancer's frontends \n"
    "# to virtual IP addresses.\n"
    "#\n"
    "# * Lines beginning with a comment character, #, are ignored\n"
    "# * This file is used by the anyip-routes service\n"
    "#\n"
)
ROUTE_TABLES_HEADER = (
    "#\n"
    "# Configuration file that contains a line-delimited list of values used to\n"
    "# create route tables on which default gateways are defined. This enables\n"
    "# the use of IP policy to ensure traffic to interfaces that do not use the\n"
    "# default gateway is routed correctly.\n"
    "#\n"
    "# * Lines beginning with a comment character, #, are ignored\n"
    "# * This file is used by the route-tables service\n"
    "# \n"
    "# Each line that contains a value must adhere to the following,\n"
    "# comma-separated format:\n"
    "#\n"
    "#   <TableID>,<TableName>,<MACAddress>,<NetworkCIDR>,<Gateway4>\n"
    "#\n"
    "# The fields in the above format are as follows:\n"
    "#\n"
    "# * TableID      The route table ID. This value should be an integer between\n"
    "#                2-250. Please see /etc/iproute2/rt_tables for a list of the\n"
    "#                route table IDs currently in use, including reserved IDs.\n"
    "#\n"
    "# * TableName    The name of the route table. This value will be appended\n"
    "#                to a constant prefix, used to identify route tables managed\n"
    "#                by the route-tables service.\n"
    "#\n"
    "# * MACAddress   The MAC address of the interface connected to the network\n"
    "#                specified by NetworkCIDR\n"
    "#\n"
    "# * NetworkCIDR  The CIDR of the network to which the interface by MACAddress\n"
    "#                is connected\n"
    "#\n"
    "# * Gateway4     The IPv4 address of the gateway used by the network specified\n"
    "#                by NetworkCIDR\n"
    "#\n"
    "# For example, the following lines are valid values:\n"
    "#\n"
    "#   2,frontend,00:00:00:ab:cd:ef,192.168.1.0/24,192.168.1.1\n"
    "#   3,workload,00:00:00:12:34:56,192.168.2.0/24,192.168.2.1\n"
    "#\n"
    "\n"
)


def lines_text(lines) -> str:
    """Lines as the appliance's scripts read them: each ended by a line break (a last line without
    one is never read by `while read`)."""
    return "".join(f"{line}\n" for line in lines)


def anyip_routes_text(ranges) -> str:
    """``/etc/vmware/anyip-routes.cfg`` as the appliance holds it: its shipped comment, then one range a line."""
    return ANYIP_HEADER + lines_text(ranges)


def route_tables_text(lines) -> str:
    """``/etc/vmware/route-tables.cfg`` as the appliance holds it: its shipped comment, then the lines."""
    return ROUTE_TABLES_HEADER + lines_text(lines)


@dataclass(frozen=True)
class Release:
    """One release's network behaviour, as its scripts at its tag do it."""

    version: str
    link_scoped_lines: bool  # first boot writes <id>,<name>,<mac>,<ip/prefix> too, and up reads four fields
    rule_for_every_line: bool  # up's `ip rule add from <cidr>`: for every line, or for the gateway line only
    down_deletes_rules: bool  # False: v0.2.0's `ip call`, so rules pile up on every restart
    down_deletes_every_route: bool  # every route of a table (v0.2.0), or its default route only
    down_tolerates_missing: bool  # False: v0.1.7's down stops on a table without its rule or default route
    additional_workload_networks: bool  # workload-networks.cfg and its `to <cidr>` rules

    @property
    def number(self) -> tuple[int, ...]:
        return _number(self.version)

    def __str__(self) -> str:
        return self.version

    def rules_per_table(self) -> int:
        """How many identical ``from`` rules one healthy first boot leaves per table."""
        return 2 if self.rule_for_every_line and self.link_scoped_lines else 1

    def route_table_lines(self, table_id: str, name: str, mac: str, address: str, gateway: str) -> list[str]:
        """The lines ``writeRouteTableConfig`` appends for one network: its gateway line, then (from
        v0.1.9) its link-scoped one. ``address`` is the appliance's own, with its prefix."""
        lines = [f"{table_id},{name},{mac},{address},{gateway}"]
        if self.link_scoped_lines:
            lines.append(f"{table_id},{name},{mac},{address}")
        return lines


_V017 = Release("v0.1.7", link_scoped_lines=False, rule_for_every_line=True, down_deletes_rules=True,
                down_deletes_every_route=False, down_tolerates_missing=False, additional_workload_networks=False)
RELEASES: tuple[Release, ...] = (
    _V017,
    replace(_V017, version="v0.1.8", down_tolerates_missing=True),
    replace(_V017, version="v0.1.9", down_tolerates_missing=True, link_scoped_lines=True),
    replace(_V017, version="v0.1.10", down_tolerates_missing=True, link_scoped_lines=True),
    Release("v0.2.0", link_scoped_lines=True, rule_for_every_line=False, down_deletes_rules=False,
            down_deletes_every_route=True, down_tolerates_missing=True, additional_workload_networks=True),
)
KNOWN = tuple(r.version for r in RELEASES)
ARTICLE_RELEASE = "v0.1.10"  # the article deploys haproxy-v0.1.10.ova
# The appliance's README at v0.2.0 (README.md, "Download"): "If running on or upgrading to vSphere 7.0.1 or
# later, you _must_ upgrade to version v0.1.9 or later."
VSPHERE_701 = (7, 0, 1)
FOR_VSPHERE_701 = "v0.1.9"
RELEASES_URL = "https://github.com/haproxytech/vmware-haproxy/releases"


def _number(version: str) -> tuple[int, ...]:
    found = re.findall(r"\d+", version or "")
    return tuple(int(n) for n in found[:3]) if found else ()


def release_needed(vcenter_version: tuple[int, ...]) -> Optional[Release]:
    """The oldest release a vCenter of ``vcenter_version`` (e.g. (7, 0, 3)) takes, when it rules some out."""
    return release_named(FOR_VSPHERE_701) if vcenter_version >= VSPHERE_701 else None


def release_number(choice: "ReleaseChoice") -> tuple[int, ...]:
    """The release as numbers: the version read, else the known release it is judged as."""
    return _number(choice.found) or choice.release.number


def release_named(version: str) -> Release:
    for release in RELEASES:
        if release.version == version:
            return release
    raise KeyError(version)


@dataclass(frozen=True)
class ReleaseChoice:
    """The release the checks judge an appliance by, and how it was chosen."""

    release: Release
    found: str  # the version as read ("v0.1.10", "v0.2.1", "" when nothing said one)
    source: str  # where it was read: "the OVA's descriptor", "the run record"...

    @property
    def known(self) -> bool:
        return self.found == self.release.version

    @property
    def assumption(self) -> str:
        """What a check that depends on the release says, beside what it expects ("" for a known one)."""
        if self.known:
            return ""
        return f"assuming {self.release.version}" + (f" for {self.found}" if self.found else "")

    def warning(self) -> str:
        """The sentence shown when the release is not one the runbook knows ("" when it is)."""
        if self.known:
            return ""
        what = f"release {self.found} ({self.source})" if self.found else f"no release ({self.source})"
        return (f"the appliance's {what} is not one tkgs-runbook knows ({', '.join(KNOWN)}): the checks of its route "
                f"tables assume it behaves as {self.release.version}, the nearest known one.")


def choose_release(version: Optional[str], source: str, declares_additional_workload_networks: bool = False
                   ) -> ReleaseChoice:
    """The known release for ``version`` (as an OVA's ProductSection says it), else the nearest known
    one: the newest known release not newer than it (the oldest, for one older than every known
    release; v0.1.10, the article's, when no version was said). An OVA that declares
    ``network.additional_workload_networks`` is judged as v0.2.0 or later."""
    version = (version or "").strip()
    for release in RELEASES:
        if release.version == version:
            return ReleaseChoice(release, version, source)
    number = _number(version)
    candidates = [r for r in RELEASES if r.additional_workload_networks or not declares_additional_workload_networks]
    if not number:
        nearest = candidates[-1] if declares_additional_workload_networks else release_named(ARTICLE_RELEASE)
    else:
        older = [r for r in candidates if r.number <= number]
        nearest = older[-1] if older else candidates[0]
    return ReleaseChoice(nearest, version, source)


def release_of(descriptor, source: str) -> ReleaseChoice:
    """The release an OVA's descriptor says it is (its ProductSection version, and whether it declares
    v0.2.0's ``network.additional_workload_networks``)."""
    declares = any(p.key == ADDITIONAL_WORKLOAD_NETWORKS for p in descriptor.properties)
    return choose_release(descriptor.version, source, declares)


# What a check or repair given no release judges by: the article's, with the warning that says so.
NO_RELEASE_GIVEN = choose_release("", "no release given")


def release_for(provided: Optional[tuple[str, str, bool]], site_ova) -> ReleaseChoice:
    """The release to judge the appliance by, in this order: the one the deploy stage read (``provided``: its
    version, where it was read, and whether the OVA declares additional workload networks); the site's OVA
    file's descriptor (``site_ova``: its path, or None); v0.1.10, the article's, with a warning that nothing
    said which."""
    if provided is not None:
        version, source, declares = provided
        return choose_release(version, f"the run record: {source}", declares)
    if site_ova is not None and site_ova.is_file():
        from ..errors import OvaError
        from ..ova import Ova

        try:
            return release_of(Ova(site_ova).descriptor(), f"the descriptor of the site's OVA {site_ova.name}")
        except OvaError as exc:
            return choose_release("", f"the site's OVA {site_ova.name} cannot be read: {exc.message}")
    return choose_release("", "no deploy stage recorded it in this run folder, and the site names no OVA file")
