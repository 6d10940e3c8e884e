#!/usr/bin/env bash
# The whole default test suite (slow quality checks excluded: add `-m slow` to run those).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/venv.sh"
cd "$root"
exec .venv/bin/python -m pytest -n 2 -q "$@"
