"""Content libraries: the subscribed library for Tanzu, the local one and the HAProxy OVA item.

Read, plan, apply, like every resource: :func:`read_content_libraries` turns vCenter (and the
OVA file on disk) into a :class:`ContentLibraryFacts` value, :func:`plan_content_libraries`
compares it with the site (a pure function, tested without vCenter), and the plan's steps change
vCenter through :class:`ContentLibraryOps`.

* Both libraries are backed by ``content_libraries.datastore``, else the first of
  ``vcenter.datastores``. A library of the site's name with other settings is a conflict: the
  stage stops and says what differs; it never rewrites a library someone else may depend on.
* The OVA item: before an upload is planned the OVA is checked against its manifest (a
  mismatch raises :class:`~tkgs_lib.errors.ManifestMismatch` while reading, so nothing, not even
  a library, is created). The upload itself (streamed, all or nothing) is
  :func:`~tkgs_lib.vsphere.upload.upload_ova`; it records ``sha256-manifest:<hex>`` in the item's
  description, so a rerun that finds the same digest and the same file names and sizes leaves
  the item alone and a different one is a conflict.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import OvaError, SiteError
from ..findings import Finding
from ..ova import DIGEST_PREFIX, Ova, OvaContent
from ..site import Site
from ..planning import PendingId, Plan, Step, VALUES_ONLY
from ..display.tables import Table
from .content_api import ITEM_TYPE, ContentLibraryApi, Library, LibraryItem
from .inventory import Inventory
from .upload import upload_ova

__all__ = ["TITLE", "OvaFacts", "ContentLibraryFacts", "ContentLibraryOps", "read_content_libraries",
           "plan_content_libraries", "library_table", "library_item_table"]

TITLE = "content libraries"


# --- read ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OvaFacts:
    """The site's OVA on disk: what it would put in the item, and whether its manifest was checked."""

    path: Path
    content: OvaContent
    verified: bool  # checked against its manifest (done when an upload may be needed)
    size: int = 0  # size and mtime when read: an upload refuses an OVA that changed since
    mtime_ns: int = 0


@dataclass
class ContentLibraryFacts:
    """What vCenter has of the site's content libraries, and the OVA to compare the item with."""

    datastore_name: str
    datastore_id: str
    datastore_names: dict[str, str]  # moid -> name, to show backings by name
    subscribed: list[Library]  # every library named like the site's subscribed library
    local: list[Library]  # every library named like the site's local library
    items: list[LibraryItem] = field(default_factory=list)  # the OVA item(s), when the local library is unique
    ova: Optional[OvaFacts] = None  # None only when the local library is in conflict (no item is planned)

    def datastore_name_of(self, datastore_id: str) -> str:
        return self.datastore_names.get(datastore_id, datastore_id)


def _backing_datastore(site: Site) -> tuple[str, str]:
    """The name and the site field of the datastore that backs both libraries."""
    libraries = site.content_libraries
    if libraries.datastore:
        return libraries.datastore, "content_libraries.datastore"
    if site.vcenter.datastores:
        return site.vcenter.datastores[0], "vcenter.datastores[0]"
    raise SiteError("content_libraries.datastore: no datastore backs the content libraries; name one here "
                    "or list one in vcenter.datastores.")


def _open_ova(site: Site) -> Ova:
    """The site's OVA, read in place. The site check refuses a URL (the manifest is checked locally
    first); here only a file that is not there, or is not an OVA, is reported."""
    where = site.content_libraries.haproxy.ova
    if not where:
        raise SiteError("content_libraries.haproxy.ova: no OVA is named; give the path of the HAProxy OVA.")
    if not Path(where).exists():
        raise OvaError(f"content_libraries.haproxy.ova: the OVA file {where} does not exist; download the HAProxy "
                       f"OVA and give its path (relative to the site file).")
    try:
        return Ova(where)
    except OvaError as exc:
        raise exc.reworded(f"content_libraries.haproxy.ova: {exc.message}") from None


def read_ova(site: Site, *, verify: bool, progress: bool = True) -> OvaFacts:
    """The site's OVA as facts; with ``verify``, every file is first checked against its manifest
    (streamed), raising ManifestMismatch naming the file."""
    ova = _open_ova(site)
    stat = os.stat(ova.path)
    try:  # the whole OVA is read before anything is planned: its descriptor too, as the deploy stage reads it
        ova.descriptor()
    except OvaError as exc:
        raise exc.reworded(f"content_libraries.haproxy.ova: {exc.message}") from None
    if verify:
        ova.verify(progress=progress)
    return OvaFacts(ova.path, ova.content(), verify, stat.st_size, stat.st_mtime_ns)


def read_content_libraries(api: ContentLibraryApi, site: Site, inventory: Inventory, *,
                           progress: bool = True) -> ContentLibraryFacts:
    """Read the backing datastore, both libraries (by name), the OVA item and the OVA file; the OVA
    is checked against its manifest when no item holds it yet (an upload will be planned)."""
    name, site_field = _backing_datastore(site)
    datastore = inventory.datastore(name, site_field)
    libraries = site.content_libraries
    local = api.libraries_named(libraries.haproxy.name)
    items: list[LibraryItem] = []
    if len(local) == 1:
        items = api.items_named(local[0].id, libraries.haproxy.item)
    # The item is planned only in a usable local library (see _plan_local): only then is the OVA read.
    local_usable = not local or (len(local) == 1 and local[0].type == "LOCAL"
                                 and datastore._moId in local[0].datastore_ids)
    ova = read_ova(site, verify=not items and local_usable, progress=progress) if local_usable else None
    return ContentLibraryFacts(
        datastore_name=name, datastore_id=datastore._moId,
        datastore_names={ds._moId: n for n, ds in inventory.all_datastores.items()},
        subscribed=api.libraries_named(libraries.kubernetes.name), local=local, items=items, ova=ova)


# --- plan ----------------------------------------------------------------------------------------

def _download(on_demand: Optional[bool]) -> str:
    return "unknown" if on_demand is None else "on_demand" if on_demand else "immediately"


_SYNC = {True: "on", False: "off", None: "unknown"}


def _describe_subscribed(lib: Library, facts: ContentLibraryFacts) -> str:
    stores = ", ".join(facts.datastore_name_of(d) for d in lib.datastore_ids) or "no datastore"
    return (f"subscribed to {lib.subscription_url}, download {_download(lib.on_demand)}, "
            f"automatic sync {_SYNC[lib.automatic_sync]}, on {stores}")


def _thumbprints_differ(found: Optional[str], wanted: Optional[str]) -> bool:
    if not wanted:
        return False  # not asked for: whatever vCenter accepted stands
    norm = lambda t: (t or "").replace(":", "").replace(" ", "").lower()  # noqa: E731
    return norm(found) != norm(wanted)


def _plan_subscribed(plan: Plan, ops, site: Site, facts: ContentLibraryFacts) -> None:
    want = site.content_libraries.kubernetes
    on_demand = want.download == "on_demand"
    obj = f"subscribed library '{want.name}'"
    desired = (f"subscribed to {want.subscription_url}, download {want.download}, automatic sync on, "
               f"on {facts.datastore_name}")
    if not facts.subscribed:
        plan.add(Step.create(obj, desired, lambda: ops.create_subscribed_library(
            want.name, facts.datastore_id, want.subscription_url, on_demand, want.ssl_thumbprint)))
        return
    if len(facts.subscribed) > 1:
        plan.add(Step.conflict(obj, desired, f"{len(facts.subscribed)} libraries of that name",
                               f"vCenter has {len(facts.subscribed)} libraries named '{want.name}' "
                               f"({_ids(facts.subscribed)}); delete all but one or rename "
                               f"content_libraries.kubernetes.name."))
        return
    lib = facts.subscribed[0]
    if lib.type != "SUBSCRIBED":
        plan.add(Step.conflict(obj, desired, f"a {lib.type.lower() or 'other'} library",
                               f"'{want.name}' exists as a {lib.type.lower()} library, not a subscribed one; "
                               f"rename content_libraries.kubernetes.name or delete that library."))
        return
    differences = []
    if lib.subscription_url != want.subscription_url:
        differences.append(f"it subscribes to {lib.subscription_url}, the site to {want.subscription_url}")
    if lib.on_demand != on_demand:
        differences.append(f"it downloads {_download(lib.on_demand)}, the site wants {want.download}")
    if lib.automatic_sync is not True:
        differences.append("its automatic sync is off")
    if facts.datastore_id not in lib.datastore_ids:
        differences.append(f"it is stored on {', '.join(map(facts.datastore_name_of, lib.datastore_ids))}, "
                           f"the site wants {facts.datastore_name}")
    if _thumbprints_differ(lib.ssl_thumbprint, want.ssl_thumbprint):
        differences.append(f"it trusts ssl_thumbprint {lib.ssl_thumbprint}, the site {want.ssl_thumbprint}")
    found = _describe_subscribed(lib, facts)
    if differences:
        plan.add(Step.conflict(obj, desired, found, "; ".join(differences) + ". Change content_libraries to "
                                                                           "match, or change or delete the "
                                                                           "library in vCenter."))
    else:
        plan.add(Step.ok(obj, desired, found))


def _ids(objects) -> str:
    """Each object of a name by its id, so a person can tell which to delete."""
    return ", ".join(f"id {o.id}" for o in objects)


def _plan_local(plan: Plan, ops, site: Site, facts: ContentLibraryFacts, library_id: PendingId) -> bool:
    """Plan the local library; False when it is in conflict (the item cannot be planned).

    Its id is set in ``library_id``: now when it exists, or when its create step runs."""
    want = site.content_libraries.haproxy
    obj = f"local library '{want.name}'"
    desired = f"local, on {facts.datastore_name}"
    if not facts.local:
        plan.add(Step.create(obj, desired,
                             lambda: library_id.set(ops.create_local_library(want.name, facts.datastore_id))))
        return True
    if len(facts.local) > 1:
        plan.add(Step.conflict(obj, desired, f"{len(facts.local)} libraries of that name",
                               f"vCenter has {len(facts.local)} libraries named '{want.name}' ({_ids(facts.local)}); "
                               f"delete all but one or rename content_libraries.haproxy.name."))
        return False
    lib = facts.local[0]
    stores = ", ".join(map(facts.datastore_name_of, lib.datastore_ids)) or "no datastore"
    found = f"{lib.type.lower()}, on {stores}"
    if lib.type != "LOCAL":
        plan.add(Step.conflict(obj, desired, found,
                               f"'{want.name}' exists as a {lib.type.lower()} library, which cannot hold an "
                               f"uploaded OVA; rename content_libraries.haproxy.name or delete that library."))
        return False
    if facts.datastore_id not in lib.datastore_ids:
        plan.add(Step.conflict(obj, desired, found,
                               f"it is stored on {stores}, the site wants {facts.datastore_name}; set "
                               f"content_libraries.datastore: {stores.split(', ')[0]}, or delete the library."))
        return False
    library_id.set(lib.id)
    plan.add(Step.ok(obj, desired, found))
    return True


def _plan_item(plan: Plan, ops, site: Site, facts: ContentLibraryFacts, library_id: PendingId) -> None:
    want = site.content_libraries.haproxy
    obj = f"OVA item '{want.item}' in '{want.name}'"
    ova = facts.ova
    desired = ova.content.describe()
    if len(facts.items) > 1:
        plan.add(Step.conflict(obj, desired, f"{len(facts.items)} items of that name",
                               f"the library holds {len(facts.items)} items named '{want.item}' ({_ids(facts.items)}); "
                               f"delete all but one."))
        return
    if facts.items:
        plan.add(_compare_item(obj, desired, facts.items[0], ova.content))
        return
    if not ova.verified:  # the reader checks the manifest whenever an upload may be needed
        raise OvaError(f"{ova.path}: an upload is planned but the OVA was not checked against its manifest; "
                       f"read the facts again.")
    plan.add(Step.create(obj, desired, lambda: ops.upload(library_id.get(), want.item, ova)))


def _compare_item(obj: str, desired: str, item: LibraryItem, content: OvaContent) -> Step:
    found = item.describe()
    wanted_files = tuple(sorted(content.files))
    if item.manifest_digest is None:
        why = (f"the item exists but records no {DIGEST_PREFIX} digest, so its content cannot be compared "
               f"with the OVA (made by hand, or an upload did not finish); delete the item, or give "
               f"content_libraries.haproxy.item another name.")
    elif item.manifest_digest != content.manifest_digest:
        why = (f"the item holds another OVA: its manifest digest is {item.manifest_digest}, the site's OVA "
               f"has {content.manifest_digest}; give content_libraries.haproxy.item a new name (e.g. the "
               f"OVA's version) or delete the old item.")
    elif item.files != wanted_files:
        why = (f"the item records the OVA's digest but holds other files ({found}); it is damaged: delete "
               f"it and apply again.")
    elif item.type and item.type != ITEM_TYPE:
        why = f"the item is of type {item.type}, not {ITEM_TYPE}; delete it and apply again."
    else:
        return Step.ok(obj, desired, found)
    return Step.conflict(obj, desired, found, why)


def plan_content_libraries(site: Site, facts: Optional[ContentLibraryFacts],
                           ops: "ContentLibraryOps" = VALUES_ONLY) -> Plan:
    """Compare the site's libraries and OVA item with ``facts``; ``ops`` runs the create steps."""
    plan = Plan(TITLE)
    if site.content_libraries is None:
        plan.findings.append(Finding.warning(
            "content_libraries", "is not in the site, so no content library is prepared (neither the "
                                 "subscribed Tanzu library nor the local one with the HAProxy OVA).",
            "add content_libraries (kubernetes, haproxy) to the site file; see `tkgs-runbook fields`."))
        return plan
    library_id = PendingId(f"local library '{site.content_libraries.haproxy.name}'")  # for the upload step
    _plan_subscribed(plan, ops, site, facts)
    if _plan_local(plan, ops, site, facts, library_id):
        _plan_item(plan, ops, site, facts, library_id)
    return plan


# --- apply ---------------------------------------------------------------------------------------

class ContentLibraryOps:
    """The changes a library plan makes: create a library; upload the OVA into a new item."""

    @classmethod
    def for_run(cls, run) -> Optional["ContentLibraryOps"]:
        return cls(ContentLibraryApi(run.vcenter.rest), progress=run.progress) if run.vcenter is not None else None

    def __init__(self, api: ContentLibraryApi, *, progress: bool = True) -> None:
        self.api, self.progress = api, progress

    def create_subscribed_library(self, name: str, datastore_id: str, url: str, on_demand: bool,
                                  ssl_thumbprint: Optional[str] = None) -> str:
        return self.api.create_subscribed_library(name, datastore_id, url, on_demand, ssl_thumbprint)

    def create_local_library(self, name: str, datastore_id: str) -> str:
        return self.api.create_local_library(name, datastore_id)

    def upload(self, library_id: str, item_name: str, ova: OvaFacts) -> str:
        """Upload the OVA the plan was made from; refused if the file changed since it was checked."""
        now = os.stat(ova.path)
        if (now.st_size, now.st_mtime_ns) != (ova.size, ova.mtime_ns):
            raise OvaError(f"{ova.path} changed after its manifest was checked; plan again.")
        return upload_ova(self.api, library_id, item_name, Ova(ova.path), progress=self.progress)


# --- report --------------------------------------------------------------------------------------

LIBRARY_COLUMNS = ["library", "type", "subscription URL", "download", "automatic sync", "SSL thumbprint",
                   "last sync", "storage"]
ITEM_COLUMNS = ["library", "item", "found", "files", "total size", "recorded manifest digest"]


def library_table(site: Site, facts: Optional[ContentLibraryFacts]) -> Table:
    """What vCenter reports of the site's libraries (type, subscription, sync, storage), one row each.

    Every cell is text; what does not apply (a local library's subscription) is empty."""
    rows = []
    if site.content_libraries is not None and facts is not None:
        for lib in facts.subscribed + facts.local:
            subscribed = lib.type == "SUBSCRIBED"
            rows.append({
                "library": lib.name, "type": lib.type.lower(),
                "subscription URL": (lib.subscription_url or "") if subscribed else "",
                "download": _download(lib.on_demand) if subscribed else "",
                "automatic sync": _SYNC[lib.automatic_sync] if subscribed else "",
                "SSL thumbprint": lib.ssl_thumbprint or "",
                "last sync": lib.last_sync_time or ("never reported" if subscribed else ""),
                "storage": ", ".join(facts.datastore_name_of(d) for d in lib.datastore_ids)})
    return Table(rows, LIBRARY_COLUMNS, empty="vCenter holds no library of the site's names.")


def library_item_table(site: Site, facts: Optional[ContentLibraryFacts]) -> Table:
    """What vCenter reports of the HAProxy OVA item: its files with their sizes, the total, and the
    manifest digest recorded when it was uploaded. One row per item of the site's name; a row
    with found "no" when there is none. Every cell is text; what does not apply is empty."""
    rows = []
    if site.content_libraries is not None and facts is not None:
        want = site.content_libraries.haproxy
        for item in facts.items:
            digest = item.manifest_digest
            rows.append({
                "library": want.name, "item": item.name, "found": "yes",
                "files": ", ".join(f"{name} ({size:,} B)" for name, size in item.files) or "none",
                "total size": _size(sum(size for _, size in item.files)),
                "recorded manifest digest": f"{DIGEST_PREFIX}{digest}" if digest else "none recorded"})
        if not facts.items:
            found = (f"cannot tell: {len(facts.local)} libraries named '{want.name}'" if len(facts.local) > 1
                     else "no")
            rows.append({"library": want.name, "item": want.item, "found": found, "files": "", "total size": "",
                         "recorded manifest digest": ""})
    return Table(rows, ITEM_COLUMNS, empty="The site names no content library.")


def _size(n: int) -> str:
    """Bytes exactly, and in the largest binary unit that keeps the number at least 1: 3,146,752 B (3.0 MiB)."""
    exact = f"{n:,} B"
    for unit, power in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << power:
            return f"{exact} ({n / (1 << power):.1f} {unit})"
    return exact
