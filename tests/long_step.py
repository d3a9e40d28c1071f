"""The real notebooks with a long step in the plan stage, for stopping a run while a cell runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LONG_STEP = "long-step"  # the cell's id


def notebooks_with_a_long_plan(folder: Path) -> Path:
    """A copy of the notebooks whose plan stage has a two-minute step before its last one (which never runs)."""
    shutil.copytree(NOTEBOOKS, folder)
    plan = folder / "01_plan_networks.ipynb"
    nb = json.loads(plan.read_text())
    long_step = dict(nb["cells"][-1], id=LONG_STEP, source="import time\nprint('working on it')\ntime.sleep(120)\n")
    nb["cells"].insert(len(nb["cells"]) - 1, long_step)
    plan.write_text(json.dumps(nb))
    return folder


def at_long_step(record: Path) -> bool:
    """The saved record shows the long step running: papermill saves the notebook as each cell starts
    (its engine's cell_start), so this is the first moment the step is known to have begun."""
    try:
        cells = json.loads(record.read_text())["cells"]
    except (OSError, ValueError):
        return False
    return any(c.get("id") == LONG_STEP and c.get("metadata", {}).get("papermill", {}).get("status") == "running"
               for c in cells)
