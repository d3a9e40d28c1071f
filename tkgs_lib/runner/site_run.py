"""The one way a site's stages run. ``tkgs-runbook run``, the demo, a fleet's sites (each a ``run`` of
its own) and an Airflow task (``run --stages X --run-folder``) all come here.

:func:`run_site` reads as papermill's ``execute_notebook`` does, a chain of named steps:

    _opened          the run record (stages.json, index.html): every call entered pending
    StageRunner      the apply lock, a private folder for the kernels' sockets
    _needs_met       for each stage: what it needs from earlier stages, or one sentence before its kernel
    _started         its entry running
    StageRunner.run  its notebook executed, its record kept, what it changed read from the ledger
    _ended           its entry ok or failed, with what it changed; the record saved

and whatever stops it (a failed stage, a held lock, a signal) is entered in the record before it is
raised, so ``stages.json`` always says how far the run got and why it stopped.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from ..credentials import scrub_text, secret_values
from ..errors import StageFailed, StageInterrupted, TkgsError
from ..paths import NOTEBOOKS
from ..stages import StageCall
from ..stages.provided import missing
from .notebooks import StageResult, StageRunner
from .stage_list import FAILED, INTERRUPTED, OK, RUNNING, StageList, StageEntry, shown_sentence

__all__ = ["run_site"]


def run_site(site, calls: Sequence[StageCall], folder: Path, *, apply: bool = False, progress: bool = True,
             notebooks: Path = NOTEBOOKS, conclusion: Optional[Callable[[list[StageResult]], str]] = None
             ) -> Iterator[StageResult]:
    """Run ``calls`` of ``site`` into ``folder`` in order, yielding each stage's StageResult as it ends;
    the first failure stops the run with its StageFailed (unless the call goes on after it). ``conclusion``:
    what the run concluded from its results, kept in the record when every call has run."""
    folder = Path(folder).absolute()
    secrets = secret_values(site)
    record = _opened(site, calls, folder, apply, secrets)
    results: list[StageResult] = []
    current: Optional[StageEntry] = None
    runner: Optional[StageRunner] = None
    try:
        with StageRunner(site, folder, apply=apply, progress=progress, notebooks=notebooks) as runner:
            for call in calls:
                current = record.entry(call.name)
                _needs_met(call, folder, site)
                _started(record, current, secrets)
                try:
                    result = runner.run(call.stage, record_as=call.notebook)
                except StageFailed as exc:
                    if exc.result is None or not call.goes_on_after or exc.result.ename != call.goes_on_after:
                        raise
                    result = exc.result  # a failure this run expects (the demo's verify): entered, and on
                secrets = runner.secrets()  # with what the stage read at run time (credentials.learned_secret)
                _ended(record, current, result, folder, secrets)
                results.append(result)
                yield result
        if conclusion is not None:
            record.note = scrub_text(conclusion(results), secrets)
    except StageFailed as exc:
        secrets = runner.secrets() if runner is not None else secrets
        if current is not None and exc.result is not None:
            _ended(record, current, exc.result, folder, secrets)
        if current is not None:
            stopped = isinstance(exc, StageInterrupted) and not exc.failed
            current.status = INTERRUPTED if stopped else FAILED
            current.error = scrub_text(shown_sentence(exc.message), secrets)
        raise
    except TkgsError as exc:  # a need unmet, the apply lock, a notebook without a parameter: the record says why
        sentence = scrub_text(shown_sentence(exc.message), secrets)
        if current is not None and current.status in (RUNNING, "pending"):
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


def _opened(site, calls: Sequence[StageCall], folder: Path, apply: bool, secrets: list[str]) -> StageList:
    """The folder's run record (a new one, or the one a run before this left), each call entered pending."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TkgsError(f"cannot create the run folder {folder}: {exc.strerror or exc}; choose another.") from None
    record = StageList.read(folder) or StageList(folder, site.site, str(site.source))
    record.site_file = str(site.source)
    record.expect(calls, apply)
    record.note = ""
    record.save(secrets)
    return record


def _needs_met(call: StageCall, folder: Path, site) -> None:
    """What the stage needs from earlier stages (stages.provided), in one sentence when anything is missing,
    before its kernel starts."""
    unmet = missing(call.stage, folder, site)
    if unmet:
        raise TkgsError(" ".join(unmet))


def _started(record: StageList, entry: StageEntry, secrets: list[str]) -> None:
    entry.status, entry.started = RUNNING, datetime.now().isoformat(timespec="seconds")
    record.save(secrets)


def _ended(record: StageList, entry: StageEntry, result: StageResult, folder: Path, secrets: list[str]) -> None:
    """The stage's entry as it ended: how long it took, its record, what it changed; ok, or failed with why."""
    entry.seconds = round(result.seconds, 1)
    entry.changed = result.changed
    if result.notebook.exists():
        entry.notebook = str(result.notebook.relative_to(folder))
    if result.html.exists():
        entry.html = str(result.html.relative_to(folder))
    entry.status = FAILED if result.error else OK
    entry.error = scrub_text(shown_sentence(result.error), secrets) if result.error else ""
    record.save(secrets)
