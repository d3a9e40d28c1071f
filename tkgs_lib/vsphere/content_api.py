"""vCenter's content-library REST endpoints, typed: one method per request, and what they answer.

The values (:class:`Library`, :class:`LibraryItem`) are what the library planner compares; the
uploads that use the update-session calls are :mod:`tkgs_lib.vsphere.upload`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..errors import VSphereError
from ..ova import DIGEST_PREFIX
from .rest import RestClient

__all__ = ["ITEM_TYPE", "Library", "LibraryItem", "ContentLibraryApi"]

ITEM_TYPE = "ovf"

LIBRARY = "/rest/com/vmware/content/library"
LOCAL_LIBRARY = "/rest/com/vmware/content/local-library"
SUBSCRIBED_LIBRARY = "/rest/com/vmware/content/subscribed-library"
ITEM = "/rest/com/vmware/content/library/item"
ITEM_FILE = "/rest/com/vmware/content/library/item/file"
UPDATE_SESSION = "/rest/com/vmware/content/library/item/update-session"
UPDATE_SESSION_FILE = "/rest/com/vmware/content/library/item/updatesession/file"


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

    def item_ids(self, library_id: str) -> list[str]:
        """The ids of every item of a library (``GET .../library/item?library_id=``)."""
        return list(self.rest.get(ITEM, {"library_id": library_id}) or [])

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

    def delete_library(self, library: Library) -> None:
        """Remove a library (and the items it holds)."""
        kind = LOCAL_LIBRARY if library.type == "LOCAL" else SUBSCRIBED_LIBRARY
        self.rest.delete(f"{kind}/id:{library.id}")

    def library_or_none(self, library_id: str) -> Optional[Library]:
        """The library ``library_id``, or None when vCenter holds none of that id (404)."""
        from ..errors import RestError

        try:
            return self.library(library_id)
        except RestError as exc:
            if exc.status == 404:
                return None
            raise

    def item_ids(self, library_id: str) -> list[str]:
        """The ids of the items library ``library_id`` holds."""
        return list(self.rest.get(ITEM, {"library_id": library_id}) or [])

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
