#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# On CI the tests' environment gets Apache Airflow too, for the test of the fleet's Airflow DAG.
if [ "$(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]')" = true ]; then
    export TKGS_AIRFLOW=1
fi
bash scripts/setup.sh
# The suite starts hundreds of Python processes (the console script, stage kernels): let them keep the
# package's compiled modules instead of compiling them afresh each time.
unset PYTHONDONTWRITEBYTECODE
exec .venv/bin/python -m pytest "$@"
