"""``new-ca.sh``: the CA the appliance makes for itself at its first boot, when the user gave none.

Read in haproxytech/vmware-haproxy at each tag, ``ansible/roles/pki/files/usr/local/bin/new-ca.sh`` (blob
71e80ac at v0.1.7, 3dfc66c at v0.1.8 and v0.1.9, a71221e at v0.1.10 and v0.2.0), never copied; cloud-init
runs it from ``userdata.txt``'s runcmd as ``new-ca.sh -n '{{ ds.meta_data.local_ipv4 }}' /etc/haproxy``
(``-n`` from v0.1.10: keep a ``ca.crt`` or ``ca.key`` already there, such as the user's own that
``writeCAfiles`` wrote). Played: its ``ssl.conf`` (2048 bits, ``default_md = sha1``, the distinguished name
C=US, ST=California, L=Palo Alto, O=VMware, OU=CAPV, CN=the common name; ``CA:TRUE``, ``cRLSign,
digitalSignature, keyCertSign``), ``openssl req -new -nodes -x509 -days 3650``, then ``openssl rsa`` to
"fix" the key, by a real openssl in a temporary folder: so the CA is signed with SHA-1, as the
appliance's is.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

__all__ = ["new_ca"]

SSL_CONF = """[ req ]
default_bits           = 2048
encrypt_key            = no
default_md             = sha1
prompt                 = no
utf8                   = yes
distinguished_name     = dn
req_extensions         = ext
x509_extensions        = ext

[ dn ]
countryName            = US
stateOrProvinceName    = California
localityName           = Palo Alto
organizationName       = VMware
organizationalUnitName = CAPV
commonName             = {common_name}

[ ext ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, cRLSign, digitalSignature, keyCertSign
subjectKeyIdentifier   = hash
"""


def new_ca(common_name: str) -> tuple[str, str]:
    """The CA certificate and key (PEM) ``new-ca.sh COMMON_NAME`` writes as ca.crt and ca.key."""
    with tempfile.TemporaryDirectory(prefix="new-ca-") as work:
        (Path(work) / "ssl.conf").write_text(SSL_CONF.format(common_name=common_name))
        for argv in (["openssl", "req", "-config", "ssl.conf", "-new", "-nodes", "-x509", "-days", "3650",
                      "-keyout", "ca.key", "-out", "ca.crt"],
                     ["openssl", "rsa", "-in", "ca.key", "-out", "ca.key.fixed"]):
            subprocess.run(argv, cwd=work, capture_output=True, text=True, check=True)
        return (Path(work) / "ca.crt").read_text(), (Path(work) / "ca.key.fixed").read_text()
