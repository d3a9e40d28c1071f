"""Subnet summary, allocation table, anyip-routes.cfg and the address-space picture."""

from __future__ import annotations

from helpers import EXAMPLE_SITE, variant
from tkgs_lib.network import plan_networks
from tkgs_lib.report import allocation_table, anyip_routes_cfg, draw_address_space, subnet_summary
from tkgs_lib.site import load_site, parse_site
import yaml


def _plan(changes=None):
    if changes is None:
        return plan_networks(load_site(EXAMPLE_SITE))
    return plan_networks(parse_site(yaml.safe_dump(variant(changes))))


def test_subnet_summary_matches_the_article():
    table = subnet_summary(_plan()).set_index("network")
    assert list(table.index) == ["management", "workload", "frontend"]
    assert table.loc["management", "usable"] == 510  # "255.255.254.0 (510 IPs available)"
    assert table.loc["workload", "usable"] == 2046  # "255.255.248.0 (2046 IPs available)"
    assert table.loc["workload", "netmask"] == "255.255.248.0"
    assert table.loc["frontend", "VLAN"] == 28
    assert table.loc["frontend", "first usable"] == "10.64.0.1"
    assert table.loc["frontend", "last usable"] == "10.64.1.254"
    assert table.loc["management", "appliance"] == "10.64.2.10/23"
    assert "workload range 10.64.8.50-10.64.15.150 (1,893)" in table.loc["workload", "allocated"]
    assert "load-balancer range 10.64.1.0-10.64.1.255 (256)" in table.loc["frontend", "allocated"]


def test_allocation_table_is_in_address_order_with_counts():
    table = allocation_table(_plan())
    firsts = [tuple(map(int, a.split("."))) for a in table["first"]]
    assert firsts == sorted(firsts)
    lb = table[table["what"] == "load-balancer range"].iloc[0]
    assert (lb["first"], lb["last"], lb["count"], lb["network"]) == ("10.64.1.0", "10.64.1.255", 256, "frontend")
    assert set(table["what"]) == {"gateway", "appliance address", "workload range", "load-balancer range"}


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
    assert [t.split(":")[0] for t in titles] == ["management", "workload", "frontend"]
    # The workload range is drawn to scale: 1,893 of the /21's 2,048 addresses.
    workload = fig.axes[1]
    widths = sorted(p.get_width() for p in workload.patches)
    assert 1893 in widths and 2048 in widths
