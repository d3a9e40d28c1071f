"""The package's layers: every import in tkgs_lib and tkgs_simulators, those inside functions too, read from
the source; no circle, and no import that runs back up the declared order.

From the bottom up (a module may import its own layer and those below it):

    core        errors, files, paths, effects, credentials, https, findings, polling, planning, ova, display/
    site        site/ (the site file, its rules, the address plan and its picture)
    transports  vsphere/, appliance/, kubernetes/ (vCenter, the HAProxy appliance, a Kubernetes API; never each other)
    stages      stages/ (the registry, StageRun, each stage, the values stages provide and need)
    runner      runner/ (the one orchestrator, its kernels, the run record, the index, signals, the lab)
    fleet       fleet/ (many sites, the fleet file, the Airflow DAG)
    commands    cli, demo, validate

The simulators (tkgs_simulators) play the systems the product talks to: they import nothing of the
product but its plain infrastructure (errors, paths, files, HTTPS plumbing, the Secret type that masks
a password in a repr), so what the product believes about vCenter or the appliance never passes on both
sides; only the demo and the command line start them. One exception, said so: the appliance
simulator's launcher for a person (``python -m tkgs_simulators.appliance SITE``) turns a site file
into the property values the deploy stage would send, with the product's own mapping; the simulated
appliance itself is given only those values.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ("errors", "files", "paths", "effects", "credentials", "https", "findings", "polling", "planning", "ova",
        "display", "__init__")
LAYERS = {**{name: 0 for name in CORE}, "site": 1, "vsphere": 2, "appliance": 2, "kubernetes": 2, "stages": 3,
          "runner": 4, "fleet": 5, "cli": 6, "demo": 6, "validate": 6, "__main__": 6}
LAYER_NAMES = ["core", "site", "transports", "stages", "runner", "fleet", "commands"]
# module -> the names a simulator may take from it (None: any)
SIMULATORS_MAY_IMPORT = {"tkgs_lib": None, "tkgs_lib.errors": None, "tkgs_lib.paths": None, "tkgs_lib.files": None,
                         "tkgs_lib.https": None, "tkgs_lib.credentials": {"Secret"}}
LAUNCHER = "tkgs_simulators.appliance.__main__"


def modules(package: str) -> dict[str, Path]:
    """Each module of ``package`` by its dotted name."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, anywhere in it (a function's body too), resolved to a dotted name
    (``from . import x`` to the submodule x when it is one)."""
    known = set(modules("tkgs_lib")) | set(modules("tkgs_simulators"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            for alias in node.names:  # `from . import stages`: the submodule itself
                if f"{target}.{alias.name}" in known:
                    out.add(f"{target}.{alias.name}")
    return {m for m in out if m.split(".")[0] in ("tkgs_lib", "tkgs_simulators")}


def layer_of(module: str) -> int:
    part = module.split(".")[1] if "." in module else "__init__"
    assert part in LAYERS, f"{module} is in no layer: add it to tests/test_layers.py's LAYERS"
    return LAYERS[part]


def graph() -> dict[str, set[str]]:
    everything = {**modules("tkgs_lib"), **modules("tkgs_simulators")}
    return {name: {m for m in imports(name, path) if m in everything and m != name} for name, path in everything.items()}


def test_no_import_runs_back_up_the_layers():
    wrong = []
    for name, targets in graph().items():
        if not name.startswith("tkgs_lib"):
            continue
        for target in targets:
            if target.startswith("tkgs_simulators"):
                if layer_of(name) < LAYERS["cli"]:
                    wrong.append(f"{name} imports the simulators ({target}): only the demo and the command line may")
                continue
            if layer_of(target) > layer_of(name):
                wrong.append(f"{name} ({LAYER_NAMES[layer_of(name)]}) imports {target} "
                             f"({LAYER_NAMES[layer_of(target)]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_transports_do_not_import_each_other():
    wrong = [f"{name} imports {target}" for name, targets in graph().items() for target in targets
             if name.startswith(("tkgs_lib.vsphere", "tkgs_lib.appliance", "tkgs_lib.kubernetes"))
             and target.split(".")[:2] != name.split(".")[:2] and layer_of(target) == LAYERS["vsphere"]]
    assert not wrong, "\n".join(wrong)


def names_taken(path: Path, module: str) -> set[str]:
    """The names ``path`` takes from ``module`` by ``from module import ...`` (absolute imports)."""
    return {alias.name for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)
            and node.level == 0 and node.module == module for alias in node.names}


def test_the_simulators_import_nothing_the_product_believes():
    paths = modules("tkgs_simulators")
    wrong = []
    for name, targets in graph().items():
        if not name.startswith("tkgs_simulators") or name == LAUNCHER:
            continue
        for target in targets:
            if not target.startswith("tkgs_lib"):
                continue
            allowed = SIMULATORS_MAY_IMPORT.get(target, set())
            taken = names_taken(paths[name], target)
            if allowed is not None and (not allowed or not taken <= allowed):
                wrong.append(f"{name} imports {target}" + (f" ({', '.join(sorted(taken))})" if taken else ""))
    assert not wrong, "\n".join(sorted(wrong))


def test_there_is_no_circle():
    edges = graph()
    # A package imports its own submodules when it is imported: an edge from a module to its own package is
    # that, not a circle of ideas; drop it.
    edges = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in edges.items()}
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert not circles, "\n".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize("source, words", [
    ("from . import x\n", {"tkgs_lib.stages"}), ("def f():\n    from ..runner import record\n", {"tkgs_lib.runner"}),
])
def test_imports_inside_functions_are_read_too(tmp_path, source, words):
    path = tmp_path / "mod.py"
    path.write_text(source)
    assert words <= imports("tkgs_lib.stages.mod", path)
