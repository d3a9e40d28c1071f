"""What the plan looks like: subnet summary, allocation table, anyip-routes.cfg and a picture."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
from netaddr import IPAddress

from .network import NetworkPlan, usable_addresses

# The header the appliance writes above the ranges (as the article shows the file).
ANYIP_HEADER = """\
#
# Configuration file that contains a line-delimited list of CIDR values
# that define the network ranges used to bind the load balancer's frontends
# to virtual IP addresses.
#
# * Lines beginning with a comment character, #, are ignored
# * This file is used by the anyip-routes service
#
"""


def subnet_summary(plan: NetworkPlan) -> pd.DataFrame:
    """One row per network: VLAN, port group, addresses, and what the plan allocates in it."""
    allocations = plan.allocations()
    rows = []
    for role, net in plan.networks.items():
        n = net.network
        mine = [a for a in allocations if a.role == role]
        ranges = [a for a in mine if a.kind.endswith("range")]
        allocated = ", ".join(
            [f"{a.kind} {a.first}" for a in mine if not a.kind.endswith("range")]
            + [f"{a.kind} {a.first}-{a.last} ({a.count:,})" for a in ranges])
        rows.append({
            "network": role,
            "VLAN": net.vlan,
            "port group": net.portgroup,
            "CIDR": str(n) if n is not None else "",
            "netmask": str(n.netmask) if n is not None else "",
            "prefix": f"/{n.prefixlen}" if n is not None else "",
            "gateway": str(net.gateway) if net.gateway is not None else "",
            "appliance": str(net.appliance) if net.appliance is not None else "",
            "usable": usable_addresses(n) if n is not None else None,
            "first usable": str(IPAddress(n.first + 1)) if n is not None else "",
            "last usable": str(IPAddress(n.last - 1)) if n is not None else "",
            "allocated": allocated,
        })
    return pd.DataFrame(rows)


def allocation_table(plan: NetworkPlan) -> pd.DataFrame:
    """Every reserved address and range with first, last, count and network, in address order."""
    rows = [{"what": a.kind, "field": a.path, "first": str(a.first), "last": str(a.last), "count": a.count,
             "network": a.role or "(outside every network)"} for a in plan.allocations()]
    return pd.DataFrame(rows, columns=["what", "field", "first", "last", "count", "network"])


def anyip_routes_cfg(plan: NetworkPlan) -> str:
    """/etc/vmware/anyip-routes.cfg exactly as the appliance will write it: each range verbatim."""
    return ANYIP_HEADER + "".join(f"{line}\n" for line in plan.load_balancer_lines)


_COLOURS = {"workload range": "#4c9be8", "load-balancer range": "#f28e2b",
            "gateway": "#d62728", "appliance address": "#2ca02c"}


def draw_address_space(plan: NetworkPlan, path: Optional[str | Path] = None):
    """One bar per network, its ranges and reserved addresses drawn to scale. Saves a PNG if asked."""
    import matplotlib.pyplot as plt  # imported here: the tables should not pay for matplotlib

    nets = [(role, n) for role, n in plan.networks.items() if n.network is not None]
    fig, axes = plt.subplots(max(len(nets), 1), 1, figsize=(11, 1.9 * max(len(nets), 1) + 0.6), squeeze=False)
    allocations = plan.allocations()
    for ax, (role, net) in zip(axes[:, 0], nets):
        n = net.network
        size = n.size
        ax.barh(0, size, height=0.6, color="#eeeeee", edgecolor="#888888")
        for a in (a for a in allocations if a.role == role):
            start = int(a.first) - n.first
            if a.kind.endswith("range"):
                ax.barh(0, a.count, left=start, height=0.6, color=_COLOURS[a.kind], alpha=0.85)
                ax.text(start + a.count / 2, 0, f"{a.first}\n-{a.last}", ha="center", va="center", fontsize=7)
            else:
                # Gateways are labelled above the bar, appliance addresses below, so that the two
                # (usually a few addresses apart) never overprint each other.
                above = a.kind == "gateway"
                ax.plot([start, start], [-0.3, 0.3], color=_COLOURS[a.kind], linewidth=2)
                ax.annotate(f"{a.kind} {a.first}", (start, 0.3 if above else -0.3), xytext=(3, 3 if above else -3),
                            textcoords="offset points", fontsize=7, color=_COLOURS[a.kind],
                            va="bottom" if above else "top")
        ax.set_xlim(0, size)
        ax.set_ylim(-0.75, 0.75)
        ax.set_yticks([])
        ticks = [0, size // 2, size - 1]
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(IPAddress(n.first + t)) for t in ticks], fontsize=7)
        ax.set_title(f"{role}: {n}  VLAN {net.vlan}  {usable_addresses(n):,} usable", fontsize=9, loc="left")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _COLOURS.values()]
    fig.legend(handles, list(_COLOURS), loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
