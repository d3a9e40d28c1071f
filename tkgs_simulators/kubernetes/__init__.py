"""The Kubernetes the stand-ins play after the Supervisor: its Kubernetes API and ``/wcp/login`` (served by
the played control plane, behind the appliance's real HAProxy), Tanzu Kubernetes clusters with their VMs
(network namespaces on the workload network) and their own API, and the load-balancer controller that
gives each VirtualMachineService a virtual IP through the appliance's Data Plane API.

:mod:`.api` is the small API server both speak; :mod:`.supervisor_api` the Supervisor's side;
:mod:`.guest_cluster` the clusters; :mod:`.vms` their VMs. Every answer says it is a stand-in's.
"""
