"""Pytest fixtures for VMware's vCenter simulator (import into conftest.py with ``import *``).

Where the simulator cannot be built the tests are skipped, except on CI (``CI=true``),
where a missing simulator must fail the run rather than hide it.
"""

from __future__ import annotations

import os

import pytest

from tkgs_lib.errors import SimulatorUnavailable
from tkgs_simulators.vcsim import VCenterSimulator, build_vcsim

__all__ = ["vcsim_binary", "vcsim", "vcsim_module"]


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"vCenter simulator unavailable on CI: {reason}", pytrace=False)
    pytest.skip(f"vCenter simulator unavailable: {reason}")


@pytest.fixture(scope="session")
def vcsim_binary():
    """Path of the simulator binary, built once (and cached across runs)."""
    try:
        return build_vcsim()
    except SimulatorUnavailable as exc:
        _unavailable(str(exc))


def _run(binary, workdir):
    sim = VCenterSimulator(binary=binary, workdir=workdir)
    try:
        sim.start()
    except SimulatorUnavailable as exc:
        _unavailable(str(exc))
    return sim


@pytest.fixture
def vcsim(vcsim_binary, tmp_path):
    """A started simulator with a fresh inventory for this test."""
    sim = _run(vcsim_binary, tmp_path / "vcsim")
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def vcsim_module(vcsim_binary, tmp_path_factory):
    """One simulator shared by a module's tests: for read-only checks."""
    sim = _run(vcsim_binary, tmp_path_factory.mktemp("vcsim"))
    yield sim
    sim.stop()
