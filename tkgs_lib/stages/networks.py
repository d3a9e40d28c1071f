"""Stage 1, plan the networks: the site's address plan checked, and shown before anything is touched.

This stage reads only the site: its facts are the site's own, its plan has no step to apply, only
the findings of every rule (:mod:`tkgs_lib.site.network`). What it reports: the subnet summary,
every reserved address and range (the Supervisor's too, with a ``workload_management`` block: its
management addresses, virtual IP ranges and services range), the ``anyip-routes.cfg`` the appliance
will write (withheld while the plan has errors), and a picture of each network (:mod:`tkgs_lib.site.picture`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from netaddr import IPAddress

from ..appliance.releases import anyip_routes_text
from ..findings import errors
from ..site.network import SUPERVISOR_SERVICES, NetworkLayout, usable_addresses
from . import stage_named

if TYPE_CHECKING:  # `validate` shows the plan as text only: it never needs a Table (pandas) or a Plan
    from ..planning import Plan
    from ..display.tables import Table

STAGE = stage_named("networks")

ANYIP_PREVIEW_FILE = "anyip-routes.cfg"  # the file the appliance will hold, written in the run folder


SUBNET_EMPTY = "The site names no network."


def subnet_rows(plan: NetworkLayout) -> list[dict]:
    """One row per network: VLAN, port group, addresses, and what the plan allocates in it."""
    allocations = plan.allocations()
    rows = []
    for role, net in plan.networks.items():
        n = net.network
        mine = [a for a in allocations if a.role == role]
        allocated = ", ".join([f"{a.kind} {a.first}" for a in mine if not a.is_range]
                              + [f"{a.kind} {a.span}, {a.count:,}" for a in mine if a.is_range])
        rows.append({
            "network": role,
            "VLAN": net.vlan,
            "port group": net.portgroup,
            "CIDR": str(n) if n is not None else "",
            "netmask": str(n.netmask) if n is not None else "",
            "gateway": str(net.gateway) if net.gateway is not None else "",
            "appliance": str(net.appliance) if net.appliance is not None else "",
            "usable": usable_addresses(n) if n is not None else None,
            "first usable": str(IPAddress(n.first + 1)) if n is not None else "",
            "last usable": str(IPAddress(n.last - 1)) if n is not None else "",
            "allocated": allocated,
        })
    return rows


def subnet_summary(plan: NetworkLayout) -> Table:
    """The subnet summary as a table (:func:`subnet_rows`)."""
    from ..display.tables import Table

    return Table(subnet_rows(plan), empty=SUBNET_EMPTY)


ALLOCATION_COLUMNS = ["what", "field", "as written", "first", "last", "count", "network"]
ALLOCATION_EMPTY = "The site reserves no address or range."


def allocation_rows(plan: NetworkLayout) -> list[dict]:
    """Every reserved address and range, as the site writes it, with first, last, count and network,
    in address order; the Supervisor's too, when the site has a workload_management block."""
    return [{"what": a.kind, "field": a.path, "as written": a.text or "null (the default)", "first": str(a.first),
             "last": str(a.last), "count": a.count, "network": _network_of(a)} for a in plan.allocations()]


def _network_of(a) -> str:
    if a.role:
        return a.role
    if a.kind == SUPERVISOR_SERVICES:  # where it belongs: apart from every site network
        return "(none: Kubernetes services)"
    return "(outside every network)"


def allocation_table(plan: NetworkLayout) -> Table:
    """The allocations as a table (:func:`allocation_rows`)."""
    from ..display.tables import Table

    return Table(allocation_rows(plan), ALLOCATION_COLUMNS, empty=ALLOCATION_EMPTY)


def anyip_routes_cfg(plan: NetworkLayout) -> str:
    """/etc/vmware/anyip-routes.cfg exactly as the appliance would write it: each range verbatim."""
    return anyip_routes_text(plan.load_balancer_lines)


@dataclass(frozen=True)
class AnyipPreview:
    """anyip-routes.cfg as the plan stage shows it: the file, or why it is withheld.

    A plan with errors is never written as a file, nor shown as what the appliance will write: a
    line the appliance's ``ip route add`` rejects stops anyip-routes.service, and every range after
    it is never served."""

    text: str  # the file, or the ranges with each rejected one marked
    withheld: bool  # the plan has errors: the file is neither written nor called good
    written: Optional[Path] = None  # where it was saved
    rejected: tuple[str, ...] = ()  # the lines in error, verbatim

    @property
    def heading(self) -> str:
        if not self.withheld:
            saved = f" (saved as {self.written})" if self.written is not None else ""
            return f"/etc/vmware/{ANYIP_PREVIEW_FILE} as the appliance will write it{saved}"
        return (f"/etc/vmware/{ANYIP_PREVIEW_FILE} NOT written: the plan has errors, and the appliance must not get "
                f"these ranges until they are fixed")

    def _repr_markdown_(self) -> str:
        return f"**{self.heading}**\n\n```\n{self.text}```\n"

    def __str__(self) -> str:
        return f"{self.heading}\n{self.text}"


def preview_anyip_routes(plan: NetworkLayout, folder: Optional[str | Path] = None) -> AnyipPreview:
    """The anyip-routes.cfg of ``plan``, saved in ``folder`` only when the plan has no error; a file
    left there by an earlier good plan is removed, so no folder holds a file this plan rejects."""
    bad_paths = {f.path for f in errors(plan.findings)}
    lines = plan.load_balancer_lines
    rejected = tuple(line for i, line in enumerate(lines) if f"haproxy.load_balancer_ranges[{i}]" in bad_paths)
    target = Path(folder) / ANYIP_PREVIEW_FILE if folder is not None else None
    if not bad_paths:
        if target is not None:
            target.write_text(anyip_routes_cfg(plan))
        return AnyipPreview(anyip_routes_cfg(plan), withheld=False, written=target)
    if target is not None:
        target.unlink(missing_ok=True)
    marked = "".join(f"{line}    <- rejected: see the findings for haproxy.load_balancer_ranges[{i}]\n"
                     if line in rejected else f"{line}\n" for i, line in enumerate(lines))
    return AnyipPreview(marked or "(no load-balancer range)\n", withheld=True, rejected=rejected)


# --- the stage's three functions ----------------------------------------------------------------

def read_facts(run) -> NetworkLayout:
    """The plan stage reads nothing but the site: its facts are the site's network plan."""
    return run.network


def plan(run, facts: NetworkLayout) -> Plan:
    """Nothing to create or change: the findings of every rule, to be clean before stage 2."""
    from ..planning import Plan

    return Plan("The site", findings=list(facts.findings))  # its errors read "The site has 2 errors; ..."


def reports(run, facts: NetworkLayout) -> dict[str, Table]:
    return {"subnet summary": subnet_summary(facts), "every reserved address and range": allocation_table(facts)}
