"""The simulated appliance's ``/etc/haproxy/haproxy.cfg``: the release's head, then the sections
the Data Plane API manages, rendered from the API's models.

The head is what the v0.1.10 appliance holds after its build and first boot (facts from
haproxytech/vmware-haproxy at tag v0.1.10, written here as our own renderer, not their file):

* ``global`` and ``defaults`` as ``ansible/roles/haproxy/files/etc/haproxy/haproxy.cfg`` has them,
  with the log level ``info`` (``ansible/roles/haproxy/tasks/main.yml`` replaces ``debug``) and
  everything after ``userlist controller`` removed by that same task (the default user and the
  ``program api`` section the Docker image uses);
* the ``controller`` userlist holding the Data Plane API user, as ``setHAProxyUserPass`` in
  ``ansible/roles/cloudinit/files/var/lib/vmware/ovf-to-cloud-init.sh`` writes it: ``user <name>
  password <openssl passwd -1 ...>``, an MD5-crypt hash (empty user or password fall back to
  ``admin`` / ``haproxy``).

Debian's HAProxy 2.6 runs it, not the appliance's 2.2.2; the one line 2.6 needs that 2.2.2 does
not is marked where it is added. The first line, ``# _version=N``, is where Data Plane API 2.1.0
(client-native v2.1.0) keeps the configuration's version.

The sections' models are the Data Plane API 2.1.0 specification's (``embedded_spec.go`` at
haproxytech/dataplaneapi v2.1.0): ``frontend``, ``bind``, ``backend_switching_rule`` (a frontend's
``use_backend``), ``backend``, ``server``. This stand-in
renders the fields a load-balancer controller sets; a request carrying any other field is refused
with :class:`NotSimulated`, so nothing is silently dropped.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from . import children

__all__ = ["CONFIG_FILE", "STATS_SOCKET", "Sections", "Invalid", "NotSimulated", "head", "md5_crypt",
           "md5_crypt_matches", "render", "validate", "MODELS", "userlist_users"]

CONFIG_FILE = "/etc/haproxy/haproxy.cfg"
STATS_SOCKET = "/run/haproxy.sock"

# global and defaults at v0.1.10 (ansible/roles/haproxy/files/etc/haproxy/haproxy.cfg), log level as
# ansible/roles/haproxy/tasks/main.yml sets it.
_GLOBAL = [
    "log stdout format raw local0 info",
    "chroot /var/lib/haproxy",
    f"stats socket {STATS_SOCKET} user haproxy group haproxy mode 660 level admin expose-fd listeners",
    "stats timeout 30s",
    "user haproxy",
    "group haproxy",
    "master-worker",
    "maxconn 60000",
    # HAProxy 2.6 only: since 2.6 strict-limits is on by default, so a file-descriptor limit below
    # what maxconn 60000 needs (as on this kind of machine, a 20000 hard limit root cannot raise)
    # stops HAProxy; 2.2.2, the appliance's, only warned. This restores 2.2's behaviour.
    "no strict-limits",
    "mworker-max-reloads 100",
    "ca-base /etc/ssl/certs",
    "crt-base /etc/ssl/private",
    "ssl-default-bind-ciphers ECDH+AESGCM:DH+AESGCM:ECDH+AES256:DH+AES256:ECDH+AES128:DH+AES:RSA+AESGCM:RSA+AES:"
    "!aNULL:!MD5:!DSS",
    "ssl-default-bind-options no-sslv3",
]
_DEFAULTS = [
    "mode tcp", "log global", "option tcplog", "option dontlognull", "option tcp-smart-accept",
    "timeout check 5s", "timeout connect 9s", "timeout client 10s", "timeout queue 5m", "timeout server 10s",
    "timeout tunnel 5m", "timeout client-fin 10s",
]


def md5_crypt(password: str) -> str:
    """``openssl passwd -1``, as first boot hashes the Data Plane API password; the password goes
    on standard input (first boot puts it in argv, where any process could read it)."""
    result = children.run(["openssl", "passwd", "-1", "-stdin"], input=password + "\n", check=True)
    return result.stdout.strip()


def md5_crypt_matches(password: str, hashed: str) -> bool:
    """Whether ``password`` hashes to ``hashed`` (``$1$<salt>$...``), as crypt(3) checks it."""
    parts = hashed.split("$")
    if len(parts) != 4 or parts[1] != "1":
        return False
    result = children.run(["openssl", "passwd", "-1", "-salt", parts[2], "-stdin"], input=password + "\n")
    return result.returncode == 0 and result.stdout.strip() == hashed


def userlist_users(text: str, userlist: str = "controller") -> dict[str, str]:
    """The users of ``userlist`` in a configuration file's text (name → hash), as the Data Plane API reads
    them at its start (``--userlist=controller``): each ``user <name> password <hash>`` line of the section,
    which ends at the next line that starts at the margin."""
    users: dict[str, str] = {}
    inside = False
    for line in text.splitlines():
        if line and not line[0].isspace():
            inside = line.split() == ["userlist", userlist]
            continue
        words = line.split()
        if inside and len(words) == 4 and words[0] == "user" and words[2] == "password":
            users[words[1]] = words[3]
    return users


def head(users: dict[str, str]) -> str:
    """global, defaults and the ``controller`` userlist (``users``: name → MD5-crypt hash)."""
    lines = ["global", *(f"  {line}" for line in _GLOBAL), "", "defaults", *(f"  {line}" for line in _DEFAULTS), "",
             "userlist controller", *(f"  user {name} password {hashed}" for name, hashed in users.items()), ""]
    return "\n".join(lines) + "\n"


# --- the models -----------------------------------------------------------------------------------

class Invalid(ValueError):
    """A request body the API's own validation refuses (go-openapi's words and code)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class NotSimulated(ValueError):
    """A field of the specification this stand-in does not render."""


_NAME = r"^[A-Za-z0-9-_.:]+$"
_NO_SPACE = r"^[^\s]+$"
_SWITCH = ("enabled", "disabled")
_BALANCE = ("roundrobin", "static-rr", "leastconn", "first", "source", "uri", "url_param", "hdr", "random",
            "rdp-cookie")
_ADV_CHECK = ("ssl-hello-chk", "smtpchk", "ldap-check", "mysql-check", "pgsql-check", "tcp-check", "redis-check")

# field → ("str", pattern) | ("int", minimum, maximum) | ("enum", values) | ("bool",) | ("balance",):
# the Data Plane API 2.1.0 definitions, limited to the fields rendered below.
MODELS: dict[str, dict[str, tuple]] = {
    "frontend": {"name": ("str", _NAME), "mode": ("enum", ("http", "tcp")), "default_backend": ("str", _NAME),
                 "maxconn": ("int", None, None), "client_timeout": ("int", None, None), "tcplog": ("bool",),
                 "httplog": ("bool",), "dontlognull": ("enum", _SWITCH), "clitcpka": ("enum", _SWITCH)},
    "bind": {"name": ("str", _NO_SPACE), "address": ("str", _NO_SPACE), "port": ("int", 1, 65535),
             "transparent": ("bool",), "v4v6": ("bool",), "accept_proxy": ("bool",)},
    "backend": {"name": ("str", _NAME), "mode": ("enum", ("http", "tcp")), "balance": ("balance",),
                "server_timeout": ("int", None, None), "connect_timeout": ("int", None, None),
                "check_timeout": ("int", None, None), "queue_timeout": ("int", None, None),
                "retries": ("int", None, None), "adv_check": ("enum", _ADV_CHECK)},
    "backend_switching_rule": {"index": ("int", 0, None), "name": ("str", _NO_SPACE),
                               "cond": ("enum", ("if", "unless")), "cond_test": ("str", r"^[^\r\n]+$")},
    "server": {"name": ("str", _NO_SPACE), "address": ("str", _NO_SPACE), "port": ("int", 1, 65535),
               "check": ("enum", _SWITCH), "health_check_port": ("int", 1, 65535), "inter": ("int", None, None),
               "fastinter": ("int", None, None), "downinter": ("int", None, None), "weight": ("int", None, None),
               "maxconn": ("int", None, None), "backup": ("enum", _SWITCH), "maintenance": ("enum", _SWITCH)},
}

# go-openapi's validation codes (github.com/go-openapi/errors, schema.go): served as HTTP 422.
_TYPE, _REQUIRED, _PATTERN, _ENUM, _MAX, _MIN = 600, 601, 604, 605, 607, 608


def _is_set(value: Any) -> bool:
    """Go's omitempty: null, false and empty text are not sent back either (a 0 or an empty
    object is: ports, timeouts and balance are pointers in the 2.1.0 models)."""
    return not (value is None or value is False or value == "")


def validate(kind: str, body: Any) -> dict:
    """The model as stored: only the fields that are set. Invalid as the API validates a body
    (the first failure, as go-openapi serves it), NotSimulated for a field this stand-in does not render."""
    if not isinstance(body, dict):
        raise Invalid(_TYPE, f"{kind} in body must be of type object")
    schema = MODELS[kind]
    model = {}
    for name, value in body.items():
        if not _is_set(value):
            continue
        if name not in schema:
            raise NotSimulated(f"the {kind} field '{name}'")
        rule = schema[name]
        if rule[0] == "str":
            if not isinstance(value, str):
                raise Invalid(_TYPE, f"{name} in body must be of type string")
            if not re.match(rule[1], value):
                raise Invalid(_PATTERN, f"{name} in body should match '{rule[1]}'")
        elif rule[0] == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise Invalid(_TYPE, f"{name} in body must be of type integer")
            if rule[2] is not None and value > rule[2]:
                raise Invalid(_MAX, f"{name} in body should be less than or equal to {rule[2]}")
            if rule[1] is not None and value < rule[1]:
                raise Invalid(_MIN, f"{name} in body should be greater than or equal to {rule[1]}")
        elif rule[0] == "enum":
            if value not in rule[1]:
                raise Invalid(_ENUM, f"{name} in body should be one of [{' '.join(rule[1])}]")
        elif rule[0] == "bool":
            if not isinstance(value, bool):
                raise Invalid(_TYPE, f"{name} in body must be of type boolean")
        elif rule[0] == "balance":
            if not isinstance(value, dict) or not value.get("algorithm"):
                raise Invalid(_REQUIRED, "balance.algorithm in body is required")
            if set(value) - {"algorithm"}:
                raise NotSimulated(f"the {kind} field 'balance.{sorted(set(value) - {'algorithm'})[0]}'")
            if value["algorithm"] not in _BALANCE:
                raise Invalid(_ENUM, f"balance.algorithm in body should be one of [{' '.join(_BALANCE)}]")
        model[name] = value
    if "name" not in model:
        raise Invalid(_REQUIRED, "name in body is required")
    return model


# --- the sections ---------------------------------------------------------------------------------

@dataclass
class Sections:
    """What the Data Plane API manages: frontends (each with its binds and its backend switching rules, the
    ``use_backend`` lines, in order) and backends (each with its servers)."""

    frontends: dict[str, dict] = field(default_factory=dict)
    binds: dict[str, dict[str, dict]] = field(default_factory=dict)  # frontend → bind name → bind
    rules: dict[str, list[dict]] = field(default_factory=dict)  # frontend → its backend switching rules
    backends: dict[str, dict] = field(default_factory=dict)
    servers: dict[str, dict[str, dict]] = field(default_factory=dict)  # backend → server name → server

    def copy(self) -> "Sections":
        return copy.deepcopy(self)


def _frontend_lines(frontend: dict, binds: dict[str, dict], rules: list[dict]) -> list[str]:
    lines = [f"frontend {frontend['name']}"]
    if "mode" in frontend:
        lines.append(f"  mode {frontend['mode']}")
    if "maxconn" in frontend:
        lines.append(f"  maxconn {frontend['maxconn']}")
    for bind in binds.values():
        where = f"{bind.get('address', '')}:{bind['port']}" if "port" in bind else bind.get("address", "")
        words = [f"  bind {where}", f"name {bind['name']}"]
        words += [flag for key, flag in (("transparent", "transparent"), ("v4v6", "v4v6"),
                                         ("accept_proxy", "accept-proxy")) if bind.get(key)]
        lines.append(" ".join(words))
    if "client_timeout" in frontend:
        lines.append(f"  timeout client {frontend['client_timeout']}")
    for key in ("tcplog", "httplog"):
        if frontend.get(key):
            lines.append(f"  option {key}")
    for key in ("dontlognull", "clitcpka"):
        if key in frontend:
            lines.append(f"  {'' if frontend[key] == 'enabled' else 'no '}option {key}")
    for rule in rules:  # client-native's types.UseBackend: use_backend <name> [if|unless <cond_test>]
        lines.append(" ".join(["  use_backend", rule["name"], *((rule["cond"], rule["cond_test"]) if "cond" in rule
                                                               else ())]))
    if "default_backend" in frontend:
        lines.append(f"  default_backend {frontend['default_backend']}")
    return lines


def _backend_lines(backend: dict, servers: dict[str, dict]) -> list[str]:
    lines = [f"backend {backend['name']}"]
    if "mode" in backend:
        lines.append(f"  mode {backend['mode']}")
    if "balance" in backend:
        lines.append(f"  balance {backend['balance']['algorithm']}")
    if "adv_check" in backend:
        lines.append(f"  option {backend['adv_check']}")
    for key, keyword in (("connect_timeout", "connect"), ("server_timeout", "server"), ("check_timeout", "check"),
                         ("queue_timeout", "queue")):
        if key in backend:
            lines.append(f"  timeout {keyword} {backend[key]}")
    if "retries" in backend:
        lines.append(f"  retries {backend['retries']}")
    for server in servers.values():
        where = f"{server.get('address', '')}:{server['port']}" if "port" in server else server.get("address", "")
        words = [f"  server {server['name']} {where}"]
        if server.get("check") == "enabled":
            words.append("check")
        if "health_check_port" in server:  # a server without a port takes the client's; its checks need one
            words.append(f"port {server['health_check_port']}")
        words += [f"{key} {server[key]}" for key in ("inter", "fastinter", "downinter", "weight", "maxconn")
                  if key in server]
        if server.get("backup") == "enabled":
            words.append("backup")
        if server.get("maintenance") == "enabled":
            words.append("disabled")
        lines.append(" ".join(words))
    return lines


def render(version: int, head_text: str, sections: Sections) -> str:
    """The whole configuration file at ``version``."""
    parts = [f"# _version={version}\n", head_text]
    for name, frontend in sections.frontends.items():
        parts.append("\n".join(_frontend_lines(frontend, sections.binds.get(name, {}), sections.rules.get(name, [])))
                     + "\n\n")
    for name, backend in sections.backends.items():
        parts.append("\n".join(_backend_lines(backend, sections.servers.get(name, {}))) + "\n\n")
    return "".join(parts)
