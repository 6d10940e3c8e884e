"""Snapshots and engine segments: a run stopped mid-epoch, snapshotted and restored, goes on bit-identically."""

import math

import pytest
import torch

from lrpilot.engine import Run, RunConfig, train
from lrpilot.search.candidate import SearchLR
from lrpilot.execution.snapshot import pack, unpack
from lrpilot.tasks import get_task


@pytest.fixture(scope="module")
def digits():
    return get_task("digits-mlp")


def _run(task, policy="FIX(k0=0.05)", seed=3):
    return Run(task, policy, RunConfig(total=100, seed=seed, eval_every=25, device="cpu"))


def _equal(a, b):
    """Deep equality of states: tensors with torch.equal, NaN equal to NaN."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def test_snapshot_restores_exactly(digits):
    run = _run(digits)
    run.run_until(57)  # mid-epoch 2 (34 iterations per epoch)
    snapshot = pack(run.state())
    run.run_until(70)  # later training does not touch the snapshot, a copy
    assert unpack(snapshot)["step"] == 57 and not _equal(unpack(snapshot)["model"], dict(run.model.state_dict()))
    fresh = _run(digits, "COS(k0=0.1, k1=0.001, l=10)", seed=4)  # another init, controller and position
    assert not _equal(fresh.state(), unpack(snapshot))
    fresh.restore(unpack(snapshot))
    assert _equal(fresh.state(), unpack(snapshot))
    assert fresh.step == 57 and fresh.epoch == 1 and fresh.epoch_step == 34


def test_resume_mid_epoch_from_a_snapshot_is_bit_identical(digits):
    full = train(digits, "FIX(k0=0.05)", seed=3, steps=100, eval_every=25).to_dict()
    first = _run(digits)
    first.run_until(57)
    second = _run(digits)
    second.restore(unpack(pack(first.state())))
    assert second.run_until(80) is None and second.step == 80
    resumed = second.run().to_dict()
    assert resumed["curves"] == full["curves"] and resumed["metrics"] == full["metrics"]


def test_search_lr_path_travels_with_the_state(digits):
    run = _run(digits, SearchLR("x", 0.1, 1), seed=0)
    run.run_until(10)
    run.controller.set(0.05, 10)
    run.controller.set(0.02, 10)  # a second choice at the same step replaces the first
    other = _run(digits, SearchLR("x", 0.3, 1), seed=0)
    other.restore(unpack(pack(run.state())))
    assert other.controller.path == [[0, 0.1], [10, 0.02]] and other.optimizer.param_groups[0]["lr"] == 0.02
