#!/usr/bin/env bash
# The main job on the built-in default: benchmark LRBench's 13 functions (scaled to the task)
# on digits-lenet over 3 seeds in parallel workers, into the default results store (an SQLite
# file; set LRPILOT_DB to a path or URL to use another), print the ranking, write out/report.html.
# Runs already in the store are not trained again: a second call only ranks and reports.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/venv.sh"
cd "$root"
.venv/bin/lrpilot bench --task digits-lenet --suite lrbench13
.venv/bin/lrpilot report --task digits-lenet -o out/report.html
