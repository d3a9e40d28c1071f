"""The runbook: stage notebooks executed in order by papermill into one run folder."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Sequence

from .credentials import scrub_notebook, scrub_text, secret_values
from .errors import StageFailed, TkgsError
from .paths import NOTEBOOKS
from .site import Site
from .stages import Stage

log = logging.getLogger(__name__)



def new_run_folder(site: Site, output: Path) -> Path:
    """A new folder ``<site>-<timestamp>`` under ``output``, as an absolute path (a relative
    ``output`` is taken from the caller's working folder); a site name that is not a plain name
    (a path like ``../x`` or ``/tmp/x``) is refused before anything is made."""
    from .site.patterns import SITE_NAME

    output = Path(output).absolute()

    name = site.site or "site"
    if not SITE_NAME.match(name):
        raise TkgsError(f"site {name!r} cannot name a run folder: use letters, digits, '.', '_' and '-' only.")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = output / f"{name}-{stamp}"
    n = 1
    try:
        while folder.exists():
            n += 1
            folder = output / f"{name}-{stamp}-{n}"
        folder.mkdir(parents=True)
    except OSError as exc:
        raise TkgsError(f"cannot create the run folder {folder}: {exc.strerror or exc}; "
                        f"choose another --output.") from None
    return folder


def run_stages(site: Site, stages: Sequence[Stage], run_folder: Path, *, apply: bool = False,
               notebooks: Path = NOTEBOOKS, progress: bool = True) -> list[Path]:
    """Execute each stage's notebook in order; stop at the first failure with StageFailed.

    Only site values reach the notebooks (the site file's path, the run folder, apply): a
    secret is read inside the notebook from the environment, and any secret value that
    still shows up in an executed notebook is scrubbed before its HTML is written."""
    if not notebooks.is_dir():
        raise TkgsError(f"the stage notebooks are not in {notebooks}: run from a clone of tkgs-runbook installed "
                        f"with `pip install -e .`, or set TKGS_NOTEBOOKS to its notebooks folder.")
    # The kernels start in the notebooks folder, not the caller's: every path they are given must
    # be absolute, or it would name a file beside the notebooks (issue: the main job's relative
    # --output once failed for every new user).
    if site.source is None:
        raise TkgsError("the stages read the site from its file: load the site with load_site(path).")
    run_folder = Path(run_folder).absolute()
    site_file = Path(site.source).absolute()
    executed = []
    sockets = _socket_folder()
    try:
        for stage in stages:
            executed.append(_run_stage(site, stage, notebooks, run_folder, sockets,
                                       {"site_file": str(site_file), "output_dir": str(run_folder), "apply": apply},
                                       progress))
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    return executed


def _run_stage(site: Site, stage: Stage, notebooks: Path, run_folder: Path, sockets: Path, values: dict,
               progress: bool) -> Path:
    """Execute one stage's notebook into the run folder and keep its record; StageFailed on failure."""
    import papermill as pm

    source, target = notebooks / stage.notebook, run_folder / stage.notebook
    declared = pm.inspect_notebook(str(source))
    # papermill drops a value the notebook does not declare, and the notebook would then run on its
    # own default (another site): refuse instead.
    missing = [name for name in stage.parameters if name not in declared]
    if missing:
        raise TkgsError(f"{source} does not declare the parameter(s) {', '.join(missing)} in its parameters cell; "
                        f"stage {stage.name!r} needs them, or it would run on its defaults.")
    parameters = {name: values[name] for name in stage.parameters}
    log.info("stage %s: executing %s", stage.name, source.name)
    failure = None
    try:
        pm.execute_notebook(str(source), str(target), parameters=parameters, cwd=str(notebooks),
                            progress_bar=progress, log_output=False, kernel_name="python3",
                            kernel_manager_class=_ipc_kernel_manager(sockets))
    except pm.PapermillExecutionError as exc:
        failure = f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # the kernel died, a timeout...: still a failed stage, still a record
        failure = f"the notebook could not be executed: {type(exc).__name__}: {exc}"
    finally:
        secrets = secret_values(site)
        if target.exists():
            _keep_record(target, secrets)
    if failure is not None:
        failure = scrub_text(failure, secrets)  # it goes to the terminal and CI logs
        raise StageFailed(f"stage {stage.name!r} ({stage.title}) failed: {failure}\n"
                          f"See {target} and {target.with_suffix('.html')}.")
    return target


def _ipc_kernel_manager(folder: Path):
    """A kernel manager whose channels are Unix sockets in ``folder`` (private to the user).

    The default is plain-text TCP on loopback, which any local user can reach (ipykernel warns
    about it); a stage's kernel holds vCenter's password, so it talks over IPC instead."""
    import uuid

    from jupyter_client.manager import AsyncKernelManager

    class IpcKernelManager(AsyncKernelManager):
        transport = "ipc"

        def _ip_default(self) -> str:
            # A unique name per kernel: two kernels of a run must not share sockets.
            return str(folder / uuid.uuid4().hex[:8])

    return IpcKernelManager


def _socket_folder() -> Path:
    """A new private folder for a run's kernel sockets, with a short path.

    Not Jupyter's runtime folder: under a long home folder its socket paths pass the 107 bytes a
    Unix socket path may have, and the kernel then never starts (a run hung for a new user)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="tkgs-", dir="/tmp" if os.path.isdir("/tmp") else None))


def _keep_record(notebook_path: Path, secrets: list[str]) -> None:
    """Scrub the executed notebook and write its HTML; a failure here must not hide the stage's own."""
    try:
        scrub_notebook(notebook_path, secrets)
        write_html(notebook_path)
    except Exception as exc:  # noqa: BLE001 (the record is best effort; the stage result is not)
        log.warning("could not write the record of %s: %s", notebook_path.name, exc)


def write_html(notebook_path: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook_path), as_version=4)
    html, _ = HTMLExporter().from_notebook_node(nb)
    target = notebook_path.with_suffix(".html")
    target.write_text(html, encoding="utf-8")
    return target
