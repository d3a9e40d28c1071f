"""A fleet file: the sites of a fleet and, for each, where its stages may run (the Airflow DAG's input).

    fleet: tkgs_fleet               # names the DAG
    run_folder: /mnt/tkgs-runs      # shared storage, at this path on every worker
    stages: [networks, prepare]         # default: every stage
    apply: false                    # default: plan only
    sites:
      - site_file: sites/lab01.yaml # relative to this file
        queue: emea                 # the Airflow queue of the workers that can reach its vCenter
        pool: vc-emea               # optional: an Airflow pool (one slot per vCenter runs one site at a time)
        passwords:                  # optional: a variable the site names -> the Airflow connection holding it
          TKGS_VCENTER_PASSWORD: tkgs_lab01_vcenter

A password never appears here: only the name of the Airflow connection that holds it. A variable a
site names and this file does not map is read from the worker's own environment. Every mistake is
one sentence naming the file and the field. A site file that cannot be read (not YAML, missing) or
whose site name cannot name a task group is not a mistake of this file: that site alone cannot run
(:attr:`FleetEntry.problem`, and its name is its file's stem), as ``run`` skips only that site.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import SiteError, TkgsError

__all__ = ["Fleet", "FleetEntry", "load_fleet"]

# Airflow's own rule for a connection id, a queue and a pool is looser; these keep them plain names.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,249}$")
_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
_TOP_KEYS = ("fleet", "run_folder", "stages", "apply", "sites")
_SITE_KEYS = ("site_file", "queue", "pool", "passwords")


@dataclass(frozen=True)
class FleetEntry:
    """One site of a fleet file."""

    site_file: Path  # absolute
    name: str  # the site's own name (its site file's ``site``); for a site that cannot run, its file's stem
    queue: str
    pool: Optional[str] = None
    passwords: dict = field(default_factory=dict)  # variable name -> Airflow connection id (never a value)
    secret_fields: dict = field(default_factory=dict)  # site field -> the variable it names, for each secret
    problem: str = ""  # why the site cannot run at all, naming its file (it cannot be read...)

    @property
    def secret_variables(self) -> tuple:
        """Every variable the site names for a secret."""
        return tuple(self.secret_fields.values())

    def passwords_for(self, stage) -> dict:
        """The connections of the secrets ``stage`` may read (its ``secrets``): variable -> connection id."""
        wanted = {self.secret_fields[f] for f in stage.secrets if f in self.secret_fields}
        return {variable: conn_id for variable, conn_id in self.passwords.items() if variable in wanted}


@dataclass(frozen=True)
class Fleet:
    source: Path
    name: str
    run_folder: Path
    stages: tuple  # stage names, in runbook order
    apply: bool
    sites: tuple  # FleetEntry, in file order


class _Reader:
    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> TkgsError:
        return TkgsError(f"{self.source}: {where}: {problem}")

    def mapping(self, value, where: str, keys) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping of keys ({', '.join(keys)}).")
        unknown = [k for k in value if k not in keys]
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}" if where != "fleet file" else str(unknown[0]),
                            f"unknown key; the keys here are: {', '.join(keys)}.")
        return value

    def name(self, value, where: str, what: str) -> str:
        if not isinstance(value, str) or not _NAME.match(value):
            raise self.fail(where, f"expected {what} (letters, digits, '_', '.' and '-'), got {value!r}.")
        return value


def load_fleet(path: str | Path) -> Fleet:
    """Read and check a fleet file, and every site file it names. TkgsError names the file and field."""
    from ..credentials import secret_env_fields
    from ..site import load_site
    from ..site.loading import _StrictLoader
    from ..stages import select_stages

    import yaml

    source = Path(path).absolute()
    read = _Reader(source)
    try:
        data = yaml.load(source.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except FileNotFoundError:
        raise TkgsError(f"{source}: no such fleet file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TkgsError(f"{source}: cannot be read ({exc}).") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise TkgsError(f"{source}: is not valid YAML{at}: {getattr(exc, 'problem', None) or exc}.") from None
    data = read.mapping(data, "fleet file", _TOP_KEYS)
    for key in ("fleet", "run_folder", "sites"):
        if key not in data:
            raise read.fail(key, "is required but missing.")
    name = data["fleet"]
    if not isinstance(name, str) or not _DAG_ID.match(name):
        raise read.fail("fleet", f"expected a DAG id (letters, digits, '_', '.' and '-'), got {name!r}.")
    run_folder = data["run_folder"]
    if not isinstance(run_folder, str) or not run_folder.startswith("/"):
        raise read.fail("run_folder", "expected an absolute path: the shared folder every worker sees at that path.")
    try:
        stages = tuple(s.name for s in select_stages(data.get("stages")))
    except TkgsError as exc:
        raise read.fail("stages", exc.message) from None
    apply = data.get("apply", False)
    if not isinstance(apply, bool):
        raise read.fail("apply", f"expected true or false, got {apply!r}.")
    if not isinstance(data["sites"], list) or not data["sites"]:
        raise read.fail("sites", "expected a list of sites, each with its site_file and queue.")
    read_sites, names = [], {}
    for i, raw in enumerate(data["sites"]):
        where = f"sites[{i}]"
        raw = read.mapping(raw, where, _SITE_KEYS)
        for key in ("site_file", "queue"):
            if key not in raw:
                raise read.fail(f"{where}.{key}", "is required but missing.")
        if not isinstance(raw["site_file"], str) or not raw["site_file"].strip():
            raise read.fail(f"{where}.site_file", "expected the path of a site file.")
        site_file = (source.parent / raw["site_file"]).absolute()
        try:
            site, problem = load_site(site_file), ""
        except SiteError as exc:
            site, problem = None, exc.message
        if site is not None and not _NAME.match(site.site or ""):
            site, problem = None, (f"{site_file}: site {site.site!r} cannot name a task group or a run folder: use "
                                   f"letters, digits, '_', '.' and '-' only.")
        if site is not None and site.site in names:
            raise read.fail(f"{where}.site_file", f"site {site.site!r} is also the site of sites[{names[site.site]}]; "
                                                  f"each site of a fleet needs a name of its own.")
        if site is not None:
            names[site.site] = i
        read_sites.append((where, raw, site_file, site, problem))
    sites = []
    for where, raw, site_file, site, problem in read_sites:
        secret_fields = {f: variable for f, variable in secret_env_fields(site) if variable} if site else {}
        passwords = raw.get("passwords") or {}
        if not isinstance(passwords, dict):
            raise read.fail(f"{where}.passwords", "expected a mapping of variable name to Airflow connection id.")
        for variable, conn_id in passwords.items():
            if site is not None and variable not in secret_fields.values():
                raise read.fail(f"{where}.passwords.{variable}", f"the site names no such variable (it names "
                                                                 f"{', '.join(secret_fields.values())}).")
            read.name(conn_id, f"{where}.passwords.{variable}", "an Airflow connection id")
        pool = raw.get("pool")
        sites.append(FleetEntry(site_file, site.site if site else _name_of_its_own(site_file, names),
                                read.name(raw["queue"], f"{where}.queue", "an Airflow queue"),
                                read.name(pool, f"{where}.pool", "an Airflow pool") if pool is not None else None,
                                dict(passwords), secret_fields, problem))
    return Fleet(source, name, Path(run_folder), stages, apply, tuple(sites))


def _name_of_its_own(site_file: Path, taken: dict) -> str:
    """A name for the task group of a site whose own name cannot be read: its file's stem, as a plain
    name, with -2, -3... when a site or another such file has it already; added to ``taken``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", site_file.stem).lstrip("_.-")[:200] or "site"
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    taken[name] = None
    return name
