#!/usr/bin/env bash
# Run the test suite (unit tests and a tiny end-to-end workflow run), creating .venv on first use.
set -euo pipefail
cd "$(dirname "$0")"
tools/ensure_env.sh
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" "$@"
