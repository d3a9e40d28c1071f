"""A run stopped by a signal, at every moment that matters, keeps every record and says what it stopped.

The console script runs two small stage notebooks (the runner's own machinery: papermill, the
record's scrubbing, marking, export, the secret scan, stages.json and index.html) and is sent
SIGTERM, SIGINT or SIGHUP at a named moment (``TKGS_TEST_SIGNAL_AT``, tkgs_lib.runner.interruption), or by
the notebook's own cell while it runs. After each: the exit status, one message naming the stage
(or saying none had started), every record present and whole (the notebook is JSON with its cells,
its HTML exists, stages.json reads), no kernel left running and no temporary folder left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from helpers import EXAMPLE_SITE

SCRIPT = Path(sys.executable).with_name("tkgs-runbook")
pytestmark = pytest.mark.slow

CELL = """\
import os, signal, time
if os.environ.get("TKGS_TEST_SIGNAL_IN_CELL") == STAGE:  # the runner is this kernel's parent
    os.kill(os.getppid(), getattr(signal, os.environ.get("TKGS_TEST_SIGNAL", "SIGTERM")))
    time.sleep(60)  # the runner's interrupt ends it: the cell is still running however late that comes
time.sleep(0.5)
print("cell of", STAGE, "ran")
if os.environ.get("TKGS_TEST_FAIL_IN_CELL") == STAGE:
    raise RuntimeError("the stage's own failure")
"""


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory) -> Path:
    """Two small stage notebooks under the real stages' names, declaring the parameters their stages pass."""
    folder = tmp_path_factory.mktemp("notebooks")
    for name, stage, apply in (("01_plan_networks", "networks", False), ("02_prepare_vsphere", "prepare", True)):
        parameters = nbformat.v4.new_code_cell(
            'site_file: str = ""  # the site\noutput_dir: str = ""  # the run folder\n'
            + ("apply: bool = False  # change or not\n" if apply else ""), metadata={"tags": ["parameters"]})
        nb = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(f"STAGE = {stage!r}"),
                                             nbformat.v4.new_code_cell(CELL)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    return folder


def kernels(mark: str) -> set[int]:
    """The kernels started by the run carrying ``mark`` in its environment (others may run beside it)."""
    found = set()
    for pid in subprocess.run(["pgrep", "-f", "ipykernel_launcher"], capture_output=True, text=True).stdout.split():
        try:
            if mark.encode() in Path(f"/proc/{pid}/environ").read_bytes():
                found.add(int(pid))
        except OSError:
            continue
    return found


def run(notebooks: Path, tmp_path: Path, *, at: str = "", in_cell: str = "", sig: str = "SIGTERM", fail_in: str = ""):
    scratch = Path(tempfile.mkdtemp(prefix="tkgs-tmpdir-"))  # the run's TMPDIR: must be empty after it
    mark = f"TKGS_TEST_RUN={scratch.name}"
    env = {**os.environ, "TKGS_NOTEBOOKS": str(notebooks), "TKGS_TEST_SIGNAL_AT": at, "TMPDIR": str(scratch),
           "TKGS_TEST_SIGNAL_IN_CELL": in_cell, "TKGS_TEST_SIGNAL": sig, "TKGS_TEST_RUN": scratch.name,
           "TKGS_TEST_FAIL_IN_CELL": fail_in}
    result = subprocess.run([str(SCRIPT), "run", str(EXAMPLE_SITE), "--stages", "networks", "prepare", "--output",
                             str(tmp_path / "runs")], capture_output=True, text=True, timeout=120, env=env)
    left = kernels(mark)
    assert not left, f"kernels left running: {left}"
    assert list(scratch.iterdir()) == [], list(scratch.iterdir())
    scratch.rmdir()
    folders = list((tmp_path / "runs").iterdir()) if (tmp_path / "runs").exists() else []
    return result, (folders[0] if folders else None)


def records_whole(folder: Path) -> dict:
    """Every notebook in the folder is whole JSON with its cells, and has its HTML; stages.json reads."""
    stages = json.loads((folder / "stages.json").read_text())
    assert (folder / "index.html").read_text().rstrip().endswith("</html>")
    for notebook in folder.glob("*.ipynb"):
        nb = json.loads(notebook.read_text())
        assert nb["cells"], notebook.name
        assert notebook.with_suffix(".html").read_text().rstrip().endswith("</html>"), notebook.name
    assert not [p for p in folder.iterdir() if p.name.endswith(".partial")]
    return {s["stage"]: s["status"] for s in stages["stages"]}


def message(result) -> str:
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("interrupted:")]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return line


MOMENTS = {
    # moment: (TKGS_TEST_SIGNAL_AT, in which stage's cell, the stages' statuses, words of the message)
    "as it starts": ("start", "", None, "arrived while tkgs-runbook started: nothing was changed"),
    "before any stage": ("record:index", "", {"networks": "pending", "prepare": "pending"},
                         "arrived before any stage started: nothing was changed"),
    "as the first stage starts": ("stage", "", {"networks": "interrupted", "prepare": "pending"},
                                  "stage 'networks' (Plan the networks) was interrupted by SIGTERM. It changed nothing. "
                                  "It was stopped before its notebook started: none of its cells ran."),
    "while a cell runs": ("", "networks", {"networks": "interrupted", "prepare": "pending"},
                          "stage 'networks' (Plan the networks) was interrupted by SIGTERM"),
    "while papermill writes the notebook": ("papermill:write#3", "", {"networks": "interrupted", "prepare": "pending"},
                                            "stage 'networks' (Plan the networks) was interrupted"),
    "while the kernel shuts down": ("kernel:shutdown", "", {"networks": "interrupted", "prepare": "pending"},
                                    "stage 'networks' (Plan the networks) had finished when SIGTERM arrived"),
    "while the record is scrubbed": ("record:scrub", "", {"networks": "interrupted", "prepare": "pending"},
                                     "stage 'networks' (Plan the networks) had finished when SIGTERM arrived, while its "
                                     "record was kept: the record is complete"),
    "while the HTML is exported": ("record:html", "", {"networks": "interrupted", "prepare": "pending"},
                                   "had finished when SIGTERM arrived, while its record was kept"),
    "while the folder is scanned": ("record:scan", "", {"networks": "interrupted", "prepare": "pending"},
                                    "had finished when SIGTERM arrived, while its record was kept"),
    "between the stages": ("record:index#3", "", {"networks": "ok", "prepare": "pending"},
                           "arrived after stage 'networks' (ok) and before stage 'prepare' started"),
    "in the second stage's cell": ("", "prepare", {"networks": "ok", "prepare": "interrupted"},
                                   "stage 'prepare' (Prepare vSphere) was interrupted by SIGTERM. It changed nothing."),
}


@pytest.mark.parametrize("at, in_cell, statuses, words", MOMENTS.values(), ids=MOMENTS.keys())
def test_a_signal_at_each_moment_keeps_every_record_and_names_what_it_stopped(notebooks, tmp_path, at, in_cell,
                                                                              statuses, words):
    result, folder = run(notebooks, tmp_path, at=at, in_cell=in_cell)
    assert result.returncode == 130, result.stderr[-3000:]
    assert words in message(result)
    if statuses is None:  # nothing had started: not even a run folder
        assert folder is None
        return
    assert records_whole(folder) == statuses
    interrupted = [name for name, status in statuses.items() if status == "interrupted"]
    for name in interrupted:  # the record of the stage cut short says where it stopped
        records = list(folder.glob(f"*{'plan_networks' if name == 'networks' else 'prepare_vsphere'}.ipynb"))
        if not records:
            assert "none of its cells ran" in message(result)
            continue
        (notebook,) = records
        first = "".join(json.loads(notebook.read_text())["cells"][0]["source"])
        assert first.startswith("**This run was interrupted") or "had finished" in message(result)


def test_each_stopping_signal_is_the_same(notebooks, tmp_path):
    for sig in ("SIGINT", "SIGHUP"):
        result, folder = run(notebooks, tmp_path / sig, in_cell="networks", sig=sig)
        assert result.returncode == 130 and f"was interrupted by {sig}" in message(result)
        assert records_whole(folder) == {"networks": "interrupted", "prepare": "pending"}


def test_a_second_signal_is_acknowledged_and_the_record_still_kept(notebooks, tmp_path):
    result, folder = run(notebooks, tmp_path, in_cell="networks", at="record:scrub")
    assert result.returncode == 130
    assert "SIGTERM: the run stops once it has kept the record of stage 'networks'" in result.stderr
    assert "stage 'networks' (Plan the networks) was interrupted by SIGTERM" in message(result)
    assert records_whole(folder) == {"networks": "interrupted", "prepare": "pending"}


def test_a_third_signal_ends_at_once_saying_what_it_leaves_undone(notebooks, tmp_path):
    result, folder = run(notebooks, tmp_path, in_cell="networks", at="record:scrub,record:html")
    assert result.returncode == 130
    assert "SIGTERM a third time: stopping at once; left undone: the record of stage 'networks'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_signal_after_the_run_ended_changes_nothing(notebooks, tmp_path):
    result, folder = run(notebooks, tmp_path, at="exit")
    assert result.returncode == 0 and "interrupted" not in result.stderr, result.stderr[-2000:]
    assert records_whole(folder) == {"networks": "ok", "prepare": "ok"}


def test_a_signal_while_a_failed_stages_record_is_kept_keeps_the_failures_own_sentence(notebooks, tmp_path):
    """The stage failed on its own; SIGTERM came while its record was kept: the run says it had failed and
    why, and the stage list keeps the failure (not "interrupted" with a sentence of what it changed)."""
    result, folder = run(notebooks, tmp_path, fail_in="prepare", at="record:scrub#2")
    assert result.returncode == 130, result.stderr[-3000:]
    said = message(result)
    assert "stage 'prepare' (Prepare vSphere) had failed (RuntimeError: the stage's own failure) when SIGTERM " \
           "arrived, while its record was kept" in said, said
    assert records_whole(folder) == {"networks": "ok", "prepare": "failed"}
    (prepare,) = [e for e in json.loads((folder / "stages.json").read_text())["stages"] if e["stage"] == "prepare"]
    assert "RuntimeError: the stage's own failure" in prepare["error"]
