#!/usr/bin/env bash
# The main job on the built-in default task, digits-lenet, into the default results store (an
# SQLite file; set LRPILOT_DB to a path or URL to use another):
#   1. benchmark LRBench's 13 functions (scaled to the task) over 3 seeds in parallel workers and rank them on
#      the validation split, with intervals, the policies tied with the best (=) and the decision (*);
#   2. tune within a compute budget: range test, FIX/COS/WSD/STPT/factor/AutoDrop, a TPE search with successive
#      halving, seed racing; print the decision in words and the chosen policy as replayable text;
#   3. write out/report.html (ranked table, LR/accuracy/loss curves, range-test plots).
# Runs already in the store are not trained again. The first call has no range test yet: the bench scales the
# suite to the task's LR, tune stores one, and a second call also trains the suite at its scale; a third call
# only ranks and reports.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/venv.sh"
cd "$root"
.venv/bin/lrpilot bench --task digits-lenet --suite lrbench13
.venv/bin/lrpilot tune --task digits-lenet -o out/report.html
