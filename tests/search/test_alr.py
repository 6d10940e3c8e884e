"""The ALR beam tree: M*N branches per epoch, the M lowest training losses kept, training goes on from the best."""

import pytest

from lrpilot.search.run import run_search
from lrpilot.tasks import get_task


@pytest.fixture(scope="module")
def run():
    return run_search(get_task("digits-mlp"), "alr(k0=0.05, beam=2, factors=[2, 1, 0.5])", seed=0, epochs=3)


def test_keeps_the_m_lowest_training_losses(run):
    epochs = run.record["epochs"]
    assert [len(e["lrs"]) for e in epochs] == [3, 6, 6]  # one member at first, then M * N
    for e in epochs:
        ranked = sorted(zip(e["scores"], e["lrs"]), key=lambda p: -p[0])
        assert e["beam"] == [lr for _, lr in ranked[:2]] and e["best_lr"] == e["beam"][0]
    for before, after in zip(epochs, epochs[1:]):  # each beam member branched by every factor
        assert after["lrs"] == [lr * r for lr in before["beam"] for r in (2, 1, 0.5)]


def test_continues_from_the_best_branch_and_counts_its_cost(run):
    last = run.record["epochs"][-1]
    assert run.metrics["train_loss"] == pytest.approx(-max(last["scores"]))  # score: minus the training loss
    assert run.record["trajectory"][-1][1] == last["best_lr"]
    assert run.cost["epoch_equivalents"] == pytest.approx(3 + 6 + 6) and run.cost["epochs"] == 3
    assert run.cost["iterations"] == 15 * get_task("digits-mlp").iters_per_epoch
