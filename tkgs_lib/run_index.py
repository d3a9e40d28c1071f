"""A run folder's front page, ``index.html``: the site, each stage with its status, duration and
record, the pictures, and the final checks of the appliance."""

from __future__ import annotations

import datetime
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["IndexRow", "write_index"]


@dataclass(frozen=True)
class IndexRow:
    title: str  # the stage's title, or what this run of it was for
    notebook: Path
    seconds: float
    status: str  # "ok", "found the injected fault", "failed: ..."


def _link(path: Path, folder: Path) -> str:
    if not path.exists():
        return ""
    name = html.escape(str(path.relative_to(folder)))
    return f'<a href="{name}">{name}</a>'


def _csv_table(path: Path) -> str:
    import pandas as pd

    from .tables import Table

    if not path.exists():
        return "<p><em>No checks of the appliance were saved in this run.</em></p>"
    return Table(pd.read_csv(path, keep_default_na=False))._repr_html_()


def write_index(folder: Path, site_file: Path, rows: Sequence[IndexRow], summary: str,
                checks: Optional[Path] = None) -> Path:
    """Write ``folder/index.html`` and return its path."""
    folder = Path(folder)
    stage_rows = "".join(
        f"<tr><td>{html.escape(r.title)}</td><td>{html.escape(r.status)}</td><td>{r.seconds:.1f} s</td>"
        f"<td>{_link(r.notebook, folder)}</td><td>{_link(r.notebook.with_suffix('.html'), folder)}</td></tr>"
        for r in rows)
    pictures = "".join(f'<p><img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}" style="max-width:100%"></p>'
                       for p in sorted(folder.glob("*.png")))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tkgs-runbook: {html.escape(folder.name)}</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}} td,th{{text-align:left;padding:.2em .6em}}
table{{border-collapse:collapse}} tr:nth-child(even){{background:#f4f4f4}}</style></head><body>
<h1>Run {html.escape(folder.name)}</h1>
<p>{html.escape(summary)}</p>
<p>Site: {_link(Path(site_file), folder) or html.escape(str(site_file))}. Written
{datetime.datetime.now():%Y-%m-%d %H:%M}.</p>
<h2>Stages</h2>
<table><tr><th>stage</th><th>status</th><th>took</th><th>notebook</th><th>report</th></tr>{stage_rows}</table>
<h2>Pictures</h2>{pictures or "<p><em>None in this run.</em></p>"}
<h2>The appliance, checked last</h2>{_csv_table(checks or folder / "verify-checks.csv")}
</body></html>
"""
    target = folder / "index.html"
    target.write_text(page, encoding="utf-8")
    return target
