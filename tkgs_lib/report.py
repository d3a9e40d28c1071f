"""What the plan looks like: subnet summary, allocation table, anyip-routes.cfg and a picture."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from netaddr import IPAddress

from .findings import errors
from .network import Allocation, NetworkPlan, usable_addresses
from .tables import Table

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
ANYIP_FILE = "anyip-routes.cfg"


def _shared_title(plan: NetworkPlan, role: str) -> str:
    return "workload and frontend" if role == "workload" and plan.shared_workload_frontend else role


def _drawn_networks(plan: NetworkPlan):
    """(role, network) of each distinct network: a frontend that is the workload network is drawn once."""
    return [(role, net) for role, net in plan.networks.items()
            if net.network is not None and not (role == "frontend" and plan.shared_workload_frontend)]


def subnet_summary(plan: NetworkPlan) -> Table:
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
    return Table(rows, empty="The site names no network.")


ALLOCATION_COLUMNS = ["what", "field", "as written", "first", "last", "count", "network"]


def allocation_table(plan: NetworkPlan) -> Table:
    """Every reserved address and range, as the site writes it, with first, last, count and network,
    in address order."""
    rows = [{"what": a.kind, "field": a.path, "as written": a.text, "first": str(a.first), "last": str(a.last),
             "count": a.count, "network": a.role or "(outside every network)"} for a in plan.allocations()]
    return Table(rows, ALLOCATION_COLUMNS, empty="The site reserves no address or range.")


def anyip_routes_cfg(plan: NetworkPlan) -> str:
    """/etc/vmware/anyip-routes.cfg exactly as the appliance would write it: each range verbatim."""
    return ANYIP_HEADER + "".join(f"{line}\n" for line in plan.load_balancer_lines)


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
            return f"/etc/vmware/{ANYIP_FILE} as the appliance will write it{saved}"
        return (f"/etc/vmware/{ANYIP_FILE} NOT written: the plan has errors, and the appliance must not get "
                f"these ranges until they are fixed")

    def _repr_markdown_(self) -> str:
        return f"**{self.heading}**\n\n```\n{self.text}```\n"

    def __str__(self) -> str:
        return f"{self.heading}\n{self.text}"


def preview_anyip_routes(plan: NetworkPlan, folder: Optional[str | Path] = None) -> AnyipPreview:
    """The anyip-routes.cfg of ``plan``, saved in ``folder`` only when the plan has no error; a file
    left there by an earlier good plan is removed, so no folder holds a file this plan rejects."""
    bad_paths = {f.path for f in errors(plan.findings)}
    lines = plan.load_balancer_lines
    rejected = tuple(line for i, line in enumerate(lines) if f"haproxy.load_balancer_ranges[{i}]" in bad_paths)
    target = Path(folder) / ANYIP_FILE if folder is not None else None
    if not bad_paths:
        if target is not None:
            target.write_text(anyip_routes_cfg(plan))
        return AnyipPreview(anyip_routes_cfg(plan), withheld=False, written=target)
    if target is not None:
        target.unlink(missing_ok=True)
    marked = "".join(f"{line}    <- rejected: see the findings for haproxy.load_balancer_ranges[{i}]\n"
                     if line in rejected else f"{line}\n" for i, line in enumerate(lines))
    return AnyipPreview(marked or "(no load-balancer range)\n", withheld=True, rejected=rejected)


# --- the picture ---------------------------------------------------------------------------------

_COLOURS = {"workload range": "#4c9be8", "load-balancer range": "#f28e2b",
            "gateway": "#d62728", "appliance address": "#2ca02c"}
_ERROR = "#b00020"
_BAR = 0.3  # half the bar's height, in data units
_LANE = 0.27  # distance between label lanes above and below the bar
_LANES = 3  # lanes on each side


def draw_address_space(plan: NetworkPlan, path: Optional[str | Path] = None):
    """One bar per network, its ranges and reserved addresses drawn to scale; what is in error is
    hatched in red and labelled so. Labels never overprint each other. Saves a PNG if asked."""
    import matplotlib.pyplot as plt  # imported here: the tables should not pay for matplotlib
    from matplotlib.patches import Patch

    nets = _drawn_networks(plan)
    in_error = {f.path for f in errors(plan.findings)}
    allocations = plan.allocations()
    fig, axes = plt.subplots(max(len(nets), 1), 1, figsize=(11, 2.3 * max(len(nets), 1) + 0.9), squeeze=False)
    for ax, (role, net) in zip(axes[:, 0], nets):
        n = net.network
        ax.set_xlim(0, n.size)
        ax.set_ylim(-_BAR - _LANE * _LANES - 0.05, _BAR + _LANE * _LANES + 0.05)
        ax.barh(0, n.size, height=2 * _BAR, color="#eeeeee", edgecolor="#888888")
        ax.set_yticks([])
        ticks = [0, n.size // 2, n.size - 1]
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(IPAddress(n.first + t)) for t in ticks], fontsize=7)
        for tick, align in zip(ax.get_xticklabels(), ("left", "center", "right")):
            tick.set_horizontalalignment(align)
        ax.set_title(f"{_shared_title(plan, role)}: {n}  VLAN {net.vlan}  {usable_addresses(n):,} usable",
                     fontsize=9, loc="left")
    handles = [Patch(color=c) for c in _COLOURS.values()] + [Patch(facecolor="white", edgecolor=_ERROR, hatch="////")]
    fig.legend(handles, [*_COLOURS, "in error"], loc="lower center", ncol=5, fontsize=8, frameon=False)
    outside = [a for a in allocations if not a.role]
    if outside:
        fig.text(0.01, 0.045, "Not drawn, outside every network: " + "; ".join(f"{a.span} ({a.path})" for a in outside),
                 fontsize=7, color=_ERROR)
    # The layout first: labels are measured where they will finally stand.
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    renderer = fig.canvas.get_renderer()
    for ax, (role, net) in zip(axes[:, 0], nets):
        placer = _LabelPlacer(ax, renderer)
        drawn = set()
        for a in (a for a in allocations if a.role == role):
            if (a.kind, a.first, a.last) in drawn:  # a shared network's one gateway, drawn once
                continue
            drawn.add((a.kind, a.first, a.last))
            bad = a.path in in_error
            colour = _COLOURS[a.kind]
            start = int(a.first) - net.network.first
            label = ("ERROR " if bad else "") + (a.span if a.is_range else f"{a.kind} {a.first}")
            if a.is_range:
                ax.barh(0, a.count, left=start, height=2 * _BAR, color=colour, alpha=0.85,
                        hatch="////" if bad else None, edgecolor=_ERROR if bad else colour,
                        linewidth=2 if bad else 0)
                # An error's label stands outside its bar, where the hatching cannot hide it.
                placer.place(label, start, a.count, _ERROR if bad else "black", inside=not bad)
            else:
                ax.plot([start, start], [-_BAR, _BAR], color=_ERROR if bad else colour, linewidth=2)
                placer.place(label, start, 0, _ERROR if bad else colour)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


class _LabelPlacer:
    """Puts each label where it overprints no other: inside its range when it fits there, else in the
    nearest free lane above or below the bar, measured with the figure's own renderer."""

    def __init__(self, ax, renderer) -> None:
        self.ax, self.renderer = ax, renderer
        self.taken: list = []  # display-space boxes of the labels placed so far

    def place(self, text: str, start: float, width: float, colour: str, inside: bool = True) -> None:
        ax = self.ax
        if width and inside:  # a range: centred inside it, when it fits and is free
            artist = ax.text(start + width / 2, 0, text, ha="center", va="center", fontsize=7, color=colour)
            box = artist.get_window_extent(self.renderer)
            span = ax.transData.transform([(start, 0), (start + width, 0)])
            if box.x0 >= span[0][0] and box.x1 <= span[1][0] and not self._overlaps(box):
                self.taken.append(box)
                return
            artist.remove()
        right_half = start + width / 2 > ax.get_xlim()[1] / 2
        anchor = start + width if right_half else start
        for level in range(1, _LANES + 1):
            for sign in (1, -1):
                y = sign * (_BAR + _LANE * (level - 0.5))
                artist = ax.text(anchor, y, text, ha="right" if right_half else "left", va="center", fontsize=7,
                                 color=colour)
                box = artist.get_window_extent(self.renderer)
                if not self._overlaps(box):
                    self.taken.append(box)
                    return
                artist.remove()
        # Every lane is full at this address: the last lane, shown rather than dropped.
        self.taken.append(ax.text(anchor, -(_BAR + _LANE * (_LANES - 0.5)), text, ha="left", va="center",
                                  fontsize=7, color=colour).get_window_extent(self.renderer))

    def _overlaps(self, box) -> bool:
        return any(box.overlaps(other) for other in self.taken)
