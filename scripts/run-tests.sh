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
# With arguments, pytest runs as asked (`-k network -x`, one file...).
if [ $# -gt 0 ]; then
    exec .venv/bin/python -m pytest "$@"
fi
# The whole suite: two workers (pytest-xdist; its tests mostly wait on kernels, simulators and
# browsers, so two cores keep two busy), then the few marked `alone` (they compare the whole host
# before and after), in a pytest of their own.
status=0
.venv/bin/python -m pytest -n "${TKGS_TEST_WORKERS:-2}" -m "not alone" || status=$?
.venv/bin/python -m pytest -m alone || status=$((status ? status : $?))
exit "$status"
