"""The run record: what each stage of a run found or made, for the stages after it.

One JSON file in the run folder (``run-record.json``), typed here. A stage adds to it through its
optional ``record(run, facts)`` function (called by :meth:`StageRun.read`, see
:mod:`tkgs_lib.stages`); later stages read it instead of importing each other or asking vCenter
again. It holds no secret: only ids, versions, file names and addresses.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .files import write_text_whole

__all__ = ["RunRecord", "RECORD_FILE", "RecordedRelease"]

RECORD_FILE = "run-record.json"


@dataclass(frozen=True)
class RecordedRelease:
    """The appliance release a run deploys, as the OVA's descriptor says it."""

    found: str  # the OVA's ProductSection version, e.g. v0.1.10 ("" when it says none)
    source: str  # where it was read, e.g. "the OVA haproxy-v0.1.10.ova's descriptor"
    declares_additional_workload_networks: bool = False


@dataclass
class RunRecord:
    """What the run's stages recorded; every field may be missing (a stage that did not run)."""

    appliance_release: Optional[RecordedRelease] = None
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage → what it recorded besides

    @classmethod
    def load(cls, folder: Path) -> "RunRecord":
        try:
            data = json.loads((Path(folder) / RECORD_FILE).read_text())
        except (OSError, ValueError):
            return cls()
        release = data.get("appliance_release")
        return cls(appliance_release=RecordedRelease(**release) if isinstance(release, dict) else None,
                   stages=dict(data.get("stages") or {}))

    def save(self, folder: Path) -> Path:
        """Write the record atomically (a reader never sees half of it)."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        return write_text_whole(Path(folder) / RECORD_FILE,
                                json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True) + "\n")

    @classmethod
    def update(cls, folder: Path, **changes) -> "RunRecord":
        """Load, change the given fields, save; returns the record as saved."""
        record = dataclasses.replace(cls.load(folder), **changes)
        record.save(folder)
        return record
