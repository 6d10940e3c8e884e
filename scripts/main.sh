#!/usr/bin/env bash
# The main job on the built-in default: train digits-lenet under a cosine policy (LRBench
# metrics into out/digits-lenet.json) and plot three LRBench policies into out/policies.png.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/venv.sh"
cd "$root"
.venv/bin/lrpilot train --task digits-lenet --policy "COS(k0=0.05, k1=0.0005, l=645)" --json out/digits-lenet.json "$@"
.venv/bin/lrpilot plot "TRI2(k0=0.0001, k1=0.9, l=2000)" "COS(k0=0.5, k1=0.001, l=5000)" \
  "NSTEP(k0=0.8, gamma=0.1, l=[4000, 7000])" --steps 10000 -o out/policies.png
