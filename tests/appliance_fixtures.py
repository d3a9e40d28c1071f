"""The simulated appliance for tests: a site file, its appliance, and the run folder the verify stage reads.

Where the simulator cannot run (not root, no sshd or ping) the tests are skipped with the reason,
except under CI=true, where they fail: CI runs as root and installs what it needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers import variant
from tkgs_lib.site import Site, load_site

ARTICLE_RELEASE = "v0.1.10"  # the article deploys haproxy-v0.1.10.ova

ROOT_PASSWORD, DATAPLANE_PASSWORD = "canary-appliance-r00t-pw", "canary-appliance-dataplane-pw"
# HAProxy's check interval for the control-plane servers in tests (its default is 2 s). With no
# `timeout check`, HAProxy gives each check `inter` to connect and answer: 500 ms lets the servers,
# threads in a busy pytest worker, stall a second without being taken DOWN.
HEALTH_CHECK_MS = 500
PASSWORD_ENV = {"TKGS_HAPROXY_ROOT_PASSWORD": ROOT_PASSWORD, "TKGS_HAPROXY_DATAPLANE_PASSWORD": DATAPLANE_PASSWORD}
PASSWORDS = {"appliance.root_pwd": ROOT_PASSWORD, "loadbalance.haproxy_pwd": DATAPLANE_PASSWORD}


def require_appliance_simulator() -> None:
    from tkgs_simulators.appliance import available

    reason = available()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the appliance simulator cannot run on CI: {reason}", pytrace=False)
        pytest.skip(reason)


def deployed_properties(site: Site, release: str = ARTICLE_RELEASE, passwords: dict | None = None) -> dict[str, str]:
    """The property values the deploy stage sends for ``site`` to the ``release`` OVA: what vCenter hands
    the appliance (``passwords``: the root and Data Plane API passwords, by their keys)."""
    from tkgs_lib.appliance.properties import appliance_properties
    from tkgs_lib.ova import parse_descriptor
    from tkgs_simulators.ova import haproxy_descriptor
    from tkgs_lib.site.layout import network_layout

    descriptor = parse_descriptor(haproxy_descriptor(f"haproxy-{release}", version=release))
    properties = appliance_properties(site, network_layout(site), descriptor, passwords or PASSWORDS)
    assert not properties.findings, "the site cannot be deployed: " + "; ".join(map(str, properties.findings))
    return properties.as_dict()


def appliance_for_site(site: Site, *, faults=None, macs=None, lab=None, release: str = ARTICLE_RELEASE,
                       passwords: dict | None = None):
    """A simulated appliance deployed from the ``release`` OVA as the deploy stage deploys ``site`` (not
    started). The simulator is given the property values only: it knows nothing of sites."""
    from tkgs_simulators.appliance import ApplianceSimulator

    return ApplianceSimulator(deployed_properties(site, release, passwords), macs=dict(macs or {}),
                              faults=dict(faults or {}), lab=lab, release=release)


@dataclass
class Lab:
    """An appliance simulated for ``site_file``, and the run folder holding its CA."""

    sim: object
    site_file: Path
    run_folder: Path

    @property
    def site(self) -> Site:
        return load_site(self.site_file)


def start_appliance(tmp_path: Path, *, faults=None, changes=None, appliance_changes=None, own_ca: bool = False,
                    release: str = ARTICLE_RELEASE):
    """A site file (article values, known_hosts and the ``release`` OVA beside it) and its appliance,
    booted as that release boots. ``changes`` alter the site the tests verify with;
    ``appliance_changes`` the site the appliance was deployed from; ``own_ca``: both use a CA of the
    user's own (haproxy.ca_cert_file), which the appliance keeps. The run folder holds what the deploy
    stage leaves there: the appliance's CA and the release in the run record."""
    from appliance_material import write_ca
    from tkgs_lib.stages.provided import ApplianceCa, ApplianceRelease, provide
    from tkgs_simulators.ova import build_ova
    from tkgs_lib.site import parse_site

    require_appliance_simulator()
    if own_ca:
        cert, key = write_ca(tmp_path / "ca")
        ca = {"haproxy.ca_cert_file": str(cert), "haproxy.ca_key_file": str(key)}
        changes, appliance_changes = {**ca, **(changes or {})}, {**ca, **(appliance_changes or {})}
    deployed = parse_site(yaml.safe_dump(variant(appliance_changes)), source=tmp_path / "deployed.yaml")
    sim = appliance_for_site(deployed, faults=faults, release=release)
    sim.start()
    (tmp_path / "known_hosts").write_text(sim.known_hosts())
    ova = build_ova(tmp_path / f"haproxy-{release}.ova", name=f"haproxy-{release}", disk_size=64 * 1024)  # the site's OVA
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(variant({"haproxy.ssh_known_hosts": "known_hosts",
                                                 "content_libraries.haproxy.ova": ova.name,
                                                 "content_libraries.haproxy.item": ova.stem, **(changes or {})})))
    run_folder = tmp_path / "run"
    run_folder.mkdir(exist_ok=True)
    (run_folder / "haproxy-ca.pem").write_text(sim.ca_pem)  # as the deploy stage saves it, and records it
    provide(run_folder, ApplianceCa("haproxy-ca.pem"), ApplianceRelease(
        release, f"the descriptor of the OVA {ova.name}", release == "v0.2.0"))
    return Lab(sim, site_file, run_folder)
