"""Secrets, in one place: what is secret, the value type that holds one, reading them, and scrubbing
them from records.

:data:`SECRETS` is the one list of what is secret: each secret's site field (the environment
variable that holds a password, ``*_env``, or the file of a private key) and the appliance's vApp
properties that carry it. A secret never lives in a site file, a papermill parameter or widget
state; :func:`read_secret` takes it from its variable, or asks the person at the keyboard, and
hands it on as a :class:`Secret`, whose ``repr``, ``str`` and formatting show asterisks wherever it
goes (a traceback, a log line, a dataclass's repr, VMware's bindings' repr), until :func:`plain`
unwraps its characters where it is sent. As a last line of defence, :func:`scrub_notebook`
replaces every secret value still found in an executed notebook's visible text with asterisks
before its HTML is written, and the run folder is scanned for them after every stage.
"""

from __future__ import annotations

import getpass
import html
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .errors import SiteError
from .files import write_text_whole
from .display.notebook import kernel_allows_input

__all__ = ["SECRETS", "SecretKind", "SECRET_FIELDS", "SECRET_PROPERTIES", "secret_env_fields", "is_secret_key",
           "mentions_secret", "read_secret", "secret_values", "kubeconfig_secrets", "scrub_notebook", "scrub_text",
           "MASK", "Secret", "plain", "is_secret_property", "private_key_forms", "learned_secret", "learned_secrets",
           "LEARNED_SECRETS_ENV"]

MASK = "********"


@dataclass(frozen=True)
class SecretKind:
    """One secret of a site: what it is, the site field saying where it lives, and the appliance's vApp
    properties that carry it to the appliance."""

    what: str
    field: str  # "<block>.<key>": an environment variable's name (*_env), or a private key's file (*_file)
    properties: tuple[str, ...] = ()

    @property
    def from_environment(self) -> bool:
        return self.field.endswith("_env")


SECRETS: tuple[SecretKind, ...] = (
    SecretKind("vCenter's password", "vcenter.password_env"),
    SecretKind("the Data Plane API password", "haproxy.dataplane_password_env", ("loadbalance.haproxy_pwd",)),
    SecretKind("the appliance's root password", "haproxy.root_password_env", ("appliance.root_pwd",)),
    SecretKind("the private key of the appliance's own CA", "haproxy.ca_key_file", ("appliance.ca_cert_key",)),
    SecretKind("the Data Plane API's new password", "rotate.dataplane_password_env", ("loadbalance.haproxy_pwd",)),
    SecretKind("the appliance's new root password", "rotate.root_password_env", ("appliance.root_pwd",)),
)
# (block, field) of every site field that names a secret's environment variable.
SECRET_FIELDS = tuple(tuple(k.field.split(".")) for k in SECRETS if k.from_environment)
SECRET_PROPERTIES = frozenset(p for kind in SECRETS for p in kind.properties)


def is_secret_property(key: str) -> bool:
    """Whether the appliance's vApp property ``key`` carries a secret."""
    return key in SECRET_PROPERTIES


class Secret(str):
    """A secret's characters, shown as asterisks by ``repr``, ``str`` and formatting wherever it goes
    (a traceback, a log line, the repr of an object holding it, VMware's bindings' repr of a spec),
    while the serializers that read the characters themselves (json, VMware's runtime) still send
    them. :func:`plain` gives the characters, for the transport that sends it (pyVmomi refuses a
    subclass of str, so nothing can send asterisks there by mistake)."""

    def __new__(cls, characters: str = "") -> "Secret":
        # str(x) of a str subclass calls its __str__: wrapping a Secret again would keep the mask.
        return super().__new__(cls, str.__str__(characters))

    def __repr__(self) -> str:
        return repr(MASK)

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)


def plain(secret: str) -> str:
    """The characters of ``secret``, a :class:`Secret` or a plain str: only where it is sent."""
    return str.__str__(secret)

# A key that would hold a secret itself; `*_env` and `*_file` keys only name where one lives.
_SECRET_WORDS = "password|passwd|pwd|secret|token"
_SECRET_KEY = re.compile(rf"^(.*_)?({_SECRET_WORDS})$|^(api_)?key$", re.IGNORECASE)


def is_secret_key(name: str) -> bool:
    """A site key whose name says it would hold a secret itself (``*_env`` and ``*_file`` keys don't)."""
    return bool(_SECRET_KEY.match(name))


def mentions_secret(name: str) -> bool:
    """Any name with a secret's word in it (``root_password_text`` too): stricter, for widget values."""
    return bool(re.search(_SECRET_WORDS, name, re.IGNORECASE)) or is_secret_key(name)


def secret_env_fields(site) -> Iterator[tuple[str, str]]:
    """(field, environment variable name) of every secret the site names, e.g.
    ("vcenter.password_env", "TKGS_VCENTER_PASSWORD")."""
    for block, name in SECRET_FIELDS:
        section = getattr(site, block, None)
        if section is not None:
            yield f"{block}.{name}", getattr(section, name)


def read_secret(env_name: str, what: str, field: str) -> Secret:
    """The secret in environment variable ``env_name``, else ask the person at the keyboard.

    Headless (papermill, CI) nobody can answer, so a missing variable is an error that says
    which variable to set. The value is never logged or echoed."""
    value = os.environ.get(env_name, "")
    if value:
        return _usable(value, what, env_name)
    if kernel_allows_input():
        value = getpass.getpass(f"{what} (not stored; set {env_name} to skip this prompt): ")
        if value:
            return _usable(value, what, "the prompt")
    raise SiteError(f"{what} is needed but the environment variable {env_name} (named by {field}) is not set. "
                    f"Set it before a headless run, e.g. `read -rs {env_name} && export {env_name}`.")


def _usable(value: str, what: str, where: str) -> Secret:
    """``value`` as a Secret, unless it holds what no password can carry to where it goes: a line break
    or another control character (the appliance's first boot feeds the root password to chpasswd, one
    `user:password` per line; a login header cannot carry one either)."""
    import unicodedata

    for position, char in enumerate(value, 1):
        if unicodedata.category(char) == "Cc":
            name = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab"}.get(char, "a control character")
            raise SiteError(f"{what} in {where} holds {name} at character {position}, which it cannot carry (the "
                            f"appliance's first boot reads its passwords one per line; no login sends one): set a "
                            f"password without it.")
    return Secret(value)


MIN_SECRET_LENGTH = 8  # shorter, a secret masked in a run's records would be masked in their own words too


def unscrubbable_secrets(site, own_texts: dict[str, str]) -> list[str]:
    """Why a secret the site names cannot be kept out of a run's records safely, one sentence each and
    never the value: too short, or a string the run's own files hold regardless (``own_texts``: name →
    text, e.g. the site file, the stage notebooks, the run folder's path), which masking would corrupt."""
    problems = []
    for field, name in secret_env_fields(site):
        value = os.environ.get(name or "", "")
        if not value:
            continue
        try:
            _usable(value, f"${name} ({field})", "its variable")
        except SiteError as exc:
            problems.append(exc.message)
            continue
        if len(value) < MIN_SECRET_LENGTH:
            problems.append(f"${name} ({field}) is {len(value)} characters long: the run masks every secret in its "
                            f"records, and one shorter than {MIN_SECRET_LENGTH} characters would be masked inside their "
                            f"own words; use a password of at least {MIN_SECRET_LENGTH} characters.")
            continue
        holders = [where for where, text in own_texts.items() if value in text]
        if holders:
            problems.append(f"${name} ({field}) is a string that {', '.join(holders)} already hold(s): masking it in "
                            f"the run's records would rewrite them; use another password.")
    return problems


def secret_values(site) -> list[str]:
    """The values of every secret the site names, so they can be scrubbed from reports and scanned for:
    the passwords in their variables, the CA's private key as the file holds it and as it is sent
    (PKCS#8, on one line), each line of its body too (a part of a key that leaks is a leak), and the
    credentials of the kubeconfig the cluster stage keeps for the site (:func:`kubeconfig_secrets`)."""
    values = [os.environ[name] for _, name in secret_env_fields(site) if name and os.environ.get(name)]
    key_file = getattr(getattr(site, "haproxy", None), "ca_key_file", None)
    if key_file:
        values += _private_key_forms(key_file)
    namespace, cluster = getattr(site, "namespace", None), getattr(site, "tanzu_cluster", None)
    if namespace is not None and cluster is not None and getattr(site, "site", ""):
        from .paths import kubeconfig_file

        values += kubeconfig_secrets(kubeconfig_file(site.site, namespace.name, cluster.name))
    return values


def kubeconfig_secrets(path: Path) -> list[str]:
    """The credentials a kubeconfig holds (each user's token, password and client key, as written and the key
    decoded, each line of its body too), or none when there is no such file."""
    import base64

    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    values = []
    for user in (data or {}).get("users") or [] if isinstance(data, dict) else []:
        fields = (user or {}).get("user") or {}
        if not isinstance(fields, dict):
            continue
        for key in ("token", "password"):
            if isinstance(fields.get(key), str) and fields[key]:
                values.append(fields[key])
        key_data = fields.get("client-key-data")
        if isinstance(key_data, str) and key_data:
            values.append(key_data)
            try:
                pem = base64.b64decode(key_data).decode()
            except (ValueError, UnicodeDecodeError):
                continue
            values += [pem.strip()] + [line for line in pem.splitlines() if len(line) >= 40 and "-----" not in line]
    return sorted(set(values), key=len, reverse=True)


def _private_key_forms(path: str) -> list[str]:
    try:
        text = open(path, encoding="utf-8").read().strip()
    except (OSError, UnicodeDecodeError):
        return []
    return private_key_forms(text)


def private_key_forms(text: str) -> list[str]:
    """A private key (PEM) as it may appear: as written, as PKCS#8 and on one line (as the appliance property
    carries it), and each line of its body (a part of a key that leaks is a leak); longest first."""
    text = text.strip()
    forms = {text}
    try:
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(text.encode(), password=None)
        pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode().strip()
        forms |= {pkcs8, " ".join(pkcs8.split("\n"))}  # the appliance property carries it on one line
    except (ValueError, TypeError, ImportError):
        pass
    lines = {line for form in forms for line in form.splitlines() if len(line) >= 40 and "-----" not in line}
    return sorted(forms | lines, key=len, reverse=True)


# --- secrets a stage reads at run time -------------------------------------------------------------

# The file (in the runner's private folder) a stage's kernel appends the secrets it reads at run time to, for
# the runner's scrubbing and scan; set by the runner for its kernels.
LEARNED_SECRETS_ENV = "TKGS_LEARNED_SECRETS"


def learned_secret(value: str) -> Secret:
    """``value``, a secret a stage read at run time rather than one the site names (the running appliance's CA
    key, read over SSH by the upgrade stage), as a Secret; its forms (a key's too: :func:`private_key_forms`)
    are appended first to the runner's private file (``TKGS_LEARNED_SECRETS``), so the runner scrubs the
    stage's record of it and its scan of the run folder looks for it, as for every secret the site names.
    Without a runner (a person in JupyterLab) there is no scan to tell."""
    forms = private_key_forms(value) if "PRIVATE KEY" in value else [value]
    path = os.environ.get(LEARNED_SECRETS_ENV)
    if path:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, (json.dumps(forms) + "\n").encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    return Secret(value)


def learned_secrets(path: Path) -> list[str]:
    """The secrets the stages' kernels handed the runner in ``path`` (:func:`learned_secret`)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    found: list[str] = []
    for line in lines:
        try:
            found += [form for form in json.loads(line) if isinstance(form, str) and form]
        except ValueError:  # a line cut short by a kernel killed mid-write
            continue
    return found


# --- scrubbing records --------------------------------------------------------------------------

def _secret_forms(secrets: Iterable[str]) -> list[str]:
    """A secret as it may appear in a record: raw, HTML-escaped (with and without quotes, as pandas
    and nbconvert escape), as Python's repr shows it, and as JSON quotes it. Longest first."""
    forms = set()
    for secret in secrets:
        if secret:
            forms |= {secret, html.escape(secret), html.escape(secret, quote=False), repr(secret)[1:-1],
                      json.dumps(secret)[1:-1]}
    return sorted(forms, key=len, reverse=True)


def _replace(text: str, forms: list[str]) -> str:
    for form in forms:
        text = text.replace(form, MASK)
    return text


def scrub_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every secret replaced by asterisks."""
    return _replace(text, _secret_forms(secrets))


def scrub_notebook(path: Path, secrets: Iterable[str]) -> None:
    """Replace every secret value in what a notebook shows with asterisks.

    Defence in depth: nothing should print a secret. Only the text a reader sees is rewritten
    (sources, text outputs, tracebacks, widget state), never ids, names or images, so even a
    secret such as "1" or "cells" leaves a valid notebook. Every form of _secret_forms goes."""
    forms = _secret_forms(secrets)
    if not forms:
        return

    def scrub(node):
        if isinstance(node, str):
            return _replace(node, forms)
        if isinstance(node, list):
            return [scrub(item) for item in node]
        if isinstance(node, dict):
            return {key: scrub(value) for key, value in node.items()}
        return node

    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        cell["source"] = scrub(cell.get("source", ""))
        for output in cell.get("outputs", []):
            for key in ("text", "evalue", "traceback"):
                if key in output:
                    output[key] = scrub(output[key])
            data = output.get("data", {})
            for mime in data:
                if mime.startswith("text/") or mime.endswith("json"):
                    data[mime] = scrub(data[mime])
    if "widgets" in nb.get("metadata", {}):
        nb["metadata"]["widgets"] = scrub(nb["metadata"]["widgets"])
    write_text_whole(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def fields_holding_secrets(site, secrets: Iterable[str]) -> list[str]:
    """The site fields whose value contains a secret's value (a port group named after a password
    would carry it into every plan table and CSV). Never the values themselves."""
    import dataclasses

    wanted = [s for s in secrets if s and len(s) >= 4]
    found: list[str] = []

    def visit(node, path: str) -> None:
        if dataclasses.is_dataclass(node):
            for f in dataclasses.fields(node):
                if not f.metadata.get("internal"):
                    visit(getattr(node, f.name), f"{path}.{f.name}" if path else f.name)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                visit(item, f"{path}[{i}]")
        elif isinstance(node, str) and any(secret in node for secret in wanted):
            found.append(path)

    if wanted:
        visit(site, "")
    return found


# What a run writes for a person to read, and nothing reads back: the only files masking may rewrite.
# The site file, known_hosts, the CA, the CSVs and records later stages read are never rewritten: a
# secret in one of them is found by the scan, which stops the run naming the file.
SCRUBBED_SUFFIXES = (".log", ".txt")


def scrub_text_files(folder: Path, secrets: Iterable[str]) -> list[Path]:
    """Mask secrets in the logs and text reports of ``folder`` (:data:`SCRUBBED_SUFFIXES`; the notebooks
    and their HTML have :func:`scrub_notebook`); returns the files it changed."""
    forms = _secret_forms(secrets)
    changed = []
    if not forms:
        return changed
    for path in Path(folder).rglob("*"):
        if not path.is_file() or path.suffix not in SCRUBBED_SUFFIXES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # not text: the scan still looks at its bytes
        scrubbed = _replace(text, forms)
        if scrubbed != text:
            write_text_whole(path, scrubbed)
            changed.append(path)
    return changed


# --- the last check of a run folder -----------------------------------------------------------------

def encoded_forms(secret: str) -> list[str]:
    """How a secret can hide in a file: plain, URL-encoded (both ways), and base64 (standard and
    URL-safe) at each of the three byte offsets it can start at within an encoded stream."""
    import base64
    from urllib.parse import quote, quote_plus

    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * offset + raw).decode()
            start, end = -(-4 * offset // 3), 4 * (offset + len(raw)) // 3  # only chars the secret alone decides
            if end - start >= 4:
                forms.add(text[start:end])
    return sorted(forms, key=len, reverse=True)


def scan_for_secrets(folder: Path, secrets: Iterable[str]) -> list[tuple[str, str]]:
    """Every (file, how it appears) where a secret is found in ``folder``: plain, URL-encoded or base64."""
    wanted = [(form, secret) for secret in secrets if secret for form in encoded_forms(secret)]
    hits = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for form, secret in wanted:
            if form.encode() in data:
                kind = "plain" if form == secret else "encoded"
                hits.append((str(path.relative_to(folder)), kind))
                break
    return hits
