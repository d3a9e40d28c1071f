"""What the appliance's own first boot leaves readable, read over SSH, judged, and taken away.

Read at the release's tag (haproxytech/vmware-haproxy v0.1.10 and v0.2.0 hold the same lines):

* ``ansible/roles/cloudinit/files/etc/systemd/system/ovf-to-cloud-init.service`` runs
  ``ansible/roles/cloudinit/files/var/lib/vmware/ovf-to-cloud-init.sh`` at every boot as ``/bin/sh -c
  '/var/lib/vmware/ovf-to-cloud-init.sh 2>&1 | tee -a /var/log/vmware/ovf-to-cloud-init.log'``, and the
  script runs under ``set -x``: its first boot traces into that log (world-readable: ``tee`` creates it
  0644) the OVF environment (``checkForExistingOvfenv``: every property's value), root's password
  (``getRootPwd``'s ``val=``, the ``openssl passwd -1 -salt SaltSalt`` line), its MD5-crypt hash and the
  base64 cloud-config holding it (``publishUserdata``), the Data Plane API password and its hash
  (``setHAProxyUserPass``), and a CA key the user gave (``writeCAfiles``).
* ``publishUserdata`` keeps that cloud-config in ``/var/lib/vmware/encoded_userdata.txt`` (0644) and
  publishes it as the VM's guestinfo ``userdata``: root's password as MD5-crypt with the constant salt
  ``SaltSalt``, which anyone who reads the VM's configuration in vCenter can crack offline.

:func:`first_boot_traces` finds every such trace in the log (a pure parser): what each holds, with its
lines shown masked. The other facts are a command and a parser each; :class:`HardeningOps` changes the
appliance through :func:`~tkgs_lib.appliance.commands.run_change` (the ledger).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shlex
from dataclasses import dataclass, field
from typing import Iterable, Optional

from ..credentials import MASK, SECRETS
from ..errors import ApplianceError
from .commands import CommandRunner, Fact, run_change

__all__ = ["LOG", "ENCODED_USERDATA", "FIRST_BOOT_DONE", "AUTHORIZED_KEYS", "SECRET_PROPERTIES", "Trace", "LogText",
           "KeptFile", "SshdSettings", "first_boot_traces", "masked_log", "FACTS", "HardeningOps", "MASKED"]

LOG = "/var/log/vmware/ovf-to-cloud-init.log"
ENCODED_USERDATA = "/var/lib/vmware/encoded_userdata.txt"
# Touched by the first boot and never removed: while it is there, the script runs ensureMetadata only
# (`if [ ! -f "$first_boot_path" ]` at the end of ovf-to-cloud-init.sh, v0.1.10 and v0.2.0).
FIRST_BOOT_DONE = "/var/lib/vmware/.ovf_to_cloud_init.done"
AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"
SSHD_FILES = "/etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf"
MASKED = "# masked by tkgs-runbook's harden stage:"  # ends each line the harden stage put in a trace's place

# The vApp properties that carry a secret, and what each is in words.
SECRET_PROPERTIES = {prop: kind.what for kind in reversed(SECRETS) for prop in kind.properties}  # the first kind's
_ENTRY = re.compile(r"^(\++) ")
_READ = re.compile(r"ovf-rpctool get\.ovf (\S+)$")
_ASSIGN = re.compile(r"^\++ ([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
_PROPERTY = re.compile(r'oe:key="([^"]+)"\s+oe:value="([^"]*)"')
_MD5_CRYPT = re.compile(r"\\?\$1\\?\$([./0-9A-Za-z]{0,8})\\?\$[./0-9A-Za-z]{22}")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)


@dataclass(frozen=True)
class LogText:
    """A log as read: its text is never shown (it holds the secrets looked for)."""

    text: str = field(repr=False)

    @property
    def lines(self) -> int:
        return len(self.text.splitlines())

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class Trace:
    """One traced command of the log that holds a secret: its lines, what it holds, and its first line masked."""

    first: int  # its first line, from 1
    last: int
    holds: tuple[str, ...]  # what it holds, in words: "root's password in clear"...
    shown: str  # its first line with every secret masked, cut

    @property
    def lines(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


def _entries(text: str) -> list[tuple[int, int, str]]:
    """The log's entries: each traced command (a line of ``+``s) with the lines that follow it until the next
    (a value over many lines, what an echo printed), as (first line, last line, text)."""
    entries: list[tuple[int, int, str]] = []
    for number, line in enumerate(text.split("\n"), 1):
        if _ENTRY.match(line) or not entries:
            entries.append((number, number, line))
        else:
            first, _, joined = entries[-1]
            entries[-1] = (first, number, f"{joined}\n{line}")
    return [e for e in entries if e[2].strip()]


def _unquoted(word: str) -> str:
    """A value as bash's xtrace quoted it (``'...'``, ``'\\''``), as it was."""
    try:
        parts = shlex.split(word, posix=True)
    except ValueError:
        return word
    return parts[0] if len(parts) == 1 else word


def _forms(value: str) -> set[str]:
    """How a value shows in a trace: as it is, XML-escaped (in the OVF environment), each inside xtrace's
    single quotes (``'\\''`` for a quote); by ``printf %q`` (and sed-escaped after it)."""
    escaped = re.sub(r"([^A-Za-z0-9_./:,@%+=^-])", r"\\\1", value)
    bases = {value, html.escape(value), html.escape(value, quote=False), html.escape(value).replace("&#x27;", "'")}
    return ({form for base in bases for form in (base, base.replace("'", "'\\''"))}
            | {escaped, escaped.replace("/", "\\/")}) - {""}


def _learned(entries: list[tuple[int, int, str]], known: Iterable[str]) -> dict[str, str]:
    """Every secret value the log shows, learned from the trace itself, → what it is in words."""
    secrets: dict[str, str] = {value: "a password of the site's" for value in known if value}
    reading = ""  # the secret property the command before read
    for _, _, text in entries:
        if MASKED in text:
            reading = ""
            continue
        for key, value in _PROPERTY.findall(text.replace("'\\''", "'")):  # the document inside xtrace's quotes
            if key in SECRET_PROPERTIES and value:
                secrets[html.unescape(value)] = f"{SECRET_PROPERTIES[key]} ({key}) in the OVF environment"
        assigned = _ASSIGN.match(text)
        if reading and assigned and assigned.group(2):
            value = _unquoted(assigned.group(2))
            if value and value != MASK:
                secrets[value] = f"{SECRET_PROPERTIES[reading]} ({reading}) in clear"
        if assigned and assigned.group(1) == "encoded_userdata" and assigned.group(2):
            secrets[_unquoted(assigned.group(2))] = "the cloud-config with root's MD5-crypt hash, base64"
        for match in _MD5_CRYPT.finditer(text):
            raw = match.group(0).replace("\\", "")
            salt = match.group(1)
            secrets[raw] = ("root's password as MD5-crypt with the constant salt SaltSalt" if salt == "SaltSalt"
                            else "a password as MD5-crypt (the Data Plane API's)")
        for match in _PRIVATE_KEY.finditer(text):
            secrets[match.group(0)] = "a private key in clear"
        read = _READ.search(text.split("\n", 1)[0])
        reading = read.group(1) if read and read.group(1) in SECRET_PROPERTIES else ""
    return secrets


def first_boot_traces(log: LogText, known: Iterable[str] = ()) -> list[Trace]:
    """Every traced command of the first boot's log that holds a secret (``known``: the site's own secrets,
    looked for too), each with its lines, what it holds and its first line masked. Pure: no I/O."""
    entries = _entries(log.text)
    secrets = _learned(entries, known)
    forms = sorted(((form, what) for value, what in secrets.items() for form in _forms(value)),
                   key=lambda pair: len(pair[0]), reverse=True)
    traces = []
    for first, last, text in entries:
        if MASKED in text:
            continue
        holds = tuple(dict.fromkeys(what for form, what in forms if form in text))
        if holds:
            traces.append(Trace(first, last, holds, _masked_line(text, forms)))
    return traces


def _masked_line(text: str, forms) -> str:
    """The entry's first line, every secret form masked, cut to 110 characters; how many lines follow."""
    for form, _ in forms:
        text = text.replace(form, MASK)
    first, *rest = text.split("\n")
    shown = first if len(first) <= 110 else first[:107] + "..."
    return shown + (f" (and {len(rest)} more line{'s' if len(rest) > 1 else ''})" if rest else "")


def masked_log(log: LogText, traces: list[Trace]) -> str:
    """The log with each trace's lines replaced by one line: its first line masked, and what it held."""
    by_first = {t.first: t for t in traces}
    lines, out, skip_to = log.text.split("\n"), [], 0
    for number, line in enumerate(lines, 1):
        if number <= skip_to:
            continue
        trace = by_first.get(number)
        if trace is None:
            out.append(line)
            continue
        prefix = _ENTRY.match(line)
        head = trace.shown.split(" (and ", 1)[0] if prefix else "+"
        out.append(f"{head} {MASKED} {'; '.join(trace.holds)}")
        skip_to = trace.last
    return "\n".join(out)


# --- the other facts -------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeptFile:
    """A file the appliance keeps: its mode (octal, as stat prints it) and size."""

    mode: str
    size: int


def _kept_file(text: str) -> Optional[KeptFile]:
    if not text.strip():
        return None
    mode, size = text.split()
    return KeptFile(mode, int(size))


@dataclass(frozen=True)
class SshdSettings:
    """sshd's settings in effect for root (``sshd -T``): the ones that decide how root may log in."""

    permit_root_login: str  # yes, prohibit-password (without-password), forced-commands-only, no
    password_authentication: str
    pubkey_authentication: str

    @property
    def password_allowed(self) -> bool:
        return self.permit_root_login == "yes" and self.password_authentication == "yes"


def parse_sshd_settings(text: str) -> SshdSettings:
    """``sshd -T`` (keywords in lower case, one a line)."""
    values = dict(line.split(None, 1) for line in text.splitlines() if " " in line)
    return SshdSettings(values["permitrootlogin"].strip(), values["passwordauthentication"].strip(),
                        values["pubkeyauthentication"].strip())


def parse_authorized_keys(text: str) -> tuple[str, ...]:
    """``authorized_keys``: each key as "<type> <base64>" (options and comments left out)."""
    keys = []
    for line in text.splitlines():
        words = line.split()
        for i, word in enumerate(words[:-1]):
            if word.startswith(("ssh-", "ecdsa-", "sk-")):
                keys.append(f"{word} {words[i + 1]}")
                break
    return tuple(keys)


FACTS = {
    "log": Fact("the first boot's log", f"cat {LOG}", LogText, empty_when="No such file"),
    "encoded_userdata": Fact("the first boot's copy of its userdata", f"stat -c '%a %s' {ENCODED_USERDATA}",
                             _kept_file, empty_when="No such file"),
    "first_boot_done": Fact("the first boot's marker", f"test -e {FIRST_BOOT_DONE} && echo there || echo missing",
                            lambda text: text.strip() == "there"),
    # for root, as a login from another host is judged: a Match block may say otherwise than the file's top
    "sshd": Fact("sshd's settings", "sshd -T -C user=root,host=tkgs-runbook,addr=192.0.2.1", parse_sshd_settings),
    "authorized_keys": Fact("root's authorized keys", f"cat {AUTHORIZED_KEYS}", parse_authorized_keys,
                            empty_when="No such file"),
}


# --- the changes -----------------------------------------------------------------------------------

class HardeningOps:
    """The appliance's changes the harden stage makes, each one command through ``run_change`` (the ledger)."""

    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner

    def _run(self, command: str, doing: str) -> None:
        result = run_change(self.runner, command, timeout=60)
        if not result.ok:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise ApplianceError(f"{doing} failed: the appliance answered with exit status {result.exit_status}"
                                 + (f": {said[-1]}" if said else "."))

    def rewrite_log(self, read: LogText, masked: str) -> None:
        """Put the masked log in the log's place, atomically and with its mode, only if the log is still what
        was read (a boot since appends to it: then nothing is changed, and a rerun reads it again)."""
        encoded = base64.b64encode(masked.encode()).decode()
        self._run(f"# rewriting {LOG} without the secrets its traces held\n"
                  f"set -e\ncd {shlex.quote(LOG.rsplit('/', 1)[0])}\n"
                  f"echo '{read.digest}  {LOG.rsplit('/', 1)[1]}' | sha256sum -c --status || "
                  f"{{ echo 'the log changed since it was read: run the stage again' >&2; exit 3; }}\n"
                  f"printf %s '{encoded}' | base64 -d > .tkgs-new\n"
                  f"chmod --reference={LOG.rsplit('/', 1)[1]} .tkgs-new\n"
                  f"mv -f .tkgs-new {LOG.rsplit('/', 1)[1]}\n", f"rewriting {LOG}")

    def remove_encoded_userdata(self) -> None:
        # Nothing reads it after the first boot: at v0.1.10 and v0.2.0 only publishUserdata writes it, and
        # ensureMetadata (every later boot) and dscheck_VMwareGuestInfo.sh read encoded_metadata.txt only.
        self._run(f"rm -f {ENCODED_USERDATA}", f"removing {ENCODED_USERDATA}")

    def authorize_key(self, line: str) -> None:
        """Add ``line`` ("<type> <base64> <comment>") to root's authorized_keys, once."""
        quoted = shlex.quote(line)
        self._run(f"umask 077 && mkdir -p /root/.ssh && touch {AUTHORIZED_KEYS} && "
                  f"(grep -qxF {quoted} {AUTHORIZED_KEYS} || printf '%s\\n' {quoted} >> {AUTHORIZED_KEYS})",
                  f"putting the site's key in {AUTHORIZED_KEYS}")

    def no_password_login_for_root(self, stamp: str) -> None:
        """Every ``PermitRootLogin`` line sshd reads set to ``prohibit-password`` (a dated backup of each file
        first), the configuration tested (``sshd -t``; the backups put back when it fails) and sshd reloaded."""
        self._run(f"# turning root's password login over SSH off\nset -e\nchanged=''\n"
                  f"for f in {SSHD_FILES}; do\n"
                  f"  [ -f \"$f\" ] && grep -qiE '^[[:space:]]*PermitRootLogin[[:space:]]' \"$f\" || continue\n"
                  f"  cp -p \"$f\" \"$f.tkgs-{stamp}.bak\"; changed=\"$changed $f\"\n"
                  f"  sed -i -E 's/^[[:space:]]*PermitRootLogin[[:space:]].*$/PermitRootLogin prohibit-password/I' "
                  f"\"$f\"\n"
                  f"done\n"
                  f"if ! sshd -t; then for f in $changed; do cp -p \"$f.tkgs-{stamp}.bak\" \"$f\"; done; "
                  f"echo 'sshd refused the changed configuration: the files were put back' >&2; exit 4; fi\n"
                  f"systemctl reload sshd\n", "turning root's password login over SSH off")
