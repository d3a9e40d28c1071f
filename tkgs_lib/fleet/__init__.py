"""Many sites at once: ``tkgs-runbook run SITE SITE... [--jobs N]``.

A fleet is a set of single-site runs. Each site runs in a child process of its own, the command a
person types for one site (``tkgs-runbook run SITE --run-folder <fleet>/<site>``), so each has its
own signal handling, apply lock, scrubbing, secret scan, record and exit status. This process only
schedules them, shows which site is at which stage (read from each site's ``stages.json``), passes
Ctrl-C, SIGTERM or SIGHUP on to every running site once and waits for each to keep its record, and
at the end writes the fleet's ``index.html`` and ``fleet.json`` from the sites' own records.

Scheduling: without ``--jobs``, one site per vCenter at a time (every vCenter at once); with
``--jobs N`` at most N sites at once, and still one per vCenter when applying (two applies against
one vCenter may each create what the other is creating; a plan only reads). One vCenter may be
written two ways (an address and a name): when the fleet schedules one per vCenter it asks each
address which vCenter answers there (its instance UUID, without logging in) and groups the sites by
that; an address that cannot be asked is a group of its own, and the fleet says why.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional, Sequence

from ..errors import SiteError, TkgsError
from ..files import write_text_whole
from ..runner.stage_list import FAILED, INTERRUPTED, OK, PENDING, RUNNING, StageList

__all__ = ["FleetSite", "FLEET_FILE", "load_fleet_sites", "group_by_vcenter", "startable", "run_fleet",
           "write_fleet_summary"]

FLEET_FILE = "fleet.json"
RUNNER_LOG = "runner.log"  # what a site's runner printed, in its own run folder
POLL_SECONDS = 0.3
EXIT_UNREADABLE = 2
EXIT_INTERRUPTED = 130
NOT_STARTED = "not started"


@dataclass
class FleetSite:
    """One site of a fleet: where its file and run folder are, and how its run is going."""

    given: str  # the site file as the person wrote it
    name: str = ""
    vcenter: str = ""  # server:port, the scheduling group (that of another site when both are one vCenter)
    folder: Optional[Path] = None
    problem: str = ""  # why it is not run at all (unreadable, a name another site file has)
    exit_status: Optional[int] = None
    site: object = field(default=None, repr=False)
    process: Optional[subprocess.Popen] = field(default=None, repr=False)
    started: bool = False
    signalled: bool = False
    shown: dict = field(default_factory=dict, repr=False)  # stage -> status last printed

    @property
    def outcome(self) -> str:
        """ok, failed at <stage>, interrupted at <stage>, not started, or not run: <why>."""
        if self.problem:
            return f"not run: {self.problem}"
        if not self.started:
            return NOT_STARTED
        record = StageList.read(self.folder)
        stopped = next((e for e in record.stages if e.status != OK), None) if record else None
        if record is not None and stopped is None and self.exit_status in (0, None):  # None: known by its record only
            return OK
        if stopped is not None and stopped.status in (FAILED, INTERRUPTED, RUNNING):
            return f"{INTERRUPTED if stopped.status == RUNNING else stopped.status} at {stopped.stage}"
        if record is not None and record.error:
            return f"failed: {record.error}"
        return f"failed (exit status {self.exit_status}): see {self.folder / RUNNER_LOG}"


def load_fleet_sites(site_files: Sequence[str]) -> list[FleetSite]:
    """Each site file read once: its name and vCenter, or the sentence saying why it cannot run.
    Site names name the run folders, so two files of one site name cannot both run."""
    from ..site import load_site
    from ..site.patterns import SITE_NAME

    sites, names = [], {}
    for given in site_files:
        entry = FleetSite(str(given))
        try:
            site = load_site(given)
        except SiteError as exc:  # its sentence starts with the file's name, which every line shows anyway
            entry.problem = str(exc).removeprefix(f"{given}: ")
            sites.append(entry)
            continue
        entry.site, entry.name = site, site.site
        vc = site.vcenter
        entry.vcenter = f"{vc.server.lower()}:{vc.port}" if vc is not None and vc.server else "no vCenter"
        if not SITE_NAME.match(site.site or ""):
            entry.problem = f"site {site.site!r} cannot name a run folder: use letters, digits, '.', '_' and '-' only."
        elif site.site in names:
            entry.problem = (f"site {site.site!r} is also the site of {names[site.site]}; each site of a fleet "
                             f"needs a name of its own.")
        else:
            names[site.site] = given
        sites.append(entry)
    return sites


def group_by_vcenter(sites: Sequence[FleetSite]) -> tuple[list[str], list[str]]:
    """Put the sites whose addresses are one vCenter (one instance UUID) in one scheduling group: the
    first address written for it. Each address is asked once, all at once. Returns what the fleet's
    first lines say: which addresses are one vCenter, and, one sentence each, the addresses that could
    not be asked (their sites stay grouped by that address)."""
    from concurrent.futures import ThreadPoolExecutor

    from ..vsphere.connection import vcenter_identity

    first: dict[str, FleetSite] = {}
    for s in sites:
        if s.site is not None and s.site.vcenter is not None and s.site.vcenter.server:
            first.setdefault(s.vcenter, s)
    if len(first) < 2:  # nothing to merge
        return [], []

    def ask(site: FleetSite) -> str | TkgsError:
        try:
            return vcenter_identity(site.site.vcenter)
        except TkgsError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(16, len(first))) as pool:
        answers = dict(zip(first, pool.map(ask, first.values())))
    unasked = [f"vCenter {address} cannot be asked which vCenter it is, so its sites are scheduled by this address "
               f"alone: {answer}" for address, answer in answers.items() if isinstance(answer, TkgsError)]
    spellings: dict[str, list[str]] = {}
    for address, answer in answers.items():
        if not isinstance(answer, TkgsError):
            spellings.setdefault(answer, []).append(address)
    group = {address: same[0] for same in spellings.values() for address in same}
    for s in sites:
        s.vcenter = group.get(s.vcenter, s.vcenter)
    one = [f"{', '.join(same[:-1])} and {same[-1]} are one vCenter" for same in spellings.values() if len(same) > 1]
    return one, unasked


def startable(waiting: Sequence[FleetSite], running: Sequence[FleetSite], *, jobs: Optional[int],
              one_per_vcenter: bool) -> list[FleetSite]:
    """The waiting sites to start now, in the order given: at most ``jobs`` running in all (None: no
    limit), and with ``one_per_vcenter`` none beside a running site of its vCenter."""
    busy = Counter(s.vcenter for s in running)
    chosen: list[FleetSite] = []
    for site in waiting:
        if jobs is not None and len(running) + len(chosen) >= jobs:
            break
        if one_per_vcenter and busy[site.vcenter]:
            continue
        chosen.append(site)
        busy[site.vcenter] += 1
    return chosen


class _Stop:
    """The first stopping signal received (SIGINT, SIGTERM, SIGHUP), which the loop passes on, and how
    many arrived."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self.count = 0

    def __call__(self, signum, _frame) -> None:
        self.count += 1
        if self.signum is None:
            self.signum = signum


@contextmanager
def _signals_to(handler):
    wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, handler) for s in wanted}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def _new_fleet_folder(output: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    output = Path(output).absolute()
    for n in range(1, 1000):
        folder = output / (f"fleet-{stamp}" if n == 1 else f"fleet-{stamp}-{n}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
        except OSError as exc:
            raise TkgsError(f"cannot create the fleet folder {folder}: {exc.strerror or exc}; "
                            f"choose another --output.") from None
    raise TkgsError(f"cannot create a new fleet folder in {output}: choose another --output.")


def run_fleet(site_files: Sequence[str], stages, output: Path, *, apply: bool = False, jobs: Optional[int] = None,
              out=None) -> int:
    """Run ``stages`` of every site file, each in its own run folder under a new fleet folder in
    ``output``; returns the worst exit status (130 when stopped by a signal)."""
    out = out or sys.stdout
    sites = load_fleet_sites(site_files)
    folder = _new_fleet_folder(output)
    for s in sites:
        if not s.problem:
            s.folder = folder / s.name
    runnable = [s for s in sites if not s.problem]
    one_per_vcenter = jobs is None or apply
    one, unasked = group_by_vcenter(runnable) if one_per_vcenter else ([], [])
    limit = f"at most {jobs} at once" if jobs else "one per vCenter at a time"
    if jobs and apply:
        limit += ", one per vCenter"
    print(f"fleet folder: {folder} ({len(sites)} sites, {'; '.join([_vcenters(runnable), *one])}; "
          f"{', '.join(st.name for st in stages)}; {limit})", file=out, flush=True)
    start = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - start:7.1f} s] {text}", file=out, flush=True)

    for sentence in unasked:
        say(sentence)
    for s in sites:
        if s.problem:
            say(f"{s.name or s.given}: not run: {s.problem}")
    stop = _Stop()
    with _signals_to(stop):
        _schedule(sites, runnable, stages, apply, jobs, one_per_vcenter, stop, say)
    index = write_fleet_summary(folder, sites, [st.name for st in stages])
    summary = fleet_summary(sites)
    if stop.signum is not None:
        summary += f" Stopped by {signal.Signals(stop.signum).name}."
    print(f"fleet: {summary} See {index}.", file=out, flush=True)
    changing = sorted({st.changes for st in stages if st.changes})
    if changing and not apply:
        print(f"plan only: {', '.join(changing)} was not changed at any site; rerun with --apply.", file=out)
    if stop.signum is not None:
        return EXIT_INTERRUPTED
    return max([_exit_status(s) for s in sites] or [0])


def _schedule(sites, runnable, stages, apply, jobs, one_per_vcenter, stop: "_Stop", say) -> None:
    """Start sites as :func:`startable` allows until every one has ended, or, once ``stop`` holds a
    signal, pass it on to each running site and wait for them all."""
    waiting, running = list(runnable), []
    reported = 0
    try:
        while waiting or running:
            if stop.signum is None:
                for s in startable(waiting, running, jobs=jobs, one_per_vcenter=one_per_vcenter):
                    waiting.remove(s)
                    running.append(s)
                    _start(s, stages, apply)
                    say(f"{s.name}: started{_now(running, waiting, sites)}")
            else:
                for s in running:
                    if not s.signalled:  # once each: a second signal could cut its record's export short
                        s.signalled = True
                        s.process.send_signal(stop.signum)
                        say(f"{s.name}: {signal.Signals(stop.signum).name} passed on; waiting for it to keep "
                            f"its record")
                if stop.count > reported + 1:
                    say(f"still waiting for {', '.join(s.name for s in running)} to keep their records")
                reported = stop.count - 1
            for s in list(running):
                for line in _progress(s):
                    say(line + _now(running, waiting, sites))
                if s.process.poll() is not None:
                    running.remove(s)
                    _finished(s)
                    for line in _progress(s):
                        say(line)
                    say(f"{s.name}: {s.outcome}{_now(running, waiting, sites)}")
            if stop.signum is not None and not running:
                break
            time.sleep(POLL_SECONDS)
    except BaseException:  # a fault here must not leave sites running unsupervised
        for s in running:
            if s.process.poll() is None:
                s.process.terminate()
        for s in running:
            s.process.wait()
        raise


def _vcenters(sites: Sequence[FleetSite]) -> str:
    n = len({s.vcenter for s in sites})
    return f"{n} vCenter{'s' if n != 1 else ''}"


def _exit_status(site: FleetSite) -> int:
    if site.problem:
        return EXIT_UNREADABLE if site.site is None else 1
    if site.exit_status is None:
        return EXIT_INTERRUPTED
    return site.exit_status if site.exit_status >= 0 else 1  # killed by a signal of its own


def _start(site: FleetSite, stages, apply: bool) -> None:
    """The site's own single-site run, into its folder; in a process group of its own, so a Ctrl-C at
    the terminal reaches it once, from here, and not twice."""
    site.folder.mkdir(parents=True, exist_ok=True)
    site.started = True
    argv = [sys.executable, "-m", "tkgs_lib.cli", "run", str(Path(site.given).absolute()), "--run-folder",
            str(site.folder), "--stages", *[st.name for st in stages]]
    if apply:
        argv.append("--apply")
    with open(site.folder / RUNNER_LOG, "ab") as log:
        site.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"}, process_group=0)


def _finished(site: FleetSite) -> None:
    from ..credentials import scrub_text_files, secret_values

    site.exit_status = site.process.returncode
    # The runner's last words (its error sentence) came after its own last scrub.
    scrub_text_files(site.folder, secret_values(site.site))


def _progress(site: FleetSite) -> list[str]:
    """A line for each stage of ``site`` whose status changed since last shown."""
    record = StageList.read(site.folder)
    lines = []
    for e in record.stages if record else ():
        if site.shown.get(e.stage) == e.status or e.status == PENDING:
            continue
        site.shown[e.stage] = e.status
        if e.status == RUNNING:
            lines.append(f"{site.name}: {e.stage} ...")
        else:
            lines.append(f"{site.name}: {e.stage} {e.status} ({e.seconds:.1f} s)" + (f": {e.error}" if e.error else ""))
    return lines


def _now(running, waiting, sites) -> str:
    """Which site is at which stage, how many wait and how many are done."""
    at = []
    for s in running:
        record = StageList.read(s.folder)
        stage = next((e.stage for e in record.stages if e.status == RUNNING), None) if record else None
        ran = [e.stage for e in record.stages if e.status != PENDING] if record else []
        at.append(f"{s.name} at {stage}" if stage else f"{s.name} {'after ' + ran[-1] if ran else 'starting'}")
    done = sum(1 for s in sites if s.exit_status is not None or s.problem)
    return f"  | now: {', '.join(at) or 'none running'}; {len(waiting)} waiting, {done} of {len(sites)} done"


def fleet_summary(sites: Sequence[FleetSite]) -> str:
    """One line: how many sites, how many ok, and where each of the others stopped."""
    outcomes = [(s.name or s.given, s.outcome) for s in sites]
    ok = sum(1 for _, o in outcomes if o == OK)
    others = [f"{name} {o}".rstrip(".") for name, o in outcomes if o != OK]
    return f"{len(sites)} sites, {ok} ok" + (f"; {'; '.join(others)}." if others else ".")


def write_fleet_summary(folder: Path, sites: Sequence[FleetSite], stage_names: Sequence[str]) -> Path:
    """``fleet.json`` and ``index.html`` of the fleet folder, from each site's own record."""
    from ..runner.index import FleetRow, write_fleet_index

    rows, data = [], []
    for s in sites:
        record = StageList.read(s.folder) if s.folder is not None else None
        entries = {e.stage: e for e in record.stages} if record else {}
        why = next((e.error for e in record.stages if e.error), record.error) if record else ""
        rows.append(FleetRow(s.name or s.given, s.given, s.folder, s.outcome,
                             {n: (entries[n].status, entries[n].seconds) for n in stage_names if n in entries}, why))
        data.append({"site": s.name, "site_file": s.given, "folder": str(s.folder) if s.folder else None,
                     "outcome": s.outcome, "exit_status": s.exit_status,
                     "stages": record.to_dict()["stages"] if record else []})
    summary = fleet_summary(sites)
    write_text_whole(folder / FLEET_FILE,
                     json.dumps({"summary": summary, "stages": list(stage_names), "sites": data}, indent=1) + "\n")
    return write_fleet_index(folder, rows, list(stage_names), summary)
