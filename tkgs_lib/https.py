"""HTTPS with requests as every transport here speaks it: TLS verified by one ssl.SSLContext and only by it,
and HTTP Basic credentials sent as UTF-8.

vCenter's REST client, the appliance's Data Plane API and the simulators' played clients share these two
pieces, so none of them imports another transport for them.
"""

from __future__ import annotations

import base64
import ssl

from requests.adapters import HTTPAdapter

from .credentials import plain

__all__ = ["ContextAdapter", "basic_auth"]


class ContextAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections verify with one ssl.SSLContext and only with it.

    requests' own ``cert_verify`` would point every connection at certifi's bundle (or
    ``verify``'s), which urllib3 then loads into the context: REST would trust more than SOAP."""

    def __init__(self, context: ssl.SSLContext, **kwargs) -> None:
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self._context
        return super().init_poolmanager(*args, **kwargs)

    def cert_verify(self, conn, url, verify, cert) -> None:
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = conn.ca_cert_dir = None


def basic_auth(user: str, password: str) -> dict[str, str]:
    """An HTTP Basic Authorization header with the credentials as UTF-8 (requests would encode them
    as Latin-1 and fail, with the password's character and position in its error, on a "€")."""
    token = base64.b64encode(f"{plain(user)}:{plain(password)}".encode("utf-8")).decode()
    return {"Authorization": f"Basic {token}"}
