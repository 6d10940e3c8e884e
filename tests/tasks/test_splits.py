"""Every task's three splits: the validation slice's size, stratification, determinism and disjointness,
an explicit validation split, and the refusals of a bad one."""

import pytest
import torch

from lrpilot.errors import LRPilotError
from lrpilot.tasks import get_task
from lrpilot.tasks.base import ClassificationTask, stratified_slice


def _data(n=100, classes=4):
    g = torch.Generator().manual_seed(0)
    train = (torch.randn(n, 3, generator=g), torch.arange(n) % classes)
    return train, (torch.randn(10, 3, generator=g), torch.arange(10) % classes)


def _task(n=100, classes=4, **kwargs):
    train, test = _data(n, classes)
    return ClassificationTask("toy", train, test, lambda: torch.nn.Linear(3, classes), classes, **kwargs)


def _keys(x, y):
    return {xi.numpy().tobytes() + bytes([int(yi)]) for xi, yi in zip(x, y)}


def test_the_slice_is_moved_out_of_train_and_the_splits_are_disjoint():
    full = _data()[0]
    task = _task(val_fraction=0.2)
    assert (len(task.train[1]), len(task.val[1])) == (80, 20)
    assert (task.meta["n_train"], task.meta["n_val"], task.meta["n_test"]) == (80, 20, 10)
    assert task.iters_per_epoch == -(-80 // task.batch_size)
    train, val, test = _keys(*task.train), _keys(*task.val), _keys(*task.test)
    assert train | val == _keys(*full) and not train & val and not (train | val) & test


def test_the_slice_is_stratified_with_one_of_every_class_that_can_spare_one():
    y = torch.tensor([0] * 60 + [1] * 30 + [2] * 9 + [3])  # class 3 has one example: it stays in train
    keep, held = stratified_slice(y, 0.1)
    assert len(held) == 10 and torch.bincount(y[held], minlength=4).tolist() == [6, 3, 1, 0]
    assert sorted(keep.tolist() + held.tolist()) == list(range(100))


def test_a_builtin_tasks_slice_is_the_same_for_every_seed_and_build():
    a, b = get_task("digits-mlp", seed=1), get_task("digits-mlp", seed=1)
    assert torch.equal(a.val[0], b.val[0]) and torch.equal(a.train[1], b.train[1])
    counts = torch.bincount(a.val[1], minlength=10)
    share = torch.bincount(torch.cat([a.train[1], a.val[1]]), minlength=10) * len(a.val[1]) / (
        len(a.train[1]) + len(a.val[1]))
    assert (counts - share).abs().max() <= 1  # proportional to each class's size


def test_mnist1d_validates_on_generated_examples_and_trains_on_the_authors_4000():
    a, b = get_task("mnist1d-mlp"), get_task("mnist1d-cnn")
    assert torch.equal(a.val[0], b.val[0]) and torch.equal(a.train[0], b.train[0])
    assert torch.bincount(a.val[1], minlength=10).tolist() == [200] * 10
    train_rows = {tuple(row) for row in a.train[0].numpy().round(5).tolist()}
    assert not any(tuple(row) in train_rows for row in a.val[0].numpy().round(5).tolist())  # new draws, not copies
    assert abs(float(a.val[0].mean())) < 0.05 and abs(float(a.val[0].std()) - 1) < 0.05  # standardised alike


def test_digits_keeps_its_test_split_whatever_the_val_slice():
    task = get_task("digits-lenet")
    assert (task.meta["n_train"], task.meta["n_val"], task.meta["n_test"]) == (1078, 269, 450)


def test_an_explicit_val_split_is_used_as_given():
    val = (torch.randn(7, 3), torch.tensor([0, 1, 2, 3, 0, 1, 2]))
    task = _task(val=val)
    assert task.val is val and len(task.train[1]) == 100 and task.meta["n_val"] == 7


@pytest.mark.parametrize("fraction", [0, -0.1, 0.51, 1, float("nan"), "0.1", True])
def test_a_bad_val_fraction_is_refused(fraction):
    with pytest.raises(LRPilotError, match=r"val_fraction=.* must be a number in \(0, 0.5\]"):
        _task(val_fraction=fraction)


@pytest.mark.parametrize("val, fragment", [
    ((torch.randn(3, 3),), "the val split must be a pair"),
    ((torch.randn(3, 3), torch.zeros(2, dtype=torch.long)), "the val split has inputs of shape"),
    ((torch.randn(0, 3), torch.zeros(0, dtype=torch.long)), "the val split is empty"),
    ((torch.randn(2, 3), torch.tensor([0, 9])), "the val split has label 9"),
    ((torch.randn(2, 5), torch.tensor([0, 1])), "val inputs of shape"),
])
def test_a_bad_explicit_val_is_refused(val, fragment):
    with pytest.raises(LRPilotError, match=fragment):
        _task(val=val)


def test_too_few_training_examples_to_hold_out_are_refused():
    with pytest.raises(LRPilotError, match="pass val="):
        _task(n=1, classes=1)
    with pytest.raises(LRPilotError, match="pass val="):
        _task(n=3, classes=3)  # one example per class: none can be spared


def test_evaluate_reads_each_split_and_refuses_others():
    task = _task()
    model = torch.nn.Linear(3, 4)
    assert [len(task.evaluate(model, s).labels) for s in ("train", "val", "test")] == [90, 10, 10]
    with pytest.raises(LRPilotError, match="unknown split 'dev'"):
        task.evaluate(model, "dev")
