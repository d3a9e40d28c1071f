"""One logged-in vCenter: a pyvmomi (SOAP) session, a vAPI REST session and, on demand, SPBM.

:func:`connect` checks TLS first (one handshake, so trust problems read as one sentence
before any password is sent), then logs in over SOAP (which refuses a wrong password, also
in the simulator) and then over REST. :meth:`VCenterSession.close` logs both out; it is also
registered with :mod:`atexit`, so a notebook whose cell failed before its ``close()`` still logs
out when its kernel shuts down (or a script when it exits, even on an exception).

:func:`vcenter_identity` asks a vCenter which one it is (its instance UUID) without logging in, so a
fleet can tell one vCenter reached under two names from two vCenters.
"""

from __future__ import annotations

import atexit
import logging
import re
import socket
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional

from pyVim.connect import Disconnect, SmartConnect, SmartStubAdapter
from pyVmomi import SoapStubAdapter, pbm, vim, vmodl

from ..credentials import plain, read_secret
from ..errors import ConnectionFailed, TkgsError
from ..site import VCenter
from .rest import RestClient
from .tasks import fault_sentence, guard_stub
from .tls import TlsPolicy, unreachable_sentence

log = logging.getLogger(__name__)

__all__ = ["connect", "vcenter_identity", "VCenterSession", "VCenterVersion", "PBM_PATH", "PBM_VERSION"]

PBM_PATH = "/pbm"  # SPBM's SOAP endpoint; it accepts the SOAP session's cookie
PBM_VERSION = "pbm.version.version11"


@dataclass(frozen=True)
class VCenterVersion:
    """Which vCenter answers, as it says (``ServiceContent.about``): version 7.0.3, build, API 7.0.3.0."""

    version: str
    build: str
    api_version: str

    def __str__(self) -> str:
        return (f"vCenter {self.version or 'of no version'} build {self.build or 'unknown'} "
                f"(API {self.api_version or 'unknown'})")

    @property
    def number(self) -> tuple[int, ...]:
        """The version as numbers, e.g. (7, 0, 3); () when it says none."""
        return tuple(int(n) for n in re.findall(r"\d+", self.version or "")[:3])

    @property
    def api_number(self) -> tuple[int, ...]:
        """The API version as numbers, e.g. (7, 0, 3, 0); what VMware's bindings date each call by."""
        return tuple(int(n) for n in re.findall(r"\d+", self.api_version or "")[:4])


def connect(vcenter: VCenter, password: Optional[str] = None, *, timeout: float = 30.0) -> "VCenterSession":
    """Log in to vCenter as the site says. ``password`` None: from ``vcenter.password_env`` or a prompt."""
    tls = TlsPolicy.from_site(vcenter)
    host, port, user = vcenter.server, int(vcenter.port or 443), vcenter.username
    tls.confirm(host, port, timeout=timeout)
    source = "the given password"
    if password is None:
        password = read_secret(vcenter.password_env, f"vCenter password for {user}", "vcenter.password_env")
        source = f"the password in ${vcenter.password_env}"
    si = _soap_login(host, port, user, password, tls, timeout, source)
    guard_stub(si._stub, "vCenter")
    rest = RestClient(host, port, tls)
    try:
        rest.login(user, password)
    except BaseException:
        _soap_logout(si)
        raise
    log.info("logged in to vCenter %s:%s as %s (TLS: %s)", host, port, user, tls.describe())
    session = VCenterSession(vcenter, tls, si, rest)
    atexit.register(session.close)  # unregistered by close()
    return session


def vcenter_identity(vcenter: VCenter, *, timeout: float = 15.0) -> str:
    """Which vCenter answers at the site's address: its instance UUID (``ServiceContent.about.instanceUuid``),
    the same whatever name or address reaches it. Read without logging in (the anonymous
    RetrieveServiceContent, so no password is needed or sent), TLS verified as the site says;
    ConnectionFailed (or SiteError, for the site's TLS settings) says why it cannot be read."""
    tls = TlsPolicy.from_site(vcenter)
    host, port = vcenter.server, int(vcenter.port or 443)
    tls.confirm(host, port, timeout=timeout)
    with _soap_errors(host, port, tls, "to say which vCenter it is"):
        stub = SmartStubAdapter(host=host, port=port, sslContext=tls.ssl_context(), httpConnectionTimeout=timeout)
        uuid = vim.ServiceInstance("ServiceInstance", stub).RetrieveContent().about.instanceUuid
    if not uuid:
        raise ConnectionFailed(f"vCenter {host}:{port} gives no instance UUID (ServiceContent.about.instanceUuid), "
                               f"so nothing tells it apart from another vCenter.")
    return uuid


def _soap_login(host: str, port: int, user: str, password: str, tls: TlsPolicy, timeout: float,
                source: str):
    with _soap_errors(host, port, tls, f"the login for user '{user}'"):
        try:
            return SmartConnect(host=host, port=port, user=user, pwd=plain(password), sslContext=tls.ssl_context(),
                                httpConnectionTimeout=timeout)
        except vim.fault.InvalidLogin:
            raise ConnectionFailed(f"vCenter refused the login for user '{user}' with {source}: check "
                                   f"vcenter.username and the password.") from None
        except vim.fault.NoPermission:
            raise ConnectionFailed(f"vCenter accepted user '{user}' but gives it no permission to log in: "
                                   f"use an administrator account.") from None


@contextmanager
def _soap_errors(host: str, port: int, tls: TlsPolicy, asked: str):
    """A SOAP request's failure as one sentence: ``asked`` is what vCenter refused, e.g. "the login for user 'x'"."""
    try:
        yield
    except TkgsError:
        raise
    except ssl.SSLError as exc:
        raise ConnectionFailed(f"TLS with vCenter {host}:{port} failed under {tls.describe()} ({exc}).") from None
    except (socket.gaierror, ConnectionError, TimeoutError) as exc:
        raise ConnectionFailed(unreachable_sentence(host, port, exc)) from None
    except vmodl.MethodFault as exc:
        raise ConnectionFailed(f"vCenter {host}:{port} refused {asked}: {fault_sentence(exc)}.") from None
    except Exception as exc:  # pyvmomi raises plain Exceptions for a server that is not vCenter
        raise ConnectionFailed(f"vCenter {host}:{port} did not answer as vCenter's SOAP API at /sdk "
                               f"({type(exc).__name__}: {exc}); check vcenter.server and vcenter.port.") from None


def _soap_logout(si) -> None:
    try:
        Disconnect(si)
    except Exception as exc:  # cleanup must not hide the error that got us here
        log.warning("logging out of vCenter's SOAP session failed: %s", type(exc).__name__)


class VCenterSession:
    """A logged-in vCenter. Use as a context manager, or call :meth:`close` when done."""

    def __init__(self, vcenter: VCenter, tls: TlsPolicy, si, rest: RestClient) -> None:
        self.vcenter, self.tls, self.si, self.rest = vcenter, tls, si, rest
        self.host, self.port = vcenter.server, int(vcenter.port or 443)
        self._pbm: Any = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<VCenterSession {self.host}:{self.port} user={self.vcenter.username} {state}>"

    def _repr_markdown_(self) -> str:
        return (f"Connected to **{self.host}** ({self.content.about.fullName}) as {self.vcenter.username}; "
                f"TLS: {self.tls.describe()}")

    def __enter__(self) -> "VCenterSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def content(self) -> vim.ServiceInstanceContent:
        return self.si.content

    @property
    def version(self) -> VCenterVersion:
        about = self.content.about
        return VCenterVersion(about.version or "", about.build or "", about.apiVersion or "")

    @property
    def session_id(self) -> str:
        """The SOAP session's id (the vmware_soap_session cookie): SPBM and others accept it."""
        return self.si._stub.GetSessionId()

    @property
    def pbm(self):
        """SPBM's service content (profileManager, placementSolver...), on the SOAP session's cookie."""
        if self._pbm is None:
            if self._closed:
                raise TkgsError("this vCenter session is closed; connect again.")
            session_id = self.session_id
            stub = SoapStubAdapter(host=self.host, port=self.port, path=PBM_PATH, version=PBM_VERSION,
                                   sslContext=self.tls.ssl_context(), sessionId=session_id,
                                   requestContext={"vcSessionCookie": session_id})
            guard_stub(stub, "vCenter's storage policy service (SPBM)")
            self._pbm = pbm.ServiceInstance("ServiceInstance", stub).RetrieveContent()
        return self._pbm

    def close(self) -> None:
        """Log out of REST and SOAP (SPBM rides on the SOAP session). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._pbm = None
        self.rest.logout()
        _soap_logout(self.si)
