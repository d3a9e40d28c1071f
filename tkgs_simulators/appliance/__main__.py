"""``python -m tkgs_simulators.appliance [SITE.yaml] [--release v0.2.0]``: a simulated appliance for a
person to poke at.

Deployed as the site says (the example site by default) from the release's OVA (v0.1.10, the
article's, by default), with fresh passwords it prints. Ctrl-C,
SIGTERM or SIGHUP stop it and remove everything it made; after a SIGKILL its processes die with
it and the next start removes its namespaces.

This launcher plays the deployment, not the appliance: tkgs-runbook's deploy stage turns the site
into the property values (:func:`deployed_properties`), as vCenter receives them; the simulated
appliance is given those values only and reads them itself, with its own release's scripts.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
from pathlib import Path

from tkgs_lib.errors import SimulatorUnavailable
from tkgs_lib.paths import CHECKOUT

from . import ARTICLE_RELEASE, PLAYED, ApplianceSimulator


def deployed_properties(site_file: Path, release: str, passwords: dict[str, str]) -> dict[str, str]:
    """The property values tkgs-runbook's deploy stage sends for the site to the ``release`` OVA."""
    from tkgs_lib.appliance.properties import appliance_properties
    from tkgs_lib.ova import parse_descriptor
    from tkgs_lib.site import load_site
    from tkgs_lib.site.layout import network_layout
    from ..ova import haproxy_descriptor

    site = load_site(site_file)
    descriptor = parse_descriptor(haproxy_descriptor(f"haproxy-{release}", version=release))
    properties = appliance_properties(site, network_layout(site), descriptor, passwords)
    if properties.findings:
        raise SimulatorUnavailable("the site cannot be deployed: " + "; ".join(str(f) for f in properties.findings))
    return properties.as_dict()


def main(argv: list[str]) -> int:
    def stop(signum, _frame):  # like Ctrl-C: the with-block below cleans up
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    parser = argparse.ArgumentParser(prog="python -m tkgs_simulators.appliance")
    parser.add_argument("site", nargs="?", default=str(CHECKOUT / "examples" / "example-site.yaml"))
    parser.add_argument("--release", default=ARTICLE_RELEASE, choices=tuple(PLAYED),
                        help="the appliance release it boots as (its first boot and units)")
    args = parser.parse_args(argv)
    passwords = {"appliance.root_pwd": secrets.token_urlsafe(12), "loadbalance.haproxy_pwd": secrets.token_urlsafe(12)}
    properties = deployed_properties(Path(args.site), args.release, passwords)
    try:
        with ApplianceSimulator(properties, release=args.release) as sim:
            print(f"simulated appliance at {sim.management_address} ({args.release}; lab namespace {sim.lab}, appliance namespace "
                  f"{sim.appliance})\n  enter the lab:      ip netns exec {sim.lab} bash\n"
                  f"  root password:      {passwords['appliance.root_pwd']}\n"
                  f"  Data Plane API:     admin / {passwords['loadbalance.haproxy_pwd']}\n"
                  f"  SSH host key:       {sim.host_key_fingerprint()}\nCtrl-C stops it.", flush=True)
            while True:
                signal.pause()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
