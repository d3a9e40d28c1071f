"""The README's main job, run exactly as the README writes it, as a new user's first command.

The command is read from the README (never copied here), run in a copy of the working tree with
a fresh HOME and an empty tkgs-runbook cache, so it sets up its own virtual environment and
builds the vCenter simulator from nothing, as on a new machine. Only pip's download cache is
shared (PIP_CACHE_DIR): it holds what PyPI would send again, not anything of ours.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance_fixtures import require_appliance_simulator
from test_demo import CANARIES, assert_the_demo_record

ROOT = Path(__file__).resolve().parent.parent


def readme_main_job() -> str:
    """The last `command` on the README line that names the main job."""
    lines = [line for line in (ROOT / "README.md").read_text().splitlines() if "main job" in line.lower()]
    commands = [c for line in lines for c in re.findall(r"`([^`]+)`", line)]
    assert commands, "the README names no main-job command"
    # Only one line may name the main job with a command, or which one a reader (or a hook) runs is a guess.
    assert len({c for c in commands if c.startswith("bash ")}) == 1, lines
    return commands[-1]


def copy_working_tree(target: Path) -> None:
    """The files a clone has: tracked ones, and new ones git does not ignore (no .venv, no runs/)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def default_pip_cache() -> str:
    return os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")


def error_outputs(notebook: Path) -> list[str]:
    nb = json.loads(notebook.read_text())
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb["cells"] for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


@pytest.mark.slow
def test_the_readme_main_job_passes_from_a_fresh_copy(tmp_path):
    require_appliance_simulator()
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to copy the working tree the way a clone holds it")
    command = readme_main_job()
    tree, home, cache = tmp_path / "tkgs-runbook", tmp_path / "home", tmp_path / "cache"
    tree.mkdir(), home.mkdir()
    copy_working_tree(tree)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("VIRTUAL_ENV", "TKGS_", "JUPYTER_", "PYTHONPATH"))}
    # The passwords a person would export, as canaries: none may reach any file of the run.
    env.update(HOME=str(home), TKGS_CACHE_DIR=str(cache), PIP_CACHE_DIR=default_pip_cache(), **CANARIES)
    result = subprocess.run(["bash", "-c", command], cwd=tree, env=env, capture_output=True, text=True,
                            timeout=1200, stdin=subprocess.DEVNULL)
    printed = result.stdout + result.stderr
    assert result.returncode == 0, f"{command!r} exited {result.returncode}:\n{printed[-4000:]}"
    assert "Traceback" not in printed, printed[-4000:]
    assert not [line for line in printed.splitlines() if line.strip().lower().startswith("error:")], printed[-4000:]

    (folder,) = [p for p in (tree / "runs").iterdir() if p.is_dir()]
    # The whole article (verify twice), the fault found and repaired, Workload Management enabled.
    assert_the_demo_record(folder, result.stdout)
    # The one failed cell of the run is the first verify's, which found the article's fault.
    failed = {nb.stem: error_outputs(nb) for nb in sorted(folder.glob("0*.ipynb")) if error_outputs(nb)}
    assert list(failed) == ["04_verify_haproxy"] and failed["04_verify_haproxy"][0].startswith("VerificationFailed")
