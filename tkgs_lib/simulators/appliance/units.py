"""The appliance's two network units, and ``systemctl``/``journalctl`` stand-ins that report them.

Inside the simulated appliance (its network namespace and private view of the filesystem) these
stand-ins are mounted over the real commands. The units do what the release's scripts do, step
by step, with real ``ip`` commands, so the kernel itself accepts or rejects each line. Read at
each release's tag in haproxytech/vmware-haproxy (``ansible/roles/vmware/files/var/lib/vmware/
anyiproutectl.sh`` and ``routetablectl.sh``, ``.../etc/systemd/system/*.service``), never copied:

* Both units: ``ExecStartPre`` runs the script's ``up``; when it fails the unit fails and systemd
  runs ``ExecStopPost`` (``down``) all the same; ``stop`` of an active unit runs ``down``. The
  scripts read their files with ``IFS= read -r``: lines are taken as they are (nothing stripped;
  a last line without a line break is never read), a line is a comment only when its first
  character is ``#``, and ``errexit`` ends the script at the first command that fails.
* ``anyip-routes.service`` (the same at v0.1.7 to v0.2.0): ``up`` adds ``ip route add local
  <line> dev lo`` for each line not yet in ``ip route show table local``; ``down`` deletes each
  one present, reading the file as it is then.
* ``route-tables.service``: per release (the flags of :mod:`tkgs_lib.appliance.releases`, written
  by the guest to ``release.json`` beside the unit states, as this module imports nothing of the
  package): ``up`` runs ``down``, then per line adds the table to ``/etc/iproute2/rt_tables``, its
  default route via the gateway (a five-field line) or its link-scoped route (a four-field line,
  v0.1.9 and later), and ``ip rule add from <cidr>`` (every line on v0.1.x; the gateway line on
  v0.2.0, which also adds ``ip rule add to <cidr> lookup rtctl_workload`` per line of
  ``workload-networks.cfg``). ``down`` per ``rtctl_`` line of ``rt_tables``: v0.1.x deletes the
  table's rule(s) (``ip rule | grep -F`` handed to ``ip rule del``) and its default route (v0.1.7
  stops when either is missing); v0.2.0 calls ``ip call`` (which is no ``ip`` command, so no rule
  is ever deleted) and deletes every route of the table.

The watch (``inotifywait -e modify``, the units' main process) is not played: nothing here edits a
file in place while its unit runs. Each command says on standard error that it is a stand-in;
``systemctl status`` says it on its first line too. ``python units.py systemctl ...`` runs one.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

__all__ = ["main", "ANYIP", "ROUTE_TABLES", "STATE_DIR", "start", "stop"]

STATE_DIR = Path(os.environ.get("TKGS_APPLIANCE_STATE", "/run/tkgs-appliance"))
ANYIP, ROUTE_TABLES = "anyip-routes.service", "route-tables.service"
ANYIP_CFG, ROUTE_TABLES_CFG = Path("/etc/vmware/anyip-routes.cfg"), Path("/etc/vmware/route-tables.cfg")
WORKLOAD_NETWORKS_CFG = Path("/etc/vmware/workload-networks.cfg")
RT_TABLES = Path("/etc/iproute2/rt_tables")
RT_PREFIX = "rtctl_"
# The units' Description= is their own name (v0.1.10 ansible/roles/vmware/files/etc/systemd/system/*.service).
UNITS = {ANYIP: "anyiproutectl.sh", ROUTE_TABLES: "routetablectl.sh"}
NOTICE = "(tkgs-runbook appliance simulator: a stand-in for {command}, reporting the simulated units)"


class ScriptExit(Exception):
    """The script stopped (errexit, nounset): its exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


# --- unit state ----------------------------------------------------------------------------------

def _state_file(unit: str) -> Path:
    return STATE_DIR / "units" / f"{unit}.json"


def load(unit: str) -> dict:
    try:
        return json.loads(_state_file(unit).read_text())
    except (OSError, ValueError):
        return {"active": "inactive", "log": []}


def save(unit: str, state: dict) -> None:
    path = _state_file(unit)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)


def release() -> dict:
    """The booted release's route-tables behaviour (see tkgs_lib.appliance.releases)."""
    try:
        return json.loads((STATE_DIR / "release.json").read_text())
    except (OSError, ValueError):
        return {"version": "v0.1.10", "link_scoped_lines": True, "rule_for_every_line": True,
                "down_deletes_rules": True, "down_deletes_every_route": False, "down_tolerates_missing": True,
                "additional_workload_networks": False}


class Journal:
    """One unit's log lines, as journald keeps what a unit's processes print."""

    def __init__(self, state: dict, unit: str) -> None:
        self.state, self.unit = state, unit

    def _add(self, who: str, text: str) -> None:
        stamp = datetime.datetime.now().strftime("%b %d %H:%M:%S")
        for line in text.splitlines() or [""]:
            self.state["log"].append(f"{stamp} {socket.gethostname()} {who}: {line}")
        self.state["log"] = self.state["log"][-300:]

    def script(self, text: str) -> None:
        self._add(f"{UNITS[self.unit]}[{os.getpid()}]", text)

    def systemd(self, text: str) -> None:
        self._add("systemd[1]", text)


def _ip(journal: Journal, *args: str) -> subprocess.CompletedProcess:
    """A real ``ip`` command; what it prints goes to the unit's journal, as a unit's output does."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode and result.stderr.strip():
        journal.script(result.stderr.strip())
    return result


def _check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """errexit: a command that fails ends the script with its status."""
    if result.returncode != 0:
        raise ScriptExit(result.returncode)
    return result


def _lines(path: Path, journal: Journal) -> list[str]:
    """``while IFS= read -r line; do ...; done < path``: every line as it is; the text after the
    last line break is not a line (read fails on it); a missing file fails the redirection."""
    try:
        text = path.read_text()
    except OSError:
        journal.script(f"{UNITS[journal.unit]}: {path}: No such file or directory")
        raise ScriptExit(1) from None
    return text.split("\n")[:-1]


def _skipped(line: str) -> bool:
    return line == "" or line.startswith("#")


# --- anyip-routes (anyiproutectl.sh, the same at v0.1.7 to v0.2.0) -------------------------------

def _local_route_present(line: str, journal: Journal) -> bool:
    # `ip route show table local | grep -qF "local ${ip%/32} dev lo scope host"`
    shown = line[:-3] if line.endswith("/32") else line
    listing = subprocess.run(["ip", "route", "show", "table", "local"], capture_output=True, text=True).stdout
    return f"local {shown} dev lo scope host" in listing


def anyip_up(journal: Journal) -> None:
    for line in _lines(ANYIP_CFG, journal):
        if _skipped(line):
            continue
        if _local_route_present(line, journal):
            journal.script(f"route already exists for {line}")
            continue
        journal.script(f"adding route for {line}")
        _check(_ip(journal, "route", "add", "local", line, "dev", "lo"))


def anyip_down(journal: Journal) -> None:
    for line in _lines(ANYIP_CFG, journal):  # the file as it is now
        if _skipped(line):
            continue
        if not _local_route_present(line, journal):
            journal.script(f"route already removed for {line}")
            continue
        journal.script(f"removing route for {line}")
        _check(_ip(journal, "route", "del", "table", "local", line, "dev", "lo"))


# --- route-tables (routetablectl.sh, per release) -------------------------------------------------

def _dev_from_mac(mac: str) -> str:
    # ip -o link | awk -F': ' -vIGNORECASE=1 '/<mac>/ { print $2 }' | awk -F'@' '{print $1}'
    names = []
    try:
        pattern = re.compile(mac, re.IGNORECASE)
    except re.error:
        raise ScriptExit(2) from None  # awk refuses the expression; pipefail ends the script
    for line in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines():
        if pattern.search(line):
            fields = line.split(": ")
            names.append(fields[1].split("@")[0] if len(fields) > 1 else "")
    return "\n".join(names)


def _rt_tables(journal: Journal) -> list[str]:
    return _lines(RT_TABLES, journal) if RT_TABLES.exists() else []


def route_tables_down(journal: Journal, rel: dict) -> None:
    kept = []
    for line in _rt_tables(journal):
        if RT_PREFIX not in line:
            kept.append(line)
            continue
        words = line.split()
        table = words[1] if len(words) > 1 else ""
        journal.script(f"discovered route table {table}")
        if rel["down_deletes_rules"]:  # v0.1.x
            matched = [l for l in subprocess.run(["ip", "rule"], capture_output=True, text=True).stdout.splitlines()
                       if table in l]
            if not matched:
                if not rel["down_tolerates_missing"]:
                    raise ScriptExit(1)  # v0.1.7: grep finds nothing, pipefail and errexit end the script
                journal.script("ignoring failed attempt to find existing table")
            rule = "\n".join(re.split(r":\s", l, maxsplit=2)[1] if re.search(r":\s", l) else "" for l in matched)
            journal.script(f"removing ip rule: {rule}")
            result = _ip(journal, "rule", "del", *rule.split())  # unquoted: every word of every rule found
            if result.returncode:
                if not rel["down_tolerates_missing"]:
                    raise ScriptExit(result.returncode)
                journal.script(f'ignoring failed attempt to delete route rule "{rule}"')
            journal.script(f"removing default route for {table}")
            result = _ip(journal, "route", "del", "table", table, "default")
            if result.returncode:
                if not rel["down_tolerates_missing"]:
                    raise ScriptExit(result.returncode)
                journal.script(f'ignoring failed attempt to delete route table "{table}"')
        else:  # v0.2.0: `while ip call "rule del ... 2>/dev/null"; do true; done` ends at once, having deleted nothing
            while _ip(journal, "call", f"rule del from 0/0 to 0/0 table {table} 2>/dev/null").returncode == 0:
                pass
            shown = subprocess.run(["ip", "route", "show", "table", table], capture_output=True, text=True).stdout
            for route in shown.splitlines():
                journal.script(f"ip route del table {table} {route}")
                _check(_ip(journal, "route", "del", "table", table, *route.split()))
    RT_TABLES.parent.mkdir(parents=True, exist_ok=True)
    RT_TABLES.write_text("".join(f"{line}\n" for line in kept))


def _ifs_comma(line: str) -> list[str]:
    """``IFS=, read -ra parts <<< line``: split on commas, nothing stripped, a trailing empty field dropped."""
    parts = line.split(",")
    return parts[:-1] if parts and parts[-1] == "" else parts


def _add_table(table_id: str, table: str, journal: Journal) -> None:
    journal.script(f"create new route table id={table_id} name={table}")
    if not re.fullmatch(r"\s*[-+]?\d+\s*", table_id):  # printf '%d' refuses it
        journal.script(f"routetablectl.sh: line 0: printf: {table_id}: invalid number")
        raise ScriptExit(1)
    with RT_TABLES.open("a") as rt:
        rt.write(f"{int(table_id)}\t{table}\n")


def route_tables_up(journal: Journal, rel: dict) -> None:
    route_tables_down(journal, rel)
    v02 = rel["additional_workload_networks"]
    if v02:
        if not ROUTE_TABLES_CFG.exists():
            journal.script(f"missing config file {ROUTE_TABLES_CFG}")
            return
        # add_route_tables: `grep -E '^\w'` lines (its `| cut | uniq` binds to the `|| echo ""` only), one
        # rt_tables entry per line, word-split
        for word in " ".join(l for l in ROUTE_TABLES_CFG.read_text().splitlines() if re.match(r"\w", l)).split():
            parts = _ifs_comma(word)
            if len(parts) < 2:
                journal.script("routetablectl.sh: line 0: line[1]: unbound variable")
                raise ScriptExit(1)
            _add_table(parts[0], RT_PREFIX + parts[1], journal)
        if not WORKLOAD_NETWORKS_CFG.exists():
            journal.script("no additional workload networks detected")
        else:
            for cidr in _lines(WORKLOAD_NETWORKS_CFG, journal):
                if _skipped(cidr):
                    continue
                command = f"ip rule add to {cidr} lookup {RT_PREFIX}workload"
                journal.script(command)
                _check(_ip(journal, *command.split()[1:]))  # eval: word-split
    for line in _lines(ROUTE_TABLES_CFG, journal):
        if _skipped(line):
            continue
        parts = _ifs_comma(line)
        needed = 4 if rel["link_scoped_lines"] else 5
        if len(parts) < needed:  # nounset: "${line_parts[N]}" of a line with fewer fields
            journal.script(f"routetablectl.sh: line 0: line_parts[{len(parts)}]: unbound variable")
            raise ScriptExit(1)
        table_id, name, mac, cidr = parts[:4]
        gateway = parts[4] if (len(parts) == 5 or not rel["link_scoped_lines"]) else ""
        device = _dev_from_mac(mac)
        table = RT_PREFIX + name
        if not v02:
            _add_table(table_id, table, journal)
        if gateway == "":  # the link-scoped route (v0.1.9 and later)
            try:
                destination = str(ipaddress.ip_network(cidr, strict=False))  # the script asks python3 for it
            except ValueError as exc:
                journal.script(f"ValueError: {exc}")
                raise ScriptExit(1) from None
            command = (f"ip route add table {table} {destination} dev {device} proto kernel scope link "
                       f"src {cidr.split('/')[0]}")
            journal.script(command if v02 else f"create route with cmd: {command}")
            _check(_ip(journal, *command.split()[1:]))  # eval: word-split
        elif v02:
            command = f"ip route add table {table} default via {gateway} dev {device} proto static"
            journal.script(command)
            _check(_ip(journal, *command.split()[1:]))
            command = f"ip rule add from {cidr} lookup {table}"
            journal.script(command)
            _check(_ip(journal, *command.split()[1:]))
        else:
            journal.script(f"create default route for {table}")
            _check(_ip(journal, "route", "add", "table", table, "default", "via", gateway, "dev", device, "proto",
                       "static"))  # quoted: an empty device is an empty argument
        if not v02:
            journal.script(f"create IP rule for {table}")
            _check(_ip(journal, "rule", "add", "from", cidr, "lookup", table))


# --- the units -------------------------------------------------------------------------------------

def _script(unit: str, verb: str, journal: Journal) -> int:
    """Run the unit's script with ``verb``; its exit status."""
    try:
        if unit == ANYIP:
            (anyip_up if verb == "up" else anyip_down)(journal)
        else:
            (route_tables_up if verb == "up" else route_tables_down)(journal, release())
    except ScriptExit as exc:
        return exc.status
    return 0


def start(unit: str) -> int:
    state = load(unit)
    if state["active"] == "active":
        return 0
    journal = Journal(state, unit)
    journal.systemd(f"Starting {unit}...")
    status = _script(unit, "up", journal)  # ExecStartPre=... up
    if status:
        journal.systemd(f"{unit}: Control process exited, code=exited, status={status}/FAILURE")
        _script(unit, "down", journal)  # ExecStopPost runs after a failed start too
        journal.systemd(f"{unit}: Failed with result 'exit-code'.")
        journal.systemd(f"Failed to start {unit}.")
        state["active"] = "failed"
    else:
        journal.systemd(f"Started {unit}.")
        state["active"] = "active"
    save(unit, state)
    return 1 if status else 0


def stop(unit: str) -> int:
    state = load(unit)
    if state["active"] != "active":
        return 0  # nothing runs for a unit that is not running
    journal = Journal(state, unit)
    journal.systemd(f"Stopping {unit}...")
    _script(unit, "down", journal)  # ExecStopPost=... down
    journal.systemd(f"{unit}: Deactivated successfully.")
    journal.systemd(f"Stopped {unit}.")
    state["active"] = "inactive"
    save(unit, state)
    return 0


# --- the commands ---------------------------------------------------------------------------------

def systemctl(args: list[str]) -> int:
    print(NOTICE.format(command="systemctl"), file=sys.stderr)
    verb = args[0] if args else "list-units"
    units = [a for a in args[1:] if not a.startswith("-")]
    if verb == "list-units":
        wanted = args[args.index("--state") + 1] if "--state" in args else None
        for unit in UNITS:
            state = load(unit)["active"]
            if wanted in (None, state):
                print(f"{unit} loaded {state} {state} {unit}")
        return 0
    unknown = [u for u in units if u not in UNITS]
    if unknown:
        print(f"Unit {unknown[0]} could not be found.", file=sys.stderr)
        return 4 if verb in ("status", "is-active") else 5
    if verb == "is-active":
        states = [load(u)["active"] for u in units]
        print("\n".join(states))
        return 0 if all(s == "active" for s in states) else 3
    if verb == "status":
        code = 0
        for unit in units:
            state = load(unit)
            active = state["active"]
            result = "" if active != "failed" else " (Result: exit-code)"
            print(f"* {unit} - {unit} {NOTICE.format(command='systemctl')}")
            print(f"     Loaded: loaded (/etc/systemd/system/{unit}; enabled)")
            print(f"     Active: {active}{result}")
            print()
            print("\n".join(state["log"][-10:]))
            code = code or (0 if active == "active" else 3)
        return code
    if verb in ("start", "stop", "restart"):
        code = 0
        for unit in units:
            if verb in ("stop", "restart"):
                stop(unit)
            if verb in ("start", "restart"):
                code = start(unit) or code
        if code:
            print(f"Job for {units[0]} failed because the control process exited with error code.\n"
                  f'See "systemctl status {units[0]}" and "journalctl -xeu {units[0]}" for details.', file=sys.stderr)
        return code
    print(f"systemctl stand-in: '{verb}' is not simulated", file=sys.stderr)
    return 1


def journalctl(args: list[str]) -> int:
    print(NOTICE.format(command="journalctl"), file=sys.stderr)
    units = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-u", "--unit")]
    lines = int(args[args.index("-n") + 1]) if "-n" in args else 1000
    for unit in units or list(UNITS):
        if unit in UNITS:
            print("\n".join(load(unit)["log"][-lines:]))
    return 0


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    return {"systemctl": systemctl, "journalctl": journalctl}[command](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
