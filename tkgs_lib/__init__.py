"""tkgs_lib: stand up the HAProxy load balancer for vSphere 7 with Tanzu, and prove it works.

The public surface is small; everything else lives in modules a notebook imports by name.
"""

from .errors import (ConflictError, ConnectionFailed, NotFound, SimulatorUnavailable, SiteError, StageFailed,
                     TkgsError, ValidationFailed, VSphereError)
from .findings import Finding, raise_for_errors
from .network import NetworkPlan, plan_networks
from .site import Site, load_site

__all__ = [
    "ConflictError", "ConnectionFailed", "Finding", "NetworkPlan", "NotFound", "SimulatorUnavailable", "Site",
    "SiteError", "StageFailed", "TkgsError", "VSphereError", "ValidationFailed", "load_site", "plan_networks",
    "raise_for_errors",
]
__version__ = "0.1.0"
