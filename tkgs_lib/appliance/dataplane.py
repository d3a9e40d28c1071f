"""The appliance's Data Plane API: ``GET /v2/info``, trusted through the appliance's own CA.

TLS is verified against the CA the appliance published (the deploy stage saved it as
``haproxy-ca.pem``) and the certificate must name the management address; nothing from the
environment (``REQUESTS_CA_BUNDLE``...) can change what is trusted, and no redirect is followed
(the basic-auth header would go along). Each way it can fail is one sentence with its likely
cause, the article's and the appliance's: the service down or another port, no route to the
management address, a timeout (routing, the management gateway, the VLAN), a certificate that
is not the appliance's, names another host or has expired, a user or password refused, or an
answer that is not the Data Plane API's.
"""

from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass
from typing import Optional

import requests

from ..https import basic_auth
from ..errors import ApplianceError, innermost_cause
from ..https import ContextAdapter

__all__ = ["DataPlaneInfo", "get_info", "verified_session", "message_of", "signed_by", "INFO_PATH",
           "dataplane_for", "presented_certificate"]

INFO_PATH = "/v2/info"


@dataclass(frozen=True)
class DataPlaneInfo:
    version: str
    build_date: str
    url: str


def _context(ca_pem: str, trusted_by: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies and checks names; trusts nothing yet
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cadata=ca_pem)
    except ssl.SSLError as exc:
        raise ApplianceError(f"{trusted_by} is not a PEM CA certificate ({exc.reason or exc}).") from None
    return context


def verified_session(ca_pem: str, trusted_by: str) -> requests.Session:
    """A session trusting exactly ``ca_pem`` (names checked), nothing from the environment."""
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", ContextAdapter(_context(ca_pem, trusted_by)))
    return session


def message_of(response: requests.Response) -> str:
    """What a Data Plane API answer other than the one asked for says: its ``message`` (on one line),
    else the start of its text, else the HTTP reason."""
    try:
        body = response.json()
        said = str(body.get("message", "")) if isinstance(body, dict) else ""
    except ValueError:
        said = response.text.strip()[:200]
    return said.replace("\n", " ").strip() or response.reason or ""


def _tls_sentence(where: str, exc: BaseException, trusted_by: str, host: str) -> str:
    reason = ""
    cause = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or str(cause)
            break
        cause = cause.__cause__ or cause.__context__
    text = (reason or str(exc)).lower()
    if "mismatch" in text:
        return (f"the Data Plane API at {where} presents a certificate that does not name {host} ({reason}): the "
                f"certificate is not the one the appliance made for its management address; check "
                f"haproxy.management_ip, or whether another host answers at that address.")
    if "expired" in text:
        return (f"the Data Plane API at {where} presents an expired certificate ({reason}): check the appliance's "
                f"clock, or renew its certificate.")
    if reason:
        return (f"the Data Plane API at {where} presents a certificate not signed by {trusted_by} ({reason}): the "
                f"CA is not this appliance's (a stale haproxy-ca.pem, or another appliance at that address).")
    return f"the TLS handshake with the Data Plane API at {where} failed ({exc}): is {where} really its HTTPS port?"


def signed_by(host: str, port: int, ca_pem: str, *, trusted_by: str, timeout: float = 5.0) -> str:
    """Whether the Data Plane API's certificate chains to ``ca_pem``: one TLS handshake verified against
    it alone, nothing sent. Names are not checked (the verify stage does): this asks only which CA
    signed it. ApplianceError, one sentence, when ``ca_pem`` did not (or the certificate has expired);
    "" when it did; why it could not be told otherwise (no handshake: nothing answers, say)."""
    where = f"{host}:{port}"
    context = _context(ca_pem, trusted_by)
    context.check_hostname = False
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, context.wrap_socket(raw):
            return ""
    except ssl.SSLCertVerificationError as exc:
        raise ApplianceError(_tls_sentence(where, exc, trusted_by, host)) from None
    except (socket.timeout, TimeoutError):
        return f"no TLS handshake with {where} within {timeout:g} s"
    except OSError as exc:  # refused, unreachable, or a handshake that is not TLS
        return f"no TLS handshake with {where} ({getattr(exc, 'reason', None) or exc.strerror or exc})"


def presented_certificate(host: str, port: int, ca_pem: str, *, trusted_by: str, timeout: float = 10.0) -> str:
    """The certificate (PEM) the Data Plane API at ``host:port`` presents, in a handshake verified against ``ca_pem``
    (names checked); ApplianceError, one sentence, when there is none it vouches for."""
    where = f"{host}:{port}"
    context = _context(ca_pem, trusted_by)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as exc:
        raise ApplianceError(_tls_sentence(where, exc, trusted_by, host)) from None
    except (socket.timeout, TimeoutError):
        raise ApplianceError(f"no TLS handshake with the Data Plane API at {where} within {timeout:g} s.") from None
    except OSError as exc:  # refused, unreachable, or a handshake that is not TLS
        raise ApplianceError(f"no TLS handshake with the Data Plane API at {where} "
                             f"({getattr(exc, 'reason', None) or exc.strerror or exc}).") from None
    return ssl.DER_cert_to_PEM_cert(der)


def get_info(host: str, port: int, user: str, password: str, ca_pem: str, *, trusted_by: str,
             timeout: float = 10.0) -> DataPlaneInfo:
    """``GET https://host:port/v2/info`` with basic auth, trusting only ``ca_pem``; ApplianceError
    otherwise, one sentence each."""
    where = f"{host}:{port}"
    url = f"https://{where}{INFO_PATH}"
    session = verified_session(ca_pem, trusted_by)  # exactly the appliance's CA
    try:
        response = session.get(url, headers=basic_auth(user, password), timeout=(timeout, timeout),
                               allow_redirects=False)
    except requests.exceptions.SSLError as exc:
        raise ApplianceError(_tls_sentence(where, exc, trusted_by, host)) from None
    except requests.exceptions.ConnectTimeout:
        raise ApplianceError(
            f"the connection to the Data Plane API at {where} timed out: nothing answers at the management address, "
            f"so packets are lost on the way: check the routing to {host}, the management gateway and the "
            f"management port group's VLAN and uplinks.") from None
    except requests.exceptions.ReadTimeout:
        raise ApplianceError(f"the Data Plane API at {where} accepted the connection but did not answer within "
                             f"{timeout:.0f} s: the service is hung; restart dataplaneapi on the appliance.") from None
    except requests.exceptions.ConnectionError as exc:
        cause = innermost_cause(exc)
        code = getattr(cause, "errno", None)
        if isinstance(cause, ConnectionRefusedError) or code == errno.ECONNREFUSED:
            raise ApplianceError(
                f"the Data Plane API at {where} refused the connection: the service is down on the appliance, or "
                f"{port} is not its port (haproxy.dataplane_port must equal the appliance's "
                f"loadbalance.dataplane_port).") from None
        if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            raise ApplianceError(
                f"no route to the Data Plane API at {where} ({getattr(cause, 'strerror', '') or cause}): nothing "
                f"holds the management address {host} on its network: check the appliance's management interface "
                f"address, the port group's VLAN, and that the VM is powered on.") from None
        raise ApplianceError(f"cannot reach the Data Plane API at {where}: {cause}.") from None
    finally:
        session.close()
    if response.status_code == 401:
        raise ApplianceError(f"the Data Plane API at {where} refused user '{user}' (HTTP 401): check "
                             f"haproxy.dataplane_username and the password (the appliance's loadbalance.haproxy_pwd).")
    if response.status_code != 200:
        raise ApplianceError(f"the Data Plane API at {where} answered {INFO_PATH} with HTTP {response.status_code} "
                             f"{response.reason}.")
    try:
        body = response.json()
        api = body["api"]
        version, build_date = str(api["version"]), str(api.get("build_date", ""))
    except (ValueError, KeyError, TypeError):
        shown = response.text.strip().replace("\n", " ")[:120]
        raise ApplianceError(f"{url} answered, but not with the Data Plane API's documented shape "
                             f"({{\"api\": {{\"version\": ..., \"build_date\": ...}}}}); it said: {shown!r}. Is another "
                             f"service on port {port}?") from None
    return DataPlaneInfo(version, build_date, url)


def dataplane_for(provided: Optional[tuple[str, int]], management_ip: str, port: int) -> tuple[str, int, str]:
    """The Data Plane API's host, port and where they came from: the deploy stage's record (``provided``: its
    host and port), else the site's management address and haproxy.dataplane_port."""
    if provided is not None:
        host, recorded_port = provided
        return host, recorded_port, "the deploy stage's record (provided.json: dataplane)"
    return management_ip, port, "haproxy.management_ip and haproxy.dataplane_port"
