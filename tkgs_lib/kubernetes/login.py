"""Logging in to the Supervisor without the kubectl vsphere plugin.

What the plugin does (kubernetes-sigs/vsphere-csi-driver ``tests/e2e/util.go``, ``GetWCPSessionId``; the
plugin's first request, ``/wcp/loginbanner``, in lamw/vsphere-with-tanzu-basic-automated-lab-deployment
issue 6): ``GET https://<Supervisor VIP>/wcp/loginbanner``, then ``POST https://<VIP>/wcp/login`` with HTTP
Basic auth (the vCenter user and password), answered 200 with ``{"session_id": "<token>"}``; the token is
then a bearer token on ``https://<VIP>:6443``. TLS is verified with vCenter's CA: VMCA signs the
Supervisor's certificates. The POST is no change of the Supervisor (it makes a session, as vCenter's own
login does) and is not on the ledger; the password is never shown, nor the token.
"""

from __future__ import annotations

import ssl

import requests

from ..credentials import Secret
from ..errors import KubernetesError
from ..https import ContextAdapter, basic_auth

__all__ = ["supervisor_login", "LOGIN_PATH", "BANNER_PATH"]

LOGIN_PATH, BANNER_PATH = "/wcp/login", "/wcp/loginbanner"


def supervisor_login(address: str, username: str, password: str, ca_file: str, *, timeout: float = 30.0,
                     password_from: str = "the variable vcenter.password_env names") -> Secret:
    """The session token for ``username`` from the Supervisor at ``address`` (its virtual IP), as a Secret.
    ``password_from``: where the password came from, for the sentence a refusal is."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise KubernetesError(f"vCenter's CA ({ca_file}, vcenter.ca_file) cannot be read to verify the Supervisor: "
                              f"{exc}.") from None
    http = requests.Session()
    http.trust_env = False
    http.mount("https://", ContextAdapter(context))
    base = f"https://{address}"
    try:
        try:
            http.get(base + BANNER_PATH, timeout=timeout, allow_redirects=False)
            answer = http.post(base + LOGIN_PATH, timeout=timeout, allow_redirects=False,
                               headers={**basic_auth(username, password), "Accept": "application/json"})
        except requests.exceptions.SSLError as exc:
            raise KubernetesError(f"the Supervisor at {address} presents a certificate vCenter's CA ({ca_file}) does "
                                  f"not vouch for, so no password was sent: {exc.__context__ or exc}; vcenter.ca_file "
                                  f"must be the CA that signs vCenter's (VMCA's) certificates.") from None
        except requests.RequestException as exc:
            raise KubernetesError(f"the Supervisor at {address} did not answer {LOGIN_PATH} on 443 "
                                  f"({type(exc).__name__}): its virtual IP must answer through the load balancer (the "
                                  f"enable stage's checks show whether it does).") from None
    finally:
        http.close()
    if answer.status_code in (401, 403):
        raise KubernetesError(f"the Supervisor at {address} refused the login of {username} (HTTP {answer.status_code} "
                              f"at {LOGIN_PATH}): the password in {password_from} is not {username}'s in vCenter; "
                              f"set the right one and rerun.", answer.status_code)
    if answer.status_code != 200:
        raise KubernetesError(f"the Supervisor at {address} answered {LOGIN_PATH} with HTTP {answer.status_code} "
                              f"{answer.reason}, not a session.", answer.status_code)
    try:
        token = answer.json()["session_id"]
    except (ValueError, KeyError, TypeError):
        raise KubernetesError(f"the Supervisor at {address} answered {LOGIN_PATH} without a session_id.") from None
    return Secret(str(token))
