"""A small Kubernetes API server, as the stand-ins of the Supervisor's and a Tanzu Kubernetes cluster's API serve it.

What clients use of the real one, in its wire shapes (k8s.io/apimachinery, kubernetes/kubernetes
``staging/src/k8s.io/apiserver``), so that the official ``kubernetes`` Python client's models and Debian's
``kubectl`` read every answer:

* discovery: ``/version``, ``/api`` (APIVersions), ``/api/v1`` and ``/apis/{group}/{version}``
  (APIResourceList: each resource's name, kind, verbs, short names), ``/apis`` (APIGroupList);
* objects: ``GET`` a list (label and field selectors: ``metadata.name``, ``metadata.namespace``) or one,
  ``POST`` (201), ``PUT``, ``PATCH`` (a JSON merge patch), ``DELETE`` (200 with the object; a
  ``DeleteOptions`` body's ``preconditions.uid`` checked, 409 Conflict when it is another object's; an
  object of a resource with a finalizer keeps ``metadata.deletionTimestamp`` until its finalizer, run in a
  thread as a controller's, has removed what it owns), under ``/api/v1[/namespaces/{ns}]/{plural}`` and
  ``/apis/{group}/{version}[/namespaces/{ns}]/{plural}``; ``metadata`` filled in as the server fills it
  (uid, resourceVersion, creationTimestamp, generation); a list's ``kind`` is ``<Kind>List``;
* ``Accept: application/json;as=Table;...;g=meta.k8s.io`` (what ``kubectl get`` asks for): a
  ``meta.k8s.io/v1`` Table with each resource's own columns;
* errors as a ``Status`` (``reason`` NotFound, AlreadyExists, Unauthorized, Forbidden, BadRequest,
  MethodNotAllowed, Conflict), with the HTTP status in ``code``.

Each answer carries ``X-Simulated-By`` naming the stand-in. ``authenticate(handler)`` decides who asks (a
bearer token, a client certificate); ``watchers`` are told of every change (the controllers the stand-ins
play react to them); ``finalizers`` (by ``plural.group``) do what a controller's finalizer does before an
object of theirs goes.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Optional
from urllib.parse import parse_qs, urlsplit

__all__ = ["Resource", "KubernetesApi", "ApiRefusal", "now", "CORE"]

CORE = ""  # the core group's name
STAND_IN_HEADER = "X-Simulated-By"
MAX_BODY = 1 << 20


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    # (column name, its type, a function of the object giving the cell): what `kubectl get` shows
    columns: tuple[tuple[str, str, Callable[[dict], object]], ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


class ApiRefusal(Exception):
    def __init__(self, code: int, reason: str, message: str, name: str = "", kind: str = "") -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.name, self.kind = code, reason, message, name, kind

    def status(self) -> dict:
        details = {k: v for k, v in (("name", self.name), ("kind", self.kind)) if v}
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
                "reason": self.reason, **({"details": details} if details else {}), "code": self.code}


def _age(obj: dict) -> str:
    try:
        made = datetime.strptime(obj["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=timezone.utc)
    except (KeyError, ValueError):
        return "<unknown>"
    seconds = int((datetime.now(timezone.utc) - made).total_seconds())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


@dataclass
class KubernetesApi:
    """The objects of one API server and the requests it answers. ``version``: what ``/version`` says."""

    resources: list[Resource]
    stand_in: str
    version: str = "v1.21.6+vmware.1"
    authenticate: Callable[[object], Optional[str]] = lambda handler: None
    watchers: list[Callable[[str, Resource, dict], None]] = field(default_factory=list)
    finalizers: dict[str, Callable[[dict], None]] = field(default_factory=dict)  # plural.group → work before it goes
    objects: dict[tuple[str, str, str], dict] = field(default_factory=dict)  # (plural.group, namespace, name)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _revision: int = 0

    # --- the store, for the controllers the stand-ins play -----------------------------------------------

    def resource(self, plural: str, group: str = CORE) -> Resource:
        for res in self.resources:
            if res.plural == plural and res.group == group:
                return res
        raise KeyError(f"{plural}.{group}")

    def _key(self, res: Resource, namespace: str, name: str) -> tuple[str, str, str]:
        return (f"{res.plural}.{res.group}", namespace if res.namespaced else "", name)

    def get(self, res: Resource, namespace: str, name: str) -> Optional[dict]:
        with self.lock:
            obj = self.objects.get(self._key(res, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, res: Resource, namespace: str = "") -> list[dict]:
        with self.lock:
            return [copy.deepcopy(obj) for (kind, ns, _), obj in sorted(self.objects.items())
                    if kind == f"{res.plural}.{res.group}" and (not namespace or ns == namespace)]

    def put(self, res: Resource, obj: dict, *, create: bool = False) -> dict:
        """Store ``obj`` (made, or replaced whole); the watchers are told."""
        meta = obj.setdefault("metadata", {})
        namespace, name = meta.get("namespace", "") if res.namespaced else "", meta.get("name", "")
        with self.lock:
            key = self._key(res, namespace, name)
            old = self.objects.get(key)
            if create and old is not None:
                raise ApiRefusal(409, "AlreadyExists", f'{res.plural}.{res.group or "core"} "{name}" already exists',
                                 name, res.plural)
            if not create and old is None:
                raise self.not_found(res, name)
            self._revision += 1
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
            if old is None:
                meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
            else:
                for kept in ("uid", "creationTimestamp"):
                    meta[kept] = old["metadata"][kept]
                changed = old.get("spec") != obj.get("spec")
                meta["generation"] = old["metadata"].get("generation", 1) + (1 if changed else 0)
            if res.namespaced:
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)
            meta["resourceVersion"] = str(self._revision)
            self.objects[key] = copy.deepcopy(obj)
        for watcher in list(self.watchers):
            watcher("ADDED" if old is None else "MODIFIED", res, copy.deepcopy(obj))
        return obj

    def remove(self, res: Resource, namespace: str, name: str) -> dict:
        with self.lock:
            obj = self.objects.pop(self._key(res, namespace, name), None)
        if obj is None:
            raise self.not_found(res, name)
        for watcher in list(self.watchers):
            watcher("DELETED", res, copy.deepcopy(obj))
        return obj

    @staticmethod
    def not_found(res: Resource, name: str) -> ApiRefusal:
        return ApiRefusal(404, "NotFound", f'{res.plural}.{res.group or "core"} "{name}" not found', name, res.plural)

    # --- discovery ---------------------------------------------------------------------------------

    def _resource_list(self, group: str, version: str) -> dict:
        served = [r for r in self.resources if r.group == group and r.version == version]
        if not served:
            raise ApiRefusal(404, "NotFound", "the server could not find the requested resource")
        verbs = ["create", "delete", "get", "list", "patch", "update"]
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": served[0].api_version,
                "resources": [{"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                               "kind": r.kind, "verbs": verbs, **({"shortNames": list(r.short_names)}
                                                                  if r.short_names else {})} for r in served]}

    def _groups(self) -> dict:
        groups: dict[str, list[str]] = {}
        for r in self.resources:
            if r.group and r.version not in groups.setdefault(r.group, []):
                groups[r.group].append(r.version)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in versions],
             "preferredVersion": {"groupVersion": f"{g}/{versions[0]}", "version": versions[0]}}
            for g, versions in groups.items()]}

    # --- a request ---------------------------------------------------------------------------------

    def serves(self, path: str) -> bool:
        path = urlsplit(path).path
        return path in ("/version", "/api", "/apis") or path.startswith(("/api/", "/apis/"))

    def answer(self, handler, method: str, body: bytes) -> tuple[int, dict]:
        """(HTTP status, JSON answer) for ``handler``'s request (an http.server handler)."""
        try:
            if self.authenticate(handler) is None:
                raise ApiRefusal(401, "Unauthorized", "Unauthorized")
            return self._route(handler, method, body)
        except ApiRefusal as refusal:
            return refusal.code, refusal.status()

    def _route(self, handler, method: str, body: bytes) -> tuple[int, dict]:
        parts = urlsplit(handler.path)
        segments = [s for s in parts.path.split("/") if s]
        if method == "GET" and parts.path == "/version":
            minor = self.version.split(".")[1]
            return 200, {"major": "1", "minor": minor, "gitVersion": self.version, "platform": "linux/amd64",
                         "gitCommit": "", "gitTreeState": "clean", "buildDate": "2021-11-01T00:00:00Z",
                         "goVersion": "go1.16", "compiler": "gc"}
        if method == "GET" and segments == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": handler.headers.get("Host", "")}]}
        if method == "GET" and segments == ["apis"]:
            return 200, self._groups()
        if segments[:1] == ["api"] and len(segments) >= 2:
            group, version, rest = CORE, segments[1], segments[2:]
        elif segments[:1] == ["apis"] and len(segments) >= 3:
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            raise ApiRefusal(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            if method != "GET":
                raise ApiRefusal(405, "MethodNotAllowed", f"{method} is not allowed here")
            return 200, self._resource_list(group, version)
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural, name, sub = rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""
        res = next((r for r in self.resources if r.group == group and r.version == version and r.plural == plural),
                   None)
        if res is None:
            raise ApiRefusal(404, "NotFound", "the server could not find the requested resource")
        if res.namespaced and name and not namespace:
            raise ApiRefusal(404, "NotFound", "the server could not find the requested resource")
        if sub not in ("", "status"):
            raise ApiRefusal(404, "NotFound", f"the server could not find the requested resource ({sub})")
        query = parse_qs(parts.query)
        if method == "GET" and not name:
            items = self.list(res, namespace)
            selector = (query.get("labelSelector") or [""])[0]
            fields = (query.get("fieldSelector") or [""])[0]
            items = [o for o in items if _selected(o, selector) and _fields_selected(o, fields)]
            if "as=Table" in handler.headers.get("Accept", ""):
                return 200, self._table(res, items)
            with self.lock:
                revision = str(self._revision)
            return 200, {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                         "metadata": {"resourceVersion": revision}, "items": items}
        if method == "GET":
            obj = self.get(res, namespace, name)
            if obj is None:
                raise self.not_found(res, name)
            if "as=Table" in handler.headers.get("Accept", ""):
                return 200, self._table(res, [obj])
            return 200, obj
        if method == "DELETE" and name:
            return 200, self._delete(res, namespace, name, _json(body))
        data = _json(body)
        if method == "POST" and not name:
            meta = data.setdefault("metadata", {})
            if meta.get("generateName") and not meta.get("name"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            if not meta.get("name"):
                raise ApiRefusal(400, "BadRequest", "metadata.name: Required value: name or generateName is required")
            if res.namespaced:
                if namespace and meta.get("namespace", namespace) != namespace:
                    raise ApiRefusal(400, "BadRequest", "the namespace of the provided object does not match the "
                                                        "namespace sent on the request")
                meta["namespace"] = namespace
            data.pop("status", None)
            return 201, self.put(res, self._admitted(res, data), create=True)
        if method in ("PUT", "PATCH") and name:
            old = self.get(res, namespace, name)
            if old is None:
                raise self.not_found(res, name)
            new = _merged(old, data) if method == "PATCH" else data
            new.setdefault("metadata", {}).update(name=name, **({"namespace": namespace} if res.namespaced else {}))
            if sub == "status":
                old["status"] = new.get("status", {})
                new = old
            elif "status" in old:
                new["status"] = old["status"]
            return 200, self.put(res, new)
        raise ApiRefusal(405, "MethodNotAllowed", f"{method} is not allowed here")

    def _delete(self, res: Resource, namespace: str, name: str, options: dict) -> dict:
        """A DELETE: refused when its precondition names another object (k8s.io/apiserver's words); an object
        with a finalizer marked for deletion and left to it, any other removed at once."""
        obj = self.get(res, namespace, name)
        if obj is None:
            raise self.not_found(res, name)
        uid = ((options or {}).get("preconditions") or {}).get("uid")
        if uid and uid != obj["metadata"]["uid"]:
            raise ApiRefusal(409, "Conflict", f'Operation cannot be fulfilled on {res.plural}.{res.group or "core"} '
                                              f'"{name}": Precondition failed: UID in precondition: {uid}, UID in '
                                              f'object meta: {obj["metadata"]["uid"]}', name, res.plural)
        finalize = self.finalizers.get(f"{res.plural}.{res.group}")
        if finalize is None:
            return self.remove(res, namespace, name)
        if not obj["metadata"].get("deletionTimestamp"):
            obj["metadata"]["deletionTimestamp"] = now()
            obj = self.put(res, obj)

            def work() -> None:
                finalize(copy.deepcopy(obj))
                if self.get(res, namespace, name) is not None:
                    self.remove(res, namespace, name)
            threading.Thread(target=work, name=f"finalize-{name}", daemon=True).start()
        return obj

    def _admitted(self, res: Resource, obj: dict) -> dict:
        """What an admission step of the stand-in makes of a new object (a Service's addresses...); as sent."""
        admit = getattr(self, "admit", None)
        return admit(res, obj) if admit else obj

    def _table(self, res: Resource, items: list[dict]) -> dict:
        columns = [("Name", "string", lambda o: o["metadata"]["name"]), *res.columns,
                   ("Age", "string", _age)]
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
                "columnDefinitions": [{"name": name, "type": kind, "format": "name" if name == "Name" else "",
                                       "description": "", "priority": 0} for name, kind, _ in columns],
                "rows": [{"cells": [cell(o) for _, _, cell in columns],
                          "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                     "metadata": o["metadata"]}} for o in items]}


def _selected(obj: dict, selector: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


def _fields_selected(obj: dict, selector: str) -> bool:
    """A field selector of ``metadata.name`` and ``metadata.namespace`` (what kubectl's waits send)."""
    meta = obj.get("metadata") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.partition("=")
        if key.strip() in ("metadata.name", "metadata.namespace") and meta.get(key.strip()[9:]) != value.strip():
            return False
    return True


def _json(body: bytes) -> dict:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise ApiRefusal(400, "BadRequest", "the body of the request was in an unknown format") from None
    if not isinstance(data, dict):
        raise ApiRefusal(400, "BadRequest", "the body of the request is not an object")
    return data


def _merged(old: dict, patch: dict) -> dict:
    """RFC 7386: a JSON merge patch (null removes)."""
    out = copy.deepcopy(old)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def serve(api: KubernetesApi, handler, method: str) -> None:
    """Answer ``handler``'s request (an http.server handler) from ``api``, as JSON."""
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(min(length, MAX_BODY)) if length > 0 else b""
    status, answer = api.answer(handler, method, body)
    data = json.dumps(answer).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header(STAND_IN_HEADER, api.stand_in)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
