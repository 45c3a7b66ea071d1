#!/usr/bin/env bash
# Run the pipeline (default scenario unless told otherwise), creating .venv on first use.
#   ./run.sh                                        # default scenario, 2 cores
#   ./run.sh --configfile config/scenarios/tiny.yaml
set -euo pipefail
cd "$(dirname "$0")"
# Config files named on the command line must exist: Snakemake itself would print a traceback.
expect_config=0
config_files=()
for arg in "$@"; do
  case "$arg" in
    --configfile|--configfiles) expect_config=1; continue ;;
    --configfile=*|--configfiles=*) file="${arg#*=}" ;;
    -*) expect_config=0; continue ;;
    *) [ "$expect_config" = 1 ] || continue; file="$arg" ;;
  esac
  if [ ! -f "$file" ]; then
    echo "config error: $file: field '(file)': config file not found. Fix: give the path of a YAML config file, e.g. config/scenarios/tiny.yaml" >&2
    exit 1
  fi
  config_files+=("$file")
done
tools/ensure_env.sh
# Each config file must be a YAML mapping (Snakemake's own message names no file).
if [ "${#config_files[@]}" -gt 0 ]; then
  .venv/bin/python - "${config_files[@]}" <<'PY' || exit 1
import sys

from pipeline_common.config import read_config_file
from pipeline_common.errors import InputError

try:
    for path in sys.argv[1:]:
        read_config_file(path)
except InputError as error:
    sys.exit(f"config error: {error}")
PY
fi
exec .venv/bin/snakemake --cores "${CORES:-2}" "$@"
