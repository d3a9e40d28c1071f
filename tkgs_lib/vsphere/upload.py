"""Uploading an OVA into a content library item: streamed, all or nothing.

Every member of the OVA (descriptor, manifest, disks) is PUT straight out of the tar file through
one update session, in 1 MiB chunks (flat memory) with a progress bar by bytes (plain text in a
headless record, see :mod:`tkgs_lib.display.progress`). Each PUT carries the session id, so it goes only
to an upload address on the vCenter the REST session logged in to, over https, and is sent to
that vCenter's own base URL with the address's path (:meth:`RestClient.own_url`). On any failure
the update session is failed and deleted and the item deleted, so nothing half-made remains.
When complete, the item's description records the OVA's manifest digest
(``sha256-manifest:<hex>``; vCenter keeps no checksums of library files), so a rerun can
recognise the same content.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Iterator, Optional

from ..errors import RestError, TkgsError, VSphereError
from ..ova import CHUNK_SIZE, DIGEST_PREFIX, MemberReader, Ova
from ..display.progress import progress_bar
from .rest import RestClient, unsafe_url

if TYPE_CHECKING:
    from .content_api import ContentLibraryApi

log = logging.getLogger(__name__)

__all__ = ["upload_ova", "StreamedBody"]


class StreamedBody:
    """A request body streamed from inside the OVA: iterable in 1 MiB chunks, with a length.

    No ``read``: requests/urllib3 then send the chunks as they come (rather than re-reading in
    16 KiB blocks), and ``len`` makes it a Content-Length upload instead of a chunked one.
    """

    def __init__(self, reader: MemberReader, on_chunk: Callable[[int], object]) -> None:
        self._reader, self._on_chunk = reader, on_chunk
        self.sent = 0  # bytes handed to the connection so far

    def __len__(self) -> int:
        return len(self._reader)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._reader:
            yield chunk
            self.sent += len(chunk)
            self._on_chunk(len(chunk))


def lost_connection(name: str, body: "StreamedBody", exc: BaseException) -> str:
    """A connection lost in the middle of a file, as one sentence: how far it got, and why."""
    cause = exc
    while cause.__cause__ or cause.__context__:
        cause = cause.__cause__ or cause.__context__
    text = str(cause)
    if isinstance(cause, ConnectionRefusedError) or "refused" in text.lower():
        return (f"vCenter refused the connection for {name} before anything was sent; is vCenter up, and is "
                f"its address right?")
    if isinstance(cause, (ConnectionResetError, BrokenPipeError)) or "EOF" in text or "reset" in text.lower() \
            or "aborted" in text.lower():
        why = "the connection was closed from the other end"
    elif "timed out" in text.lower():
        why = "it stopped answering"
    else:
        why = f"{type(cause).__name__}: {text[:160]}"
    sent, size = getattr(body, "sent", 0), len(body)
    how_far = (f"after all {_mib(size, up=True)} of {name} was sent, before it answered" if sent >= size
               else f"after {_mib(sent)} of {_mib(size, up=True)} of {name}")
    return f"vCenter closed the connection {how_far} ({why}); is vCenter up, and is its disk full?"


def _mib(n: int, up: bool = False) -> str:
    """Whole MB, the part sent rounded down and the size up, so a file cut short never reads as whole."""
    if n < 1 << 20:
        return f"{n:,} bytes"
    return f"{-(-n >> 20) if up else n >> 20:,} MB"


def _put(rest: RestClient, uri: str, body: StreamedBody, name: str) -> None:
    import requests

    target = rest.own_url(uri)  # rebuilt on the session's own base URL: never the host as uri spells it
    if target is None:
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in uri[:200])
        if unsafe_url(uri):
            raise VSphereError(
                f"vCenter gave {shown} as the upload address for {name}, which holds a backslash, whitespace, "
                f"a control character or user info (@) that URL parsers read differently; the upload carries "
                f"the session id, so it is sent nowhere.")
        raise VSphereError(
            f"vCenter gave {shown} as the upload address for {name}, which is not the vCenter this session "
            f"logged in to ({rest.base_url}); the upload carries the session id, so it is sent nowhere. If "
            f"that is the same vCenter under another name, set vcenter.server (and vcenter.port) to the name "
            f"and port it gives.")
    try:
        # An empty body must be b"": requests sends a zero-length iterable as chunked.
        response = rest.send("PUT", target, f"PUT {name} ({len(body):,} bytes) to the library's upload session",
                             data=body if len(body) else b"", headers={"Content-Type": "application/octet-stream"},
                             timeout=(rest.timeout[0], max(rest.timeout[1], 600.0)))
    except requests.RequestException as exc:
        raise VSphereError(lost_connection(name, body, exc)) from None
    if response.status_code >= 300:
        detail = response.text.strip().splitlines()[0][:200] if response.text.strip() else response.reason
        raise RestError(f"vCenter refused {name}: HTTP {response.status_code} ({detail}).", response.status_code)


def _wait_done(api: ContentLibraryApi, session_id: str, timeout: float = 600.0) -> None:
    from ..polling import wait_until

    def done(state: dict) -> bool:
        status = state.get("state", "")
        if status in ("ERROR", "CANCELED"):
            message = (state.get("error_message") or {}).get("default_message") or status.lower()
            raise VSphereError(f"vCenter did not accept the upload: {message}.")
        return status == "DONE"

    wait_until(lambda: api.update_session(session_id), done, timeout=timeout, interval=0.05, max_interval=2.0,
               timed_out=lambda state, elapsed: VSphereError(
                   f"the upload session stayed {state.get('state') or 'unknown'} for {timeout:.0f} s."))


def upload_ova(api: ContentLibraryApi, library_id: str, item_name: str, ova: Ova, *,
               progress: bool = True) -> str:
    """Create OVF item ``item_name`` in ``library_id`` from ``ova``'s files; returns the item id.

    Every member of the OVA (descriptor, manifest, disks) is PUT streamed from inside the tar.
    All or nothing: on any failure the update session is failed and the item deleted. Call only
    after :meth:`Ova.verify`.
    """
    content = ova.content()
    item_id = api.create_item(library_id, item_name, "tkgs-runbook: upload in progress")
    session_id: Optional[str] = None
    try:
        session_id = api.create_update_session(item_id)
        with progress_bar(total=content.total_size, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=f"uploading {ova.path.name}", disable=not progress) as bar:
            for member in ova.members:
                uri = api.add_file(session_id, member.name, member.size)
                with ova.open(member.name, CHUNK_SIZE) as reader:
                    _put(api.rest, uri, StreamedBody(reader, bar.update), member.name)
        check = api.validate(session_id)
        if isinstance(check, dict) and check.get("has_errors"):
            raise VSphereError(f"vCenter found problems in the uploaded files: missing "
                               f"{check.get('missing_files') or []}, invalid {check.get('invalid_files') or []}.")
        api.session_action(session_id, "complete")
        _wait_done(api, session_id)
        # Recorded last: an item carries the digest only once its content is complete.
        api.set_item_description(item_id, f"{DIGEST_PREFIX}{content.manifest_digest}")
    except BaseException as exc:
        removed = _discard(api, item_id, session_id)
        if isinstance(exc, TkgsError):
            outcome = ("the item was removed" if removed else
                       f"removing the item failed too: delete library item '{item_name}' in vCenter")
            raise exc.reworded(f"uploading {ova.path.name} into library item '{item_name}' failed, and "
                               f"{outcome}: {exc.message}") from exc
        raise
    return item_id


def _discard(api: ContentLibraryApi, item_id: str, session_id: Optional[str]) -> bool:
    """Undo a failed upload: fail and delete the session, delete the item. Returns whether the item is gone."""
    if session_id is not None:
        _best_effort(f"fail update session {session_id}", lambda: api.session_action(session_id, "fail"))
        _best_effort(f"delete update session {session_id}", lambda: api.delete_session(session_id))
    return _best_effort(f"delete library item {item_id}", lambda: api.delete_item(item_id))


def _best_effort(what: str, action: Callable[[], object]) -> bool:
    """Cleanup never raises over the error that made it necessary; it logs and reports failure."""
    try:
        action()
        return True
    except Exception as exc:  # noqa: BLE001
        log.warning("cleanup after a failed upload: could not %s: %s", what, exc)
        return False
