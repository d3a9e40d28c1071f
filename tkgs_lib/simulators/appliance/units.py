"""The appliance's two network units, and ``systemctl``/``journalctl`` stand-ins that report them.

Inside the simulated appliance (its network namespace and private view of the filesystem) these
stand-ins are mounted over the real commands. The units do what the appliance's do, with real
``ip`` commands, so the kernel itself accepts or rejects each line:

* ``anyip-routes.service``: start runs "up": for each line of ``/etc/vmware/anyip-routes.cfg``
  not yet a local route, ``ip route add local <line> dev lo``; the first failure stops it (later
  lines are never added) and the unit fails, with ip's own words in its log. Stop runs "down" with
  the file as it is at that moment. Restart is stop then start, so a restart after replacing the
  file leaves the old routes in place, as on the appliance.
* ``route-tables.service``: start removes every ``rtctl_*`` table (rules, routes, its line in
  ``rt_tables``), then for each ``<id>,<name>,<mac>,<cidr>,<gateway>`` line adds the table, its
  default route via the gateway on the device with that MAC, and ``ip rule add from <cidr>``.

Each command says on standard error that it is a stand-in; ``systemctl status`` says it on its
first line too. ``python -m tkgs_lib.simulators.appliance.units systemctl ...`` runs one.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

__all__ = ["main", "ANYIP", "ROUTE_TABLES", "STATE_DIR"]

STATE_DIR = Path(os.environ.get("TKGS_APPLIANCE_STATE", "/run/tkgs-appliance"))
ANYIP, ROUTE_TABLES = "anyip-routes.service", "route-tables.service"
ANYIP_CFG, ROUTE_TABLES_CFG = Path("/etc/vmware/anyip-routes.cfg"), Path("/etc/vmware/route-tables.cfg")
RT_TABLES = Path("/etc/iproute2/rt_tables")
UNITS = {ANYIP: ("AnyIP Routes", "anyiproutectl.sh"), ROUTE_TABLES: ("Route Tables", "routetablectl.sh")}
NOTICE = "(tkgs-runbook appliance simulator: a stand-in for {command}, reporting the simulated units)"


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


def _log(state: dict, unit: str, text: str) -> None:
    stamp = datetime.datetime.now().strftime("%b %d %H:%M:%S")
    script = UNITS[unit][1]
    state["log"].append(f"{stamp} {socket.gethostname()} {script}[{os.getpid()}]: {text}")
    state["log"] = state["log"][-200:]


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def _cfg_lines(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


# --- anyip-routes ---------------------------------------------------------------------------------

def _local_route_present(line: str) -> bool:
    shown = line[:-3] if line.endswith("/32") else line
    routes = _ip("route", "show", "table", "local").stdout.splitlines()
    return any(r.split()[:4] == ["local", shown, "dev", "lo"] for r in routes)


def anyip_up(state: dict) -> bool:
    for line in _cfg_lines(ANYIP_CFG):
        if _local_route_present(line):
            _log(state, ANYIP, f"route already exists for {line}")
            continue
        _log(state, ANYIP, f"adding route for {line}")
        result = _ip("route", "add", "local", line, "dev", "lo")
        if result.returncode != 0:  # errexit: the first failure stops the script, and the unit
            for said in (result.stderr or "").strip().splitlines():
                _log(state, ANYIP, said)
            return False
    return True


def anyip_down(state: dict) -> None:
    for line in _cfg_lines(ANYIP_CFG):  # the file as it is now
        if _local_route_present(line):
            _log(state, ANYIP, f"removing route for {line}")
            _ip("route", "del", "local", line, "dev", "lo")


# --- route-tables ---------------------------------------------------------------------------------

def _device_with_mac(mac: str) -> str:
    for device in Path("/sys/class/net").iterdir():
        try:
            if (device / "address").read_text().strip().lower() == mac.lower():
                return device.name
        except OSError:
            continue
    return ""


def route_tables_up(state: dict) -> bool:
    lines = RT_TABLES.read_text().splitlines() if RT_TABLES.exists() else []
    keep = []
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[1].startswith("rtctl_"):
            while _ip("rule", "del", "lookup", words[1]).returncode == 0:
                pass
            _ip("route", "flush", "table", words[1])
        else:
            keep.append(line)
    ok = True
    for entry in _cfg_lines(ROUTE_TABLES_CFG):
        parts = [p.strip() for p in entry.split(",")]
        if len(parts) != 5:
            _log(state, ROUTE_TABLES, f"skipping malformed line: {entry}")
            ok = False
            continue
        table_id, name, mac, cidr, gateway = parts
        table = f"rtctl_{name}"
        keep.append(f"{table_id}\t{table}")
        RT_TABLES.parent.mkdir(parents=True, exist_ok=True)
        RT_TABLES.write_text("\n".join(keep) + "\n")
        device = _device_with_mac(mac)
        _log(state, ROUTE_TABLES, f"adding table {table} ({table_id}) for {cidr} via {gateway} dev {device or mac}")
        for args in (("route", "add", "table", table, "default", "via", gateway, "dev", device or "none", "proto",
                      "static"), ("rule", "add", "from", cidr, "lookup", table)):
            result = _ip(*args)
            if result.returncode != 0:
                for said in (result.stderr or "").strip().splitlines():
                    _log(state, ROUTE_TABLES, said)
                ok = False
    RT_TABLES.write_text("\n".join(keep) + "\n")
    return ok


# --- the commands ---------------------------------------------------------------------------------

def start(unit: str) -> int:
    state = load(unit)
    _log(state, unit, f"Starting {UNITS[unit][0]}...")
    ok = anyip_up(state) if unit == ANYIP else route_tables_up(state)
    state["active"] = "active" if ok else "failed"
    _log(state, unit, f"{'Started' if ok else 'Failed to start'} {UNITS[unit][0]}.")
    save(unit, state)
    return 0 if ok else 1


def stop(unit: str) -> int:
    state = load(unit)
    if unit == ANYIP:
        anyip_down(state)
    state["active"] = "inactive"
    _log(state, unit, f"Stopped {UNITS[unit][0]}.")
    save(unit, state)
    return 0


def systemctl(args: list[str]) -> int:
    print(NOTICE.format(command="systemctl"), file=sys.stderr)
    verb = args[0] if args else "list-units"
    units = [a for a in args[1:] if not a.startswith("-")]
    if verb == "list-units":
        wanted = args[args.index("--state") + 1] if "--state" in args else None
        for unit in UNITS:
            state = load(unit)["active"]
            if wanted in (None, state):
                print(f"{unit} loaded {state} {state} {UNITS[unit][0]}")
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
            print(f"* {unit} - {UNITS[unit][0]} {NOTICE.format(command='systemctl')}")
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

