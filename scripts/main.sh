#!/usr/bin/env bash
# The main job on the built-in default task, digits-lenet, into the default results store (an
# SQLite file; set LRPILOT_DB to a path or URL to use another):
#   1. the range test (LRBench's decade search, one seed, one epoch per LR: the one tune would run itself);
#   2. benchmark LRBench's 13 functions (scaled to that range) over 3 seeds in parallel workers and rank them on
#      the validation split, with intervals, the policies tied with the best (=) and the decision (*);
#   3. tune within a compute budget: the stored range test, FIX/COS/WSD/STPT/factor/AutoDrop, a TPE search with
#      successive halving, seed racing; print the decision in words and the chosen policy as replayable text;
#   4. write out/report.html (ranked table, LR/accuracy/loss curves, range-test plots).
# Runs already in the store are not trained again: a second call only ranks and reports.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/venv.sh"
cd "$root"
.venv/bin/lrpilot range-test --task digits-lenet --method decade --repeats 1 --epochs 1
.venv/bin/lrpilot bench --task digits-lenet --suite lrbench13
.venv/bin/lrpilot tune --task digits-lenet -o out/report.html
