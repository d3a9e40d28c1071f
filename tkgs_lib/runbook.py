"""The runbook: stage notebooks executed in order by papermill into one run folder."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Optional, Sequence

from .credentials import secret_values
from .errors import StageFailed, TkgsError
from .site import Site

log = logging.getLogger(__name__)

NOTEBOOKS = Path(os.environ.get("TKGS_NOTEBOOKS", Path(__file__).resolve().parent.parent / "notebooks"))


@dataclass(frozen=True)
class Stage:
    name: str
    notebook: str
    title: str


STAGES: tuple[Stage, ...] = (
    Stage("plan", "01_plan_networks.ipynb", "Plan the networks"),
    Stage("prepare", "02_prepare_vsphere.ipynb", "Prepare vSphere"),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def select_stages(names: Optional[Iterable[str]]) -> list[Stage]:
    """The stages asked for, in runbook order; all of them when none are named."""
    if not names:
        return list(STAGES)
    wanted = [n.strip() for name in names for n in name.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in STAGE_NAMES]
    if unknown:
        raise TkgsError(f"unknown stage {', '.join(unknown)}; the stages are: {', '.join(STAGE_NAMES)}.")
    return [s for s in STAGES if s.name in wanted]


def new_run_folder(site: Site, output: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = output / f"{site.site or 'site'}-{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = output / f"{site.site or 'site'}-{stamp}-{n}"
    folder.mkdir(parents=True)
    return folder


def run_stages(site: Site, stages: Sequence[Stage], run_folder: Path, *, apply: bool = False,
               notebooks: Path = NOTEBOOKS, progress: bool = True) -> list[Path]:
    """Execute each stage's notebook in order; stop at the first failure with StageFailed.

    Only site values reach the notebooks (the site file's path, the run folder, apply): a
    secret is read inside the notebook from the environment, and any secret value that
    still shows up in an executed notebook is scrubbed before its HTML is written."""
    import papermill as pm

    executed = []
    for stage in stages:
        source = notebooks / stage.notebook
        target = run_folder / stage.notebook
        declared = pm.inspect_notebook(str(source))
        values = {"site_file": str(site.source), "output_dir": str(run_folder), "apply": apply}
        parameters = {k: v for k, v in values.items() if k in declared}
        log.info("stage %s: executing %s", stage.name, source.name)
        failure = None
        try:
            pm.execute_notebook(str(source), str(target), parameters=parameters, cwd=str(notebooks),
                                progress_bar=progress, log_output=False, kernel_name="python3")
        except pm.PapermillExecutionError as exc:
            failure = f"{exc.ename}: {exc.evalue}"
        finally:
            if target.exists():
                scrub_secrets(target, secret_values(site))
                write_html(target)
        executed.append(target)
        if failure is not None:
            raise StageFailed(f"stage {stage.name!r} ({stage.title}) failed: {failure}\n"
                              f"See {target} and {target.with_suffix('.html')}.")
    return executed


def scrub_secrets(path: Path, secrets: Iterable[str]) -> None:
    """Replace every secret value in a file with asterisks (defence in depth: nothing should print one)."""
    secrets = [s for s in secrets if s]
    if not secrets:
        return
    text = path.read_text(encoding="utf-8")
    for secret in secrets:
        # Raw, and as it appears inside a JSON string (notebooks are JSON).
        for form in {secret, json.dumps(secret)[1:-1]}:
            text = text.replace(form, "********")
    path.write_text(text, encoding="utf-8")


def write_html(notebook_path: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook_path), as_version=4)
    html, _ = HTMLExporter().from_notebook_node(nb)
    target = notebook_path.with_suffix(".html")
    target.write_text(html, encoding="utf-8")
    return target
