"""Under ``torchrun --nproc_per_node=2`` (gloo, two real processes): candidates on the ranks, main-train
data-parallel with DDP; the search matches one process training the same global batches."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lrpilot.search.run import run_search

TEXT = "stpt(k0=0.05, set=[2, 1, 0.5], alpha=3, warmup=1, score=train)"


def test_two_ranks_match_one_process(tmp_path):
    out = tmp_path / "run.json"
    here = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parent), str(here.parents[1] / "src"), *sys.path]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", "-m", "lrpilot",
           "train", "--task", "search.tiny:blobs", "--policy", TEXT, "--epochs", "4", "--seed", "3",
           "--json", str(out), "--quiet"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("Top-1") == 1  # rank 0 reports
    ranks = json.loads(out.read_text())
    one = run_search("search.tiny:blobs", TEXT, seed=3, epochs=4).to_dict()
    assert ranks["cost"]["workers"] == 2 and ranks["cost"]["samples"] == one["cost"]["samples"]
    assert [e["best_lr"] for e in ranks["record"]["epochs"]] == [e["best_lr"] for e in one["record"]["epochs"]]
    assert ranks["curves"]["iteration"] == one["curves"]["iteration"]
    for key in ("train_loss", "test_loss", "test_top1"):  # the warmup and main-train: data-parallel
        assert ranks["curves"][key] == pytest.approx(one["curves"][key], rel=1e-5, nan_ok=True)
    assert ranks["metrics"]["test_loss"] == pytest.approx(one["metrics"]["test_loss"], rel=1e-5)
