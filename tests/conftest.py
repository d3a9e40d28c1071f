"""Shared fixtures. The project's tests never read ../shared: a user's clone has no such folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from vcsim_fixtures import *  # noqa: F401,F403  (vcsim_binary, vcsim, vcsim_module)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SITE = ROOT / "examples" / "example-site.yaml"


@pytest.fixture
def example_text() -> str:
    return EXAMPLE_SITE.read_text()
