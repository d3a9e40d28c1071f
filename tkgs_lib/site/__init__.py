"""The site file and its rules: the model, loading it, the checks of its values, the address plan.

    model     the dataclasses, each field documented once (``tkgs-runbook fields``)
    loading   strict YAML into the model; every mistake a finding naming its field
    checks    names, TLS settings, libraries, ports (run as the site loads)
    network   the address plan: every rule the article warns about (``network_layout``)
    workload_management  the Supervisor's settings resolved from the site, with their desk checks
    patterns  the small shared shapes: names, IPv4 text, host names, fingerprints
"""

from .loading import load_site, parse_site
from .model import (ContentLibraries, HAProxy, LocalLibrary, Network, Networks, Site, Storage, SubscribedLibrary,
                    VCenter, WorkloadManagement, WorkloadNetwork, field_docs)

__all__ = ["ContentLibraries", "HAProxy", "LocalLibrary", "Network", "Networks", "Site", "Storage",
           "SubscribedLibrary", "VCenter", "WorkloadManagement", "WorkloadNetwork", "field_docs", "load_site",
           "parse_site"]
