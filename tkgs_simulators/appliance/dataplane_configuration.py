"""The Data Plane API's configuration endpoints, played for the simulated appliance over its real
HAProxy: what a load-balancer controller uses to program frontends, binds, backends and servers,
and to read the servers' runtime state.

Paths, parameters, answers and status codes are the Data Plane API 2.1.0's, the version the
appliance ships (specification: ``embedded_spec.go`` at haproxytech/dataplaneapi v2.1.0; behaviour:
its ``handlers/`` and ``haproxy/reload_agent.go``, and client-native v2.1.0's ``configuration/`` and
``runtime/``), all under ``/v2``:

* ``/services/haproxy/transactions`` GET (``status``), POST (``version``, required);
  ``/transactions/{id}`` GET, PUT (commit; ``force_reload``), DELETE;
* ``/services/haproxy/configuration/frontends`` and ``backends``: GET, POST; ``.../{name}`` GET,
  PUT, DELETE; ``binds`` (``frontend=``) and ``servers`` (``backend=``) the same;
  ``backend_switching_rules`` (``frontend=``, a frontend's ``use_backend`` lines) by ``{index}``. Reads take
  ``transaction_id``; changes take ``transaction_id`` or ``version`` (an implicit transaction,
  committed at once) and ``force_reload``. Every read answers ``{"_version": N, "data": ...}`` and
  a ``Configuration-Version`` header: 2.1.0 has no ``/configuration/version`` (it came with 2.2.0),
  so a controller reads the version there;
* ``/services/haproxy/runtime/servers`` (``backend=``) and ``.../{name}``: ``show servers state``
  on the stats socket; ``/services/haproxy/stats/native`` (``type``, ``name``, ``parent``): ``show
  stat``; ``/services/haproxy/reloads`` and ``.../{id}``.

Errors are 2.1.0's: client-native's ``<code>: <message>`` with its HTTP status (409 for a version
mismatch or an object that exists, 404 for one that does not, 400 otherwise). A commit writes the
transaction's file, checks it with ``haproxy -W -f <file> -c`` (a refusal is 400 with HAProxy's
alerts, parsed as 2.1.0 parses them), replaces the configuration file and counts the version up;
then the reload: with ``force_reload=true`` at once, a failure answering 400 ``Reload failed: ...``
in HAProxy's own words (``cannot bind socket`` for a virtual IP the appliance has no route for);
without it 202 and a ``Reload-ID``, the reload ``reload_delay`` seconds later (the appliance's
``RELOAD_DELAY=30``, ``ansible/roles/haproxy/files/etc/haproxy/dataplaneapi.cfg`` at v0.1.10), its
outcome at ``/reloads/{id}``. A failed reload leaves the new file in place and HAProxy serving the
previous configuration, as on the appliance (2.1.0 puts the file back after trying a restart, and
the appliance configures no restart command).

Transaction files live in ``/run/dataplaneapi/transactions`` (2.1.0's default is ``/tmp/haproxy``;
the guest's ``/tmp`` is the host's, and the files hold the userlist's hash).
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .haproxy_config import CONFIG_FILE, Invalid, NotSimulated, Sections, render, validate
from .haproxy_service import HAProxy

__all__ = ["Answer", "ConfigurationAPI", "TRANSACTION_DIR", "check_error_message"]

TRANSACTION_DIR = Path("/run/dataplaneapi/transactions")


@dataclass
class Answer:
    status: int
    body: Any = None  # JSON-able; None: no body
    headers: dict[str, str] = field(default_factory=dict)


class _Refused(Exception):
    """An error answer. ``code``: client-native's (below 600: the message reads ``<code>: <message>``
    and the body's code is the HTTP status, as misc.HandleError makes it) or go-openapi's
    validation code (600 and up: the body's code, with HTTP 422)."""

    def __init__(self, status: int, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        if code is None:
            body = {"code": status, "message": message}
        elif code >= 600:
            body = {"code": code, "message": message}
        else:
            body = {"code": status, "message": f"{code}: {message}"}
        self.answer = Answer(status, body)


# client-native v2.1.0 error codes (configuration/errors.go) and the HTTP status dataplaneapi's
# misc.HandleError gives each.
_NO_PARENT, _BOTH, _NEITHER, _VALIDATION, _MISMATCH = 11, 12, 13, 14, 15
_NO_TRANSACTION, _MISSING, _EXISTS, _OUT_OF_RANGE = 20, 30, 31, 32
_STATUS = {_MISMATCH: 409, _EXISTS: 409, _MISSING: 404}


def _refused(code: int, message: str) -> _Refused:
    return _Refused(_STATUS.get(code, 400), message, code)


@dataclass
class _Transaction:
    id: str
    version: int
    sections: Sections
    status: str = "in_progress"

    def model(self) -> dict:
        return {"_version": self.version, "id": self.id, "status": self.status}


# kind → (model, parent kind or None, container name in Sections, name in messages)
_KINDS = {
    "frontends": ("frontend", None, "frontends", "Frontend"),
    "backends": ("backend", None, "backends", "Backend"),
    "binds": ("bind", "frontend", "binds", "Bind"),
    "servers": ("server", "backend", "servers", "Server"),
}
_STAT_TEXT = {"addr", "agent_desc", "agent_status", "algo", "check_desc", "check_status", "cookie", "hanafail",
              "mode", "status", "tracked"}
# native_stat_stats in the 2.1.0 specification: the `show stat` columns it reports
_STAT_FIELDS = _STAT_TEXT | {
    "act", "agent_code", "agent_duration", "agent_fall", "agent_health", "agent_rise", "bck", "bin", "bout",
    "check_code", "check_duration", "check_fall", "check_health", "check_rise", "chkdown", "chkfail", "cli_abrt",
    "comp_byp", "comp_in", "comp_out", "comp_rsp", "conn_rate", "conn_rate_max", "conn_tot", "ctime", "dcon",
    "downtime", "dreq", "dresp", "dses", "econ", "ereq", "eresp", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx",
    "hrsp_5xx", "hrsp_other", "iid", "intercepted", "lastchg", "lastsess", "lbtot", "pid", "qcur", "qlimit", "qmax",
    "qtime", "rate", "rate_lim", "rate_max", "req_rate", "req_rate_max", "req_tot", "rtime", "scur", "sid", "slim",
    "smax", "srv_abrt", "stot", "throttle", "ttime", "weight", "wredis", "wretr"}


def check_error_message(output: str, transaction_id: str) -> str:
    """HAProxy's refusal (``haproxy -c`` output) as Data Plane API 2.1.0 words it
    (parseHAProxyCheckError, client-native v2.1.0 configuration/transaction.go): one
    ``line=N msg="..."`` or ``msg="..."`` per alert, the summary alerts left out. HAProxy 2.6 puts
    ``config : `` after the process id, which 2.2 (the appliance's) does not: it is taken out first,
    so the words are those the appliance gives."""
    lines = [f"ERR transactionId={transaction_id} "]
    for raw in output.splitlines():
        line = re.sub(r"^(\[ALERT\]\s+\(\d+\)) : config : ", r"\1 : ", raw.strip())
        if not line.startswith("[ALERT]") or line.endswith("Fatal errors found in configuration.") \
                or "Error(s) found in configuration file : " in line:
            continue
        parts = line.split(" : ")
        if len(parts) > 2 and parts[1].strip().startswith("parsing ["):
            where = parts[1].strip().split(":")
            message = " ".join(parts[2:]).strip()
            number = where[1].rstrip("]") if len(where) > 1 else ""
            lines.append(f'line={number} msg="{message}"' if number.isdigit() else f'msg="{message}"')
        elif len(parts) > 1:
            lines.append(f'msg="{" ".join(parts[1:]).strip()}"')
    return "\n".join(lines)


class _Reloads:
    """2.1.0's reload agent: forced reloads at once, others batched ``delay`` seconds later; their
    outcomes by id (``<date>-<n>``)."""

    def __init__(self, haproxy: HAProxy, delay: float) -> None:
        self.haproxy, self.delay = haproxy, delay
        self._lock = threading.Lock()  # one reload at a time
        self._index = 0
        self._pending: Optional[str] = None
        self._done: dict[str, dict] = {}

    def _new_id(self) -> str:
        self._index += 1
        return f"{datetime.date.today().isoformat()}-{self._index - 1}"

    def force(self) -> Optional[str]:
        """Reload now; HAProxy's words when it failed, else None."""
        with self._lock:
            verdict = self.haproxy.reload()
        return None if verdict.loaded else verdict.words()

    def schedule(self) -> str:
        with self._lock:
            if self._pending is None:
                self._pending = self._new_id()
                timer = threading.Timer(self.delay, self._run_pending)
                timer.daemon = True
                timer.start()
            return self._pending

    def _run_pending(self) -> None:
        with self._lock:
            reload_id, self._pending = self._pending, None
            verdict = self.haproxy.reload()
            self._done[reload_id] = {"id": reload_id, "status": "succeeded" if verdict.loaded else "failed",
                                     "response": verdict.words() if not verdict.loaded else "",
                                     "reload_timestamp": int(datetime.datetime.now().timestamp())}

    def all(self) -> list[dict]:
        with self._lock:
            pending = [{"id": self._pending, "status": "in_progress"}] if self._pending else []
            return [*self._done.values(), *pending]

    def one(self, reload_id: str) -> Optional[dict]:
        return next((r for r in self.all() if r["id"] == reload_id), None)


class ConfigurationAPI:
    """The configuration the API manages (``version``, the committed sections, open transactions)
    over one HAProxy. ``head``: the file's fixed part (global, defaults, userlist)."""

    def __init__(self, haproxy: HAProxy, head: str, *, config_file: str = CONFIG_FILE,
                 transaction_dir: Path = TRANSACTION_DIR, reload_delay: float = 30.0) -> None:
        self.haproxy, self.head, self.config_file, self.transaction_dir = haproxy, head, config_file, transaction_dir
        self.version = 1
        self.sections = Sections()
        self._transactions: dict[str, _Transaction] = {}
        self._lock = threading.RLock()
        self.reloads = _Reloads(haproxy, reload_delay)
        self._routes: list[tuple[str, re.Pattern, Callable]] = []
        conf = "/v2/services/haproxy/configuration"
        for method, pattern, handler in (
                ("GET", "/v2/services/haproxy/transactions", self._get_transactions),
                ("POST", "/v2/services/haproxy/transactions", self._start_transaction),
                ("GET", "/v2/services/haproxy/transactions/(?P<id>[^/]+)", self._get_transaction),
                ("PUT", "/v2/services/haproxy/transactions/(?P<id>[^/]+)", self._commit_transaction),
                ("DELETE", "/v2/services/haproxy/transactions/(?P<id>[^/]+)", self._delete_transaction),
                ("GET", f"{conf}/(?P<kind>frontends|backends|binds|servers)", self._list),
                ("POST", f"{conf}/(?P<kind>frontends|backends|binds|servers)", self._create),
                ("GET", f"{conf}/(?P<kind>frontends|backends|binds|servers)/(?P<name>[^/]+)", self._get_one),
                ("PUT", f"{conf}/(?P<kind>frontends|backends|binds|servers)/(?P<name>[^/]+)", self._replace),
                ("DELETE", f"{conf}/(?P<kind>frontends|backends|binds|servers)/(?P<name>[^/]+)", self._delete),
                ("GET", f"{conf}/backend_switching_rules", self._list_rules),
                ("POST", f"{conf}/backend_switching_rules", self._create_rule),
                ("GET", f"{conf}/backend_switching_rules/(?P<index>[^/]+)", self._get_rule),
                ("PUT", f"{conf}/backend_switching_rules/(?P<index>[^/]+)", self._replace_rule),
                ("DELETE", f"{conf}/backend_switching_rules/(?P<index>[^/]+)", self._delete_rule),
                ("GET", "/v2/services/haproxy/runtime/servers", self._runtime_servers),
                ("GET", "/v2/services/haproxy/runtime/servers/(?P<name>[^/]+)", self._runtime_server),
                ("GET", "/v2/services/haproxy/stats/native", self._stats),
                ("GET", "/v2/services/haproxy/reloads", self._get_reloads),
                ("GET", "/v2/services/haproxy/reloads/(?P<id>[^/]+)", self._get_reload)):
            self._routes.append((method, re.compile(pattern + "$"), handler))

    def file_text(self, version: int, sections: Sections) -> str:
        return render(version, self.head, sections)

    def save(self) -> None:
        """Write the configuration file as the API holds it (at boot: the head alone, version 1)."""
        Path(self.config_file).write_text(self.file_text(self.version, self.sections))

    def serves(self, path: str) -> bool:
        return any(pattern.match(path) for _, pattern, _ in self._routes)

    def handle(self, method: str, path: str, query: dict[str, str], body: Optional[bytes]) -> Answer:
        allowed = []
        for route_method, pattern, handler in self._routes:
            match = pattern.match(path)
            if match:
                if route_method == method:
                    try:
                        return handler(query=query, body=body, **match.groupdict())
                    except _Refused as refused:
                        return refused.answer
                    except Exception as exc:  # noqa: BLE001 (a stand-in's fault is an answer, not a hang-up)
                        return Answer(500, {"code": 500, "message": f"the Data Plane API stand-in failed on {method} "
                                                                    f"{path}: {type(exc).__name__}: {exc}"})
                allowed.append(route_method)
        if allowed:  # go-openapi's router
            return Answer(405, {"code": 405,
                                "message": f"method {method} is not allowed, but [{','.join(allowed)}] are"})
        return Answer(404, {"code": 404, "message": f"path {path} was not found"})

    # --- parameters ---------------------------------------------------------------------------------

    @staticmethod
    def _integer(query: dict, name: str, required: bool = False) -> Optional[int]:
        if name not in query:
            if required:
                raise _Refused(422, f"{name} in query is required", 601)
            return None
        try:
            return int(query[name])
        except ValueError:
            raise _Refused(422, f"{name} in query must be of type int64: \"{query[name]}\"", 600) from None

    @staticmethod
    def _flag(query: dict, name: str) -> bool:
        value = query.get(name, "false").lower()
        if value not in ("true", "false", "1", "0"):
            raise _Refused(422, f"{name} in query must be of type bool: \"{query[name]}\"", 600)
        return value in ("true", "1")

    @staticmethod
    def _body(body: Optional[bytes]) -> Any:
        try:
            return json.loads(body or b"")
        except ValueError:
            raise _Refused(400, "parsing data body failed: the body is not JSON") from None

    def _parent(self, kind: str, query: dict) -> Optional[str]:
        parent = _KINDS[kind][1]
        if parent is None:
            return None
        if not query.get(parent):
            raise _Refused(422, f"{parent} in query is required", 601)
        return query[parent]

    def _mismatch(self, given: int) -> _Refused:
        return _refused(_MISMATCH, f"Version in configuration file is {self.version}, given version is {given}")

    def _read(self, query: dict) -> tuple[int, Sections]:
        transaction = query.get("transaction_id")
        if transaction:
            found = self._transactions.get(transaction)
            if found is None or found.status != "in_progress":
                raise _refused(_NO_TRANSACTION, f"Transaction {transaction} does not exist")
            return found.version, found.sections
        return self.version, self.sections

    @staticmethod
    def _container(sections: Sections, kind: str, parent: Optional[str]) -> dict[str, dict]:
        model, parent_kind, attribute, _ = _KINDS[kind]
        if parent_kind is None:
            return getattr(sections, attribute)
        owners = sections.frontends if parent_kind == "frontend" else sections.backends
        if parent not in owners:
            raise _refused(_NO_PARENT, f"{parent_kind} {parent} does not exist")
        return getattr(sections, attribute).setdefault(parent, {})

    # --- reads ------------------------------------------------------------------------------------

    def _versioned(self, version: int, data: Any) -> Answer:
        return Answer(200, {"_version": version, "data": data}, {"Configuration-Version": str(version)})

    def _list(self, kind: str, query: dict, body: Optional[bytes]) -> Answer:
        with self._lock:
            parent = self._parent(kind, query)
            version, sections = self._read(query)
            return self._versioned(version, list(self._container(sections, kind, parent).values()))

    def _get_one(self, kind: str, name: str, query: dict, body: Optional[bytes]) -> Answer:
        with self._lock:
            parent = self._parent(kind, query)
            version, sections = self._read(query)
            found = self._container(sections, kind, parent).get(name)
            if found is None:
                title = _KINDS[kind][3]
                raise _refused(_MISSING, f"{title} {name} does not exist" + (f" in {_KINDS[kind][1]} {parent}"
                                                                             if parent else ""))
            return self._versioned(version, found)

    # --- changes ----------------------------------------------------------------------------------

    def _validated(self, model: str, body: Optional[bytes]) -> dict:
        try:
            return validate(model, self._body(body))
        except Invalid as invalid:
            raise _Refused(422, invalid.message, invalid.code) from None
        except NotSimulated as missing:
            raise _Refused(501, f"{missing} is not simulated by this stand-in of the Data Plane API; only the fields "
                                f"a load-balancer controller sets are rendered into haproxy.cfg.") from None

    def _change(self, query: dict, change: Callable[[Sections], None], done: int, payload: Any) -> Answer:
        """One change in a transaction (202), or in an implicit one committed at once (``version``)."""
        transaction_id, version = query.get("transaction_id") or "", self._integer(query, "version") or 0
        force = self._flag(query, "force_reload")
        if transaction_id and force:
            raise _Refused(400, "Both force_reload and transaction specified, specify only one")
        if transaction_id and version:
            raise _refused(_BOTH, "Both version and transaction specified, specify only one")
        if not transaction_id and not version:
            raise _refused(_NEITHER, "Version or transaction not specified, specify only one")
        with self._lock:
            if transaction_id:
                found = self._transactions.get(transaction_id)
                if found is None or found.status != "in_progress":
                    raise _refused(_NO_TRANSACTION, f"Transaction {transaction_id} does not exist")
                change(found.sections)
                return Answer(202, payload)
            if version != self.version:
                raise self._mismatch(version)
            implicit = _Transaction(str(uuid.uuid4()), self.version, self.sections.copy())
            change(implicit.sections)
            self._commit(implicit)
        return self._reload(force, done, payload)

    def _create(self, kind: str, query: dict, body: Optional[bytes]) -> Answer:
        model = self._validated(_KINDS[kind][0], body)
        parent = self._parent(kind, query)
        name, title, parent_kind = model["name"], _KINDS[kind][3], _KINDS[kind][1]

        def change(sections: Sections) -> None:
            container = self._container(sections, kind, parent)
            if name in container:
                where = f"{title} {name} already exists in {parent_kind} {parent}" if parent else \
                    f"{_KINDS[kind][0]} {name} already exists"
                raise _refused(_EXISTS, where)
            container[name] = model

        return self._change(query, change, 201, model)

    def _replace(self, kind: str, name: str, query: dict, body: Optional[bytes]) -> Answer:
        model = self._validated(_KINDS[kind][0], body)
        parent = self._parent(kind, query)
        title, parent_kind = _KINDS[kind][3], _KINDS[kind][1]
        if parent is None:
            model["name"] = name  # a section keeps the name in the path

        def change(sections: Sections) -> None:
            container = self._container(sections, kind, parent)
            if name not in container:
                raise _refused(_MISSING, f"{title} {name} does not exist in {parent_kind} {parent}" if parent else
                               f"{_KINDS[kind][0]} {name} does not exist")
            replaced = {(model["name"] if key == name else key): (model if key == name else value)
                        for key, value in container.items()}  # in place: the order of the file stays
            container.clear()
            container.update(replaced)

        return self._change(query, change, 200, model)

    def _delete(self, kind: str, name: str, query: dict, body: Optional[bytes]) -> Answer:
        parent = self._parent(kind, query)
        title, parent_kind = _KINDS[kind][3], _KINDS[kind][1]

        def change(sections: Sections) -> None:
            container = self._container(sections, kind, parent)
            if name not in container:
                raise _refused(_MISSING, f"{title} {name} does not exist in {parent_kind} {parent}" if parent else
                               f"{_KINDS[kind][0]} {name} does not exist")
            del container[name]
            if parent is None:  # a section's binds or servers go with it, a frontend's use_backend lines too
                (sections.binds if kind == "frontends" else sections.servers).pop(name, None)
                if kind == "frontends":
                    sections.rules.pop(name, None)

        return self._change(query, change, 204, None)

    # --- backend switching rules (a frontend's use_backend lines, by index) --------------------------
    # client-native v2.1.0 configuration/backend_switching_rule.go: a rule is created at its index (the
    # parser inserts it there, or appends it past the end); read, replaced and deleted by index, the
    # others renumbered; errors through its handleError (errors.go): 30 for a frontend without any, 32
    # for an index past the end, which dataplaneapi's misc.HandleError serves as 404 and 400.

    def _rules(self, sections: Sections, query: dict) -> tuple[str, list[dict]]:
        frontend = query.get("frontend")
        if not frontend:
            raise _Refused(422, "frontend in query is required", 601)
        if frontend not in sections.frontends:
            raise _refused(_NO_PARENT, f"frontend {frontend} does not exist")
        return frontend, sections.rules.setdefault(frontend, [])

    @staticmethod
    def _at(rules: list[dict], index: str, frontend: str) -> int:
        try:
            position = int(index)
        except ValueError:
            raise _Refused(422, f"index in path must be of type int64: \"{index}\"", 600) from None
        if not rules:
            raise _refused(_MISSING, f"Object {position} does not exist in frontend {frontend}")
        if not 0 <= position < len(rules):
            raise _refused(_OUT_OF_RANGE, f"Object with id {position} in frontend {frontend} out of range")
        return position

    @staticmethod
    def _numbered(rules: list[dict]) -> list[dict]:
        return [{**rule, "index": i} for i, rule in enumerate(rules)]

    def _rule(self, body: Optional[bytes]) -> dict:
        model = self._validated("backend_switching_rule", body)
        if "index" not in model:
            raise _Refused(422, "index in body is required", 601)
        return model

    def _list_rules(self, query: dict, body: Optional[bytes]) -> Answer:
        with self._lock:
            version, sections = self._read(query)
            _, rules = self._rules(sections, query)
            return self._versioned(version, self._numbered(rules))

    def _get_rule(self, index: str, query: dict, body: Optional[bytes]) -> Answer:
        with self._lock:
            version, sections = self._read(query)
            frontend, rules = self._rules(sections, query)
            return self._versioned(version, self._numbered(rules)[self._at(rules, index, frontend)])

    def _create_rule(self, query: dict, body: Optional[bytes]) -> Answer:
        model = self._rule(body)

        def change(sections: Sections) -> None:
            _, rules = self._rules(sections, query)
            rules.insert(min(model["index"], len(rules)), {k: v for k, v in model.items() if k != "index"})

        return self._change(query, change, 201, model)

    def _replace_rule(self, index: str, query: dict, body: Optional[bytes]) -> Answer:
        model = self._rule(body)

        def change(sections: Sections) -> None:
            frontend, rules = self._rules(sections, query)
            rules[self._at(rules, index, frontend)] = {k: v for k, v in model.items() if k != "index"}

        return self._change(query, change, 200, model)

    def _delete_rule(self, index: str, query: dict, body: Optional[bytes]) -> Answer:
        def change(sections: Sections) -> None:
            frontend, rules = self._rules(sections, query)
            del rules[self._at(rules, index, frontend)]

        return self._change(query, change, 204, None)

    def _reload(self, force: bool, done: int, payload: Any) -> Answer:
        if force:
            failure = self.reloads.force()
            if failure:
                raise _Refused(400, f"Reload failed: {failure}")
            return Answer(done, payload)
        return Answer(202, payload, {"Reload-ID": self.reloads.schedule()})

    # --- transactions -----------------------------------------------------------------------------

    def _get_transactions(self, query: dict, body: Optional[bytes]) -> Answer:
        wanted = query.get("status")
        if wanted not in (None, "failed", "in_progress"):
            raise _Refused(422, "status in query should be one of [failed in_progress]", 605)
        with self._lock:
            return Answer(200, [t.model() for t in self._transactions.values()
                                if t.status != "success" and wanted in (None, t.status)])

    def _start_transaction(self, query: dict, body: Optional[bytes]) -> Answer:
        version = self._integer(query, "version", required=True)
        with self._lock:
            if version != self.version:
                raise self._mismatch(version)
            transaction = _Transaction(str(uuid.uuid4()), version, self.sections.copy())
            self._transactions[transaction.id] = transaction
            return Answer(201, transaction.model())

    def _get_transaction(self, id: str, query: dict, body: Optional[bytes]) -> Answer:  # noqa: A002 (the path's name)
        with self._lock:
            found = self._transactions.get(id)
            if found is None or found.status == "success":
                raise _refused(_NO_TRANSACTION, f"Transaction {id} does not exist")
            return Answer(200, found.model())

    def _delete_transaction(self, id: str, query: dict, body: Optional[bytes]) -> Answer:  # noqa: A002
        with self._lock:
            if self._transactions.pop(id, None) is None:
                raise _refused(_NO_TRANSACTION, f"Transaction file {id} does not exist")
            (self.transaction_dir / "failed" / f"haproxy.cfg.{id}").unlink(missing_ok=True)
            return Answer(204)

    def _commit_transaction(self, id: str, query: dict, body: Optional[bytes]) -> Answer:  # noqa: A002
        force = self._flag(query, "force_reload")
        with self._lock:
            found = self._transactions.get(id)
            if found is None or found.status != "in_progress":
                raise _refused(_NO_TRANSACTION, f"Transaction {id} does not exist")
            if found.version != self.version:
                found.status = "failed"
                raise _refused(_MISMATCH, f"Version mismatch, transaction version: {found.version}, "
                                          f"configured version: {self.version}")
            self._commit(found)
        return self._reload(force, 200, found.model())

    def _commit(self, transaction: _Transaction) -> None:
        """The transaction's file checked by HAProxy, then made the configuration (version + 1)."""
        self.transaction_dir.mkdir(parents=True, exist_ok=True)
        candidate = self.transaction_dir / f"haproxy.cfg.{transaction.id}"
        candidate.write_text(self.file_text(transaction.version, transaction.sections))
        checked = self.haproxy.check(str(candidate))
        if checked.returncode != 0:
            transaction.status = "failed"
            self._transactions[transaction.id] = transaction  # listed as failed, as 2.1.0 keeps its file
            (self.transaction_dir / "failed").mkdir(exist_ok=True)
            shutil.move(candidate, self.transaction_dir / "failed" / candidate.name)
            raise _refused(_VALIDATION, check_error_message(checked.stdout + checked.stderr, transaction.id))
        candidate.unlink()
        self.version = transaction.version + 1
        self.sections = transaction.sections
        transaction.status = "success"
        self._transactions.pop(transaction.id, None)
        self.save()

    # --- runtime ----------------------------------------------------------------------------------

    def _servers_state(self, backend: str) -> list[dict]:
        """``show servers state <backend>`` as client-native v2.1.0 reads it (runtime/servers.go)."""
        try:
            answer = self.haproxy.runtime(f"show servers state {backend}")
        except OSError as exc:
            raise _Refused(500, f"the runtime API at {self.haproxy.stats_socket} did not answer: {exc}") from None
        lines = answer.split("\n")
        if lines[0].strip() != "1":
            raise _Refused(500, "Unsupported output format version, supporting format version 1")
        servers = []
        for line in lines[1:]:
            fields = line.split(" ")
            if not line.strip() or line.startswith("#") or len(fields) < 19:
                continue
            admin = {"0": "ready", "1": "maint", "2": "maint", "4": "maint", "20": "maint", "40": "maint",
                     "8": "drain", "10": "drain"}.get(fields[6], "")
            operational = {"0": "down", "1": "up", "2": "up", "3": "stopping"}.get(fields[5], "")
            server = {"id": fields[2], "name": fields[3], "address": fields[4], "admin_state": admin,
                      "operational_state": operational}
            if fields[18].isdigit():
                server["port"] = int(fields[18])
            servers.append({key: value for key, value in server.items() if value != ""})
        return servers

    def _runtime_servers(self, query: dict, body: Optional[bytes]) -> Answer:
        if not query.get("backend"):
            raise _Refused(422, "backend in query is required", 601)
        return Answer(200, self._servers_state(query["backend"]))

    def _runtime_server(self, name: str, query: dict, body: Optional[bytes]) -> Answer:
        if not query.get("backend"):
            raise _Refused(422, "backend in query is required", 601)
        found = next((s for s in self._servers_state(query["backend"]) if s["name"] == name), None)
        if found is None:
            raise _Refused(404, f"Runtime server {name} not found in backend {query['backend']}")
        return Answer(200, found)

    def _stats(self, query: dict, body: Optional[bytes]) -> Answer:
        kind, name, parent = query.get("type"), query.get("name"), query.get("parent")
        if kind not in (None, "frontend", "backend", "server"):
            raise _Refused(422, "type in query should be one of [frontend backend server]", 605)
        if name is not None and kind is None:
            raise _Refused(400, "Type required when filtering by name")
        if name is not None and kind == "server" and parent is None:
            raise _Refused(400, "Parent backend required when filtering by server")
        collection: dict[str, Any] = {"runtimeAPI": self.haproxy.stats_socket}
        try:
            raw = self.haproxy.runtime("show stat")
        except OSError as exc:
            collection["error"] = str(exc)
            return Answer(500, [collection])
        rows = raw[2:].split("\n")  # "# pxname,svname,..." : 2.1.0 drops the "# "
        keys = rows[0].split(",")
        stats = []
        for row in rows[1:]:
            values = row.split(",")
            if len(values) < len(keys):
                continue
            item_type = values[1].lower()
            if item_type in ("frontend", "backend"):
                item = {"name": values[0], "type": item_type}
            else:
                item = {"name": item_type, "type": "server", "backend_name": values[0]}
            item["stats"] = {key: (value if key in _STAT_TEXT else int(value)) for key, value in zip(keys, values)
                             if key in _STAT_FIELDS and value and (key in _STAT_TEXT or value.lstrip("-").isdigit())}
            if kind is not None and item["type"] != kind:
                continue
            if name is not None and item["name"] != name:
                continue
            if kind == "server" and parent is not None and item.get("backend_name") != parent:
                continue
            stats.append(item)
        collection["stats"] = stats
        return Answer(200, [collection])

    def _get_reloads(self, query: dict, body: Optional[bytes]) -> Answer:
        return Answer(200, self.reloads.all())

    def _get_reload(self, id: str, query: dict, body: Optional[bytes]) -> Answer:  # noqa: A002
        found = self.reloads.one(id)
        if found is None:
            raise _Refused(404, f"Reload with ID {id} does not exist")
        return Answer(200, found)
