"""A stage's notebook executed by papermill into a run folder, on a kernel of its own, and its record kept:
scrubbed, marked where a signal stopped it, exported as HTML, the folder scanned for secrets; what it
changed read from the ledger (:mod:`tkgs_lib.effects`). The order of stages and the run record are
:mod:`tkgs_lib.runner.site_run`'s."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..credentials import (LEARNED_SECRETS_ENV, fields_holding_secrets, learned_secrets, scan_for_secrets,
                          scrub_notebook, scrub_text, scrub_text_files, secret_values, unscrubbable_secrets)
from ..effects import EFFECTS_FILE, account, read_effects
from ..errors import StageFailed, StageInterrupted, TkgsError
from ..files import write_text_whole
from .interruption import checkpoint, on_give_up, shielded, take_held
from ..paths import NOTEBOOKS
from ..site import Site
from ..stages import Stage

log = logging.getLogger(__name__)
MIN_SCANNED = 4  # a shorter secret would be "found" in every file; the scrubber still masks it



@dataclass
class StageResult:
    """One executed stage: its record, how long it took, what failed (scrubbed), and what it changed,
    from the ledger (:mod:`tkgs_lib.effects`): what it sent and what came back."""

    stage: Stage
    notebook: Path
    seconds: float
    error: str = ""
    ename: str = ""  # the exception a failed cell raised (its class name), when one did
    effects: list = field(default_factory=list)  # the ledger's entries of this stage

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def html(self) -> Path:
        return self.notebook.with_suffix(".html")

    @property
    def changed(self) -> str:
        """What the stage changed, in words, from the ledger."""
        return account(self.effects, nothing="It changed nothing.")


class StageRunner:
    """Runs stages of one site into one run folder, one at a time (the demo runs one twice)."""

    def __init__(self, site: Site, run_folder: Path, *, apply: bool = False, notebooks: Path = NOTEBOOKS,
                 progress: bool = True) -> None:
        if not notebooks.is_dir():
            raise TkgsError(f"the stage notebooks are not in {notebooks}: run from a clone of tkgs-runbook "
                            f"installed with `pip install -e .`, or set TKGS_NOTEBOOKS to its notebooks folder.")
        # The kernels start in the notebooks folder, not the caller's: every path they are given must
        # be absolute, or it would name a file beside the notebooks.
        if site.source is None:
            raise TkgsError("the stages read the site from its file: load the site with load_site(path).")
        holding = fields_holding_secrets(site, secret_values(site))
        if holding:  # refused before anything runs: the value would reach every table of the run
            raise TkgsError(f"the site field(s) {', '.join(holding)} contain the value of a password the site names: "
                            f"a site value must never hold a secret (it would be printed in every plan and report); "
                            f"change the value or the password.")
        own = {"the site file": Path(site.source).read_text(errors="replace"), "the run folder's path": str(run_folder),
               **{f"the notebook {p.name}": p.read_text(errors="replace") for p in sorted(notebooks.glob("*.ipynb"))}}
        unsafe = unscrubbable_secrets(site, own)
        if unsafe:  # refused before anything runs: a run could not keep it out of its records
            raise TkgsError(" ".join(unsafe))
        self.site, self.notebooks, self.progress = site, notebooks, progress
        self.run_folder = Path(run_folder).absolute()
        self.values = {"site_file": str(Path(site.source).absolute()), "output_dir": str(self.run_folder),
                       "apply": apply}
        self.sockets: Optional[Path] = None
        self._learned_before: Optional[str] = None
        self._learned: list[str] = []
        _whole_notebook_writes()

    def __enter__(self) -> "StageRunner":
        if self.values["apply"]:
            from .folders import apply_lock

            self.lock = apply_lock(self.site, self.run_folder)
        from .kernels import new_socket_folder  # with jupyter_client: not on the command line's start

        self.sockets = new_socket_folder()
        # The kernels (started with this environment) hand the secrets they read at run time over here.
        self._learned_before = os.environ.get(LEARNED_SECRETS_ENV)
        os.environ[LEARNED_SECRETS_ENV] = str(self.sockets / "learned-secrets")
        return self

    def secrets(self) -> list[str]:
        """Every secret to keep out of the run's records: those the site names, and those its stages' kernels
        read at run time and handed over (credentials.learned_secret)."""
        if self.sockets is not None:  # kept once read: the private folder goes when the runner ends
            self._learned = list(dict.fromkeys(self._learned + learned_secrets(self.sockets / "learned-secrets")))
        return secret_values(self.site) + self._learned

    def __exit__(self, *exc) -> None:
        if self._learned_before is None:
            os.environ.pop(LEARNED_SECRETS_ENV, None)
        else:
            os.environ[LEARNED_SECRETS_ENV] = self._learned_before
        if self.sockets is not None:
            self.secrets()  # what the kernels handed over, kept before their folder goes
            shutil.rmtree(self.sockets, ignore_errors=True)
        lock = getattr(self, "lock", None)
        if lock is not None:
            lock.close()  # closing the file releases the lock

    def run(self, stage: Stage, record_as: Optional[str] = None) -> StageResult:
        """Execute ``stage``'s notebook (saved as ``record_as``, default its own name) and keep its record;
        StageFailed (with its StageResult) when it fails, cannot keep its record or leaves a secret behind;
        StageInterrupted when a signal stopped it or came while its record was kept."""
        source, target = self.notebooks / stage.notebook, self.run_folder / (record_as or stage.notebook)
        parameters = self._parameters(stage, source)
        ledger = self.run_folder / EFFECTS_FILE
        sent_before = len(read_effects(ledger))
        managers = _ipc_kernel_manager(self.sockets)
        with on_give_up(lambda: _kill_kernels(managers)):
            execution = _execute(source, target, parameters, self.notebooks, managers, self.progress)
            secrets = self.secrets()
            self._keep(stage, target, execution, managers, secrets)
        result = StageResult(stage, target, time.monotonic() - execution.start, scrub_text(execution.failure, secrets),
                             execution.ename, read_effects(ledger)[sent_before:])
        return _judged(stage, target, execution, result)

    def _parameters(self, stage: Stage, source: Path) -> dict:
        """The values the stage's notebook is given; refused when it does not declare one (papermill would
        drop it, and the notebook run on its own default: another site)."""
        import papermill as pm

        declared = pm.inspect_notebook(str(source))
        missing = [name for name in stage.parameters if name not in declared]
        if missing:
            raise TkgsError(f"{source} does not declare the parameter(s) {', '.join(missing)} in its parameters "
                            f"cell; stage {stage.name!r} needs them, or it would run on its defaults.")
        log.info("stage %s: executing %s", stage.name, source.name)
        warm_html_exporter()
        return {name: self.values[name] for name in stage.parameters}

    def _keep(self, stage: Stage, target: Path, execution: "_Execution", managers, secrets: list[str]) -> None:
        """The kernel stopped, the record scrubbed, marked and exported, the folder scrubbed and scanned: to the
        end whatever signal arrives (one that does takes effect after it, as ``execution.late``)."""
        try:
            with shielded(f"the record of stage {stage.name!r}"):
                if execution.interrupted is not None:
                    _quiet_after_interrupt()
                # After an interrupt papermill could not stop its kernel; after a normal end it did, and this
                # only proves it (a kernel never outlives its stage, whatever went wrong).
                _stop_kernels(managers)
                if target.exists():
                    if execution.interrupted is not None:
                        mark_interrupted(target)
                    execution.kept = _keep_record(target, secrets)
                elif execution.interrupted is None:
                    execution.kept = f"its executed notebook {target.name} was never written"
                scrub_text_files(self.run_folder, secrets)  # a table or file of the stage's own, in case
                checkpoint("record:scan")
                execution.hits = scan_for_secrets(self.run_folder, [s for s in secrets if len(s) >= MIN_SCANNED])
        except KeyboardInterrupt as exc:  # it arrived while the record was kept: the record is complete
            execution.late = execution.late or exc
        if execution.kept and not execution.failure:  # a record that could not be kept fails the stage
            execution.failure = f"its record could not be kept: {execution.kept}"


@dataclass
class _Execution:
    """How a stage's notebook ran: what failed (its words, the exception's class), a signal that stopped it
    or came late (while the kernel shut down, or the record was kept), why its record could not be kept,
    and the files the secret scan hit."""

    start: float
    failure: str = ""
    ename: str = ""
    interrupted: Optional[KeyboardInterrupt] = None
    late: Optional[KeyboardInterrupt] = None
    kept: str = ""
    hits: list = field(default_factory=list)


def _execute(source: Path, target: Path, parameters: dict, notebooks: Path, managers, progress: bool) -> _Execution:
    """papermill executes the notebook on a kernel of ``managers``; whatever ends it is kept, not raised."""
    import papermill as pm

    execution = _Execution(time.monotonic())
    try:
        checkpoint("stage")
        pm.execute_notebook(str(source), str(target), parameters=parameters, cwd=str(notebooks),
                            progress_bar=progress, log_output=False, kernel_name="python3",
                            kernel_manager_class=managers)
    except pm.PapermillExecutionError as exc:
        execution.failure, execution.ename = f"{exc.ename}: {exc.evalue}", exc.ename
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (see tkgs_lib.runner.interruption)
        execution.interrupted, execution.failure = exc, "interrupted"
    except Exception as exc:  # the kernel died, a timeout, a full disk...: still a failed stage, still a record
        execution.failure = f"the notebook could not be executed: {type(exc).__name__}: {exc}"
    held = take_held()  # a signal while the kernel shut down: the stage had finished
    if held and execution.interrupted is None:
        execution.late = KeyboardInterrupt(held)
    return execution


def _judged(stage: Stage, target: Path, execution: _Execution, result: StageResult) -> StageResult:
    """The stage's result, or the error that says how it ended: interrupted, stopped late, a secret left
    behind, failed; each with what it changed, from the ledger."""
    changed, html = result.changed, target.with_suffix(".html")
    if execution.interrupted is not None:
        record = (f"The record of how far it got is {target} and {html}." if target.exists()
                  else "It was stopped before its notebook started: none of its cells ran.")
        raise StageInterrupted(f"stage {stage.name!r} ({stage.title}) was interrupted by {execution.interrupted}. "
                               f"{changed} {record}", result) from None
    if execution.late is not None:
        what = f"had failed ({result.error})" if execution.failure else "had finished"
        raise StageInterrupted(f"stage {stage.name!r} ({stage.title}) {what} when {execution.late} arrived, while its "
                               f"record was kept: the record is complete ({target.name} and {html.name}), and the run "
                               f"stops before any further stage. {changed}", result, failed=bool(execution.failure))
    if execution.hits:
        files = ", ".join(f"{name} ({kind})" for name, kind in execution.hits)
        raise StageFailed(f"after stage {stage.name!r} a secret value was found in {files}: the run stops. "
                          f"Delete those files; the secret may have to be changed.", result)
    if execution.failure:
        records = [str(p) for p in (target, html) if p.exists()]
        see = f"See {' and '.join(records)}." if records else "Neither its notebook nor its HTML could be kept."
        raise StageFailed(f"stage {stage.name!r} ({stage.title}) failed: {result.error}\n{changed}\n{see}", result)
    return result


def _ipc_kernel_manager(folder: Path):
    """A kernel manager whose channels are Unix sockets in ``folder`` (private to the user): a stage's
    kernel holds vCenter's password (see tkgs_lib.runner.kernels)."""
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    from .kernels import PrivateSockets

    class IpcKernelManager(PrivateSockets, AsyncKernelManager):
        made: list = []  # every manager of this run, so an interrupted run can stop their kernels

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            # The connection file holds the kernel's signing key: in the private folder, removed
            # with it however the run ends (the default is a world-listable temp file).
            self.connection_file = str(folder / f"kernel-{uuid.uuid4().hex[:8]}.json")
            type(self).made.append(self)

        @default("socket_folder")
        def _socket_folder_default(self) -> str:
            return str(folder)

        async def shutdown_kernel(self, *args, **kwargs):
            # The stage's cells have run: its kernel's shutdown runs to its end, and a signal meanwhile is
            # held for the runner (raised in here, nbclient's clean-up would swallow it, and the run go on).
            with shielded("the stage's kernel, shutting down", hold=True):
                checkpoint("kernel:shutdown")
                return await super().shutdown_kernel(*args, **kwargs)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            # The kernel process's own stderr (not its cells': those are the record) goes to a log in
            # the private folder: an interrupted kernel's traceback is not the person's to read.
            kw["stderr"] = open(folder / f"kernel-{uuid.uuid4().hex[:8]}.log", "w")
            return await super()._async_launch_kernel(kernel_cmd, **kw)

    return IpcKernelManager


def _quiet_after_interrupt() -> None:
    """After an interrupt the runner says what happened itself: papermill's "Kernel died" and the
    traceback asyncio logs when it collects nbclient's abandoned cell task are noise."""
    for name in ("papermill", "asyncio", "nbclient"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _stop_kernels(manager_class) -> None:
    """Stop every kernel of ``manager_class`` still running (interrupt, then terminate, then kill) and
    remove its connection file and sockets: for a run cut short, when papermill could not."""
    import signal
    import subprocess

    for manager in manager_class.made:
        process = getattr(getattr(manager, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            for how, wait in ((signal.SIGINT, 2), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    process.send_signal(how)
                    process.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
                except ProcessLookupError:
                    break
        try:
            manager.cleanup_connection_file()
            manager.cleanup_ipc_files()
        except Exception:  # noqa: BLE001 (cleanup of a run already failing)
            pass


def _kill_kernels(manager_class) -> None:
    """A third signal: the kernels killed at once (their sockets go with the private folder)."""
    import signal

    for manager in manager_class.made:
        process = getattr(getattr(manager, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)


def mark_interrupted(notebook_path: Path) -> Optional[int]:
    """Make an interrupted record say exactly which cells ran; returns the interrupted cell's index.

    papermill's clean-up marks the cell it was running, and every cell still pending, as completed,
    so a record of an interrupted run would claim cells that never ran or never finished. The
    kernel's reply is the proof: a code cell finished only if the client timed its
    ``shell.execute_reply``, and ran at all only if it was timed at all. A banner on top says where
    the run stopped.
    """
    import nbformat

    try:
        nb = nbformat.read(str(notebook_path), as_version=4)
    except Exception as exc:  # noqa: BLE001 (the record is best effort)
        log.warning("could not mark %s as interrupted: %s", notebook_path.name, exc)
        return None
    stopped_at: Optional[int] = None
    for index, cell in enumerate(nb.cells):
        status = cell.metadata.setdefault("papermill", {})
        timing = cell.metadata.get("execution") or {}
        if cell.cell_type == "code" and timing and "shell.execute_reply" not in timing and stopped_at is None:
            stopped_at = index
            status.update(status="failed", exception=True)
            cell.setdefault("outputs", []).append(nbformat.v4.new_output(
                "stream", name="stderr", text="Interrupted here: the run was stopped while this cell ran.\n"))
        elif (cell.cell_type == "code" and not timing and cell.source.strip()) or stopped_at is not None:
            status["status"] = "pending"  # never ran
    where = (f"while In [{nb.cells[stopped_at].get('execution_count') or '?'}] ran" if stopped_at is not None
             else "between two cells")
    banner = nbformat.v4.new_markdown_cell(
        f"**This run was interrupted {where}.** Cells marked *pending* below did not run; the outputs shown "
        f"are all the cells that did.")
    banner.metadata["tags"] = ["tkgs-interrupted"]
    nb.cells.insert(0, banner)
    nb.metadata.setdefault("papermill", {})["exception"] = True
    write_text_whole(notebook_path, nbformat.writes(nb))
    return None if stopped_at is None else stopped_at + 1  # its index now, below the banner


def _keep_record(notebook_path: Path, secrets: list[str]) -> str:
    """Scrub the executed notebook and write its HTML; "" when both were kept, else why not (a full disk):
    the stage then failed, whatever its cells did."""
    try:
        checkpoint("record:scrub")
        scrub_notebook(notebook_path, secrets)
        checkpoint("record:html")
        write_html(notebook_path)
    except OSError as exc:
        return f"{exc.filename or notebook_path.name}: {exc.strerror or exc}"
    except Exception as exc:  # noqa: BLE001 (an exporter's fault: the record is incomplete)
        log.warning("could not write the record of %s: %s", notebook_path.name, exc)
        return f"{notebook_path.with_suffix('.html').name} could not be exported ({type(exc).__name__}: {exc})"
    return ""


def write_html(notebook_path: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    _exporter_warm.wait(30)  # a warm-up still under way finishes first, rather than doing its work twice

    nb = nbformat.read(str(notebook_path), as_version=4)
    html, _ = HTMLExporter().from_notebook_node(nb)
    return write_text_whole(notebook_path.with_suffix(".html"), html)


_exporter_warm = threading.Event()
_exporter_warm.set()  # nothing under way
_warming_started = False


def warm_html_exporter() -> None:
    """Export a small notebook in a thread while the first stage's kernel runs: a process's first export
    spends about a second importing nbconvert and compiling its templates' and CSS selectors' regular
    expressions (kept in the process's caches), which otherwise comes after the stage, on its clock."""
    global _warming_started
    if _warming_started:
        return
    _warming_started = True
    _exporter_warm.clear()

    def warm():
        try:
            import nbformat
            from nbconvert import HTMLExporter

            cell = nbformat.v4.new_code_cell("1", outputs=[
                nbformat.v4.new_output("display_data", {"text/html": "<table><tr><td>1</td></tr></table>",
                                                        "text/plain": "1"}),
                nbformat.v4.new_output("stream", name="stdout", text="1")])
            HTMLExporter().from_notebook_node(nbformat.v4.new_notebook(
                cells=[nbformat.v4.new_markdown_cell("# 1\n`1`"), cell]))
        except Exception as exc:  # noqa: BLE001 (an optimisation only: the real export reports its own fault)
            log.debug("warming the HTML exporter failed: %s", exc)
        finally:
            _exporter_warm.set()

    threading.Thread(target=warm, name="tkgs-html-warm-up", daemon=True).start()


def _whole_notebook_writes() -> None:
    """papermill writes the executed notebook after its cells and at the end: each write whole, and to
    its end whatever signal arrives (a write cut short would leave a notebook of 0 bytes as the record).
    The runner hands papermill absolute paths only, so its handler for "/" is every write it makes."""
    from papermill.iorw import LocalHandler, papermill_io

    class WholeNotebooks(LocalHandler):
        def write(self, buf, path):
            with shielded(f"the notebook {Path(path).name}"):
                checkpoint("papermill:write")
                write_text_whole(Path(path), buf)

    global _writes_whole
    if not _writes_whole:
        papermill_io.register("/", WholeNotebooks())
        _writes_whole = True


_writes_whole = False
