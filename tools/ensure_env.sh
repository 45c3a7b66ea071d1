#!/usr/bin/env bash
# Create or refresh .venv (Python >= 3.12) with the project and its pinned dependencies.
# Re-installs only when pyproject.toml or requirements.lock changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for cand in python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      command -v "$cand"; return
    fi
  done
  # pyenv machines: .python-version says 3.12; fall back to any installed 3.12.x.
  if command -v pyenv >/dev/null 2>&1; then
    local v; v=$(pyenv versions --bare | grep -E '^3\.1[2-9]' | head -n 1 || true)
    [ -n "$v" ] && { echo "$(pyenv root)/versions/$v/bin/python"; return; }
  fi
  echo "error: Python >= 3.12 not found (PyMC 6 and ArviZ 1.x need it). Install it (e.g. 'pyenv install 3.12') and retry." >&2
  exit 1
}

stamp=".venv/.install-stamp"
want=$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  py=$(pick_python)
  echo "creating .venv with $("$py" --version)" >&2
  "$py" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c requirements.lock -e '.[dev,spark]'
  echo "$want" > "$stamp"
fi
