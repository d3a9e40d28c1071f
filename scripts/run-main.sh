#!/usr/bin/env bash
# Set up (idempotent) and run the main job: validate the example site and run the runbook
# headlessly into a run folder under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/tkgs-runbook validate examples/example-site.yaml
exec .venv/bin/tkgs-runbook run examples/example-site.yaml --output runs "$@"
