"""The appliance's two network units, and ``systemctl``/``journalctl`` stand-ins that report them.

Inside the simulated appliance (its network namespace and private view of the filesystem) these
stand-ins are mounted over the real commands. Each unit runs its script as the booted release has
it (:mod:`.scripts`: ``routetablectl.sh`` for route-tables.service, ``anyiproutectl.sh`` for
anyip-routes.service, step by step with real ``ip`` commands, so the kernel itself accepts or
rejects each line), as its unit file has systemd run it (``ansible/roles/vmware/files/etc/systemd/
system/*.service``, the same at v0.1.7 to v0.2.0): ``ExecStartPre`` runs the script's ``up``; when
it fails the unit fails and systemd runs ``ExecStopPost`` (``down``) all the same; ``stop`` of an
active unit runs ``down``. The release is the one the guest booted (``release`` beside the unit
states): the scripts its disk holds.

The watch (``inotifywait -e modify``, the units' main process) is not played: nothing here edits a
file in place while its unit runs.

``dataplaneapi.service`` (``ansible/roles/haproxy/files/etc/systemd/system/dataplaneapi.service``) runs in the
guest itself: ``systemctl start|stop|restart dataplaneapi`` writes what is asked beside the unit states and
signals the guest (PID 1 of the appliance, SIGUSR1), which stops the Data Plane API and starts it again from
the files it reads at its start (the ``controller`` userlist of ``/etc/haproxy/haproxy.cfg``, and
``server.crt`` and ``server.key``, dataplaneapi.cfg's TLS_CERTIFICATE and TLS_KEY), then says how it went;
the command waits for that and fails as systemctl does when the API did not start.

Each command says on standard error that it is a stand-in; ``systemctl status`` says it on its first line too.
``systemctl reload sshd`` is sshd's own unit's reload: a SIGHUP to its listener.
``python units.py systemctl ...`` runs one: the stand-ins run this file without the package (importing it would
cost every call a second), and with it the scripts, which import nothing of the package either.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from pathlib import Path

if __package__:
    from .scripts import ARTICLE_RELEASE, played
    from .scripts.shell import ScriptExit, Shell
else:  # run as a file by the stand-ins: the scripts are a package beside it
    from scripts import ARTICLE_RELEASE, played
    from scripts.shell import ScriptExit, Shell

__all__ = ["main", "ANYIP", "ROUTE_TABLES", "DATAPLANE", "STATE_DIR", "RELEASE_FILE", "DATAPLANE_REQUEST", "start",
           "stop", "load", "save", "Journal"]

STATE_DIR = Path(os.environ.get("TKGS_APPLIANCE_STATE", "/run/tkgs-appliance"))
RELEASE_FILE = STATE_DIR / "release"  # the release the guest booted, written at each boot
ANYIP, ROUTE_TABLES = "anyip-routes.service", "route-tables.service"
# The units' Description= is their own name (v0.1.10 ansible/roles/vmware/files/etc/systemd/system/*.service).
UNITS = {ANYIP: "anyiproutectl.sh", ROUTE_TABLES: "routetablectl.sh"}
DATAPLANE = "dataplaneapi.service"  # run by the guest: asked through DATAPLANE_REQUEST and a signal
DATAPLANE_REQUEST = STATE_DIR / "dataplaneapi.request"
DATAPLANE_WAIT = 20.0  # seconds systemctl waits for the guest to have done what was asked
NOTICE = "(tkgs-runbook appliance simulator: a stand-in for {command}, reporting the simulated units)"
SSHD, SSHD_PID = ("sshd", "sshd.service"), "/run/sshd.pid"  # reloaded as its unit does (sshd -D writes the pid)


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


def booted_release() -> str:
    try:
        return RELEASE_FILE.read_text().strip()
    except OSError:
        return ARTICLE_RELEASE


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

    def service(self, text: str) -> None:
        """A line of the unit's own process (the Data Plane API's)."""
        self._add(f"dataplaneapi[{os.getpid()}]", text)


# --- the units -------------------------------------------------------------------------------------

def _script(unit: str, verb: str, journal: Journal) -> int:
    """Run the unit's script, as the booted release has it, with ``verb``; its exit status."""
    release = played(booted_release())
    script = (release.anyip_routes if unit == ANYIP else release.route_tables)(Shell(UNITS[unit], journal.script))
    try:
        (script.up if verb == "up" else script.down)()
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


def ask_dataplane(verb: str) -> int:
    """``systemctl start|stop|restart dataplaneapi``: asked of the guest, which runs the API; 0 when the unit is
    then as asked (active, or inactive after a stop)."""
    import signal
    import time

    before = load(DATAPLANE).get("handled", 0)
    DATAPLANE_REQUEST.write_text(json.dumps({"verb": verb, "number": before + 1}))
    os.kill(1, signal.SIGUSR1)  # the guest is PID 1 of the appliance's PID namespace
    deadline = time.monotonic() + DATAPLANE_WAIT
    while time.monotonic() < deadline:
        state = load(DATAPLANE)
        if state.get("handled", 0) > before:
            return 0 if state["active"] == ("inactive" if verb == "stop" else "active") else 1
        time.sleep(0.05)
    print(f"Job for {DATAPLANE} timed out.", file=sys.stderr)
    return 1


# --- the commands ---------------------------------------------------------------------------------

def systemctl(args: list[str]) -> int:
    print(NOTICE.format(command="systemctl"), file=sys.stderr)
    verb = args[0] if args else "list-units"
    units = [a for a in args[1:] if not a.startswith("-")]
    if verb == "list-units":
        wanted = args[args.index("--state") + 1] if "--state" in args else None
        for unit in (*UNITS, DATAPLANE):
            state = load(unit)["active"]
            if wanted in (None, state):
                print(f"{unit} loaded {state} {state} {unit}")
        return 0
    if verb in ("reload", "restart") and units and all(u in SSHD for u in units):
        return _reload_sshd()
    units = [DATAPLANE if u == "dataplaneapi" else u for u in units]
    unknown = [u for u in units if u not in UNITS and u != DATAPLANE]
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
    if verb in ("start", "stop", "restart") and DATAPLANE in units:
        code = ask_dataplane(verb)
        if code and verb != "stop":
            print(f"Job for {DATAPLANE} failed because the control process exited with error code.\n"
                  f'See "systemctl status {DATAPLANE}" and "journalctl -xeu {DATAPLANE}" for details.', file=sys.stderr)
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


def _reload_sshd() -> int:
    """``systemctl reload sshd``: sshd's ExecReload, a SIGHUP to its listener, which reads its configuration
    again (sessions already open keep going)."""
    import signal

    try:
        os.kill(int(Path(SSHD_PID).read_text().split()[0]), signal.SIGHUP)
    except (OSError, ValueError) as exc:
        print(f"Failed to reload sshd.service: {exc}", file=sys.stderr)
        return 1
    return 0


def journalctl(args: list[str]) -> int:
    print(NOTICE.format(command="journalctl"), file=sys.stderr)
    units = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-u", "--unit")]
    lines = int(args[args.index("-n") + 1]) if "-n" in args else 1000
    for unit in units or list(UNITS):
        if unit in UNITS or unit in (DATAPLANE, "dataplaneapi"):
            print("\n".join(load(DATAPLANE if unit == "dataplaneapi" else unit)["log"][-lines:]))
    return 0


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    return {"systemctl": systemctl, "journalctl": journalctl}[command](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
