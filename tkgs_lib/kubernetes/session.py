"""A Kubernetes API as the runbook talks to it, through the official ``kubernetes`` client: the one boundary.

Every request goes through :meth:`KubernetesSession.read` or :meth:`KubernetesSession.change`; a change is
entered on the ledger (:mod:`tkgs_lib.effects`) before it leaves and closed with what came back, as the
other transports' requests are. Whatever the client raises becomes one sentence of
:class:`~tkgs_lib.errors.KubernetesError`: an API's refusal (``ApiException``: its status and
Kubernetes' own reason and message), a certificate not trusted, an address that does not answer.

TLS is verified with the CA given and only it (a file); the credentials (a bearer token, or a client
certificate and key) go to the client's configuration, never to a log: files the client needs are
written into a private folder (mode 0700) removed by :meth:`close`.
"""

from __future__ import annotations

import json
import shutil
import ssl
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from .. import effects
from ..credentials import plain
from ..errors import KubernetesError

__all__ = ["KubernetesSession"]


class KubernetesSession:
    """The API at ``server`` (https://host:port), called ``name`` in sentences ("the Supervisor 10.64.1.0").
    Build with :meth:`with_token` or :meth:`with_client_certificate`."""

    def __init__(self, name: str, server: str, configuration, folder: Optional[Path] = None) -> None:
        from kubernetes import client

        self.name, self.server = name, server
        self._folder = folder
        self.api_client = client.ApiClient(configuration)

    def __repr__(self) -> str:  # never a credential
        return f"<KubernetesSession {self.name} {self.server}>"

    @classmethod
    def with_token(cls, name: str, server: str, ca_file: str, token: str, timeout: float = 30.0) -> "KubernetesSession":
        configuration = cls._configuration(server, ca_file)
        configuration.api_key = {"authorization": plain(token)}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return cls(name, server, configuration)

    @classmethod
    def with_client_certificate(cls, name: str, server: str, ca_pem: str, cert_pem: str,
                                key_pem: str) -> "KubernetesSession":
        folder = Path(tempfile.mkdtemp(prefix="tkgs-kube-"))  # mode 0700
        try:
            files = {}
            for what, text in (("ca.pem", ca_pem), ("client.pem", cert_pem), ("client-key.pem", plain(key_pem))):
                path = folder / what
                path.touch(mode=0o600)
                path.write_text(text)
                files[what] = str(path)
            configuration = cls._configuration(server, files["ca.pem"])
            configuration.cert_file, configuration.key_file = files["client.pem"], files["client-key.pem"]
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(name, server, configuration, folder)

    @staticmethod
    def _configuration(server: str, ca_file: str):
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = server
        configuration.verify_ssl = True
        configuration.ssl_ca_cert = ca_file
        configuration.proxy = None
        configuration.retries = 0
        return configuration

    def close(self) -> None:
        try:
            self.api_client.close()
        finally:
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None

    def __enter__(self) -> "KubernetesSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the APIs of the official client, bound to this session ---------------------------------------

    @property
    def core(self):
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    @property
    def apps(self):
        from kubernetes import client

        return client.AppsV1Api(self.api_client)

    @property
    def custom(self):
        from kubernetes import client

        return client.CustomObjectsApi(self.api_client)

    @property
    def apis(self):
        from kubernetes import client

        return client.ApisApi(self.api_client)

    # --- the boundary ----------------------------------------------------------------------------

    def read(self, what: str, call: Callable[[], Any]) -> Any:
        """``call()`` (a read), its errors as one sentence naming ``what``."""
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 (translated here, the one place)
            raise self._error(what, exc) from None

    def read_or_none(self, what: str, call: Callable[[], Any]) -> Any:
        """``call()``, or None when the API answers 404 (no such object)."""
        try:
            return self.read(what, call)
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise

    def change(self, what: str, call: Callable[[], Any]) -> Any:
        """``call()`` (a request that may change something), entered on the ledger as ``what`` first."""
        ledger = effects.current()
        entry = ledger.enter(f"{self.name} {self.server}", what)
        try:
            answer = call()
        except Exception as exc:  # noqa: BLE001
            error = self._error(what, exc)
            if error.status:
                ledger.close(entry, effects.REFUSED, error.message)
            else:
                sent = _transport_error(exc) and not _never_sent(exc)
                ledger.close(entry, effects.UNKNOWN if sent else effects.NOT_SENT, error.message)
            raise error from None
        ledger.close(entry, effects.DONE)
        return answer

    def _error(self, what: str, exc: BaseException) -> KubernetesError:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import MaxRetryError, SSLError

        if isinstance(exc, ApiException):
            reason, said = "", ""
            try:
                status = json.loads(exc.body or "{}")
                reason, said = str(status.get("reason") or ""), str(status.get("message") or "")
            except (ValueError, TypeError, AttributeError):
                said = (str(exc.body or "") or str(exc.reason or ""))[:200]
            hint = {401: ": the session is not, or no longer, logged in; log in again (rerun the stage)",
                    403: ": the user may not; check its role in the namespace (namespace.access)"}.get(exc.status, "")
            return KubernetesError(f"{self.name} refused to {what} (HTTP {exc.status}{f' {reason}' if reason else ''})"
                                   f"{f': {said}' if said else ''}{hint}.", exc.status, reason)
        if not _transport_error(exc):  # the client refused to build the request (its models check the values)
            said = " ".join(str(exc).split())[:300]
            return KubernetesError(f"could not {what}: the request could not be made ({type(exc).__name__}: {said}).")
        cause = exc.reason if isinstance(exc, MaxRetryError) else exc
        if isinstance(cause, SSLError) or isinstance(getattr(cause, "__context__", None), ssl.SSLError):
            return KubernetesError(f"{self.name} at {self.server} presents a certificate the CA given does not vouch "
                                   f"for (or one that does not name that address), so nothing was sent to {what}: "
                                   f"{cause}.")
        return KubernetesError(f"could not {what}: {self.name} at {self.server} did not answer ({_root(exc)}); is "
                               f"its address served by the load balancer, and reached from here?")


def _root(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return str(exc) or type(exc).__name__


def _transport_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the connection (urllib3, a socket, TLS), not from building the request."""
    from urllib3.exceptions import HTTPError

    return isinstance(exc, (HTTPError, OSError, ssl.SSLError))


def _never_sent(exc: BaseException) -> bool:
    seen: Optional[BaseException] = exc
    while seen is not None:
        if isinstance(seen, (ConnectionRefusedError, ssl.SSLError)) or "NewConnectionError" in type(seen).__name__:
            return True
        seen = getattr(seen, "reason", None) if hasattr(seen, "reason") and isinstance(
            getattr(seen, "reason", None), BaseException) else (seen.__cause__ or seen.__context__)
    return False
