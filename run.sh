#!/usr/bin/env bash
# Run the pipeline (default scenario unless told otherwise), creating .venv on first use.
#   ./run.sh                                        # default scenario, 2 cores
#   ./run.sh --configfile config/scenarios/tiny.yaml
set -euo pipefail
cd "$(dirname "$0")"
tools/ensure_env.sh
exec .venv/bin/snakemake --cores "${CORES:-2}" "$@"
