"""The running appliance's CA, read over SSH to carry it to a new release.

An upgrade deploys the new release beside the old with the same settings; given the old one's CA
(``appliance.ca_cert`` and ``appliance.ca_cert_key``), the new appliance's server certificate chains to
the CA the Supervisor already trusts, so vCenter needs no change. The appliance keeps its CA in
``/etc/haproxy/ca.crt`` and its key in ``/etc/haproxy/ca.key`` (``ca_crt_path`` and ``ca_key_path`` in
``ansible/roles/cloudinit/files/var/lib/vmware/ovf-to-cloud-init.sh``, the same at v0.1.10 and v0.2.0).

The key is a secret: it is handed to the runner as one read at run time (:func:`~tkgs_lib.credentials.
learned_secret`), so it is scrubbed from the stage's record and looked for in the run folder, and it is
never in a message.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..credentials import Secret, learned_secret
from ..errors import ApplianceError
from .ca import CaCertificate, ca_pair
from .commands import CommandRunner, Fact, gather_many

__all__ = ["RUNNING_CA_CRT", "RUNNING_CA_KEY", "CarriedCa", "read_running_ca"]

RUNNING_CA_CRT, RUNNING_CA_KEY = "/etc/haproxy/ca.crt", "/etc/haproxy/ca.key"

# Read as text, checked here: a parser's error could quote what it read, and one of them is the key.
_CA_FILES = {"CA": Fact(f"the appliance's CA {RUNNING_CA_CRT}", f"cat {RUNNING_CA_CRT}", str),
             "CA key": Fact(f"the appliance's CA key {RUNNING_CA_KEY}", f"cat {RUNNING_CA_KEY}", str)}


@dataclass(frozen=True)
class CarriedCa:
    """The running appliance's CA and its key (PKCS#8, as the appliance's property takes it; its repr masked)."""

    ca: CaCertificate
    key: Secret


def read_running_ca(runner: CommandRunner, appliance: str) -> CarriedCa:
    """The CA and key ``runner``'s appliance (``appliance``: its address, for messages) holds, checked to be a CA
    valid now and its own key; an ApplianceError in one sentence otherwise."""
    read = gather_many(runner, _CA_FILES)
    problems = [got.message.rstrip(".") for got in read.values() if isinstance(got, ApplianceError)]
    if problems:
        raise ApplianceError(f"the appliance {appliance} did not give its CA to carry to the new release: "
                             f"{'; '.join(problems)}. Put its CA files back (from a backup), or upgrade it with a CA "
                             f"of your own: name it in haproxy.ca_cert_file and haproxy.ca_key_file, and give the "
                             f"Supervisor that CA's chain.")
    learned_secret(read["CA key"])  # handed to the runner before anything can show it
    ca, pkcs8 = ca_pair(read["CA"], read["CA key"], f"{RUNNING_CA_CRT} on the appliance {appliance}",
                        f"{RUNNING_CA_KEY} on the appliance {appliance}",
                        "an expired CA cannot be carried: renew the CA, then give the Supervisor its new chain")
    return CarriedCa(ca, Secret(pkcs8))  # its PKCS#8 form among those handed over (credentials.private_key_forms)
