"""A Site for the vCenter simulator: the example site with its vcenter block pointed at ``sim``.

``from sim_site import site_for``; overrides are dotted site keys, e.g.
``site_for(vcsim, **{"vcenter.datacenter": "nope", "haproxy.deployment": "default"})``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tkgs_lib.site import Site, parse_site

EXAMPLE_SITE = Path(__file__).resolve().parent.parent / "examples" / "example-site.yaml"


def site_data(sim, **overrides) -> dict:
    """The example site as a mapping, with the simulator's vcenter block and ``overrides`` applied."""
    data = yaml.safe_load(EXAMPLE_SITE.read_text())
    data["vcenter"].update({
        "server": sim.host, "port": sim.port, "username": sim.username,
        "ca_file": str(sim.ca_file) if sim.ca_file else None,
        "thumbprint": None, "datacenter": "DC0", "cluster": "DC0_C0", "distributed_switch": "DVS0",
        "datastores": ["LocalDS_0"],
    })
    for dotted, value in overrides.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    return data


def site_for(sim, **overrides) -> Site:
    """A parsed Site for ``sim``; fails the test if the site has error findings."""
    site = parse_site(yaml.safe_dump(site_data(sim, **overrides)), source=EXAMPLE_SITE)
    errors = [str(f) for f in site.findings if f.is_error]
    assert not errors, errors
    return site
