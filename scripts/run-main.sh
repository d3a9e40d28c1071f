#!/usr/bin/env bash
# Set up (idempotent) and run the main job: the runbook's stages, with apply, against the bundled
# vCenter simulator (`tkgs-runbook demo`), into a run folder under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/tkgs-runbook demo --output runs "$@"
