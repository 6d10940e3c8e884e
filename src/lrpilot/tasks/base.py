"""What a task is: data, a model factory, a loss, optimizer defaults and a budget.

The engine talks to a task only through the methods of :class:`Task`, so a classification
data set held in memory (:class:`ClassificationTask`) and a generated objective such as the
noisy quadratic model look the same to it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class Evaluation:
    """The result of evaluating a model on one split.

    ``loss`` is the mean loss; ``probs`` (N x C softmax probabilities) and ``labels`` (N) are
    None for tasks without classes (the noisy quadratic model).
    """

    loss: float
    probs: Tensor | None = None
    labels: Tensor | None = None


class Task:
    """The contract between a task and the engine.

    Attributes every task sets: ``name``; ``batch_size``; ``epochs`` (default budget);
    ``iters_per_epoch``; ``lr`` (a sensible fixed LR, used as the default policy FIX(k0=lr));
    ``momentum`` and ``weight_decay`` (SGD defaults); ``num_classes`` (None without classes);
    ``meta`` (dataset, model, input_shape, n_train, n_val: what the results store records);
    ``av_period`` and ``av_window``: the angular velocity of the parameters is measured every
    ``av_period`` iterations (None: every epoch) and recorded as the mean of the last
    ``av_window`` measurements (the AutoDrop paper measures the NQM per iteration, window 20);
    ``eval_every``: the task's evaluation period in iterations (None: about 20 evaluations a run).
    """

    name: str
    batch_size: int
    epochs: int
    iters_per_epoch: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    num_classes: int | None = None
    meta: dict[str, Any]
    av_period: int | None = None
    av_window: int = 1
    eval_every: int | None = None

    def to(self, device: torch.device | str) -> "Task":
        """Move the task's data to ``device`` (a no-op for tasks that generate their data)."""
        return self

    def make_model(self) -> nn.Module:
        """A freshly initialised model (the caller seeds torch before calling)."""
        raise NotImplementedError

    def make_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        """The task's default optimizer: SGD with momentum and weight decay, as the papers use."""
        return torch.optim.SGD(params, lr=lr, momentum=self.momentum, weight_decay=self.weight_decay)

    def train_batches(self, generator: torch.Generator) -> Iterator[Any]:
        """One epoch of training batches, shuffled by ``generator`` (``iters_per_epoch`` of them)."""
        raise NotImplementedError

    def train_loss(self, model: nn.Module, batch: Any) -> Tensor:
        """The scalar training loss of ``model`` on ``batch`` (the engine calls backward on it)."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, split: str = "test") -> Evaluation:
        """Evaluate ``model`` (already in eval mode, under no_grad) on ``split``: "train", "val" or "test".

        Selections (searches, tuning, recommendations) read "val"; "test" is only reported."""
        raise NotImplementedError

    def check(self, model: nn.Module) -> None:
        """Refuse data that ``model`` (a fresh one, on the task's device) cannot train on, as one
        :class:`~lrpilot.errors.DataError` naming the first bad example; the engine calls it when a run starts."""

    def loss_sum(self, local: Tensor) -> Tensor:
        """A sum of this process's training losses as the global batches' sum (data-parallel ranks
        combine theirs here, once per divergence check rather than once per step); one process: as is."""
        return local


#: The seed of the generator that draws the validation slice out of a task's training data: a constant, so
#: every policy and every run seed of a task sees the same train / validation split.
VAL_SEED = 20_240_917
SPLITS = ("train", "val", "test")


@dataclass
class ClassificationTask(Task):
    """A classification task whose splits fit in memory as tensors.

    ``train``, ``test`` and ``val`` are ``(inputs, labels)`` pairs: float inputs of shape
    (N, *input_shape) and int64 labels in [0, num_classes). ``make_model`` builds the network.
    Without ``val``, a stratified ``val_fraction`` (in (0, 0.5]) of ``train`` is moved out of it into the
    validation split (:func:`stratified_slice`, drawn with the constant :data:`VAL_SEED`), and training
    uses only the rest; selections read the validation split, the test split is only reported.
    A user's own task (``--task package.module:function``) usually returns one of these.
    ``meta`` declares what the results store records and recommendation compares: ``dataset`` (default:
    the task's name) and ``model`` (default: the name of ``make_model_fn``, e.g. its class; None for a
    lambda); ``input_shape``, ``n_train``, ``n_test`` and ``num_classes`` are read from the data.
    ``channels_last``: the model and the image inputs (N, C, H, W) use the channels-last memory
    format, which makes 2-D convolutions on CPU several times faster without changing what they compute.
    """

    name: str
    train: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]
    make_model_fn: Callable[[], nn.Module]
    num_classes: int
    batch_size: int = 64
    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    eval_batch_size: int = 1000
    meta: dict[str, Any] = field(default_factory=dict)
    eval_every: int | None = None
    channels_last: bool = False
    val: tuple[Tensor, Tensor] | None = None
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        self._validate()
        if self.val is None:
            keep, held = stratified_slice(self.train[1], self.val_fraction, self.name)
            x, y = self.train
            self.train, self.val = (x[keep], y[keep]), (x[held], y[held])
        n = len(self.train[1])
        self.iters_per_epoch = -(-n // self.batch_size)
        self.meta = {
            "dataset": self.name,
            "model": _model_name(self.make_model_fn),
            "input_shape": list(self.train[0].shape[1:]),
            "n_train": n,
            "n_val": len(self.val[1]),
            "n_test": len(self.test[1]),
            "num_classes": self.num_classes,
            **self.meta,
        }
        if self.channels_last:
            self.to("cpu")

    def _validate(self) -> None:
        """Refuse sizes and splits that cannot train: one line naming the task and the value."""
        from lrpilot.errors import DataError, LRPilotError
        from lrpilot.vocabulary import clip

        where = f"task {clip(self.name)}"
        for attr in ("batch_size", "eval_batch_size", "num_classes"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LRPilotError(f"{where}: {attr}={clip(value)} must be a whole number >= 1")
        fraction = self.val_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 0.5:
            raise LRPilotError(f"{where}: val_fraction={clip(fraction)} must be a number in (0, 0.5], the share of "
                               "the training data held out for validation (or pass val=(inputs, labels))")
        for split in SPLITS:
            if split == "val" and self.val is None:
                continue
            pair = getattr(self, split)
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2
                    and all(isinstance(t, Tensor) for t in pair)):
                raise LRPilotError(f"{where}: the {split} split must be a pair (inputs, labels) of tensors, "
                                   f"got {type(pair).__name__}")
            x, y = pair
            if y.dim() != 1 or x.dim() < 1 or len(x) != len(y):
                raise LRPilotError(f"{where}: the {split} split has inputs of shape {tuple(x.shape)} and labels of "
                                   f"shape {tuple(y.shape)}; expected (N, ...) inputs and N labels")
            if len(y) == 0:
                raise LRPilotError(f"{where}: the {split} split is empty (0 examples)")
            if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
                raise LRPilotError(f"{where}: the {split} labels are {y.dtype}; expected integer class indices "
                                   "(int64)")
            if (i := outside(y, self.num_classes)) is not None:
                raise LRPilotError(f"{where}: the {split} split has label {int(y[i])}, outside "
                                   f"[0, {self.num_classes}) for num_classes={self.num_classes}, at example {i}")
            if (i := non_finite(x)) is not None:
                raise DataError(f"{where}: the {split} split's example {i} has a non-finite input (NaN or "
                                "infinity); clean or drop it")
        for split in ("val", "test"):
            pair = getattr(self, split)
            if pair is not None and tuple(self.train[0].shape[1:]) != tuple(pair[0].shape[1:]):
                raise LRPilotError(f"{where}: train inputs of shape {tuple(self.train[0].shape[1:])} and {split} "
                                   f"inputs of shape {tuple(pair[0].shape[1:])} differ")

    def check(self, model: nn.Module) -> None:
        """The model takes each split's first input and gives (1, outputs) logits, and every label lies in
        ``[0, outputs)`` (else cross-entropy fails mid-run); one DataError naming the split and the example."""
        from lrpilot.errors import DataError
        from lrpilot.vocabulary import clip

        where = f"task {clip(self.name)}"
        was = model.training
        model.eval()
        try:
            for split in SPLITS:
                x, y = getattr(self, split)
                try:
                    with torch.no_grad():
                        out = model(x[:1])
                except Exception as e:  # noqa: BLE001  (the model's own error on the data: shapes, dtypes)
                    first = clip(e, 200, quote=False)
                    raise DataError(f"{where}: the model does not take the {split} inputs of shape "
                                    f"{tuple(x.shape[1:])} (example 0): {type(e).__name__}: {first}") from e
                if not isinstance(out, Tensor) or out.dim() != 2:
                    shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                    raise DataError(f"{where}: the model's output on the {split} split's example 0 is {shape}; "
                                    "expected (batch, classes) logits")
                if (i := outside(y, out.shape[1])) is not None:
                    raise DataError(f"{where}: the {split} split's example {i} has label {int(y[i])}, outside "
                                    f"[0, {out.shape[1]}) of the model's {out.shape[1]} outputs; fix the label or "
                                    "the model's output width")
        finally:
            model.train(was)

    def make_model(self) -> nn.Module:
        model = self.make_model_fn()
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def to(self, device: torch.device | str) -> "ClassificationTask":
        self.train, self.val, self.test = (self._placed(*getattr(self, s), device) for s in SPLITS)
        return self

    def _placed(self, x: Tensor, y: Tensor, device: torch.device | str) -> tuple[Tensor, Tensor]:
        """A split on ``device``, its images channels-last if the task asks for it."""
        x = x.to(device)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(device)

    def train_batches(self, generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        x, y = self.train
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield x[idx], y[idx]

    def train_loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y)

    def evaluate(self, model: nn.Module, split: str = "test") -> Evaluation:
        x, y = getattr(self, check_split(split))
        logits = torch.cat([model(x[i : i + self.eval_batch_size]) for i in range(0, len(y), self.eval_batch_size)])
        loss = F.cross_entropy(logits, y).item()
        return Evaluation(loss=loss, probs=torch.softmax(logits, dim=1), labels=y)


def stratified_slice(labels: Tensor, fraction: float, name: str = "task") -> tuple[Tensor, Tensor]:
    """(kept, held-out) indices of ``labels``: ``round(fraction * n)`` held out, each class's share proportional
    to its size (largest remainders first) and at least one of every class with two or more examples; drawn
    with a generator seeded by :data:`VAL_SEED`, so the slice depends on the labels alone."""
    from lrpilot.errors import LRPilotError

    y = labels.cpu()
    n = len(y)
    if n < 2:
        raise LRPilotError(f"task {name}: the train split has {n} example(s), too few to hold out a validation "
                           "slice; pass val=(inputs, labels)")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(VAL_SEED))
    classes, sizes = torch.unique(y, return_counts=True)
    quota = [fraction * int(c) for c in sizes]
    take = [max(math.floor(q), 1 if int(c) >= 2 else 0) for q, c in zip(quota, sizes)]
    by_remainder = sorted(range(len(take)), key=lambda i: (take[i] - quota[i], i))
    for i in by_remainder[: max(0, max(1, round(fraction * n)) - sum(take))]:
        take[i] += int(take[i] < int(sizes[i]) - 1)
    held = torch.zeros(n, dtype=torch.bool)
    for c, k in zip(classes, take):
        members = order[y[order] == c]
        held[members[:k]] = True
    if not held.any():
        raise LRPilotError(f"task {name}: no class of the train split has two examples to spare one for validation; "
                           "pass val=(inputs, labels)")
    idx = torch.arange(n)
    return idx[~held].to(labels.device), idx[held].to(labels.device)


def outside(labels: Tensor, n: int) -> int | None:
    """The index of the first label outside ``[0, n)``, or None."""
    bad = ((labels < 0) | (labels >= n)).nonzero()
    return int(bad[0]) if len(bad) else None


def non_finite(inputs: Tensor) -> int | None:
    """The index of the first example whose inputs hold NaN or infinity, or None (one sum when all are finite)."""
    if not inputs.is_floating_point() or torch.isfinite(inputs.sum()):
        return None
    bad = (~torch.isfinite(inputs.reshape(len(inputs), -1))).any(dim=1).nonzero()
    return int(bad[0]) if len(bad) else None  # None: finite values whose sum overflowed


def check_split(split: str) -> str:
    """``split`` if it is one of :data:`SPLITS`, else LRPilotError naming them."""
    if split not in SPLITS:
        from lrpilot.errors import LRPilotError

        raise LRPilotError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    return split


def _model_name(make_model: Callable[[], nn.Module]) -> str | None:
    """The name of a model factory (a class, a function, or a partial of one); None for a lambda."""
    while isinstance(make_model, functools.partial):
        make_model = make_model.func
    name = getattr(make_model, "__name__", None)
    return None if name == "<lambda>" else name
