#!/usr/bin/env bash
# Run the test suite (unit tests and a tiny end-to-end workflow run), creating .venv on first use.
set -euo pipefail
cd "$(dirname "$0")"
tools/ensure_env.sh
# A Java runtime for the Spark backend test (installed with apt-get when missing; never fails).
tools/ensure_java.sh
# loadscope: a module's tests share one worker, so module fixtures (the tiny workflow run, about
# 7 minutes) run once instead of once per worker.
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadscope "$@"
