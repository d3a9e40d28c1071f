"""What `tkgs-runbook validate` costs per process and per site, against starting Python with its two libraries.

    python benchmarks/bench_validate_many.py [--rounds 15] [--sites 100]

Two measures, each against a baseline timed in the same run, interleaved (ABBA) so a busy machine
weighs on both alike; medians of ``--rounds``. Exits 1 when either misses its target:

1. `tkgs-runbook validate` on one site file against `python -c 'import yaml, netaddr'` (what any
   validation of a site must import): ratio at most 2. Before validate left pandas and the notebook
   machinery alone, this was 6.3.
2. `tkgs-runbook validate` on 100 site files in one call against the same on one file: ratio at most
   5 (one file per process, as before, costs 100).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "examples" / "example-site.yaml"
SCRIPT = Path(sys.executable).with_name("tkgs-runbook")
TARGET_ONE, TARGET_MANY = 2.0, 5.0


def site_files(folder: Path, count: int) -> list[Path]:
    """``count`` sites like the article's, each with a name, VLANs and networks of its own."""
    base = yaml.safe_load(SITE.read_text())
    files = []
    for i in range(count):
        data = yaml.safe_load(yaml.safe_dump(base))
        data["site"] = f"site{i:03}"
        second = 64 + i % 128  # 10.<second>.x.x per site, the article's layout inside it
        for role, net in data["networks"].items():
            net["vlan"] = 100 + (i * 3 + ("management", "workload", "frontend").index(role)) % 3900
            net["cidr"] = net["cidr"].replace("10.64.", f"10.{second}.")
            net["gateway"] = net["gateway"].replace("10.64.", f"10.{second}.")
        data["networks"]["workload"]["ranges"] = [r.replace("10.64.", f"10.{second}.")
                                                  for r in data["networks"]["workload"]["ranges"]]
        for key in ("management_ip", "workload_ip", "frontend_ip"):
            data["haproxy"][key] = data["haproxy"][key].replace("10.64.", f"10.{second}.")
        data["haproxy"]["nameservers"] = [n.replace("10.64.", f"10.{second}.") for n in data["haproxy"]["nameservers"]]
        data["haproxy"]["load_balancer_ranges"] = [r.replace("10.64.", f"10.{second}.")
                                                   for r in data["haproxy"]["load_balancer_ranges"]]
        wm = data["workload_management"]
        wm["supervisor_start"] = wm["supervisor_start"].replace("10.64.", f"10.{second}.")
        for key in ("dns_servers", "ntp_servers"):
            wm[key] = [n.replace("10.64.", f"10.{second}.") for n in wm[key]]
        wm["services_cidr"] = "172.20.0.0/23"  # 10.96.x.x is one of the sites' own networks
        data["tanzu_cluster"]["services_cidr"] = "172.22.0.0/16"  # so is the example's 10.112.0.0/16
        path = folder / f"site{i:03}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        files.append(path)
    return files


# The steady state a user has: the package's modules compiled once and kept (the warm-up writes
# them). Inherited PYTHONDONTWRITEBYTECODE would make every run compile the whole package afresh,
# which no installed copy does (the baseline's libraries were compiled when pip installed them).
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=ENV)
    took = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"`{' '.join(argv[:3])} ...` exited {result.returncode}:\n{result.stdout[-1500:]}"
                         f"{result.stderr[-1500:]}")
    return took


def interleaved(first: list[str], second: list[str], rounds: int) -> tuple[float, float]:
    """Medians of ``first`` and ``second``, run in ABBA order after one warm-up each."""
    seconds(first), seconds(second)
    a, b = [], []
    for i in range(rounds):
        if i % 2 == 0:
            a.append(seconds(first))
            b.append(seconds(second))
        else:
            b.append(seconds(second))
            a.append(seconds(first))
    return statistics.median(a), statistics.median(b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sites", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        files = [str(p) for p in site_files(Path(folder), args.sites)]
        baseline = [sys.executable, "-c", "import yaml, netaddr"]
        one = [str(SCRIPT), "validate", files[0]]
        many = [str(SCRIPT), "validate", *files]
        t_base, t_one = interleaved(baseline, one, args.rounds)
        t_one_again, t_many = interleaved(one, many, args.rounds)

    ratio_one = t_one / t_base
    ratio_many = t_many / t_one_again
    print(f"python -c 'import yaml, netaddr':        {t_base:6.3f} s (median of {args.rounds})")
    print(f"tkgs-runbook validate, one site file:   {t_one:6.3f} s   ratio {ratio_one:4.2f}  "
          f"(target <= {TARGET_ONE:g})")
    print(f"tkgs-runbook validate, {args.sites} site files: {t_many:6.3f} s   ratio {ratio_many:4.2f} against one file "
          f"({t_one_again:.3f} s)  (target <= {TARGET_MANY:g})")
    print(f"  per further site: {(t_many - t_one_again) / max(1, args.sites - 1) * 1e3:.1f} ms; "
          f"one process per file would take about {t_one_again * args.sites:.1f} s")
    ok = ratio_one <= TARGET_ONE and ratio_many <= TARGET_MANY
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
