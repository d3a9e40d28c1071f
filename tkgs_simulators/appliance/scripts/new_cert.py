"""``new-cert.sh``, the appliance's maker of its Data Plane API's server certificate, as each release has it.

Read in haproxytech/vmware-haproxy at each tag, ``ansible/roles/pki/files/usr/local/bin/new-cert.sh``
(installed as ``/usr/local/bin/new-cert.sh`` by ``ansible/roles/pki/tasks/main.yml``; blobs 3ae5140 at
v0.1.7 and v0.1.8, 529df1a at v0.1.9, 49ec87d at v0.1.10 and v0.2.0), never copied. First boot runs it from
cloud-init's ``runcmd`` (``userdata.txt``: ``new-cert.sh [-n] -1 /etc/haproxy/ca.crt -2 /etc/haproxy/ca.key
-3 "127.0.0.1,<each interface's IPv4 address>" -4 "localhost" "<host name>" /etc/haproxy``), and a person
runs it again to reissue the certificate from the same CA.

Played as the script does it, with the real ``openssl``: its flags (getopts ``:hvn1:2:3:4:c:s:l:o:u:b:d:k:e:f:``,
``-n`` from v0.1.10, which leaves an existing ``server.crt`` or ``server.key`` alone), the ``ssl.conf`` it
writes in a temporary folder (``default_md = sha1``, ``basicConstraints = CA:FALSE``, the key usages, the
subject's defaults US, California, Palo Alto, VMware, CAPV, ``DNS.1`` repeating the common name, then the
DNS and IP SANs), ``openssl genrsa``, ``openssl req -new`` and ``openssl x509 -req -extfile ssl.conf
-extensions ext -days <days> -CAcreateserial`` (3,650 days by default), and the copy into the output folder
(``cp -f``: the files are replaced). Its errors are the script's words, on standard error, with its exit
status. Run as a file: ``python -S new_cert.py --release v0.1.10 ARGS...`` (what the guest installs as
``/usr/local/bin/new-cert.sh``); it imports nothing of the package.
"""

from __future__ import annotations

import getopt
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["NewCertV0_1_7", "NewCertV0_1_9", "NewCertV0_1_10", "NEW_CERT", "main"]

NEW_CERT = "/usr/local/bin/new-cert.sh"


class ScriptError(Exception):
    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message, self.status = message, status


class NewCertV0_1_7:
    """v0.1.7 and v0.1.8: no ``-n``; nothing checks that openssl left both files before they are copied."""

    OPTIONS = "hv1:2:3:4:c:s:l:o:u:b:d:k:e:f:"

    def __init__(self, say=print, warn=lambda text: print(text, file=sys.stderr)) -> None:
        self.say, self.warn = say, warn

    def run(self, argv: list[str]) -> int:
        try:
            self._run(argv)
        except ScriptError as exc:
            self.warn(exc.message)
            return exc.status
        return 0

    def _options(self, argv: list[str]) -> tuple[dict[str, str], list[str]]:
        try:
            pairs, args = getopt.getopt(argv, self.OPTIONS)
        except getopt.GetoptError as exc:
            what = "requires an argument" if "requires" in exc.msg else None
            raise ScriptError(f"option -{exc.opt} {what}" if what else f"invalid option: -{exc.opt}") from None
        return {flag[1]: value for flag, value in pairs}, args

    def _run(self, argv: list[str]) -> None:
        flags, args = self._options(argv)
        if "h" in flags:
            raise ScriptError("usage: new-cert.sh [FLAGS] COMMON_NAME [OUT_DIR]")
        days = flags.get("d", "3650")  # TLS_DEFAULT_DAYS: "The default value is 10 years."
        bits = flags.get("b", "2048")
        prefix = flags.get("f", "server")
        if not args:
            raise ScriptError("COMMON_NAME is required")
        common_name = args[0]
        ca_crt, ca_key = flags.get("1", ""), flags.get("2", "")
        if not ca_crt or not os.path.exists(ca_crt):
            raise ScriptError("the public key of the CA must be specified with -1")
        if not ca_key or not os.path.exists(ca_key):
            raise ScriptError("the private key of the CA must be specified with -2")
        out_dir = Path(args[1]) if len(args) > 1 else Path.cwd()
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.skips(flags, out_dir, prefix):
            self.say(f"Existing {prefix}.crt or {prefix}.key exists in {out_dir}. Skipping cert generation.")
            return
        work = Path(tempfile.mkdtemp())
        try:
            (work / "ssl.conf").write_text(self.ssl_conf(flags, common_name, bits, days))
            abspath = (lambda p: p if p.startswith("/") else str(Path.cwd() / p))
            self._openssl(work, "genrsa", "-out", f"{prefix}.key", bits)
            self._openssl(work, "req", "-config", "ssl.conf", "-new", "-key", f"{prefix}.key", "-days", days,
                          "-out", f"{prefix}.csr")
            self._openssl(work, "x509", "-extfile", "ssl.conf", "-extensions", "ext", "-days", days, "-req", "-in",
                          f"{prefix}.csr", "-CA", abspath(ca_crt), "-CAkey", abspath(ca_key), "-CAcreateserial",
                          "-out", f"{prefix}.crt")
            self.check_output(work, prefix)
            for suffix in ("crt", "key"):  # cp -f
                shutil.copyfile(work / f"{prefix}.{suffix}", out_dir / f"{prefix}.{suffix}")
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def skips(self, flags: dict[str, str], out_dir: Path, prefix: str) -> bool:
        return False  # no -n before v0.1.10

    def check_output(self, work: Path, prefix: str) -> None:
        pass  # v0.1.7: nothing checks

    @staticmethod
    def ssl_conf(flags: dict[str, str], common_name: str, bits: str, days: str) -> str:
        text = (f"[ req ]\ndefault_bits           = {bits}\ndefault_days           = {days}\n"
                f"encrypt_key            = no\ndefault_md             = sha1\nprompt                 = no\n"
                f"utf8                   = yes\ndistinguished_name     = dn\nreq_extensions         = ext\n"
                f"x509_extensions        = ext\n\n[ dn ]\n"
                f"countryName            = {flags.get('c', 'US')}\n"
                f"stateOrProvinceName    = {flags.get('s', 'California')}\n"
                f"localityName           = {flags.get('l', 'Palo Alto')}\n"
                f"organizationName       = {flags.get('o', 'VMware')}\n"
                f"organizationalUnitName = {flags.get('u', 'CAPV')}\n"
                f"commonName             = {common_name}\n\n[ ext ]\n"
                f"basicConstraints       = CA:FALSE\n"
                f"keyUsage               = {flags.get('k', 'digitalSignature, keyEncipherment')}\n"
                f"extendedKeyUsage       = {flags.get('e', 'clientAuth, serverAuth')}\n"
                f"subjectKeyIdentifier   = hash\n")
        ip_sans, dns_sans = flags.get("3", ""), flags.get("4", "")
        if ip_sans or dns_sans:
            text += f"subjectAltName         = @sans\n[ sans ]\nDNS.1                  = {common_name}\n"
            for i, name in enumerate(dns_sans.replace(",", " ").split(), start=2):
                text += f"DNS.{i}                  = {name}\n"
            for i, address in enumerate(ip_sans.replace(",", " ").split(), start=1):
                text += f"IP.{i}                   = {address}\n"
        return text

    @staticmethod
    def _openssl(work: Path, *args: str) -> None:
        # RANDFILE as userdata.txt sets it is openssl's own business; set -o errexit ends the script on a failure
        result = subprocess.run(["openssl", *args], cwd=work, capture_output=True, text=True)
        if result.returncode != 0:
            raise ScriptError(result.stderr.strip() or f"openssl {args[0]} failed", result.returncode)


class NewCertV0_1_9(NewCertV0_1_7):
    """v0.1.9: the script stops when openssl left no certificate or no key."""

    def check_output(self, work: Path, prefix: str) -> None:
        if not (work / f"{prefix}.crt").is_file() or not (work / f"{prefix}.key").is_file():
            raise ScriptError("failed to output certificate and key")


class NewCertV0_1_10(NewCertV0_1_9):
    """v0.1.10 and v0.2.0: ``-n`` skips generating when ``<prefix>.crt`` or ``<prefix>.key`` exists."""

    OPTIONS = "hvn1:2:3:4:c:s:l:o:u:b:d:k:e:f:"

    def skips(self, flags: dict[str, str], out_dir: Path, prefix: str) -> bool:
        return "n" in flags and ((out_dir / f"{prefix}.crt").is_file() or (out_dir / f"{prefix}.key").is_file())


BY_RELEASE = {"v0.1.7": NewCertV0_1_7, "v0.1.8": NewCertV0_1_7, "v0.1.9": NewCertV0_1_9,
              "v0.1.10": NewCertV0_1_10, "v0.2.0": NewCertV0_1_10}


def main(argv: list[str]) -> int:
    """``--release VERSION`` then the script's own arguments."""
    release = argv[1] if argv[:1] == ["--release"] and len(argv) > 1 else "v0.1.10"
    args = argv[2:] if argv[:1] == ["--release"] else argv
    return BY_RELEASE[release]().run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
