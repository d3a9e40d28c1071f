"""The run record, ``stages.json``: the runner's own account of a run folder's stages.

Written by the runner (:mod:`tkgs_lib.runner.site_run`, the one process that runs the stages), read by
the index pages, a fleet and a later run into the same folder: for each stage called, its status
(pending, running, ok, failed, interrupted), how long it took, its report (the executed notebook and its
HTML), what it changed (from the ledger, ``effects.jsonl``) and, when it failed, the scrubbed sentence
why. Rewritten whole as each stage starts and ends, so a fleet runner can read every site's progress,
and a later ``run --run-folder`` continues the folder with the stages run so far kept (an Airflow task
per stage, each a separate process, writes into the folder the task before it wrote). A stage whose
runner could not even be started (an Airflow task without a password it must supply) is entered failed
by what was to start it, :func:`record_not_started`, so the record still says where the site stopped
and why. What the stages found for each other is theirs to write (:mod:`tkgs_lib.stages.provided`):
each file has one writer, so neither can overwrite the other's news.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional, Sequence

from ..errors import TkgsError
from ..stages import StageCall

__all__ = ["STAGE_LIST_FILE", "StageEntry", "StageList", "record_not_started", "shown_sentence", "PENDING", "RUNNING",
           "OK", "FAILED", "INTERRUPTED"]

STAGE_LIST_FILE = "stages.json"


PENDING, RUNNING, OK, FAILED, INTERRUPTED = "pending", "running", "ok", "failed", "interrupted"


@dataclass
class StageEntry:
    stage: str  # its name, as on the command line
    title: str
    name: str = ""  # its entry's own name when a run calls the stage twice ("verify-again"); "": the stage's
    status: str = PENDING
    seconds: float = 0.0
    notebook: str = ""  # the executed notebook, relative to the run folder
    html: str = ""  # its HTML
    apply: bool = False
    started: str = ""  # local time, ISO 8601
    error: str = ""  # why it failed (scrubbed), on one line
    changed: str = ""  # what it changed, from the ledger of what it sent and what came back (effects.jsonl)

    @property
    def key(self) -> str:
        """What names the entry in the record: its own name, else its stage's."""
        return self.name or self.stage


@dataclass
class StageList:
    """The stages of one site's run folder, in runbook order."""

    folder: Path
    site: str
    site_file: str
    stages: list[StageEntry] = field(default_factory=list)
    error: str = ""  # why the run stopped before a stage could start (a held apply lock...)
    note: str = ""  # what the run concluded, when it says more than each stage's status (the demo's sentence)

    # --- reading and writing ---------------------------------------------------------------------

    @classmethod
    def read(cls, folder: Path) -> Optional["StageList"]:
        """The record in ``folder``, or None when there is none (or none that can be read yet)."""
        path = Path(folder) / STAGE_LIST_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {f.name for f in dataclasses.fields(StageEntry)}
            return cls(Path(folder), data["site"], data["site_file"],
                       [StageEntry(**{k: v for k, v in entry.items() if k in known}) for entry in data["stages"]],
                       data.get("error", ""), data.get("note", ""))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def to_dict(self) -> dict:
        return {"site": self.site, "site_file": self.site_file, "error": self.error, "note": self.note,
                "stages": [asdict(e) for e in self.stages]}

    def save(self, secrets: Sequence[str] = ()) -> None:
        """Write ``stages.json`` and ``index.html``, each whole, to their end whatever signal arrives;
        every text scrubbed of ``secrets``."""
        from ..credentials import scrub_text
        from ..files import write_text_whole
        from .interruption import checkpoint, shielded

        with shielded("stages.json and index.html"):
            checkpoint("record:index")
            try:
                write_text_whole(self.folder / STAGE_LIST_FILE,
                                 scrub_text(json.dumps(self.to_dict(), indent=1), secrets) + "\n")
                self.write_index(secrets)
            except OSError as exc:  # a full disk: the run cannot say what it did, so it stops saying so
                raise TkgsError(f"the run record {exc.filename or self.folder / STAGE_LIST_FILE} cannot be written "
                                f"({exc.strerror or exc}): free the disk; the stages' own records in {self.folder} "
                                f"say how far the run got.") from None

    def write_index(self, secrets: Sequence[str] = ()) -> Path:
        from ..credentials import scrub_text
        from .index import IndexRow, write_index

        rows = [IndexRow(e.title, self.folder / e.notebook if e.notebook else None, e.seconds,
                         scrub_text(_shown_status(e), secrets)) for e in self.stages]
        return write_index(self.folder, Path(self.site_file), rows, scrub_text(self.summary(), secrets))

    # --- changing it -----------------------------------------------------------------------------

    def expect(self, calls, apply: bool) -> None:
        """Mark ``calls`` (StageCall) pending: one entry each, a stage run before in this folder replaced in
        its place (a rerun), a new one added after the others; by the registry's order unless a stage is
        called twice (the demo's verify, again after the repair), whose order is the run's own."""
        from ..stages import STAGE_NAMES

        for call in calls:
            entry = StageEntry(call.stage.name, call.stage.title, name=call.name if call.name != call.stage.name else "",
                               apply=apply and bool(call.stage.changes))
            keys = [e.key for e in self.stages]
            if entry.key in keys:
                self.stages[keys.index(entry.key)] = entry
            else:
                self.stages.append(entry)
        if len({e.stage for e in self.stages}) == len(self.stages):
            self.stages.sort(key=lambda e: STAGE_NAMES.index(e.stage) if e.stage in STAGE_NAMES else len(STAGE_NAMES))
        self.error = ""

    def entry(self, key: str) -> StageEntry:
        return next(e for e in self.stages if e.key == key)

    def summary(self) -> str:
        """One line: each stage and its status, e.g. ``lab01: networks ok, prepare failed.``"""
        if not self.stages:
            return f"{self.site}: no stage run."
        parts = ", ".join(f"{e.key} {'not run' if e.status == PENDING else e.status}" for e in self.stages)
        return f"{self.site}: {parts}." + (f" {self.error}" if self.error else "") + (f" {self.note}" if self.note else "")


def _shown_status(entry: StageEntry) -> str:
    if entry.status == PENDING:
        return "not run"
    if entry.error:
        return f"{entry.status}: {entry.error}"
    return entry.status + (f" (applied). {entry.changed}" if entry.apply and entry.status == OK else "")


def record_not_started(folder: Path, site: str, site_file: str, stage, sentence: str, *, apply: bool = False) -> None:
    """Enter ``stage`` failed with ``sentence`` in ``folder``'s record (made when missing) when its runner
    could not be started at all; the stages run before it are kept."""
    folder = Path(folder).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    record = StageList.read(folder) or StageList(folder, site, site_file)
    record.expect([StageCall(stage)], apply)
    entry = record.entry(stage.name)
    entry.status, entry.error = FAILED, shown_sentence(sentence)
    entry.started = datetime.now().isoformat(timespec="seconds")
    record.save()


MAX_ERROR = 1000  # characters of a failure's sentence kept in the record


def shown_sentence(message: str) -> str:
    """A failure's message on one line, with the fields it names (a plan's errors are listed below its
    first line) and without the "See <notebook>" line: the record links the notebook itself."""
    lines = [line.strip() for line in message.splitlines() if line.strip() and not line.startswith("See ")]
    text = " ".join(lines)
    return text if len(text) <= MAX_ERROR else text[:MAX_ERROR - 3] + "..."
