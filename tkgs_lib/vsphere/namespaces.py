"""vSphere Namespaces on a Supervisor, and the VM classes they bind, through vCenter's ``/api`` (7.0.1 and later).

The create request is VMware's own type, ``com.vmware.vcenter.namespaces_client.Instances.CreateSpec``
(:func:`build_create_spec`), serialized by VMware's runtime as ``/api`` reads it, as the enable request
is (:mod:`.namespace_management`). The calls (VMware's API reference, "vcenter namespaces instances";
govmomi ``vapi/namespace/namespace.go``, ``NamespacesPath``):

``POST /api/vcenter/namespaces/instances``   answers without a body (govmomi's ``CreateNamespace`` decodes
                                             none; the SDK's ``Instances.create`` returns nothing)
``GET /api/vcenter/namespaces/instances/{namespace}``   its ``Instances.Info``: ``config_status``
                                             CONFIGURING | RUNNING | ERROR | REMOVING, with ``messages``
``GET /api/vcenter/namespaces/instances``   an ``Instances.Summary`` of each namespace (its cluster, status)
``DELETE /api/vcenter/namespaces/instances/{namespace}``   answers without a body; vCenter says REMOVING,
                                             then no longer lists it
``GET /api/vcenter/namespace-management/virtual-machine-classes``   each class, with the namespaces
                                             it is bound to (from vCenter 7.0 Update 2a)

``access_list`` entries are a subject, its domain, USER or GROUP and a role (EDIT, VIEW; OWNER from API
7.0.2.00100); ``storage_specs`` take the storage policy's id and a limit in MiB; ``vm_service_spec`` (from
7.0.2.00100) the VM classes bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from com.vmware.vcenter.namespace_management_client import VirtualMachineClasses
from com.vmware.vcenter.namespaces_client import Access, Instances
from vmware.vapi.bindings.converter import RestConverter, TypeConverter
from vmware.vapi.bindings.type import ListType
from vmware.vapi.data.serializers.cleanjson import DataValueConverter
from vmware.vapi.exception import CoreException

from ..errors import ConnectionFailed, RestError, VSphereError
from .namespace_management import NamespaceManagement, Unanswered, _runtime_sentence
from .rest import RestClient

__all__ = ["AccessEntry", "build_create_spec", "create_body", "Namespaces", "INSTANCES_PATH", "VM_CLASSES_PATH",
           "namespace_messages"]

INSTANCES_PATH = "/api/vcenter/namespaces/instances"
VM_CLASSES_PATH = "/api/vcenter/namespace-management/virtual-machine-classes"


@dataclass(frozen=True)
class AccessEntry:
    subject_type: str  # USER | GROUP
    subject: str
    domain: str
    role: str  # OWNER | EDIT | VIEW


def build_create_spec(*, cluster: str, namespace: str, description: str, access: Sequence[AccessEntry],
                      storage_policy: str, storage_limit_mib: int, vm_classes: Sequence[str]) -> Instances.CreateSpec:
    """The CreateSpec: ``storage_policy`` is the policy's id; a limit of 0 sends none (no limit); no VM
    classes sends no ``vm_service_spec`` (a vCenter before 7.0 Update 2a has none)."""
    return Instances.CreateSpec(
        cluster=cluster, namespace=namespace, description=description,
        access_list=[Instances.Access(subject_type=Access.SubjectType(a.subject_type), subject=a.subject,
                                      domain=a.domain, role=Access.Role(a.role)) for a in access],
        storage_specs=[Instances.StorageSpec(policy=storage_policy, limit=storage_limit_mib or None)],
        vm_service_spec=Instances.VMServiceSpec(vm_classes=set(vm_classes), content_libraries=set())
        if vm_classes else None)


def create_body(spec: Instances.CreateSpec) -> str:
    """The spec as ``/api`` reads it, serialized by VMware's runtime."""
    try:
        value = TypeConverter.convert_to_vapi(spec, Instances.CreateSpec.get_binding_type(), RestConverter.SWAGGER_REST)
    except CoreException as exc:
        raise VSphereError(f"the namespace's CreateSpec is incomplete: {_runtime_sentence(exc)}.") from None
    return DataValueConverter.convert_to_json(value)


def namespace_messages(info: Instances.Info) -> list[str]:
    return [m.details.default_message if m.details else "" for m in info.messages or []]


class Namespaces:
    """vSphere Namespaces and VM classes on a vCenter, over ``rest`` (a logged-in :class:`RestClient`)."""

    def __init__(self, rest: RestClient) -> None:
        self.rest = rest

    def __repr__(self) -> str:
        return f"<Namespaces {self.rest.base_url}>"

    def create(self, spec: Instances.CreateSpec) -> None:
        self.rest.api_post(INSTANCES_PATH, create_body(spec))

    def get(self, name: str) -> Optional[Instances.Info]:
        """The namespace's Info, or None when vCenter has none of that name (404)."""
        path = f"{INSTANCES_PATH}/{name}"
        try:
            data = self.rest.api_get(path)
        except RestError as exc:
            if exc.status == 404:
                return None
            raise
        return NamespaceManagement._read("GET", path, data, Instances.Info.get_binding_type(), "an Instances.Info")

    def list(self) -> list[Instances.Summary]:
        """A summary of every namespace vCenter holds, on any cluster."""
        return NamespaceManagement._read("GET", INSTANCES_PATH, self.rest.api_get(INSTANCES_PATH),
                                         ListType(Instances.Summary.get_binding_type()), "a list of Instances.Summary")

    def delete(self, name: str) -> None:
        self.rest.api_delete(f"{INSTANCES_PATH}/{name}")

    def vm_classes(self) -> list[VirtualMachineClasses.Info]:
        return NamespaceManagement._read("GET", VM_CLASSES_PATH, self.rest.api_get(VM_CLASSES_PATH),
                                         ListType(VirtualMachineClasses.Info.get_binding_type()),
                                         "a list of VirtualMachineClasses.Info")

    def wait_until_running(self, name: str, *, timeout: float, poll: float = 2.0,
                           on_poll: Optional[Callable[[object], None]] = None, progress: str = "",
                           show_progress: bool = True) -> Instances.Info:
        """:meth:`get` until the namespace is RUNNING; ERROR or REMOVING ends the wait with vCenter's messages,
        the timeout with the last status; a read vCenter does not answer is waited through."""
        from ..polling import wait_until

        def done(info) -> bool:
            if isinstance(info, Unanswered) or info is None:
                return False
            status = str(info.config_status)
            if status in ("ERROR", "REMOVING"):
                said = "; ".join(namespace_messages(info)) or "no message"
                raise VSphereError(f"namespace {name} is {status}: vCenter says: {said}.")
            return status == "RUNNING"

        def timed_out(info, elapsed: float) -> Exception:
            status = "not listed" if info is None else "unanswered" if isinstance(info, Unanswered) else \
                str(info.config_status)
            return VSphereError(f"namespace {name} is still {status} after {elapsed:.0f} s (namespace.timeout is "
                                f"{timeout:g}).")

        return wait_until(lambda: self._read_through(name), done, timeout=timeout, timed_out=timed_out,
                          interval=min(0.5, poll), max_interval=poll,
                          on_poll=(lambda info, _: on_poll(info)) if on_poll else None, progress=progress,
                          show_progress=show_progress)

    def wait_until_gone(self, name: str, *, timeout: float, poll: float = 2.0,
                        on_poll: Optional[Callable[[object], None]] = None, progress: str = "",
                        show_progress: bool = True) -> None:
        """:meth:`get` until vCenter no longer holds the namespace (a delete done: REMOVING, then gone); ERROR
        ends the wait with vCenter's messages, the timeout with the last status; a read vCenter does not answer
        is waited through."""
        from ..polling import wait_until

        def done(info) -> bool:
            if info is None:
                return True
            if not isinstance(info, Unanswered) and str(info.config_status) == "ERROR":
                said = "; ".join(namespace_messages(info)) or "no message"
                raise VSphereError(f"namespace {name} was being removed and is in ERROR: vCenter says: {said}.")
            return False

        def timed_out(info, elapsed: float) -> Exception:
            status = "unanswered" if isinstance(info, Unanswered) else str(info.config_status)
            return VSphereError(f"namespace {name} is still {status} {elapsed:.0f} s after it was deleted "
                                f"(namespace.timeout is {timeout:g}).")

        wait_until(lambda: self._read_through(name), done, timeout=timeout, timed_out=timed_out,
                   interval=min(0.5, poll), max_interval=poll,
                   on_poll=(lambda info, _: on_poll(info)) if on_poll else None, progress=progress,
                   show_progress=show_progress)

    def _read_through(self, name: str):
        """:meth:`get` for a wait: a read vCenter does not answer is :class:`Unanswered`, waited through."""
        try:
            return self.get(name)
        except ConnectionFailed as lost:
            return Unanswered(lost)
