"""Each appliance release as its own scripts make it (haproxytech/vmware-haproxy at v0.1.10 and v0.2.0:
ovf-to-cloud-init.sh's writeRouteTableConfig and writeWorkloadNetworks, routetablectl.sh's up and down),
booted in the simulated appliance: verify passes a healthy boot of each, fails exactly the rows of a
fault, and repair leaves the kernel as a healthy first boot does, also after a reboot (the units started
again from the repaired files on a fresh kernel). The kernel states are compared whole."""

from __future__ import annotations

import pytest

from appliance_fixtures import PASSWORD_ENV, start_appliance
from test_repair_stage import appliance_file, carry_out
from test_verify_stage import verify_in_lab

pytestmark = pytest.mark.slow

# The article's site under the default deployment: 2 NICs, virtual IPs on the workload network.
DEFAULT_SITE = {"haproxy.deployment": "default", "networks.frontend": None, "haproxy.frontend_ip": None,
                "networks.workload.ranges": ["10.64.8.50-10.64.11.255"], "haproxy.load_balancer_ranges": ["10.64.12.0/24"]}
FURTHER = {"haproxy.additional_workload_networks": ["10.64.16.0/21", "10.64.24.0/21"]}
ANYIP_ROWS = {"failed units (systemctl list-units --state failed)", "anyip-routes.service",
              "/etc/vmware/anyip-routes.cfg"}


@pytest.fixture
def secrets_in_env(monkeypatch):
    for name, value in PASSWORD_ENV.items():
        monkeypatch.setenv(name, value)


def boot(tmp_path, name, release, site, faults=None):
    folder = tmp_path / name
    folder.mkdir()
    return start_appliance(folder, release=release, faults=faults, changes=site, appliance_changes=site)


def failing(lab) -> dict:
    return {name: c.found for name, c in verify_in_lab(lab).items() if c.status != "ok"}


def healthy_state(tmp_path, release, site) -> dict:
    lab = boot(tmp_path, "healthy", release, site)
    try:
        assert failing(lab) == {}
        return lab.sim.kernel_state()
    finally:
        lab.sim.stop()


def repaired_and_rebooted(lab, healthy: dict) -> None:
    """Repair with apply, then every check ok and the kernel as a healthy first boot's; the same after a reboot."""
    plan, outcome, reports = carry_out(lab)
    assert outcome.ran and set(reports["the appliance, checked"]["status"]) == {"ok"}
    assert lab.sim.kernel_state() == healthy
    lab.sim.reboot()
    assert lab.sim.kernel_state() == healthy  # the units, started from the repaired files on a fresh kernel
    assert failing(lab) == {}


SITES = {"frontend site": {}, "default site": DEFAULT_SITE}


@pytest.mark.parametrize("release", ["v0.1.10", "v0.2.0"])
@pytest.mark.parametrize("site", SITES.values(), ids=SITES.keys())
def test_the_articles_line_fails_only_the_anyip_rows_and_its_repair_survives_a_reboot(tmp_path, secrets_in_env,
                                                                                      release, site):
    healthy = healthy_state(tmp_path, release, site)
    lab = boot(tmp_path, "article", release, site, faults={"service_ip_range": "10.64.0.1/23"})
    try:
        vip = (site.get("haproxy.load_balancer_ranges") or ["10.64.1.0/24"])[0]
        assert set(failing(lab)) == ANYIP_ROWS | {f"local route for {vip}"}
        repaired_and_rebooted(lab, healthy)
    finally:
        lab.sim.stop()


@pytest.mark.parametrize("release", ["v0.1.10", "v0.2.0"])
def test_route_tables_written_without_their_link_scoped_lines_are_repaired_with_both(tmp_path, secrets_in_env,
                                                                                    release):
    """The file an earlier repair wrote (the gateway lines alone): the tables lack the link-scoped routes
    that the release's first boot makes; repair writes both lines per network again."""
    healthy = healthy_state(tmp_path, release, {})
    lab = boot(tmp_path, "five-fields", release, {}, faults={"route_tables": [
        "2,workload,{workload},10.64.8.10/21,10.64.8.1", "3,frontend,{frontend},10.64.0.10/23,10.64.0.1"]})
    try:
        rows = failing(lab)
        assert set(rows) == {"/etc/vmware/route-tables.cfg", "routing table rtctl_workload (2)",
                             "routing table rtctl_frontend (3)"}
        assert "no link-scoped line for the workload network" in verify_in_lab(lab)[
            "/etc/vmware/route-tables.cfg"].fix
        repaired_and_rebooted(lab, healthy)
        text = appliance_file(lab, "/etc/vmware/route-tables.cfg")
        assert f"2,workload,{lab.sim.macs['workload']},10.64.8.10/21\n" in text
    finally:
        lab.sim.stop()


def test_v020_with_further_workload_networks_checks_and_restores_each_to_rule(tmp_path, secrets_in_env):
    healthy = healthy_state(tmp_path, "v0.2.0", FURTHER)
    assert [r for r in healthy["rules"] if r.get("dst") == "10.64.24.0"]  # `ip rule add to 10.64.24.0/21`
    lab = boot(tmp_path, "lost-line", "v0.2.0", FURTHER, faults={"workload_networks": ["10.64.16.0/21"]})
    try:
        rows = failing(lab)
        assert set(rows) == {"/etc/vmware/workload-networks.cfg", "rule to 10.64.24.0/21"}
        repaired_and_rebooted(lab, healthy)
    finally:
        lab.sim.stop()
