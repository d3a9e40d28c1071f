"""Subnet summary, allocation table, anyip-routes.cfg and the address-space picture."""

from __future__ import annotations

from helpers import EXAMPLE_SITE, variant
from tkgs_lib.site.layout import network_layout
from tkgs_lib.site.picture import draw_address_space
from tkgs_lib.stages.networks import (ANYIP_PREVIEW_FILE, allocation_table, anyip_routes_cfg, preview_anyip_routes,
                             subnet_summary)
from tkgs_lib.site import load_site, parse_site
import pytest
import yaml
from matplotlib.text import Text


def _plan(changes=None, remove=()):
    if changes is None and not remove:
        return network_layout(load_site(EXAMPLE_SITE))
    return network_layout(parse_site(yaml.safe_dump(variant(changes, remove))))


def test_subnet_summary_matches_the_article():
    table = subnet_summary(_plan()).frame.set_index("network")
    assert list(table.index) == ["management", "workload", "frontend"]
    assert table.loc["management", "usable"] == 510  # "255.255.254.0 (510 IPs available)"
    assert table.loc["workload", "usable"] == 2046  # "255.255.248.0 (2046 IPs available)"
    assert table.loc["workload", "netmask"] == "255.255.248.0"
    assert table.loc["frontend", "VLAN"] == 28
    assert table.loc["frontend", "first usable"] == "10.64.0.1"
    assert table.loc["frontend", "last usable"] == "10.64.1.254"
    assert table.loc["management", "appliance"] == "10.64.2.10/23"
    assert "workload range 10.64.8.50-10.64.15.150, 1,893" in table.loc["workload", "allocated"]
    # A range as the user wrote it, with first-last beside it.
    assert "load-balancer range 10.64.1.0/24 (10.64.1.0-10.64.1.255), 256" in table.loc["frontend", "allocated"]


def test_allocation_table_is_in_address_order_with_counts():
    table = allocation_table(_plan()).frame
    firsts = [tuple(map(int, a.split("."))) for a in table["first"]]
    assert firsts == sorted(firsts)
    lb = table[table["what"] == "load-balancer range"].iloc[0]
    assert (lb["as written"], lb["first"], lb["last"], lb["count"], lb["network"]) == (
        "10.64.1.0/24", "10.64.1.0", "10.64.1.255", 256, "frontend")
    assert set(table["what"]) == {"gateway", "appliance address", "workload range", "load-balancer range",
                                  "Supervisor management range", "Supervisor virtual IP range",
                                  "Supervisor services range"}


def test_the_tables_show_what_the_supervisor_takes():
    """The enable stage gives vCenter the Supervisor's 5 management addresses, its virtual IP ranges (here
    the default: the load-balancer range less the frontend network's broadcast address) and its services
    range: the plan shows them before anything is touched."""
    rows = {r["what"]: r for r in allocation_table(_plan()).frame.to_dict("records")}
    assert [rows["Supervisor management range"][k] for k in ("field", "first", "last", "count", "network")] == [
        "workload_management.supervisor_start", "10.64.2.20", "10.64.2.24", 5, "management"]
    assert [rows["Supervisor virtual IP range"][k] for k in ("field", "as written", "first", "last", "count")] == [
        "workload_management.virtual_ip_ranges", "null (the default)", "10.64.1.0", "10.64.1.254", 255]
    assert [rows["Supervisor services range"][k] for k in ("field", "as written", "count", "network")] == [
        "workload_management.services_cidr", "10.96.0.0/23", 512, "(none: Kubernetes services)"]
    summary = subnet_summary(_plan()).frame.set_index("network")
    assert "Supervisor management range 10.64.2.20 (10.64.2.20-10.64.2.24), 5" in summary.loc["management", "allocated"]
    assert "Supervisor virtual IP range 10.64.1.0-10.64.1.254, 255" in summary.loc["frontend", "allocated"]
    written = allocation_table(_plan({"workload_management.virtual_ip_ranges": ["10.64.1.0-10.64.1.99"]})).frame
    vips = written[written["what"] == "Supervisor virtual IP range"].iloc[0]
    assert (vips["field"], vips["as written"], vips["count"]) == (
        "workload_management.virtual_ip_ranges[0]", "10.64.1.0-10.64.1.99", 100)
    without = allocation_table(_plan(remove=("workload_management",))).frame
    assert not [w for w in without["what"] if w.startswith("Supervisor")]


def test_anyip_routes_cfg_writes_each_range_verbatim_like_the_appliance():
    text = anyip_routes_cfg(_plan({"haproxy.load_balancer_ranges": ["10.64.1.0/25", "10.64.1.128/26"]}))
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == ["10.64.1.0/25", "10.64.1.128/26"]
    # Verbatim: even the broken one the article shows is written as given, which is why we check first.
    broken = anyip_routes_cfg(_plan({"haproxy.load_balancer_ranges": ["10.64.0.1/23"]}))
    assert broken.endswith("10.64.0.1/23\n")


def test_address_space_picture_is_a_png_with_one_panel_per_network(tmp_path):
    path = tmp_path / "plan.png"
    fig = draw_address_space(_plan(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert [t.split(":")[0] for t in titles] == ["management", "workload", "frontend",
                                                 "Kubernetes services (workload_management.services_cidr)"]
    # The workload range is drawn to scale: 1,893 of the /21's 2,048 addresses.
    workload = fig.axes[1]
    widths = sorted(p.get_width() for p in workload.patches)
    assert 1893 in widths and 2048 in widths


def _axis_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _bars(ax) -> list[tuple[float, float]]:
    """(left, width) of each bar drawn on the network's bar, the network's own background first."""
    return [(p.get_x(), p.get_width()) for p in ax.patches]


def test_the_picture_draws_what_the_supervisor_takes():
    management, _, frontend, services = draw_address_space(_plan()).axes
    assert "Supervisor 10.64.2.20-10.64.2.24" in _axis_texts(management)
    assert (20, 5) in _bars(management)  # 10.64.2.20, 5 addresses, to scale in 10.64.2.0/23
    assert "Supervisor VIPs 10.64.1.0-10.64.1.254" in _axis_texts(frontend)
    assert (256, 255) in _bars(frontend) and (256, 256) in _bars(frontend)  # inside the load-balancer range
    assert services.get_title(loc="left").startswith("Kubernetes services (workload_management.services_cidr): "
                                                     "10.96.0.0/23")
    assert "Supervisor services 10.96.0.0-10.96.1.255" in _axis_texts(services) and (0, 512) in _bars(services)
    legend = [t.get_text() for t in draw_address_space(_plan()).legends[0].get_texts()]
    assert {"Supervisor management range", "Supervisor virtual IP range", "Supervisor services range"} <= set(legend)
    bare = draw_address_space(_plan(remove=("workload_management",)))
    assert len(bare.axes) == 3 and not [t for ax in bare.axes for t in _axis_texts(ax) if "Supervisor" in t]


def test_a_plan_with_errors_writes_no_anyip_routes_cfg_and_does_not_call_it_good(tmp_path):
    (tmp_path / ANYIP_PREVIEW_FILE).write_text("an earlier good plan's file\n")
    preview = preview_anyip_routes(_plan({"haproxy.load_balancer_ranges": ["10.64.1.128/25", "10.64.1.1/30"]}),
                                   tmp_path)
    assert preview.withheld and preview.written is None and not (tmp_path / ANYIP_PREVIEW_FILE).exists()
    assert preview.rejected == ("10.64.1.1/30",)  # host bits set; the good range beside it stands
    assert "as the appliance will write" not in str(preview) and "NOT written" in preview.heading
    assert "10.64.1.1/30    <- rejected" in preview.text and "10.64.1.128/25\n" in preview.text
    # The article's fault holds the whole frontend network, so a good range beside it overlaps it:
    # both lines are marked, each pointing at its own findings.
    article = preview_anyip_routes(_plan({"haproxy.load_balancer_ranges": ["10.64.1.0/25", "10.64.0.1/23"]}))
    assert article.rejected == ("10.64.1.0/25", "10.64.0.1/23")

    good = preview_anyip_routes(_plan(), tmp_path)
    assert good.written == tmp_path / ANYIP_PREVIEW_FILE and (tmp_path / ANYIP_PREVIEW_FILE).read_text() == good.text
    assert "as the appliance will write it" in good.heading and not good.withheld
    assert "as the appliance will write it" in preview_anyip_routes(_plan()).heading  # shown, not saved


def _text_boxes(fig):
    """Every visible text of the figure (labels, titles, ticks, legend) with its box on the canvas."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip()]
    return [(text, box) for text, box in boxes if box.width > 1]  # the hidden top tick labels have no size


NEAR_ADDRESSES = {
    # The article: gateway .1 and appliance .10 of a /23 and a /21, a few pixels apart.
    "article": {},
    # Workload and frontend the very same network: two appliance addresses side by side.
    "shared network": {"networks.frontend.cidr": "10.64.8.0/21", "networks.frontend.gateway": "10.64.8.1",
                       "networks.frontend.vlan": 27, "haproxy.frontend_ip": "10.64.8.11/21",
                       "haproxy.load_balancer_ranges": ["10.64.15.160/27"]},
    # Everything at the top end, beside the last tick label.
    "top end": {"networks.management.gateway": "10.64.3.254", "haproxy.management_ip": "10.64.3.250/23"},
    # A range too small for its label, beside two addresses.
    "small range": {"haproxy.load_balancer_ranges": ["10.64.0.16/29", "10.64.1.0/24"]},
    "errors": {"haproxy.load_balancer_ranges": ["10.64.0.1/23", "10.64.1.0/25", "10.99.0.0/24"]},
}


@pytest.mark.parametrize("changes", NEAR_ADDRESSES.values(), ids=NEAR_ADDRESSES.keys())
def test_no_two_labels_of_the_picture_overprint_each_other(changes):
    boxes = _text_boxes(draw_address_space(_plan(changes)))
    clashes = [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:] if box_a.overlaps(box_b)]
    assert clashes == []
    assert len(boxes) >= 10


def test_the_picture_marks_the_ranges_in_error():
    fig = draw_address_space(_plan(NEAR_ADDRESSES["errors"]))
    labels = [t for t, _ in _text_boxes(fig)]
    assert "ERROR 10.64.0.1/23 (10.64.0.0-10.64.1.255)" in labels
    assert "ERROR 10.64.1.0/25 (10.64.1.0-10.64.1.127)" in labels  # it overlaps the first
    assert any("10.99.0.0/24" in t and "outside every network" in t for t in labels)
    frontend = fig.axes[2]
    assert sum(1 for p in frontend.patches if p.get_hatch()) == 2
