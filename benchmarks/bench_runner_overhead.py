"""What the runner adds to executing a stage notebook, measured against papermill's own command line.

    python benchmarks/bench_runner_overhead.py [--rounds 5] [--stages networks prepare]

For each stage, in the same run and in ABBA order: `tkgs-runbook run SITE --stages <stage>` against
`papermill <notebook> out.ipynb -p site_file ... -p output_dir ...` (the same notebook, the same
parameters; the vCenter simulator for prepare). The median wall-clock ratio must be at most 1.5.
Then where the difference goes, timed apart on the same executed notebook: the command line's own
start (importing tkgs_lib), the kernel's start on private Unix sockets against papermill's TCP
default, scrubbing the record, exporting its HTML (cold, and once warm: the runner warms the exporter
while the kernel runs), and scanning the run folder for secrets.
Exits 1 when a ratio exceeds 1.5.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BIN = Path(sys.executable).parent
TARGET = 1.5


def timed(argv, env) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"`{' '.join(map(str, argv))}` failed:\n{result.stderr[-2000:]}")
    return elapsed


def breakdown(site_file: Path, notebook: str, work: Path, env: dict) -> dict[str, float]:
    """Each part the runner adds, timed once on its own."""
    import papermill as pm

    from tkgs_lib.credentials import scan_for_secrets, scrub_notebook
    from tkgs_lib.runner.kernels import new_socket_folder
    from tkgs_lib.runner.notebooks import _ipc_kernel_manager, write_html

    parts = {}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tkgs_lib.cli, tkgs_lib.runner.notebooks, tkgs_lib.stages"], check=True)
    parts["the command line's start"] = time.perf_counter() - start
    params = {"site_file": str(site_file), "output_dir": str(work), "apply": False}
    declared = pm.inspect_notebook(str(NOTEBOOKS / notebook))
    params = {k: v for k, v in params.items() if k in declared}
    old = dict(os.environ)
    os.environ.update(env)
    try:
        sockets = new_socket_folder()
        try:
            start = time.perf_counter()
            pm.execute_notebook(str(NOTEBOOKS / notebook), str(work / "ipc.ipynb"), parameters=params,
                                cwd=str(NOTEBOOKS), progress_bar=False, kernel_name="python3",
                                kernel_manager_class=_ipc_kernel_manager(sockets))
            ipc = time.perf_counter() - start
        finally:
            shutil.rmtree(sockets, ignore_errors=True)
        start = time.perf_counter()
        pm.execute_notebook(str(NOTEBOOKS / notebook), str(work / "tcp.ipynb"), parameters=params, cwd=str(NOTEBOOKS),
                            progress_bar=False, kernel_name="python3")
        tcp = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(old)
    parts["kernel on Unix sockets, against TCP"] = ipc - tcp
    secrets = [v for k, v in env.items() if k.endswith("PASSWORD")]
    start = time.perf_counter()
    scrub_notebook(work / "ipc.ipynb", secrets)
    parts["scrubbing the record"] = time.perf_counter() - start
    start = time.perf_counter()
    write_html(work / "ipc.ipynb")
    # This process's first export (cold: nbconvert imported, its regular expressions compiled); the
    # runner does that part in a thread while the stage's kernel runs, so its clock sees less of it.
    parts["exporting its HTML (a cold process's first)"] = time.perf_counter() - start
    start = time.perf_counter()
    write_html(work / "ipc.ipynb")
    parts["exporting its HTML once warm"] = time.perf_counter() - start
    start = time.perf_counter()
    scan_for_secrets(work, secrets)
    parts["scanning the run folder for secrets"] = time.perf_counter() - start
    return parts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stages", nargs="+", default=["networks", "prepare"])
    args = parser.parse_args(argv)

    from tkgs_lib.stages import stage_named

    failed = False
    with tempfile.TemporaryDirectory(prefix="tkgs-bench-") as folder:
        work = Path(folder)
        # Bytecode kept, as an installed copy keeps it: an inherited PYTHONDONTWRITEBYTECODE would make
        # the command line (not papermill's, whose modules pip compiled) compile tkgs_lib on every run.
        env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
               "TKGS_HAPROXY_ROOT_PASSWORD": "bench-root-pw", "TKGS_HAPROXY_DATAPLANE_PASSWORD": "bench-dataplane-pw"}
        sim = None
        if "prepare" in args.stages:
            from tkgs_lib.demo import simulator_site_data
            from tkgs_simulators.ova import build_ova
            from tkgs_simulators.vcsim import VCenterSimulator

            sim = VCenterSimulator().start()
            data = simulator_site_data(sim, ova=build_ova(work / "haproxy-v0.1.10.ova", disk_size=1 << 20))
            env["TKGS_VCENTER_PASSWORD"] = sim.password
        else:
            data = yaml.safe_load((ROOT / "examples" / "example-site.yaml").read_text())
        site_file = work / "site.yaml"
        site_file.write_text(yaml.safe_dump(data))
        try:
            print(f"{'stage':<10}{'papermill (s)':>15}{'tkgs-runbook run (s)':>22}{'ratio':>8}")
            for name in args.stages:
                stage = stage_named(name)
                runner, plain = [], []
                for round_ in range(args.rounds):
                    order = ("runner", "papermill") if round_ % 2 == 0 else ("papermill", "runner")
                    for which in order:
                        out = work / f"{which}-{name}-{round_}"
                        out.mkdir()
                        if which == "runner":
                            runner.append(timed([BIN / "tkgs-runbook", "run", site_file, "--stages", name,
                                                 "--output", out], env))
                        else:
                            params = ["-p", "site_file", str(site_file), "-p", "output_dir", str(out)]
                            plain.append(timed([BIN / "papermill", NOTEBOOKS / stage.notebook, out / "out.ipynb",
                                                *params, "--cwd", NOTEBOOKS, "--no-progress-bar"], env))
                ratio = statistics.median(runner) / statistics.median(plain)
                failed |= ratio > TARGET
                print(f"{name:<10}{statistics.median(plain):>15.2f}{statistics.median(runner):>22.2f}{ratio:>8.2f}"
                      f"   {'PASS' if ratio <= TARGET else 'FAIL'} (target <= {TARGET})")
            print("\nwhere the difference goes (prepare's notebook, timed once each):" if "prepare" in args.stages
                  else "\nwhere the difference goes (timed once each):")
            last = stage_named(args.stages[-1])
            parts_folder = work / "parts"
            parts_folder.mkdir()
            for part, seconds in breakdown(site_file, last.notebook, parts_folder, env).items():
                print(f"  {part:<40}{seconds:>8.2f} s")
        finally:
            if sim is not None:
                sim.stop()
    print("\nFAIL" if failed else "\nPASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
