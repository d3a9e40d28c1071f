"""The address-space picture: each network drawn to scale, with its ranges and reserved addresses.

Where a person would rather look than read: a gateway inside a range, a load-balancer block that
swallows the frontend network, two appliance addresses side by side. What is in error is hatched
in red and labelled so; labels are placed so that no two overprint each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from netaddr import IPAddress, IPNetwork

from ..findings import errors
from .network import SUPERVISOR_MANAGEMENT, SUPERVISOR_SERVICES, SUPERVISOR_VIPS, NetworkLayout, usable_addresses

__all__ = ["draw_address_space"]


def _shared_title(plan: NetworkLayout, role: str) -> str:
    return "workload and frontend" if role == "workload" and plan.shared_workload_frontend else role


def _drawn_networks(plan: NetworkLayout):
    """(role, network) of each distinct network: a frontend that is the workload network is drawn once."""
    return [(role, net) for role, net in plan.networks.items()
            if net.network is not None and not (role == "frontend" and plan.shared_workload_frontend)]


_COLOURS = {"workload range": "#4c9be8", "load-balancer range": "#f28e2b",
            "gateway": "#d62728", "appliance address": "#2ca02c"}
# The Supervisor's (with a workload_management block): drawn over the site's own as a thinner band
_SUPERVISOR_COLOURS = {SUPERVISOR_MANAGEMENT: "#9467bd", SUPERVISOR_VIPS: "#e377c2", SUPERVISOR_SERVICES: "#7f7f7f"}
_SUPERVISOR_LABELS = {SUPERVISOR_MANAGEMENT: "Supervisor", SUPERVISOR_VIPS: "Supervisor VIPs",
                      SUPERVISOR_SERVICES: "Supervisor services"}
_ERROR = "#b00020"
_BAR = 0.3  # half the bar's height, in data units
_LANE = 0.27  # distance between label lanes above and below the bar
_LANES = 3  # lanes on each side


def draw_address_space(plan: NetworkLayout, path: Optional[str | Path] = None):
    """One bar per network, its ranges and reserved addresses drawn to scale; what is in error is
    hatched in red and labelled so. With a workload_management block, the Supervisor's management
    addresses and virtual IP ranges are drawn on their networks as a thinner band, and its services
    range (apart from every site network, where it belongs) on a bar of its own. Labels never
    overprint each other. Saves a PNG if asked."""
    import matplotlib.pyplot as plt  # imported here: the tables should not pay for matplotlib
    from matplotlib.patches import Patch

    nets = _drawn_networks(plan)
    in_error = {f.path for f in errors(plan.findings)}
    allocations = plan.allocations()
    apart = [a for a in allocations if not a.role and a.kind == SUPERVISOR_SERVICES]
    bars = [(role, net.network, f"{_shared_title(plan, role)}: {net.network}  VLAN {net.vlan}  "
                                f"{usable_addresses(net.network):,} usable") for role, net in nets]
    bars += [("", IPNetwork(f"{a.first}/{32 - (a.count.bit_length() - 1)}"),
              f"Kubernetes services ({a.path}): {a.span}  {a.count:,} addresses, routed inside the Supervisor only")
             for a in apart]
    fig, axes = plt.subplots(max(len(bars), 1), 1, figsize=(11, 2.3 * max(len(bars), 1) + 0.9), squeeze=False)
    for ax, (_, n, title) in zip(axes[:, 0], bars):
        ax.set_xlim(0, n.size)
        ax.set_ylim(-_BAR - _LANE * _LANES - 0.05, _BAR + _LANE * _LANES + 0.05)
        ax.barh(0, n.size, height=2 * _BAR, color="#eeeeee", edgecolor="#888888")
        ax.set_yticks([])
        ticks = [0, n.size // 2, n.size - 1]
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(IPAddress(n.first + t)) for t in ticks], fontsize=7)
        for tick, align in zip(ax.get_xticklabels(), ("left", "center", "right")):
            tick.set_horizontalalignment(align)
        ax.set_title(title, fontsize=9, loc="left")
    kinds = {**_COLOURS, **{k: c for k, c in _SUPERVISOR_COLOURS.items() if any(a.kind == k for a in allocations)}}
    handles = [Patch(color=c) for c in kinds.values()] + [Patch(facecolor="white", edgecolor=_ERROR, hatch="////")]
    rows = -(-(len(kinds) + 1) // 5)  # the legend's rows, five entries each
    fig.legend(handles, [*kinds, "in error"], loc="lower center", ncol=5, fontsize=8, frameon=False)
    outside = [a for a in allocations if not a.role and a not in apart]
    if outside:
        fig.text(0.01, 0.045, "Not drawn, outside every network: " + "; ".join(f"{a.span} ({a.path})" for a in outside),
                 fontsize=7, color=_ERROR)
    # The layout first: labels are measured where they will finally stand.
    fig.tight_layout(rect=(0, 0.05 + 0.03 * rows, 1, 1))
    renderer = fig.canvas.get_renderer()
    for ax, (role, n, _) in zip(axes[:, 0], bars):
        placer = _LabelPlacer(ax, renderer)
        drawn = set()
        for a in (a for a in allocations if (a.role == role if role else a in apart)):
            if (a.kind, a.first, a.last) in drawn:  # a shared network's one gateway, drawn once
                continue
            drawn.add((a.kind, a.first, a.last))
            bad = a.path in in_error
            supervisor = a.kind in _SUPERVISOR_COLOURS
            colour = _SUPERVISOR_COLOURS.get(a.kind) or _COLOURS[a.kind]
            start = int(a.first) - n.first
            text = f"{_SUPERVISOR_LABELS[a.kind]} {IPAddress(a.first)}-{IPAddress(a.last)}" if supervisor else (
                a.span if a.is_range else f"{a.kind} {a.first}")
            label = ("ERROR " if bad else "") + text
            if a.is_range:
                ax.barh(0, a.count, left=start, height=_BAR if supervisor else 2 * _BAR, color=colour, alpha=0.85,
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
