"""Content libraries: the subscribed library for Tanzu, the local one and the HAProxy OVA item.

read → plan → apply, like every stage. :func:`plan_content_libraries` reads what vCenter has
and returns a :class:`~tkgs_lib.plan.Plan`; nothing changes until ``plan.apply()``.

* Both libraries are backed by ``content_libraries.datastore``, else the first of
  ``vcenter.datastores``. A library of the site's name with other settings is a conflict: the
  stage stops and says what differs; it never rewrites a library someone else may depend on.
* The OVA item: before an upload is planned the OVA is checked against its manifest (a
  mismatch raises :class:`~tkgs_lib.errors.ManifestMismatch` from planning, so nothing, not even
  a library, is created). The upload itself (streamed, all or nothing) is
  :func:`~tkgs_lib.vsphere.upload.upload_ova`; it records ``sha256-manifest:<hex>`` in the item's
  description, so a rerun that finds the same digest and the same file names and sizes leaves
  the item alone and a different one is a conflict.

This module holds the typed wrapper of the content-library REST endpoints
(:class:`ContentLibraryApi`), reading, planning and the report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..errors import OvaError, SiteError, VSphereError
from ..findings import Finding
from ..ova import DIGEST_PREFIX, Ova, OvaContent
from ..plan import Plan, Step
from . import PendingId
from .inventory import Inventory
from .rest import RestClient
from .upload import upload_ova

__all__ = [
    "STAGE", "Library", "LibraryItem", "ContentLibraryApi", "ContentLibraryState",
    "read_content_libraries", "plan_content_libraries", "library_table", "library_item_table",
]

STAGE = "content libraries"
ITEM_TYPE = "ovf"

LIBRARY = "/rest/com/vmware/content/library"
LOCAL_LIBRARY = "/rest/com/vmware/content/local-library"
SUBSCRIBED_LIBRARY = "/rest/com/vmware/content/subscribed-library"
ITEM = "/rest/com/vmware/content/library/item"
ITEM_FILE = "/rest/com/vmware/content/library/item/file"
UPDATE_SESSION = "/rest/com/vmware/content/library/item/update-session"
UPDATE_SESSION_FILE = "/rest/com/vmware/content/library/item/updatesession/file"


# --- what vCenter reports ------------------------------------------------------------------------

@dataclass(frozen=True)
class Library:
    """One content library as vCenter reports it."""

    id: str
    name: str
    type: str  # LOCAL or SUBSCRIBED
    datastore_ids: tuple[str, ...]
    subscription_url: Optional[str] = None
    on_demand: Optional[bool] = None
    automatic_sync: Optional[bool] = None
    ssl_thumbprint: Optional[str] = None
    last_sync_time: Optional[str] = None

    @classmethod
    def from_rest(cls, value: dict) -> "Library":
        sub = value.get("subscription_info") or {}
        return cls(id=value.get("id", ""), name=value.get("name", ""), type=value.get("type", ""),
                   datastore_ids=tuple(b.get("datastore_id", "") for b in value.get("storage_backings") or []),
                   subscription_url=sub.get("subscription_url"), on_demand=sub.get("on_demand"),
                   automatic_sync=sub.get("automatic_sync_enabled"), ssl_thumbprint=sub.get("ssl_thumbprint"),
                   last_sync_time=value.get("last_sync_time"))


@dataclass(frozen=True)
class LibraryItem:
    """One library item with its files (name, size)."""

    id: str
    name: str
    type: str
    description: str
    files: tuple[tuple[str, int], ...]

    @property
    def manifest_digest(self) -> Optional[str]:
        """The OVA manifest digest tkgs-runbook recorded in the description, if any."""
        for word in self.description.split():
            if word.startswith(DIGEST_PREFIX):
                return word[len(DIGEST_PREFIX):]
        return None

    def describe(self) -> str:
        digest = self.manifest_digest
        files = ", ".join(f"{name} ({size:,} B)" for name, size in sorted(self.files)) or "no files"
        recorded = f"{DIGEST_PREFIX}{digest[:12]}…" if digest else "no manifest digest recorded"
        return f"{recorded}; {files}"


class ContentLibraryApi:
    """The content-library endpoints under /rest, typed; one method per request."""

    def __init__(self, rest: RestClient) -> None:
        self.rest = rest

    def libraries_named(self, name: str) -> list[Library]:
        # find matches names case-insensitively, as vCenter keeps them unique: take what it finds.
        ids = self.rest.post(LIBRARY, {"spec": {"name": name}}, action="find") or []
        return [self.library(i) for i in ids]

    def library(self, library_id: str) -> Library:
        return Library.from_rest(self.rest.get(f"{LIBRARY}/id:{library_id}"))

    def create_local_library(self, name: str, datastore_id: str) -> str:
        spec = {"name": name, "type": "LOCAL", "storage_backings": [_backing(datastore_id)]}
        return self.rest.post(LOCAL_LIBRARY, {"create_spec": spec})

    def create_subscribed_library(self, name: str, datastore_id: str, url: str, on_demand: bool,
                                  ssl_thumbprint: Optional[str] = None) -> str:
        subscription: dict[str, Any] = {"subscription_url": url, "on_demand": on_demand,
                                        "automatic_sync_enabled": True, "authentication_method": "NONE"}
        if ssl_thumbprint:
            subscription["ssl_thumbprint"] = ssl_thumbprint
        spec = {"name": name, "type": "SUBSCRIBED", "storage_backings": [_backing(datastore_id)],
                "subscription_info": subscription}
        return self.rest.post(SUBSCRIBED_LIBRARY, {"create_spec": spec})

    def items_named(self, library_id: str, name: str) -> list[LibraryItem]:
        ids = self.rest.post(ITEM, {"spec": {"library_id": library_id, "name": name}}, action="find") or []
        return [self.item(i) for i in ids]

    def item(self, item_id: str) -> LibraryItem:
        value = self.rest.get(f"{ITEM}/id:{item_id}")
        files = self.rest.get(ITEM_FILE, {"library_item_id": item_id}) or []
        return LibraryItem(id=value.get("id", item_id), name=value.get("name", ""), type=value.get("type", ""),
                           description=value.get("description") or "",
                           files=tuple(sorted((f["name"], int(f.get("size") or 0)) for f in files)))

    def create_item(self, library_id: str, name: str, description: str) -> str:
        spec = {"library_id": library_id, "name": name, "type": ITEM_TYPE, "description": description}
        return self.rest.post(ITEM, {"create_spec": spec})

    def set_item_description(self, item_id: str, description: str) -> None:
        self.rest.patch(f"{ITEM}/id:{item_id}", {"update_spec": {"description": description}})

    def delete_item(self, item_id: str) -> None:
        self.rest.delete(f"{ITEM}/id:{item_id}")

    def update_sessions(self) -> list[str]:
        # Only the tests call this: they prove an upload (failed or repeated) leaves no update session behind.
        return self.rest.get(UPDATE_SESSION) or []

    def create_update_session(self, item_id: str) -> str:
        return self.rest.post(UPDATE_SESSION, {"create_spec": {"library_item_id": item_id}})

    def update_session(self, session_id: str) -> dict:
        return self.rest.get(f"{UPDATE_SESSION}/id:{session_id}") or {}

    def add_file(self, session_id: str, name: str, size: int) -> str:
        """Announce a file the client will PUT; returns its upload URI."""
        spec = {"name": name, "source_type": "PUSH", "size": size}
        value = self.rest.post(f"{UPDATE_SESSION_FILE}/id:{session_id}", {"file_spec": spec}, action="add")
        uri = ((value or {}).get("upload_endpoint") or {}).get("uri")
        if not uri:
            raise VSphereError(f"vCenter gave no upload address for {name} in update session {session_id}.")
        return uri

    def validate(self, session_id: str) -> Optional[dict]:
        return self.rest.post(f"{UPDATE_SESSION_FILE}/id:{session_id}", action="validate")

    def session_action(self, session_id: str, action: str) -> None:
        self.rest.post(f"{UPDATE_SESSION}/id:{session_id}", action=action)

    def delete_session(self, session_id: str) -> None:
        self.rest.delete(f"{UPDATE_SESSION}/id:{session_id}")


def _backing(datastore_id: str) -> dict:
    return {"type": "DATASTORE", "datastore_id": datastore_id}


# --- read ---------------------------------------------------------------------------------------

@dataclass
class ContentLibraryState:
    """What vCenter has of the site's content libraries."""

    datastore_name: str
    datastore_id: str
    datastore_names: dict[str, str]  # moid -> name, to show backings by name
    subscribed: list[Library]  # every library named like the site's subscribed library
    local: list[Library]  # every library named like the site's local library
    items: list[LibraryItem] = field(default_factory=list)  # the OVA item(s), when the local library is unique

    def datastore_name_of(self, datastore_id: str) -> str:
        return self.datastore_names.get(datastore_id, datastore_id)


def _backing_datastore(site) -> tuple[str, str]:
    """The name and the site field of the datastore that backs both libraries."""
    libraries = site.content_libraries
    if libraries.datastore:
        return libraries.datastore, "content_libraries.datastore"
    if site.vcenter.datastores:
        return site.vcenter.datastores[0], "vcenter.datastores[0]"
    raise SiteError("content_libraries.datastore: no datastore backs the content libraries; name one here "
                    "or list one in vcenter.datastores.")


def read_content_libraries(session, site, inventory: Optional[Inventory] = None) -> ContentLibraryState:
    """Read the backing datastore, both libraries (by name) and the OVA item."""
    name, site_field = _backing_datastore(site)
    inventory = inventory or Inventory(session, site.vcenter)
    datastore = inventory.datastore(name, site_field)
    api = ContentLibraryApi(session.rest)
    libraries = site.content_libraries
    local = api.libraries_named(libraries.haproxy.name)
    items: list[LibraryItem] = []
    if len(local) == 1:
        items = api.items_named(local[0].id, libraries.haproxy.item)
    return ContentLibraryState(
        datastore_name=name, datastore_id=datastore._moId,
        datastore_names={ds._moId: n for n, ds in inventory.all_datastores.items()},
        subscribed=api.libraries_named(libraries.kubernetes.name), local=local, items=items)


# --- plan ----------------------------------------------------------------------------------------

def _download(on_demand: Optional[bool]) -> str:
    return "unknown" if on_demand is None else "on_demand" if on_demand else "immediately"


_SYNC = {True: "on", False: "off", None: "unknown"}


def _describe_subscribed(lib: Library, state: ContentLibraryState) -> str:
    stores = ", ".join(state.datastore_name_of(d) for d in lib.datastore_ids) or "no datastore"
    return (f"subscribed to {lib.subscription_url}, download {_download(lib.on_demand)}, "
            f"automatic sync {_SYNC[lib.automatic_sync]}, on {stores}")


def _thumbprints_differ(found: Optional[str], wanted: Optional[str]) -> bool:
    if not wanted:
        return False  # not asked for: whatever vCenter accepted stands
    norm = lambda t: (t or "").replace(":", "").replace(" ", "").lower()  # noqa: E731
    return norm(found) != norm(wanted)


def _plan_subscribed(plan: Plan, api: ContentLibraryApi, site, state: ContentLibraryState) -> None:
    want = site.content_libraries.kubernetes
    on_demand = want.download == "on_demand"
    obj = f"subscribed library '{want.name}'"
    desired = (f"subscribed to {want.subscription_url}, download {want.download}, automatic sync on, "
               f"on {state.datastore_name}")
    if not state.subscribed:
        plan.add(Step(obj, desired, "missing", "create", run=lambda: api.create_subscribed_library(
            want.name, state.datastore_id, want.subscription_url, on_demand, want.ssl_thumbprint)))
        return
    if len(state.subscribed) > 1:
        plan.add(Step(obj, desired, f"{len(state.subscribed)} libraries of that name", "conflict",
                      why=f"vCenter has {len(state.subscribed)} libraries named '{want.name}'; delete the "
                          f"extra ones or rename content_libraries.kubernetes.name."))
        return
    lib = state.subscribed[0]
    if lib.type != "SUBSCRIBED":
        plan.add(Step(obj, desired, f"a {lib.type.lower() or 'other'} library", "conflict",
                      why=f"'{want.name}' exists as a {lib.type.lower()} library, not a subscribed one; "
                          f"rename content_libraries.kubernetes.name or delete that library."))
        return
    differences = []
    if lib.subscription_url != want.subscription_url:
        differences.append(f"it subscribes to {lib.subscription_url}, the site to {want.subscription_url}")
    if lib.on_demand != on_demand:
        differences.append(f"it downloads {_download(lib.on_demand)}, the site wants {want.download}")
    if lib.automatic_sync is not True:
        differences.append("its automatic sync is off")
    if state.datastore_id not in lib.datastore_ids:
        differences.append(f"it is stored on {', '.join(map(state.datastore_name_of, lib.datastore_ids))}, "
                           f"the site wants {state.datastore_name}")
    if _thumbprints_differ(lib.ssl_thumbprint, want.ssl_thumbprint):
        differences.append(f"it trusts ssl_thumbprint {lib.ssl_thumbprint}, the site {want.ssl_thumbprint}")
    found = _describe_subscribed(lib, state)
    if differences:
        plan.add(Step(obj, desired, found, "conflict",
                      why="; ".join(differences) + ". Change content_libraries to match, or change or delete "
                                                   "the library in vCenter."))
    else:
        plan.add(Step(obj, desired, found, "ok"))


def _plan_local(plan: Plan, api: ContentLibraryApi, site, state: ContentLibraryState,
                library_id: PendingId) -> bool:
    """Plan the local library; False when it is in conflict (the item cannot be planned).

    Its id is set in ``library_id``: now when it exists, or when its create step runs."""
    want = site.content_libraries.haproxy
    obj = f"local library '{want.name}'"
    desired = f"local, on {state.datastore_name}"
    if not state.local:
        plan.add(Step(obj, desired, "missing", "create",
                      run=lambda: library_id.set(api.create_local_library(want.name, state.datastore_id))))
        return True
    if len(state.local) > 1:
        plan.add(Step(obj, desired, f"{len(state.local)} libraries of that name", "conflict",
                      why=f"vCenter has {len(state.local)} libraries named '{want.name}'; delete the extra "
                          f"ones or rename content_libraries.haproxy.name."))
        return False
    lib = state.local[0]
    stores = ", ".join(map(state.datastore_name_of, lib.datastore_ids)) or "no datastore"
    found = f"{lib.type.lower()}, on {stores}"
    if lib.type != "LOCAL":
        plan.add(Step(obj, desired, found, "conflict",
                      why=f"'{want.name}' exists as a {lib.type.lower()} library, which cannot hold an "
                          f"uploaded OVA; rename content_libraries.haproxy.name or delete that library."))
        return False
    if state.datastore_id not in lib.datastore_ids:
        plan.add(Step(obj, desired, found, "conflict",
                      why=f"it is stored on {stores}, the site wants {state.datastore_name}; set "
                          f"content_libraries.datastore: {stores.split(', ')[0]}, or delete the library."))
        return False
    library_id.set(lib.id)
    plan.add(Step(obj, desired, found, "ok"))
    return True


def _open_ova(site) -> Ova:
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


def _plan_item(plan: Plan, api: ContentLibraryApi, site, state: ContentLibraryState,
               library_id: PendingId, progress: bool) -> None:
    want = site.content_libraries.haproxy
    obj = f"OVA item '{want.item}' in '{want.name}'"
    ova = _open_ova(site)
    content = ova.content()
    desired = content.describe()
    if len(state.items) > 1:
        plan.add(Step(obj, desired, f"{len(state.items)} items of that name", "conflict",
                      why=f"the library holds {len(state.items)} items named '{want.item}'; delete the extra ones."))
        return
    if state.items:
        item = state.items[0]
        plan.add(_compare_item(obj, desired, item, content))
        return
    # An upload is planned: the OVA must match its manifest first, or planning stops here.
    ova.verify(progress=progress)
    checked = os.stat(ova.path)

    def upload() -> None:
        now = os.stat(ova.path)
        if (now.st_size, now.st_mtime_ns) != (checked.st_size, checked.st_mtime_ns):
            raise OvaError(f"{ova.path} changed after its manifest was checked; plan again.")
        upload_ova(api, library_id.get(), want.item, ova, progress=progress)

    plan.add(Step(obj, desired, "missing", "create", run=upload))


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
        return Step(obj, desired, found, "ok")
    return Step(obj, desired, found, "conflict", why=why)


def plan_content_libraries(session, site, inventory: Optional[Inventory] = None, *, progress: bool = True) -> Plan:
    """Read vCenter and plan both libraries and the OVA item; changes nothing.

    Raises ManifestMismatch/OvaError when an upload would be needed and the OVA fails its check.
    """
    plan = Plan(STAGE)
    if site.content_libraries is None:
        plan.findings.append(Finding.warning(
            "content_libraries", "is not in the site, so no content library is prepared (neither the "
                                 "subscribed Tanzu library nor the local one with the HAProxy OVA).",
            "add content_libraries (kubernetes, haproxy) to the site file; see `tkgs-runbook fields`."))
        return plan
    state = read_content_libraries(session, site, inventory)
    api = ContentLibraryApi(session.rest)
    library_id = PendingId(f"local library '{site.content_libraries.haproxy.name}'")  # for the upload step
    _plan_subscribed(plan, api, site, state)
    if _plan_local(plan, api, site, state, library_id):
        _plan_item(plan, api, site, state, library_id, progress)
    return plan


# --- report --------------------------------------------------------------------------------------

LIBRARY_COLUMNS = ["library", "type", "subscription URL", "download", "automatic sync", "SSL thumbprint",
                   "last sync", "storage"]
ITEM_COLUMNS = ["library", "item", "found", "files", "total size", "recorded manifest digest"]


def library_table(session, site, state: Optional[ContentLibraryState] = None):
    """What vCenter reports of the site's libraries (type, subscription, sync, storage), one row each.

    Every cell is text; what does not apply (a local library's subscription) is empty."""
    from ..tables import Table

    rows = []
    if site.content_libraries is not None:
        if state is None:
            state = read_content_libraries(session, site)
        for lib in state.subscribed + state.local:
            subscribed = lib.type == "SUBSCRIBED"
            rows.append({
                "library": lib.name, "type": lib.type.lower(),
                "subscription URL": (lib.subscription_url or "") if subscribed else "",
                "download": _download(lib.on_demand) if subscribed else "",
                "automatic sync": _SYNC[lib.automatic_sync] if subscribed else "",
                "SSL thumbprint": lib.ssl_thumbprint or "",
                "last sync": lib.last_sync_time or ("never reported" if subscribed else ""),
                "storage": ", ".join(state.datastore_name_of(d) for d in lib.datastore_ids)})
    return Table(rows, LIBRARY_COLUMNS, empty="The site names no content library.")


def library_item_table(session, site, state: Optional[ContentLibraryState] = None):
    """What vCenter reports of the HAProxy OVA item: its files with their sizes, the total, and the
    manifest digest recorded when it was uploaded. One row per item of the site's name; a row
    with found "no" when there is none. Every cell is text; what does not apply is empty."""
    from ..tables import Table

    rows = []
    if site.content_libraries is not None:
        want = site.content_libraries.haproxy
        if state is None:
            state = read_content_libraries(session, site)
        for item in state.items:
            digest = item.manifest_digest
            rows.append({
                "library": want.name, "item": item.name, "found": "yes",
                "files": ", ".join(f"{name} ({size:,} B)" for name, size in item.files) or "none",
                "total size": _size(sum(size for _, size in item.files)),
                "recorded manifest digest": f"{DIGEST_PREFIX}{digest}" if digest else "none recorded"})
        if not state.items:
            found = (f"cannot tell: {len(state.local)} libraries named '{want.name}'" if len(state.local) > 1
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
