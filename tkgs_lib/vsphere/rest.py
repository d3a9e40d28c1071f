"""A small client of vCenter's vAPI REST endpoints under ``/rest``, and of those under ``/api``.

VMware's SDK client speaks vAPI JSON-RPC, which govmomi's vCenter simulator does not serve; the
``/rest`` endpoints (sessions, tagging, content library, OVF) are served by both, so this client
speaks those. Every answer's ``value`` is returned as plain JSON; every
failure is a :class:`RestError` whose message names the request and vCenter's error type.

Some operations exist only under ``/api`` (Workload Management's enable has no ``/rest`` form),
so :meth:`RestClient.api_get` and friends speak it on the same session: bare JSON bodies and
answers (no ``value`` wrapper), ``?action=`` instead of ``~action``, and vCenter's ``/api`` error
shape, ``{"error_type": "NOT_FOUND", "messages": [{"id", "default_message", "args"}]}``
(vSphere Automation API, "Error" data structure), turned into the same one-sentence RestError.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any, Optional
from urllib.parse import urlsplit

import requests

from .. import effects
from ..https import basic_auth
from ..errors import ConnectionFailed, RestError
from .tls import TlsPolicy, unreachable_sentence

log = logging.getLogger(__name__)

__all__ = ["RestClient", "SESSION_PATH", "unsafe_url"]

SESSION_PATH = "/rest/com/vmware/cis/session"
SESSION_HEADER = "vmware-api-session-id"
# /rest reads that are POSTs (``~action=find``, ``list-tags-for-category``, ``validate``...): they change nothing.
_READ_ACTIONS = ("find", "list", "get", "validate", "filter")


class RestClient:
    """A logged-in (after :meth:`login`) session against ``https://host:port/rest``."""

    def __init__(self, host: str, port: int, tls: TlsPolicy, timeout: float = 120.0) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.base_url = f"https://{f'[{host}]' if ':' in host else host}:{port}"  # an IPv6 address in brackets
        self.timeout = (15.0, timeout)  # (connect, read) seconds
        self.session = tls.configure(requests.Session())
        self.answered = False  # vCenter has answered a request of this session: a lost one is then news

    def __repr__(self) -> str:  # never the session id
        state = "logged in" if SESSION_HEADER in self.session.headers else "not logged in"
        return f"<RestClient {self.base_url} {state}>"

    def own_url(self, url: str) -> Optional[str]:
        """``url`` rebuilt on :attr:`base_url` when it names this client's host and port over https, else None.

        Only there may the session id go (it rides on every request of the session). Host names
        compare case-insensitively and without a trailing dot, addresses by value, a missing port
        as 443; a name and an address of the same machine do not match (no DNS).

        Parsers disagree about odd URLs: urlsplit reads ``https://evil\\@vc/x`` as host ``vc``,
        urllib3 (what requests sends with) as host ``evil``. So a URL holding a backslash,
        whitespace or a control character, or user info (``@``) before its host, is refused
        outright; and what is returned, the only URL to send to, is this client's own base URL
        plus the path and query read here: never the host as the URL spells it."""
        if unsafe_url(url):
            return None
        try:
            parts = urlsplit(url)
            port = 443 if parts.port is None else parts.port
        except ValueError:  # a port that is not a number, a malformed IPv6 literal
            return None
        if (parts.scheme.lower() != "https" or port != self.port
                or _host_key(parts.hostname or "") != _host_key(self.host)):
            return None
        return self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")

    # --- session ---------------------------------------------------------------------------------

    def login(self, username: str, password: str) -> None:
        """Create a vAPI session with basic auth; its id rides on every later request."""
        try:
            response = self.session.post(self.base_url + SESSION_PATH, headers=basic_auth(username, password),
                                         timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise ConnectionFailed(self._transport_sentence("log in to", exc)) from None
        self.answered = True
        if response.status_code in (401, 403):
            raise ConnectionFailed(f"vCenter refused the REST login for user '{username}' (HTTP "
                                   f"{response.status_code}): check vcenter.username and the password.")
        if response.status_code >= 300:
            raise self._error("POST", SESSION_PATH, response)
        self.session.headers[SESSION_HEADER] = response.json()["value"]

    def logout(self) -> None:
        """End the vAPI session; never raises (it runs while cleaning up)."""
        if SESSION_HEADER not in self.session.headers:
            self.session.close()
            return
        try:
            self.session.delete(self.base_url + SESSION_PATH, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            log.warning("logging out of vCenter's REST session failed: %s", type(exc).__name__)
        finally:
            self.session.headers.pop(SESSION_HEADER, None)
            self.session.close()

    # --- requests --------------------------------------------------------------------------------

    def get(self, path: str, params: Optional[dict] = None) -> Any:
        return self._request("GET", path, params=params)

    def post(self, path: str, body: Optional[dict] = None, action: Optional[str] = None) -> Any:
        """``POST`` a ``/rest`` path; ``body`` None sends none (an operation without input)."""
        return self._request("POST", path, **({"json": body} if body is not None else {}),
                             params={"~action": action} if action else None)

    def patch(self, path: str, body: dict) -> Any:
        return self._request("PATCH", path, json=body)

    def delete(self, path: str) -> None:
        self._request("DELETE", path)

    # --- requests under /api -------------------------------------------------------------------

    def api_get(self, path: str, params: Optional[dict] = None) -> Any:
        """``GET`` an ``/api`` path (``/api/vcenter/...``); the answer's JSON as it is."""
        return self._request("GET", path, params=params, wrapped=False)

    def api_post(self, path: str, body: Any = None, action: Optional[str] = None) -> Any:
        """``POST`` to an ``/api`` path. ``body``: JSON text as it is to be sent (what VMware's
        runtime serialized, say), or a value to encode; None sends none. ``action`` goes as
        ``?action=``. An answer without a body (HTTP 204) is None."""
        kwargs: dict[str, Any] = {"params": {"action": action} if action else None, "wrapped": False}
        if isinstance(body, str):
            kwargs.update(data=body.encode("utf-8"), headers={"Content-Type": "application/json"})
        elif body is not None:
            kwargs["json"] = body
        return self._request("POST", path, **kwargs)

    def api_delete(self, path: str) -> None:
        """``DELETE`` an ``/api`` path (an answer without a body)."""
        self._request("DELETE", path, wrapped=False)

    def api_patch(self, path: str, body: str) -> Any:
        """``PATCH`` an ``/api`` path with ``body``, JSON text as it is to be sent (what VMware's runtime
        serialized); an answer without a body (HTTP 204) is None."""
        return self._request("PATCH", path, data=body.encode("utf-8"), headers={"Content-Type": "application/json"},
                             wrapped=False)

    def send(self, method: str, url: str, what: str, **kwargs) -> requests.Response:
        """Bytes for vCenter at ``url`` (an address it gave, checked to be its own), entered on the ledger as
        ``what``; the response whatever its status (the caller words a refusal). A transport failure is
        raised as requests raised it, once the ledger says no answer came."""
        ledger = effects.current()
        entry = ledger.enter(f"vCenter {self.host}:{self.port}", what)
        try:
            response = self.session.request(method, url, allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            ledger.close(entry, effects.UNKNOWN, f"{type(exc).__name__}: {_root_cause(exc)}")
            raise
        ledger.close(entry, effects.DONE if response.status_code < 300 else effects.REFUSED,
                     "" if response.status_code < 300 else f"HTTP {response.status_code} {response.reason}")
        return response

    def _request(self, method: str, path: str, *, wrapped: bool = True, **kwargs) -> Any:
        ledger, entry = effects.current(), None
        if _changes(method, kwargs.get("params")):  # on the ledger before it leaves
            entry = ledger.enter(f"vCenter {self.host}:{self.port}", _request_line(method, path, kwargs))
        try:
            # No redirects: requests would carry the session id header to wherever one points.
            response = self.session.request(method, self.base_url + path, timeout=self.timeout,
                                            allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            error = ConnectionFailed(self._transport_sentence(f"{method} {path} at", exc))
            # Sent, and no answer came: a change may have been made. A connection never made sent nothing.
            cause = _root_os_error(exc)
            never_sent = isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)) or \
                isinstance(cause, ConnectionRefusedError) or type(cause).__name__ == "gaierror"
            if entry is not None:
                ledger.close(entry, effects.NOT_SENT if never_sent else effects.UNKNOWN, error.message)
            raise error from None
        self.answered = True
        if response.status_code >= 300:  # a redirect is not followed: it is an answer we cannot use
            error = self._error(method, path, response)
            if entry is not None:
                ledger.close(entry, effects.REFUSED, error.message)
            raise error
        if entry is not None:
            ledger.close(entry, effects.DONE)
        if not response.content:
            return None
        try:
            data = response.json()
        except ValueError:
            raise RestError(f"{method} {path}: vCenter answered HTTP {response.status_code} with something "
                            f"that is not JSON.", response.status_code) from None
        if not wrapped:
            return data
        return data.get("value") if isinstance(data, dict) else None

    def _error(self, method: str, path: str, response: requests.Response) -> RestError:
        error_type, detail = "", ""
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            error_type = str(data.get("type") or "")
            value = data.get("value")
            if not isinstance(value, dict) and "error_type" in data:  # /api: the error itself, unwrapped
                value = data
            if isinstance(value, dict):
                error_type = error_type or str(value.get("error_type") or "")
                messages = value.get("messages") or []
                if isinstance(messages, list):
                    detail = "; ".join(str(m.get("default_message", "")) if isinstance(m, dict) else str(m)
                                       for m in messages if m)
        elif response.text.strip():
            detail = response.text.strip().splitlines()[0][:200]
        # /rest says com.vmware.vapi.std.errors.not_found, /api NOT_FOUND: both read "not found".
        what = (error_type.rsplit(".", 1)[-1].replace("_", " ").lower() if error_type
                else (response.reason or "error"))
        message = f"{method} {path} failed: HTTP {response.status_code} {what}"
        if detail and detail.lower() not in message.lower():
            message += f" ({detail})"
        return RestError(message + ".", response.status_code, error_type)

    def _transport_sentence(self, doing: str, exc: requests.RequestException) -> str:
        if isinstance(exc, requests.exceptions.SSLError):
            return (f"could not {doing} vCenter {self.base_url}: TLS failed under {self.tls.describe()} "
                    f"({_root_cause(exc)}).")
        cause = _root_os_error(exc)
        if cause is not None and self.answered:  # not a wrong address: it answered this session before
            return (f"vCenter {self.base_url} stopped answering (could not {doing} it: "
                    f"{getattr(cause, 'strerror', None) or cause}) after it had answered this session: it is "
                    f"restarting, down or out of reach now; wait until it answers, then rerun.")
        if cause is not None:
            return unreachable_sentence(self.host, self.port, cause)
        return f"could not {doing} vCenter {self.base_url}: {type(exc).__name__} ({_root_cause(exc)})."


def _changes(method: str, params: Optional[dict]) -> bool:
    """Whether a request may change vCenter: anything but a GET, or a /rest POST whose action reads."""
    if method == "GET":
        return False
    action = str((params or {}).get("~action") or (params or {}).get("action") or "")
    return not (method == "POST" and action.startswith(_READ_ACTIONS))


def _request_line(method: str, path: str, kwargs: dict) -> str:
    params = kwargs.get("params") or {}
    action = params.get("~action") or params.get("action")
    return f"{method} {path}" + (f"?action={action}" if action else "")


def unsafe_url(url: str) -> bool:
    """Whether ``url`` holds a backslash, whitespace or a control character, or user info (``@``)
    before its host: parsers read such URLs differently (or quietly drop the characters), so no
    session id is sent to one."""
    if not isinstance(url, str) or any(c == "\\" or c.isspace() or not c.isprintable() for c in url):
        return True
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return True


def _host_key(host: str) -> str:
    host = host.strip("[]").rstrip(".").lower()
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


def _root_cause(exc: BaseException) -> str:
    while exc.__context__ is not None or exc.__cause__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return str(exc) or type(exc).__name__


def _root_os_error(exc: BaseException) -> Optional[OSError]:
    seen = exc
    while seen is not None:
        if isinstance(seen, (ConnectionRefusedError, TimeoutError)) or type(seen).__name__ == "gaierror":
            return seen  # type: ignore[return-value]
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    return None
