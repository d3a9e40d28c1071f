"""The run record: a run folder's own account of its stages, and what they found or made.

One typed record per run folder, read by every stage that follows, the index pages and a fleet:

* ``stages.json``, written by the runner (the one process that runs the stages): for each stage
  asked for, its status (pending, running, ok, failed, interrupted), how long it took, its record
  (the executed notebook and its HTML) and, when it failed, the scrubbed sentence why. Rewritten
  whole as each stage starts and ends, so a fleet runner can read every site's progress, and a
  later ``run --run-folder`` continues the folder with the stages run so far kept (an Airflow task
  per stage, each a separate process, writes into the folder the task before it wrote). A stage
  whose runner could not even be started (an Airflow task without a password it must supply) is
  entered failed by what was to start it, :func:`record_not_started`, so the record still says
  where the site stopped and why.
* ``found.json``, written by the stages (their notebooks' kernels, through :meth:`StageRun.read
  <tkgs_lib.stages.flow.StageRun.read>` and a stage's optional ``record(run, facts)``): what each
  found or made that a later stage needs (the appliance's release, its CA file, the Data Plane
  API's address, vCenter's ids of what prepare made, the appliance VM, the Supervisor), so no stage
  imports another or asks vCenter again. No secret is ever in it.

Each file has one writer, so neither can overwrite the other's news.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from ..errors import StageFailed, StageInterrupted, TkgsError

__all__ = ["RECORD_FILE", "StageEntry", "RunRecord",
           "open_run_folder", "run_and_record", "record_not_started"]

RECORD_FILE = "stages.json"


PENDING, RUNNING, OK, FAILED, INTERRUPTED = "pending", "running", "ok", "failed", "interrupted"


@dataclass
class StageEntry:
    stage: str  # its name, as on the command line
    title: str
    status: str = PENDING
    seconds: float = 0.0
    notebook: str = ""  # the executed notebook, relative to the run folder
    html: str = ""  # its HTML
    apply: bool = False
    started: str = ""  # local time, ISO 8601
    error: str = ""  # why it failed (scrubbed), on one line
    changed: str = ""  # what it changed, from the ledger of what it sent and what came back (effects.jsonl)


@dataclass
class RunRecord:
    """The stages of one site's run folder, in runbook order."""

    folder: Path
    site: str
    site_file: str
    stages: list[StageEntry] = field(default_factory=list)
    error: str = ""  # why the run stopped before a stage could start (a held apply lock...)

    # --- reading and writing ---------------------------------------------------------------------

    @classmethod
    def read(cls, folder: Path) -> Optional["RunRecord"]:
        """The record in ``folder``, or None when there is none (or none that can be read yet)."""
        path = Path(folder) / RECORD_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {f.name for f in dataclasses.fields(StageEntry)}
            return cls(Path(folder), data["site"], data["site_file"],
                       [StageEntry(**{k: v for k, v in entry.items() if k in known}) for entry in data["stages"]],
                       data.get("error", ""))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def to_dict(self) -> dict:
        return {"site": self.site, "site_file": self.site_file, "error": self.error,
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
                write_text_whole(self.folder / RECORD_FILE,
                                 scrub_text(json.dumps(self.to_dict(), indent=1), secrets) + "\n")
                self.write_index(secrets)
            except OSError as exc:  # a full disk: the run cannot say what it did, so it stops saying so
                raise TkgsError(f"the run record {exc.filename or self.folder / RECORD_FILE} cannot be written "
                                f"({exc.strerror or exc}): free the disk; the stages' own records in {self.folder} "
                                f"say how far the run got.") from None

    def write_index(self, secrets: Sequence[str] = ()) -> Path:
        from ..credentials import scrub_text
        from .index import IndexRow, write_index

        rows = [IndexRow(e.title, self.folder / e.notebook if e.notebook else None, e.seconds,
                         scrub_text(_shown_status(e), secrets)) for e in self.stages]
        return write_index(self.folder, Path(self.site_file), rows, scrub_text(self.summary(), secrets))

    # --- changing it -----------------------------------------------------------------------------

    def expect(self, stages, apply: bool) -> None:
        """Mark ``stages`` pending (a stage run before in this folder is replaced: a rerun)."""
        from ..stages import STAGE_NAMES

        for stage in stages:
            self.stages = [e for e in self.stages if e.stage != stage.name]
            self.stages.append(StageEntry(stage.name, stage.title, apply=apply and bool(stage.changes)))
        self.stages.sort(key=lambda e: STAGE_NAMES.index(e.stage) if e.stage in STAGE_NAMES else len(STAGE_NAMES))
        self.error = ""

    def entry(self, name: str) -> StageEntry:
        return next(e for e in self.stages if e.stage == name)

    def summary(self) -> str:
        """One line: each stage and its status, e.g. ``lab01: plan ok, prepare failed.``"""
        if not self.stages:
            return f"{self.site}: no stage run."
        parts = ", ".join(f"{e.stage} {'not run' if e.status == PENDING else e.status}" for e in self.stages)
        return f"{self.site}: {parts}." + (f" {self.error}" if self.error else "")


def _shown_status(entry: StageEntry) -> str:
    if entry.status == PENDING:
        return "not run"
    if entry.error:
        return f"{entry.status}: {entry.error}"
    return entry.status + (f" (applied). {entry.changed}" if entry.apply and entry.status == OK else "")


def open_run_folder(site, folder: Path) -> Path:
    """``folder`` (absolute; made when missing) for continuing ``site``'s run: refused when it holds
    another site's run, or is not a folder."""
    folder = Path(folder).absolute()
    if folder.exists() and not folder.is_dir():
        raise TkgsError(f"the run folder {folder} is a file; give a folder for --run-folder.")
    record = RunRecord.read(folder)
    if record is not None and record.site != site.site:
        raise TkgsError(f"the run folder {folder} holds the run of site {record.site!r}, not {site.site!r}: give "
                        f"each site its own --run-folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TkgsError(f"cannot create the run folder {folder}: {exc.strerror or exc}; choose another "
                        f"--run-folder.") from None
    return folder


def run_and_record(site, stages, folder: Path, *, apply: bool = False, progress: bool = True) -> Iterator:
    """Run ``stages`` of ``site`` into ``folder`` as :func:`tkgs_lib.runner.notebooks.run_stages` does (stopping
    at the first failure with its StageFailed), keeping ``stages.json`` and ``index.html`` up to date;
    yields each stage's StageResult as it ends."""
    from ..credentials import scrub_text, secret_values
    from .notebooks import StageRunner

    folder = Path(folder).absolute()
    secrets = secret_values(site)
    record = RunRecord.read(folder) or RunRecord(Path(folder), site.site, str(site.source))
    record.site_file = str(site.source)
    record.expect(stages, apply)
    record.save(secrets)
    current: Optional[StageEntry] = None
    try:
        with StageRunner(site, folder, apply=apply, progress=progress) as runner:
            for stage in stages:
                current = record.entry(stage.name)
                current.status, current.started = RUNNING, datetime.now().isoformat(timespec="seconds")
                record.save(secrets)
                try:
                    result = runner.run(stage)
                except StageFailed as exc:
                    if exc.result is not None:
                        _finish(current, exc.result, folder)
                    interrupted = isinstance(exc, StageInterrupted) and not exc.failed
                    current.status = INTERRUPTED if interrupted else FAILED
                    current.error = scrub_text(_sentence(exc.message), secrets)
                    raise
                _finish(current, result, folder)
                current.status = OK
                record.save(secrets)
                yield result
    except StageFailed:
        raise  # recorded above
    except TkgsError as exc:  # the apply lock, a notebook without a parameter...: the record says why
        sentence = scrub_text(_sentence(exc.message), secrets)
        if current is not None and current.status == RUNNING:
            current.status, current.error = FAILED, sentence
        else:
            record.error = sentence
        raise
    except BaseException:  # interrupted outside a stage's notebook (between stages, while starting one)
        if current is not None and current.status == RUNNING:
            current.status = INTERRUPTED
        raise
    finally:
        record.save(secrets)


def record_not_started(folder: Path, site: str, site_file: str, stage, sentence: str, *, apply: bool = False) -> None:
    """Enter ``stage`` failed with ``sentence`` in ``folder``'s record (made when missing) when its runner
    could not be started at all; the stages run before it are kept."""
    folder = Path(folder).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    record = RunRecord.read(folder) or RunRecord(folder, site, site_file)
    record.expect([stage], apply)
    entry = record.entry(stage.name)
    entry.status, entry.error = FAILED, _sentence(sentence)
    entry.started = datetime.now().isoformat(timespec="seconds")
    record.save()


MAX_ERROR = 1000  # characters of a failure's sentence kept in the record


def _sentence(message: str) -> str:
    """A failure's message on one line, with the fields it names (a plan's errors are listed below its
    first line) and without the "See <notebook>" line: the record links the notebook itself."""
    lines = [line.strip() for line in message.splitlines() if line.strip() and not line.startswith("See ")]
    text = " ".join(lines)
    return text if len(text) <= MAX_ERROR else text[:MAX_ERROR - 3] + "..."


def _finish(entry: StageEntry, result, folder: Path) -> None:
    entry.seconds = round(result.seconds, 1)
    entry.changed = result.changed
    if result.notebook.exists():
        entry.notebook = str(result.notebook.relative_to(folder))
    if result.html.exists():
        entry.html = str(result.html.relative_to(folder))
