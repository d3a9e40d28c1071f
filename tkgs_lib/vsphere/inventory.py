"""The inventory objects a site names: datacenter, cluster, distributed switch, datastores.

Each is looked up by name when first used; a missing one is a :class:`NotFound` that names
it and lists what does exist, so a typo in the site file reads as one sentence.
"""

from __future__ import annotations

from functools import cached_property
from typing import Iterable, Optional, TypeVar

from pyVmomi import vim

from ..errors import NotFound
from ..site import VCenter

__all__ = ["Inventory", "find_by_name", "names_in"]

T = TypeVar("T")


def names_in(session, root, kind: type) -> dict[str, object]:
    """Name → object of every ``kind`` below ``root`` (first of each name; the simulator repeats some)."""
    view = session.content.viewManager.CreateContainerView(root, [kind], True)
    try:
        found: dict[str, object] = {}
        for obj in view.view:
            found.setdefault(obj.name, obj)
        return found
    finally:
        view.Destroy()


def find_by_name(objects: dict[str, T], name: str, what: str, where: str, field: str) -> T:
    if name in objects:
        return objects[name]
    listing = ", ".join(sorted(objects)) or "none"
    raise NotFound(f"{what} '{name}' (site field {field}) does not exist in {where}; found: {listing}.")


class Inventory:
    """The site's inventory objects, resolved by name on first use."""

    def __init__(self, session, vcenter: VCenter) -> None:
        self.session, self.vcenter = session, vcenter
        self._where = f"vCenter {vcenter.server}"

    @cached_property
    def datacenter(self) -> vim.Datacenter:
        found = names_in(self.session, self.session.content.rootFolder, vim.Datacenter)
        return find_by_name(found, self.vcenter.datacenter, "datacenter", self._where, "vcenter.datacenter")

    @cached_property
    def cluster(self) -> vim.ClusterComputeResource:
        found = names_in(self.session, self.datacenter.hostFolder, vim.ClusterComputeResource)
        return find_by_name(found, self.vcenter.cluster, "cluster",
                            f"datacenter '{self.vcenter.datacenter}'", "vcenter.cluster")

    def cluster_named(self, name: str, field: str) -> vim.ClusterComputeResource:
        """Another cluster of the datacenter than ``vcenter.cluster`` (Workload Management's may be)."""
        if name == self.vcenter.cluster:
            return self.cluster
        found = names_in(self.session, self.datacenter.hostFolder, vim.ClusterComputeResource)
        return find_by_name(found, name, "cluster", f"datacenter '{self.vcenter.datacenter}'", field)

    @cached_property
    def switch(self) -> vim.DistributedVirtualSwitch:
        found = names_in(self.session, self.datacenter.networkFolder, vim.DistributedVirtualSwitch)
        return find_by_name(found, self.vcenter.distributed_switch, "distributed switch",
                            f"datacenter '{self.vcenter.datacenter}'", "vcenter.distributed_switch")

    @cached_property
    def all_datastores(self) -> dict[str, vim.Datastore]:
        """Every datastore of the datacenter, by name."""
        return names_in(self.session, self.datacenter.datastoreFolder, vim.Datastore)  # type: ignore[return-value]

    @cached_property
    def datastores(self) -> list[vim.Datastore]:
        """The site's datastores, in site order."""
        return [self.datastore(name, f"vcenter.datastores[{i}]") for i, name in enumerate(self.vcenter.datastores)]

    def datastore(self, name: str, field: str = "vcenter.datastores") -> vim.Datastore:
        return find_by_name(self.all_datastores, name, "datastore", f"datacenter '{self.vcenter.datacenter}'", field)

    def networks(self) -> dict[str, vim.Network]:
        """Every network (standard or distributed port group) of the datacenter, by name; read fresh."""
        return names_in(self.session, self.datacenter.networkFolder, vim.Network)  # type: ignore[return-value]

    def portgroup_ids(self, names: Iterable[str], recorded: dict[str, str]) -> dict[str, str]:
        """The managed object id of each of the port groups ``names`` that exists: the prepare stage's
        (``recorded``: name → id) when it recorded every one of them, else as vCenter lists them now."""
        wanted = set(names)
        if wanted <= set(recorded):
            return {name: recorded[name] for name in wanted}
        return {name: net._moId for name, net in self.networks().items() if name in wanted}

    def vm_folder(self, path: Optional[str], field: str = "haproxy.vm_folder") -> tuple[vim.Folder, str]:
        """The VM folder at ``path`` under the datacenter's VM folder (None: that folder), and its path."""
        folder = self.datacenter.vmFolder
        shown = f"{self.vcenter.datacenter}/vm"
        for part in [p for p in (path or "").split("/") if p]:
            children = {c.name: c for c in folder.childEntity or () if isinstance(c, vim.Folder)}
            if part not in children:
                raise NotFound(f"VM folder '{path}' (site field {field}) does not exist: '{shown}' has no folder "
                               f"'{part}'; found: {', '.join(sorted(children)) or 'none'}.")
            folder, shown = children[part], f"{shown}/{part}"
        return folder, shown

    def resource_pool(self, name: Optional[str], field: str = "haproxy.resource_pool") -> tuple[vim.ResourcePool, str]:
        """The cluster's resource pool called ``name`` (None: the cluster's own pool), and how to show it."""
        root = self.cluster.resourcePool
        if not name:
            return root, f"{self.vcenter.cluster} (the cluster's own)"
        todo, found = list(root.resourcePool or ()), {}
        while todo:
            pool = todo.pop()
            found.setdefault(pool.name, pool)
            todo += list(pool.resourcePool or ())
        return find_by_name(found, name, "resource pool", f"cluster '{self.vcenter.cluster}'", field), name

    def resolve(self, parts: Iterable[str] = ("datacenter", "cluster", "switch", "datastores")) -> None:
        """Resolve each part now, so a missing one stops a stage before it reads anything else."""
        for part in parts:
            getattr(self, part)
