"""The front pages of runs: a run folder's ``index.html`` (the site, each stage with its status,
duration and record, the pictures, and the final checks of the appliance), and a fleet's (a row per
site, linking to each site's own)."""

from __future__ import annotations

import datetime
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..files import write_text_whole

__all__ = ["FleetRow", "IndexRow", "write_fleet_index", "write_index"]


@dataclass(frozen=True)
class IndexRow:
    title: str  # the stage's title, or what this run of it was for
    notebook: Optional[Path]  # None: the stage did not run
    seconds: float
    status: str  # "ok", "found the injected fault", "failed: ..."


def _seconds(seconds: float) -> str:
    """A duration for a table cell: the number and its unit never split over two lines."""
    return f"{seconds:.1f}&nbsp;s"


def _link(path: Optional[Path], folder: Path) -> str:
    """A relative link to ``path`` inside ``folder``; nothing for a missing file or one outside the folder
    (a run's site file, named in text instead)."""
    if path is None or not path.exists() or not path.is_relative_to(folder):
        return ""
    name = html.escape(str(path.relative_to(folder)))
    return f'<a href="{name}">{name}</a>'


def _csv_table(path: Path) -> str:
    import pandas as pd

    from ..display.tables import Table

    return Table(pd.read_csv(path, keep_default_na=False))._repr_html_()


def _provided_table(folder: Path) -> str:
    """What the run's stages provided for the ones after them (provided.json)."""
    from ..stages.provided import Provided

    rows = [f"<tr><td>{html.escape(what)}</td><td>{html.escape(shown)}</td></tr>"
            for what, shown in Provided.load(folder).rows()]
    if not rows:
        return "<p><em>No stage of this run provided anything for the stages after it.</em></p>"
    return f"<table>{''.join(rows)}</table>"


def _checks_sections(folder: Path) -> str:
    """Each stage's table of checks that this run saved (the registry's checks_file), under its heading."""
    from ..stages import STAGES

    saved = [(s.checks_title or f"{s.title}: its checks", folder / s.checks_file) for s in STAGES if s.checks_file]
    sections = [f"<h2>{html.escape(title)}</h2>{_csv_table(path)}" for title, path in saved if path.exists()]
    return "".join(sections) or "<h2>Checks</h2><p><em>No checks were saved in this run.</em></p>"


def _page(folder: Path, heading: str, width: str, summary: str) -> str:
    """The head of an index page: its title, style and heading, and the summary line."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tkgs-runbook: {html.escape(folder.name)}</title>
<style>body{{font-family:sans-serif;max-width:{width};margin:2em auto}} td,th{{text-align:left;padding:.2em .6em}}
table{{border-collapse:collapse}} tr:nth-child(even){{background:#f4f4f4}}</style></head><body>
<h1>{html.escape(heading)}</h1>
<p>{html.escape(summary)}</p>"""


def write_index(folder: Path, site_file: Path, rows: Sequence[IndexRow], summary: str) -> Path:
    """Write ``folder/index.html`` and return its path."""
    folder = Path(folder)
    stage_rows = "".join(
        f"<tr><td>{html.escape(r.title)}</td><td>{html.escape(r.status)}</td><td>{_seconds(r.seconds)}</td>"
        f"<td>{_link(r.notebook, folder)}</td>"
        f"<td>{_link(r.notebook and r.notebook.with_suffix('.html'), folder)}</td></tr>"
        for r in rows)
    pictures = "".join(f'<p><img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}" style="max-width:100%"></p>'
                       for p in sorted(folder.glob("*.png")))
    page = _page(folder, f"Run {folder.name}", "70em", summary) + f"""
<p>Site: {_link(Path(site_file), folder) or html.escape(str(site_file))}. Written
{datetime.datetime.now():%Y-%m-%d %H:%M}.</p>
<h2>Stages</h2>
<table><tr><th>stage</th><th>status</th><th>took</th><th>notebook</th><th>report</th></tr>{stage_rows}</table>
<h2>What the stages provided for the ones after them</h2>{_provided_table(folder)}
<h2>Pictures</h2>{pictures or "<p><em>None in this run.</em></p>"}
{_checks_sections(folder)}
</body></html>
"""
    target = folder / "index.html"
    write_text_whole(target, page)
    return target


@dataclass(frozen=True)
class FleetRow:
    site: str
    site_file: str
    folder: Optional[Path]  # the site's run folder, inside the fleet folder (None: never made)
    outcome: str  # "ok", "failed at networks", "not started", "not run: ..."
    stages: dict  # stage name -> (status, seconds), for the stages the site's record holds
    why: str = ""  # the failure's sentence, when it failed


def write_fleet_index(folder: Path, rows: Sequence[FleetRow], stage_names: Sequence[str], summary: str) -> Path:
    """Write the fleet folder's ``index.html``: a row per site, each stage's status and duration, and a
    link to the site's own index; returns its path."""
    folder = Path(folder)

    def stage_cell(row: FleetRow, name: str) -> str:
        status, seconds = row.stages.get(name, ("not run", 0.0))
        shown = "not run" if status == "pending" else status
        return f"<td>{html.escape(shown)}{f' ({_seconds(seconds)})' if seconds else ''}</td>"

    def site_cell(row: FleetRow) -> str:
        index = row.folder / "index.html" if row.folder is not None else None
        name = html.escape(row.site)
        if not _link(index, folder):
            return f"<td>{name}</td>"
        return f'<td><a href="{html.escape(str(index.relative_to(folder)))}">{name}</a></td>'

    header = "".join(f"<th>{html.escape(n)}</th>" for n in stage_names)
    body = "".join(f"<tr>{site_cell(r)}<td>{html.escape(r.outcome)}"
                   f"{f'<br><small>{html.escape(r.why)}</small>' if r.why else ''}</td>"
                   f"{''.join(stage_cell(r, n) for n in stage_names)}<td>{html.escape(r.site_file)}</td></tr>"
                   for r in rows)
    page = _page(folder, f"Fleet {folder.name}", "90em", summary) + f"""
<p>Written {datetime.datetime.now():%Y-%m-%d %H:%M}. Each site's name links to its own run's index.</p>
<table><tr><th>site</th><th>outcome</th>{header}<th>site file</th></tr>{body}</table>
</body></html>
"""
    target = folder / "index.html"
    write_text_whole(target, page)
    return target
