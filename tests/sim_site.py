"""A Site for the vCenter simulator: the example site with its vcenter block pointed at ``sim``.

``from sim_site import site_for``; overrides are dotted site keys, e.g.
``site_for(vcsim, **{"vcenter.datacenter": "nope", "haproxy.deployment": "default"})``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tkgs_lib.demo import simulator_site_data
from tkgs_lib.site import Site, parse_site

EXAMPLE_SITE = Path(__file__).resolve().parent.parent / "examples" / "example-site.yaml"


def site_data(sim, **overrides) -> dict:
    """The example site as a mapping, with the simulator's vcenter block and ``overrides`` applied."""
    data = simulator_site_data(sim)
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
