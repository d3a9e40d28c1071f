"""vSphere Namespaces and VM classes, as the stand-in plays them (vCenter's ``/api``, 7.0.1 and later).

* ``POST /api/vcenter/namespaces/instances``: an ``Instances.CreateSpec`` decoded by VMware's bindings
  (:mod:`.spec`), judged (the cluster has a RUNNING Supervisor; the name a DNS label and new; each VM
  class one of vCenter's; a limit not negative), answered 204 with no body (govmomi's ``CreateNamespace``
  decodes none; the SDK's ``Instances.create`` returns nothing); CONFIGURING for ``config_seconds``
  (the Supervisor makes the Kubernetes namespace, its quota and class bindings), then RUNNING;
* ``GET .../instances/{namespace}``: its ``Instances.Info`` (``config_status``, ``messages``...);
  ``GET .../instances``: an ``Instances.Summary`` each; ``DELETE .../instances/{namespace}``: REMOVING,
  then gone (what it held in the Supervisor, its Tanzu Kubernetes clusters too); a Supervisor disabled
  takes its namespaces with it;
* ``GET /api/vcenter/namespace-management/virtual-machine-classes[/{id}]``: the default classes a
  vCenter of 7.0 Update 2a and later has (``best-effort-*`` and ``guaranteed-*``, xsmall 2 vCPU 2 GiB
  to 8xlarge 32 vCPU 128 GiB), each naming the namespaces it is bound to.

Each namespace is also the Supervisor's (``on_change``): its Kubernetes API (:mod:`tkgs_simulators.kubernetes`)
serves a namespace of that name, its storage policy as a storage class, its bound classes.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

from com.vmware.vapi.std_client import LocalizableMessage
from com.vmware.vcenter.namespace_management_client import VirtualMachineClasses
from com.vmware.vcenter.namespaces_client import Instances

__all__ = ["NamespaceInstances", "PlayedNamespace", "DEFAULT_VM_CLASSES", "INSTANCES", "VM_CLASSES"]

INSTANCES = "/api/vcenter/namespaces/instances"
VM_CLASSES = "/api/vcenter/namespace-management/virtual-machine-classes"
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# (size, vCPUs, memory in MiB): the classes vCenter 7.0 Update 2a and later carry from the start.
_SIZES = (("xsmall", 2, 2048), ("small", 2, 4096), ("medium", 2, 8192), ("large", 4, 16384),
          ("xlarge", 4, 32768), ("2xlarge", 8, 65536), ("4xlarge", 16, 131072), ("8xlarge", 32, 131072))
DEFAULT_VM_CLASSES = {f"{kind}-{size}": (cpus, memory) for kind in ("best-effort", "guaranteed")
                      for size, cpus, memory in _SIZES}
ConfigStatus = Instances.ConfigStatus


@dataclass
class PlayedNamespace:
    """A namespace the stand-in holds: the spec it was created with and where it has got to."""

    spec: Instances.CreateSpec = field(repr=False)
    status: str = ConfigStatus.CONFIGURING
    messages: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.namespace

    @property
    def vm_classes(self) -> list[str]:
        return list(self.spec.vm_service_spec.vm_classes or []) if self.spec.vm_service_spec else []

    @property
    def storage_policies(self) -> list[str]:
        return [s.policy for s in self.spec.storage_specs or []]


class Refused(Exception):
    """A request the stand-in refuses: vCenter's error type and its sentence."""

    def __init__(self, error_type: str, message_id: str, sentence: str) -> None:
        super().__init__(sentence)
        self.error_type, self.message_id, self.sentence = error_type, message_id, sentence


class NamespaceInstances:
    """The namespaces of one vCenter. ``supervisor_running(cluster)``: whether the cluster's Supervisor runs;
    ``on_change(namespace, present)``: told when one is RUNNING and when it goes."""

    def __init__(self, supervisor_running: Callable[[str], bool], *, config_seconds: Callable[[], float],
                 on_change: Callable[[PlayedNamespace, bool], None] = lambda ns, present: None) -> None:
        self._supervisor_running, self._config_seconds, self._on_change = supervisor_running, config_seconds, on_change
        self._lock = threading.Lock()
        self._namespaces: dict[str, PlayedNamespace] = {}
        self.create_requests: list[Instances.CreateSpec] = []

    def __repr__(self) -> str:
        return f"<NamespaceInstances {len(self._namespaces)}>"

    def namespace(self, name: str) -> Optional[PlayedNamespace]:
        with self._lock:
            return self._namespaces.get(name)

    def create(self, spec: Instances.CreateSpec) -> None:
        name = spec.namespace or ""
        if not _DNS_LABEL.match(name):
            raise Refused("INVALID_ARGUMENT", "vcenter.wcp.namespace.name.invalid",
                          f"Namespace name {name!r} is invalid: it must be a DNS-1123 label (a-z, 0-9 and '-', at "
                          f"most 63 characters).")
        if not self._supervisor_running(spec.cluster):
            raise Refused("NOT_ALLOWED_IN_CURRENT_STATE", "vcenter.wcp.cluster.not_running",
                          f"Cluster {spec.cluster} has no running Supervisor: enable Workload Management first.")
        unknown = [c for c in (spec.vm_service_spec.vm_classes if spec.vm_service_spec else None) or []
                   if c not in DEFAULT_VM_CLASSES]
        if unknown:
            raise Refused("INVALID_ARGUMENT", "vcenter.wcp.vmclass.not_found",
                          f"Virtual machine class(es) {', '.join(sorted(unknown))} do not exist.")
        for storage in spec.storage_specs or []:
            if storage.limit is not None and storage.limit < 0:
                raise Refused("INVALID_ARGUMENT", "vcenter.wcp.storage.limit.invalid",
                              f"Storage limit {storage.limit} of policy {storage.policy} is negative.")
        with self._lock:
            if name in self._namespaces:
                raise Refused("ALREADY_EXISTS", "vcenter.wcp.namespace.exists", f"Namespace {name} already exists.")
            played = PlayedNamespace(spec, messages=[("vcenter.wcp.namespace.configuring",
                                                      f"Namespace {name} is being configured.")])
            self._namespaces[name] = played
            self.create_requests.append(spec)
        threading.Thread(target=self._configure, args=(played,), name=f"namespace-{name}", daemon=True).start()

    def _configure(self, played: PlayedNamespace) -> None:
        threading.Event().wait(self._config_seconds())
        with self._lock:
            if self._namespaces.get(played.name) is not played:
                return
        self._on_change(played, True)
        with self._lock:
            played.status, played.messages = ConfigStatus.RUNNING, []

    def delete(self, name: str) -> None:
        with self._lock:
            played = self._namespaces.get(name)
            if played is None:
                raise self.not_found(name)
            played.status, played.messages = ConfigStatus.REMOVING, []

        def remove() -> None:
            threading.Event().wait(self._config_seconds())
            self._on_change(played, False)
            with self._lock:
                if self._namespaces.get(name) is played:
                    del self._namespaces[name]
        threading.Thread(target=remove, name=f"namespace-{name}-removal", daemon=True).start()

    def remove_on(self, cluster: str) -> None:
        """The cluster's Supervisor is being disabled: each namespace on it goes too (REMOVING, then gone), as
        vCenter removes a Supervisor's namespaces with it."""
        with self._lock:
            names = [name for name, played in self._namespaces.items() if played.spec.cluster == cluster]
        for name in names:
            self.delete(name)

    def held(self) -> list[tuple[str, str, str]]:
        """(name, cluster, config_status) of each namespace held, sorted."""
        with self._lock:
            return sorted((name, p.spec.cluster, str(p.status)) for name, p in self._namespaces.items())

    @staticmethod
    def not_found(name: str) -> Refused:
        return Refused("NOT_FOUND", "vcenter.wcp.namespace.not_found", f"Namespace {name} does not exist.")

    def info(self, name: str) -> Instances.Info:
        with self._lock:
            played = self._namespaces.get(name)
            if played is None:
                raise self.not_found(name)
            spec, status, messages = played.spec, played.status, list(played.messages)
        return Instances.Info(
            cluster=spec.cluster, config_status=status, description=spec.description or "",
            messages=[Instances.Message(severity=Instances.Message.MessageSeverity.INFO, details=LocalizableMessage(
                id=i, default_message=text, args=[])) for i, text in messages],
            stats=Instances.Stats(cpu_used=0, memory_used=0, storage_used=0),
            access_list=spec.access_list or [], storage_specs=spec.storage_specs or [], networks=None,
            vm_service_spec=spec.vm_service_spec or Instances.VMServiceSpec(content_libraries=set(), vm_classes=set()),
            self_service_namespace=False)

    def summaries(self) -> list[Instances.Summary]:
        with self._lock:
            played = list(self._namespaces.values())
        return [Instances.Summary(cluster=p.spec.cluster, namespace=p.name, description=p.spec.description or "",
                                  config_status=p.status, stats=Instances.Stats(cpu_used=0, memory_used=0,
                                                                                storage_used=0),
                                  self_service_namespace=False) for p in played]

    def vm_classes(self) -> list[VirtualMachineClasses.Info]:
        with self._lock:
            bound = {name: sorted(n for n, p in self._namespaces.items() if name in p.vm_classes)
                     for name in DEFAULT_VM_CLASSES}
        return [VirtualMachineClasses.Info(id=name, cpu_count=cpus, memory_mb=memory, description="",
                                           namespaces=set(bound[name]), vms=set(),
                                           config_status=VirtualMachineClasses.ConfigStatus.READY, messages=[])
                for name, (cpus, memory) in DEFAULT_VM_CLASSES.items()]
