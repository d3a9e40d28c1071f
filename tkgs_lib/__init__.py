"""tkgs_lib: stand up the HAProxy load balancer for vSphere 7 with Tanzu, and prove it works.

The public surface is small; everything else lives in modules a notebook imports by name:

    site/        the site file: its model, loading it, the checks of its values, the address plan
    stages/      the runbook's stages, one module each, and the flow they share (StageRun)
    planning     Plan and Step: what every stage shows before it changes anything
    vsphere/     one transport: vCenter's client, and the resources the stages change through it
    appliance/   the other: commands on the HAProxy appliance, each fact a command and a parser
    simulators/  the vCenter simulator, a generated OVA, the demo
    runbook      the stage notebooks executed by papermill into a run folder; cli the command line
"""

from .errors import (ConflictError, ConnectionFailed, NotFound, SimulatorUnavailable, SiteError, StageFailed,
                     TkgsError, ValidationFailed, VSphereError)
from .findings import Finding, raise_for_errors

_LAZY = {"Site": ".site", "load_site": ".site", "NetworkLayout": ".site.layout", "network_layout": ".site.layout"}


def __getattr__(name: str):
    # Imported on first use: the command line starts (and handles a signal) before the site model loads.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ConflictError", "ConnectionFailed", "Finding", "NetworkLayout", "NotFound", "SimulatorUnavailable", "Site",
    "SiteError", "StageFailed", "TkgsError", "VSphereError", "ValidationFailed", "load_site", "network_layout",
    "raise_for_errors",
]
__version__ = "0.1.0"
