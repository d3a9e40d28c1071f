"""Reading a site file into the model, strictly, and never with a traceback for the user.

An unreadable or non-mapping file, or one with no key of a site file (a link to another file), raises
:class:`SiteError`; every other mistake (unknown key, secret, wrong type, missing or empty value)
becomes an error :class:`~tkgs_lib.findings.Finding` on ``Site.findings`` that names the field, and
the offending value is left at its default so later rules can still run. An unknown key is shown
only when it is a plain name a person could have mistyped (:data:`SHOWN_KEY`). Paths
(``doc(path=True)`` fields) are resolved against the site file.
"""

from __future__ import annotations

import dataclasses
import re
import stat
import types
import typing
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from ..credentials import is_secret_key
from ..errors import SiteError
from ..findings import Finding
from .model import MISSING, Site

# libyaml's parser when PyYAML has it (its wheels do): the pure-Python one costs seconds on a large file.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# A key shown back to the person: a plain name they could have mistyped. Anything else (a line of another
# file, a password hash) is counted, never shown: findings reach stderr, the notebook, its HTML and the record.
SHOWN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,39}$")


def shown_key(key: Any) -> bool:
    return isinstance(key, str) and bool(SHOWN_KEY.match(key))


class _StrictLoader(_BaseLoader):
    """YAML as a person means it: a duplicate key is an error, and whole numbers are decimal.

    YAML 1.1 reads `vlan: 026` as octal 22 and `1:20` as 80, and lets a second `gateway:`
    silently win; none of that may pass unnoticed in a site file."""

    def construct_mapping(self, node, deep=False):
        self.flatten_mapping(node)  # resolve `<<: *anchor` merges first, as SafeLoader does
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # a list or mapping used as a key
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain name, not a list or mapping", key_node.start_mark) from None
            if duplicate:
                named = f"duplicate key {key!r}" if shown_key(key) else "a duplicate key (not a plain name: not shown)"
                raise yaml.constructor.ConstructorError(
                    None, None, f"{named} (the second would silently replace the first)", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_StrictLoader.add_constructor("tag:yaml.org,2002:int", lambda loader, node: int(loader.construct_scalar(node), 10))


# A key that would hold a secret itself; `*_env` and `*_file` keys only name where one lives.


SUGGESTIONS = 20  # unknown keys of one mapping that get a "did you mean"
MAX_SITE_BYTES = 256 * 1024  # the article's site is 2 KB; 1,000 ranges of each kind fit in a tenth of this


def load_site(path: str | Path) -> Site:
    """Read a site file. Raises SiteError when it cannot be read, is too large or not a YAML mapping."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SiteError(f"{path}: no such site file.") from None
    except OSError as exc:
        raise SiteError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if stat.S_ISDIR(info.st_mode):
        raise SiteError(f"{path}: is a folder; give the path of a site file (YAML).")
    if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would hang the read, or never end
        raise SiteError(f"{path}: is not a regular file; give the path of a site file (YAML).")
    if info.st_size > MAX_SITE_BYTES:
        raise SiteError(f"{path}: is {info.st_size / 1024:,.0f} KiB; a site file is at most {MAX_SITE_BYTES // 1024} "
                        f"KiB (the article's is 2 KiB): is it really a site file?")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteError(f"{path}: cannot be read ({exc}).") from None
    return parse_site(text, source=path)


def parse_site(text: str, source: Optional[Path] = None) -> Site:
    """Parse site YAML. Structure errors raise SiteError; field errors land on ``Site.findings``."""
    where = str(source) if source else "site"
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SiteError(f"{where}: is not valid YAML{at}: {problem}.") from None
    except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit number, or nesting 3000 deep
        raise SiteError(f"{where}: cannot be read as a site file: {str(exc)[:120]}.") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise SiteError(f"{where}: a site file must be a YAML mapping of keys (site, vcenter, networks, "
                        f"haproxy...), but this one is {kind}.")
    if not _could_be_a_site(data):  # e.g. a link to /etc/shadow: its lines are never shown back as keys
        raise SiteError(f"{where}: is not a site file: none of its keys is one a site file has (site, vcenter, "
                        f"networks, haproxy...).")
    base = source.resolve().parent if source else Path.cwd()
    findings: list[Finding] = []
    site = _build(Site, data, "", base, findings)
    site.source = source.resolve() if source else None
    from .rules import site_rules  # they read a built Site; they live apart from loading

    site.findings = findings + site_rules(site)
    return site


def _could_be_a_site(data: dict) -> bool:
    """A mapping with a key of the site's top level, or one a person could have mistyped for one."""
    known = [f.name for f in dataclasses.fields(Site) if not f.metadata.get("internal")]
    return not data or any(key in known or (shown_key(key) and _closest(key, known)) for key in data)


def _build(cls: type, data: Any, prefix: str, base: Path, findings: list[Finding]):
    """Build dataclass ``cls`` from a mapping, reporting every problem as a finding."""
    if not isinstance(data, dict):
        findings.append(Finding.error(prefix, f"must be a mapping of keys, not {_show(data)}.",
                                      f"write the keys of {prefix} indented below it."))
        data = {}
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    values: dict[str, Any] = {}
    unknown = hidden = 0
    for key, raw in data.items():
        if not shown_key(key):  # no key of the site: counted below, never shown
            hidden += 1
            continue
        path = f"{prefix}.{key}" if prefix else key
        if is_secret_key(key):
            findings.append(Finding.error(
                path, "a site file must not hold a secret: it is shared, committed and passed to notebooks.",
                f"remove it, put the secret in an environment variable and name that variable with "
                f"`{key}_env`."))
            continue
        if key not in known:
            unknown += 1  # a spelling suggestion for the first few: thousands are not typos
            close = _closest(key, known) if unknown <= SUGGESTIONS else None
            hint = f"did you mean `{close}`?" if close else f"the keys here are: {', '.join(known)}."
            findings.append(Finding.error(path, "unknown key.", f"remove it or fix its spelling; {hint}"))
            continue
        f = known[key]
        value = _convert(hints[key], raw, path, f, base, findings)
        if _is_required(f) and value in ("", []):
            findings.append(Finding.error(path, "is required but empty.", _what_to_add(key, f)))
            value = _BAD
        values[key] = value
    if hidden:
        keys, they = ("a key that is not a plain name", "it") if hidden == 1 else (
            f"{hidden:,} keys that are not plain names", "them")
        findings.append(Finding.error(
            prefix or "(top level)", f"has {keys} (letters, digits, '_', '-' and '.'), not shown: such a key may be "
                                     f"a line of another file, or hold a secret.",
            f"remove {they}; the keys here are: {', '.join(known)}."))
    for name, f in known.items():
        if name in values and values[name] is not _BAD:
            continue
        if name not in values and _is_required(f):
            path = f"{prefix}.{name}" if prefix else name
            findings.append(Finding.error(path, "is required but missing.", _what_to_add(name, f)))
        values[name] = _placeholder(hints[name], f)
    return cls(**values)


def _is_required(f) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _what_to_add(name: str, f) -> str:
    example = f.metadata.get("example")
    return f"add `{name}:` ({f.metadata['doc']})" + (f", e.g. {example}" if example else "")


_BAD = object()  # a value that failed conversion; replaced by a placeholder


def _convert(hint, raw, path: str, f, base: Path, findings: list[Finding], item: bool = False):
    """``raw`` as ``hint`` for field ``f`` at ``path`` (``item``: one item of the field's list)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType) and type(None) in args:
        if raw is None:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(hint), typing.get_args(hint)

    def bad(expected: str, fix: str):
        findings.append(Finding.error(path, f"expected {expected}, got {_show(raw)}.", fix))
        return _BAD

    if dataclasses.is_dataclass(hint):
        return _build(hint, raw if raw is not None else {}, path, base, findings)
    if origin is Literal:
        if raw in args:
            return raw
        return bad(" or ".join(repr(a) for a in args), f"write one of: {', '.join(args)}.")
    if origin is list:
        (item_hint,) = args
        if raw is None:
            return []
        if isinstance(raw, str) and not raw.strip():  # `datastores: ''` is no list of one nameless datastore
            return [] if _is_required(f) else _empty(path, f, findings)
        items = raw if isinstance(raw, list) else [raw]  # a lone value is a one-item list
        out = []
        for i, value in enumerate(items):
            converted = _convert(item_hint, value, f"{path}[{i}]", f, base, findings, item=True)
            if converted is not _BAD:
                out.append(converted)
        return out
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        return bad("true or false", "write true or false.")
    if hint is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            if abs(raw) >= 10 ** 30:  # a 4,000-digit number is no message to print; the field's rule says less
                return bad("a whole number of at most 30 digits", "write the field's own number (a VLAN, a port, "
                                                                  "seconds).")
            return raw  # its range is the field's rule's to say (a VLAN 0-4094, a port 1-65535...)
        if isinstance(raw, str) and re.fullmatch(r"[0-9]{1,9}", raw.strip()):
            return int(raw.strip())
        return bad("a whole number", "write a whole number (digits 0-9) without quotes.")
    if hint is str:
        if isinstance(raw, bool) or raw is None or isinstance(raw, (dict, list)):
            return bad("a text value", "write a single value (quote it if it looks like a number).")
        if isinstance(raw, (int, float)):  # YAML read a number: 0123 became 123, 1e3 became 1000.0
            return bad("a text value", f"YAML reads an unquoted number as a number, which may not be what you wrote "
                                       f"(0123 reads as 123): write it in quotes, e.g. '{raw}'.")
        text = str(raw).strip()
        if not text and item:
            findings.append(Finding.error(path, "is an empty item.", "remove it, or write the value in it."))
            return _BAD
        if not text:  # a required field says so itself ("is required but empty")
            return text if _is_required(f) else _empty(path, f, findings)
        if f.metadata.get("path") and not re.match(r"^https?://", text):
            try:
                return str((base / Path(text).expanduser()).resolve())
            except (OSError, RuntimeError, ValueError) as exc:  # ~nosuchuser, a NUL byte...
                return bad("a file path", f"write a plain path ({exc}).")
        return text
    raise TypeError(f"unsupported field type {hint!r} at {path}")  # a programming error


def _empty(path: str, f, findings: list[Finding]):
    """An empty text where the field has a default: '' is neither the default nor a value. An empty
    `password_env` would read the variable named '', and `ca_file: ''` silently trust the system store."""
    name = path.rsplit(".", 1)[-1]
    if name.endswith("_env"):
        default = (f"the variable {f.default}" if isinstance(f.default, str) else "the default")
        fix = f"remove the key to use {default}, or name the environment variable that holds the secret."
    elif f.default is None:
        fix = f"remove the key (or write null) for the default, or write the value: {f.metadata['doc']}"
    else:
        shown = "[]" if f.default is MISSING else "true" if f.default is True else "false" if f.default is False \
            else f.default
        fix = f"remove the key for the default ({shown}), or write the value: {f.metadata['doc']}"
    # The default, written out, is a value the field takes (the key removed means the same).
    suggested = (f.default,) if isinstance(f.default, str) and not name.endswith("_env") else ()
    findings.append(Finding.error(path, "is empty, which is neither a value nor the default.", fix, suggested))
    return _BAD


def _placeholder(hint, f):
    """The value a bad or missing field takes so later rules can run: its default, or empty."""
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    if dataclasses.is_dataclass(hint):
        return None
    if typing.get_origin(hint) is list:
        return []
    if hint is int:
        return None
    return ""


def _show(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, int) and abs(value) >= 10 ** 12:
        return f"a number of {len(str(abs(value))):,} digits"
    shown = repr(value)
    return shown if len(shown) <= 60 else f"{shown[:57]}... ({len(shown):,} characters)"


def _closest(key: str, known) -> Optional[str]:
    import difflib

    matches = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None
