"""The project's own files stay consistent: conda environment, notebooks committed clean."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _spec(requirement: str) -> str:
    return requirement.strip().lower().replace("_", "-").replace(" ", "")


def test_environment_yml_installs_what_pyproject_requires():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_spec(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_spec(d) for d in env["dependencies"] if isinstance(d, str)}
    conda = {c for c in conda if _name(c) not in ("python", "pip")}
    assert conda == wanted, f"only in environment.yml: {conda - wanted}; only in pyproject: {wanted - conda}"
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e .[dev]" in pip


def test_notebooks_are_committed_without_outputs_and_have_a_typed_parameters_cell():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name} has outputs"
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: exactly one cell tagged parameters"
        for line in "".join(tagged[0]["source"]).splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                assert re.match(r"^\w+: [\w\[\], ]+ = .+  # .+", line), f"{path.name}: untyped or uncommented: {line}"
