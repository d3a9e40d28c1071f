"""The site's addresses checked at the desk: its networks (:mod:`.network`) and, with a
``workload_management`` block, the Supervisor's settings (:mod:`.workload_management`), which read those
networks, then the namespace and the Tanzu Kubernetes cluster (:mod:`.tanzu`), which read both. The one
place they meet, so none imports another."""

from __future__ import annotations

from .model import Site
from .network import NetworkLayout, lay_out
from .tanzu import tanzu_findings
from .workload_management import supervisor_settings

__all__ = ["network_layout", "NetworkLayout"]


def network_layout(site: Site) -> NetworkLayout:
    """The site's networks, every rule checked, and the Supervisor's settings (``layout.supervisor``) when the
    site has a workload_management block; ``layout.findings`` holds every finding of both, and those of the
    namespace and tanzu_cluster blocks, which read them (:mod:`.tanzu`)."""
    layout = lay_out(site, supervisor_settings)
    layout.findings.extend(tanzu_findings(site, layout))
    return layout
