"""The appliance's own scripts, per release, as the simulated appliance plays them.

Each release the simulator boots as is the set of scripts at its tag of haproxytech/vmware-haproxy
(never its default branch, which is older than v0.1.10 for these scripts): the first boot's
``ovf-to-cloud-init.sh`` (:mod:`.ovf_to_cloud_init`), on the files the image ships
(:mod:`.shipped`), and the two units' ``routetablectl.sh`` (:mod:`.routetablectl`) and
``anyiproutectl.sh`` (:mod:`.anyiproutectl`), in the bash they set up (:mod:`.shell`), and the maker of the
Data Plane API's certificate, ``new-cert.sh`` (:mod:`.new_cert`). Read from
the scripts, never from what tkgs-runbook believes about the appliance: nothing here imports the
package, so the product's facts and these are two readings that a test compares
(``tests/test_release_facts.py``). The units' stand-in runs these modules without the package.
"""

from __future__ import annotations

from dataclasses import dataclass

from .anyiproutectl import AnyIpRouteCtl
from .new_cert import NewCertV0_1_7, NewCertV0_1_9, NewCertV0_1_10
from .ovf_to_cloud_init import (OvfToCloudInitV0_1_7, OvfToCloudInitV0_1_8, OvfToCloudInitV0_1_9, OvfToCloudInitV0_1_10,
                                OvfToCloudInitV0_2_0)
from .routetablectl import RouteTableCtlV0_1_7, RouteTableCtlV0_1_8, RouteTableCtlV0_1_9, RouteTableCtlV0_2_0

__all__ = ["PlayedRelease", "PLAYED", "ARTICLE_RELEASE", "played"]


@dataclass(frozen=True)
class PlayedRelease:
    """One release's scripts: the class that plays each."""

    version: str
    first_boot: type  # ovf-to-cloud-init.sh
    route_tables: type  # routetablectl.sh (route-tables.service)
    new_cert: type  # new-cert.sh (the Data Plane API's server certificate)
    anyip_routes: type = AnyIpRouteCtl  # anyiproutectl.sh (anyip-routes.service): the same file at every tag


PLAYED: dict[str, PlayedRelease] = {r.version: r for r in (
    PlayedRelease("v0.1.7", OvfToCloudInitV0_1_7, RouteTableCtlV0_1_7, NewCertV0_1_7),
    PlayedRelease("v0.1.8", OvfToCloudInitV0_1_8, RouteTableCtlV0_1_8, NewCertV0_1_7),
    PlayedRelease("v0.1.9", OvfToCloudInitV0_1_9, RouteTableCtlV0_1_9, NewCertV0_1_9),
    # v0.1.10: v0.1.9's route tables, a new userdata.txt (new-cert.sh has -n)
    PlayedRelease("v0.1.10", OvfToCloudInitV0_1_10, RouteTableCtlV0_1_9, NewCertV0_1_10),
    PlayedRelease("v0.2.0", OvfToCloudInitV0_2_0, RouteTableCtlV0_2_0, NewCertV0_1_10),
)}
ARTICLE_RELEASE = "v0.1.10"  # the article deploys haproxy-v0.1.10.ova


def played(version: str) -> PlayedRelease:
    """The scripts of ``version``; ValueError naming the releases played, for another."""
    try:
        return PLAYED[version]
    except KeyError:
        raise ValueError(f"the simulated appliance plays the releases {', '.join(PLAYED)}, not {version!r}: "
                         f"no other release's scripts were read.") from None
