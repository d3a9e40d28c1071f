"""The benchmarks' inputs stay valid (their timings are printed by the scripts, never asserted here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scale_benchmark_sites_are_valid_at_both_sizes():
    bench = _load("bench_validate_scale")
    for prefix in (24, 8):
        bench.validate(bench.site_text(prefix))  # raises on any error finding
    assert "10.0.0.0/8" in bench.site_text(8) and "30.128.0.0/9" in bench.site_text(8)


def test_the_many_sites_benchmark_writes_valid_sites_of_their_own(tmp_path):
    from tkgs_lib.validate import check_site

    files = _load("bench_validate_many").site_files(tmp_path, 100)
    checks = [check_site(path) for path in files]
    assert [c.summary() for c in checks if c.errors or c.unreadable] == []
    assert len({yaml.safe_load(path.read_text())["site"] for path in files}) == 100
