"""What the appliance's HAProxy holds and runs, read through its Data Plane API (2.1.0), GET only.

A load-balancer controller (the Supervisor's) writes the configuration: frontends with their
binds and the rules that pick a backend (a real Supervisor's: ``use_backend <...>-kube-apiserver
if { dst_port 6443 }`` and ``<...>-nginx`` for 443, no default backend), backends with their
servers. That the configuration holds a frontend does not mean HAProxy runs it: a reload that
fails (``cannot bind socket`` for a virtual IP the appliance has no anyip route for) leaves the new
file in place while HAProxy serves the previous one, so the runtime is read too: HAProxy's own
statistics (``show stat``: a frontend ``OPEN`` is bound and accepting, a server's ``status`` and
last health check) and the servers' runtime state (``show servers state``: ``operational_state``
up or down).

Paths and shapes are Data Plane API 2.1.0's (its specification, ``embedded_spec.go`` at
haproxytech/dataplaneapi v2.1.0): ``/v2/services/haproxy/configuration/{frontends,binds,
servers,backend_switching_rules}`` answer ``{"_version", "data": [...]}``;
``/runtime/servers?backend=`` a list of ``{name, address, port, operational_state, admin_state}``;
``/stats/native`` a list of ``{"runtimeAPI", "stats": [{"name", "type", "backend_name", "stats":
{...}}]}``. Each parser is a
pure function of a decoded answer, tested with no appliance. TLS is verified against the
appliance's CA (:func:`tkgs_lib.appliance.dataplane.verified_session`), nothing else trusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

import netaddr
import requests

from ..https import basic_auth
from ..errors import ApplianceError
from .dataplane import DataPlaneInfo, get_info, message_of, verified_session

__all__ = ["Bind", "Frontend", "SwitchingRule", "BackendServer", "RuntimeServer", "NativeStat", "LoadBalancerState",
           "PASSED_CHECKS", "NOT_CHECKED_YET",
           "frontends_from", "binds_from", "rules_from", "servers_from", "runtime_servers_from", "native_stats_from",
           "read_load_balancer", "CONFIGURATION", "RUNTIME", "STATS"]

CONFIGURATION = "/v2/services/haproxy/configuration"
RUNTIME = "/v2/services/haproxy/runtime/servers"
STATS = "/v2/services/haproxy/stats/native"


@dataclass(frozen=True)
class Bind:
    name: str
    address: str
    port: Optional[int]

    def __str__(self) -> str:
        return f"{self.address}:{self.port}" if self.port is not None else self.address


@dataclass(frozen=True)
class SwitchingRule:
    """A frontend's ``use_backend <backend> [if|unless <condition>]``."""

    backend: str
    cond: str = ""
    cond_test: str = ""

    def port(self) -> Optional[int]:
        """The port of a ``{ dst_port <port> }`` condition (None for any other)."""
        match = re.fullmatch(r"\{\s*dst_port\s+(\d+)\s*\}", self.cond_test.strip())
        return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Frontend:
    name: str
    default_backend: str
    binds: tuple[Bind, ...] = ()
    rules: tuple[SwitchingRule, ...] = ()  # its backend switching rules, in order

    def backend_for(self, port: int) -> str:
        """The backend HAProxy sends a connection to ``port`` to: the first rule that takes it (a rule with
        no condition, or ``if { dst_port <port> }``), else the default backend ("" when there is none).
        A condition of another kind is not read, so the rules after it speak for the port."""
        for rule in self.rules:
            if not rule.cond or (rule.cond == "if" and rule.port() == port):
                return rule.backend
        return self.default_backend

    @property
    def backends(self) -> tuple[str, ...]:
        """Every backend it names, each once, in order."""
        named = [r.backend for r in self.rules] + ([self.default_backend] if self.default_backend else [])
        return tuple(dict.fromkeys(named))


@dataclass(frozen=True)
class BackendServer:
    """A server of a backend as the configuration holds it."""

    name: str
    address: str
    port: Optional[int] = None  # none: the port the client asked for
    check_port: Optional[int] = None  # the health check's port, when another

    def __str__(self) -> str:
        return f"{self.address}:{self.port}" if self.port is not None else self.address


@dataclass(frozen=True)
class RuntimeServer:
    """A server as HAProxy runs it (``show servers state``)."""

    name: str
    address: str
    operational_state: str  # up, down, stopping
    admin_state: str = ""  # ready, maint, drain


# HAProxy's management guide (doc/management.txt, "9.1. CSV format"), field 36 check_status: the checks
# that passed are L4OK, L6OK, L7OK and L7OKC; INI is "initializing" (no check has completed) and UNK
# "unknown"; while a check runs, the last known status is reported "prefixed with '* '". Field 17
# status is "no check" for a server HAProxy does not check. The runtime's operational_state says less:
# Data Plane API 2.1 reads `show servers state` through client-native (runtime/servers.go,
# parseRuntimeServer), which reports srv_op_state 1 (starting) and 2 (running) both as "up", and
# HAProxy runs a checked server before its first check has completed (it is up by default), so
# "up" with INI is a server nobody has checked yet.
PASSED_CHECKS = ("L4OK", "L6OK", "L7OK", "L7OKC")
NOT_CHECKED_YET = ("INI", "UNK", "")


@dataclass(frozen=True)
class NativeStat:
    """One row of HAProxy's ``show stat``: a frontend, a backend or a server of a backend."""

    type: str  # frontend, backend, server
    name: str
    backend: str = ""  # a server's backend
    status: str = ""  # OPEN (a frontend bound), UP, DOWN, no check, MAINT...
    check_status: str = ""  # a server's last health check: L4OK, L4CON, L7OK, INI...
    check_desc: str = ""  # its words: "Connection refused"...

    @property
    def last_check(self) -> str:
        """The last health check's status, without the "* " HAProxy puts before it while a check runs."""
        return self.check_status.removeprefix("* ").strip()

    @property
    def check_passed(self) -> bool:
        return self.last_check in PASSED_CHECKS

    @property
    def checked(self) -> bool:
        """HAProxy checks this server's health (its status is not "no check")."""
        return self.status != "no check"


@dataclass
class LoadBalancerState:
    """The Data Plane API's answers; ``servers`` and ``runtime`` are read for the backends asked for."""

    info: DataPlaneInfo
    frontends: list[Frontend]
    stats: list[NativeStat]
    servers: dict[str, list[BackendServer]] = field(default_factory=dict)  # backend → its configured servers
    # backend → its servers as HAProxy runs them; None: HAProxy does not run that backend (its statistics lack it)
    runtime: dict[str, Optional[list[RuntimeServer]]] = field(default_factory=dict)

    def frontend_status(self, name: str) -> str:
        """HAProxy's status of frontend ``name`` (OPEN when bound), "" when HAProxy does not run it."""
        return next((s.status for s in self.stats if s.type == "frontend" and s.name == name), "")

    def server_stat(self, backend: str, name: str) -> Optional[NativeStat]:
        return next((s for s in self.stats if s.type == "server" and s.backend == backend and s.name == name), None)

    def awaiting_first_check(self) -> list[str]:
        """The servers HAProxy runs "up" whose first health check has not completed (INI): for a few
        seconds after a reload, every checked server of a backend it (re)started."""
        return [f"{backend}/{r.name}" for backend, running in self.runtime.items() for r in running or ()
                if r.operational_state == "up" and (stat := self.server_stat(backend, r.name)) is not None
                and stat.checked and stat.last_check in NOT_CHECKED_YET]


# --- the parsers (pure) -------------------------------------------------------------------------

def _data(answer: Any) -> list:
    """A configuration read's ``data`` (2.1.0 wraps every list in ``{"_version", "data"}``)."""
    data = answer["data"] if isinstance(answer, dict) else answer
    if not isinstance(data, list):
        raise TypeError(f"expected a list, got {type(data).__name__}")
    return data


def _port(value: Any) -> Optional[int]:
    return int(value) if value is not None and str(value).isdigit() else None


def binds_from(answer: Any) -> tuple[Bind, ...]:
    """``GET .../configuration/binds?frontend=``."""
    return tuple(Bind(str(b["name"]), str(b.get("address", "")), _port(b.get("port"))) for b in _data(answer))


def rules_from(answer: Any) -> tuple[SwitchingRule, ...]:
    """``GET .../configuration/backend_switching_rules?frontend=`` (in their index order)."""
    rules = sorted(_data(answer), key=lambda r: int(r.get("index", 0)))
    return tuple(SwitchingRule(str(r["name"]), str(r.get("cond", "")), str(r.get("cond_test", ""))) for r in rules)


def frontends_from(answer: Any, binds: Optional[dict[str, Any]] = None,
                   rules: Optional[dict[str, Any]] = None) -> list[Frontend]:
    """``GET .../configuration/frontends``, with each frontend's binds and backend switching rules answers from
    ``binds`` and ``rules`` (by name)."""
    return [Frontend(str(f["name"]), str(f.get("default_backend", "")),
                     binds_from((binds or {})[f["name"]]) if f["name"] in (binds or {}) else (),
                     rules_from((rules or {})[f["name"]]) if f["name"] in (rules or {}) else ())
            for f in _data(answer)]


def servers_from(answer: Any) -> list[BackendServer]:
    """``GET .../configuration/servers?backend=``."""
    return [BackendServer(str(s["name"]), str(s.get("address", "")), _port(s.get("port")),
                          _port(s.get("health_check_port"))) for s in _data(answer)]


def runtime_servers_from(answer: Any) -> list[RuntimeServer]:
    """``GET .../runtime/servers?backend=``."""
    if not isinstance(answer, list):
        raise TypeError(f"expected a list of runtime servers, got {type(answer).__name__}")
    return [RuntimeServer(str(s["name"]), str(s.get("address", "")), str(s.get("operational_state", "")),
                          str(s.get("admin_state", ""))) for s in answer]


def native_stats_from(answer: Any) -> list[NativeStat]:
    """``GET .../stats/native``: every row of every collection (one per HAProxy process)."""
    if not isinstance(answer, list):
        raise TypeError(f"expected a list of statistics collections, got {type(answer).__name__}")
    rows = []
    for collection in answer:
        for item in collection.get("stats") or ():
            stats = item.get("stats") or {}
            rows.append(NativeStat(str(item.get("type", "")), str(item.get("name", "")),
                                   str(item.get("backend_name", "")), str(stats.get("status", "")),
                                   str(stats.get("check_status", "")), str(stats.get("check_desc", ""))))
    return rows


# --- the read -----------------------------------------------------------------------------------

class _Reader:
    def __init__(self, where: str, session: requests.Session, user: str, password: str, timeout: float) -> None:
        self.where, self.session, self.timeout = where, session, timeout
        self.headers = basic_auth(user, password)

    def get(self, path: str, parse, **params):
        url = f"https://{self.where}{path}"
        shown = path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
        try:
            answer = self.session.get(url, params=params or None, headers=self.headers,
                                      timeout=(self.timeout, self.timeout), allow_redirects=False)
        except requests.exceptions.RequestException as exc:
            raise ApplianceError(f"the Data Plane API at {self.where} answered /v2/info but not {shown} "
                                 f"({type(exc).__name__}): is the appliance overloaded or restarting?") from None
        if answer.status_code != 200:
            raise ApplianceError(f"the Data Plane API at {self.where} answered {shown} with HTTP "
                                 f"{answer.status_code}: {message_of(answer).rstrip('.')}.")
        try:
            return parse(answer.json())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ApplianceError(f"the Data Plane API at {self.where} answered {shown} in a shape Data Plane API "
                                 f"2.1.0 does not ({type(exc).__name__}: {exc}).") from None


def read_load_balancer(host: str, port: int, user: str, password: str, ca_pem: str, *, trusted_by: str,
                       within: Optional[netaddr.IPSet] = None, timeout: float = 10.0) -> LoadBalancerState:
    """Read, GET only, every frontend with its binds and HAProxy's statistics, and for each frontend
    bound inside ``within`` (every frontend when None) its backend's servers as configured and as
    HAProxy runs them. ApplianceError, one sentence, when the API cannot be used (as
    :func:`~tkgs_lib.appliance.dataplane.get_info` words it) or answers otherwise than 2.1.0 does."""
    info = get_info(host, port, user, password, ca_pem, trusted_by=trusted_by, timeout=timeout)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with verified_session(ca_pem, trusted_by) as session:
        read = _Reader(where, session, user, password, timeout)
        listed = read.get(f"{CONFIGURATION}/frontends", _data)
        binds = {f["name"]: read.get(f"{CONFIGURATION}/binds", lambda a: a, frontend=f["name"]) for f in listed}
        inside = [f["name"] for f in listed if within is None or any(
            b.address and netaddr.IPAddress(b.address) in within for b in binds_from(binds[f["name"]])
            if netaddr.valid_ipv4(b.address))]
        rules = {name: read.get(f"{CONFIGURATION}/backend_switching_rules", lambda a: a, frontend=name)
                 for name in inside}
        frontends = frontends_from({"data": listed}, binds, rules)
        stats = read.get(STATS, native_stats_from)
        state = LoadBalancerState(info, frontends, stats)
        for frontend in frontends:
            for backend in frontend.backends if frontend.name in inside else ():
                if backend in state.servers:
                    continue
                state.servers[backend] = read.get(f"{CONFIGURATION}/servers", servers_from, backend=backend)
                # `show servers state` of a backend HAProxy does not run is no answer (2.1.0: HTTP 500)
                running = any(s.type == "backend" and s.name == backend for s in stats)
                state.runtime[backend] = read.get(RUNTIME, runtime_servers_from, backend=backend) if running else None
    return state
