#!/usr/bin/env bash
# The whole default test suite (slow quality checks excluded: add `-m slow` to run those).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/venv.sh"
# The store's tests run against a real PostgreSQL server (started by tests/store/conftest.py);
# install it once here, before the two test workers could both try.
bash "$root/scripts/postgres.sh" install
bash "$root/scripts/chromium.sh"  # the dashboard's tests drive a real headless browser
cd "$root"
exec .venv/bin/python -m pytest -n 2 -q "$@"
