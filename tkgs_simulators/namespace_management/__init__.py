"""A stand-in for vCenter's Workload Management (namespace-management) API, which the bundled
vCenter simulator does not implement: govmomi's vcsim answers ``...?action=enable`` with an empty
200 and stores nothing.

:mod:`.spec` judges a request body by VMware's own bindings; :mod:`.supervisor` plays what an
enable does (the HAProxy load balancers reached over TLS with the CA given, the virtual IP ranges
checked against the appliance's, then CONFIGURING to RUNNING); :mod:`.control_plane` plays, given
the lab, the Supervisor's control plane and the load-balancer controller that programs the
appliance, keeping the Supervisor CONFIGURING until HAProxy serves its virtual IP; :mod:`.inventory` reads the
simulator (sessions, clusters, appliance VMs); :mod:`.server` answers the
``/api/vcenter/namespace-management/`` paths that the simulator proxies to it, each answer marked
as a stand-in's. :class:`~tkgs_simulators.vcsim.VCenterSimulator` runs it.

The package itself imports nothing: :mod:`.settings` stays light for the simulator's module to
load at once, and VMware's bindings, which the rest needs, load when a simulator starts.
"""
