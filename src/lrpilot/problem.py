"""lrpilot on the user's own PyTorch objects: a model factory, an optimizer, a loss and DataLoaders (or Datasets).

A :class:`Problem` is a :class:`lrpilot.tasks.Task`, so the range test, bench, tune and recommend run it
through the same engine, executors and store as the built-in tasks, stored under its ``name``. Training
batches are reshuffled each epoch by the run's seeded generator (never the DataLoader's global RNG), keeping
the given loader's batch size, collate_fn and worker settings; evaluation reads each split in order.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, RandomSampler, SequentialSampler, Subset

from lrpilot.errors import DataError, LRPilotError
from lrpilot.tasks import check_task
from lrpilot.tasks.base import Evaluation, Task, _model_name, check_split, non_finite, outside, stratified_slice
from lrpilot.vocabulary import clip

#: the DataLoader settings a Problem keeps from a given loader (the sampler is its own: seeded shuffling)
_KEPT = ("batch_size", "collate_fn", "num_workers", "pin_memory", "drop_last", "worker_init_fn", "timeout")


class Problem(Task):
    """The user's model, optimizer, loss and data as a lrpilot task named ``name``.

    ``model``: a factory ``() -> nn.Module`` (a class or function; called once per run, after seeding).
    ``optimizer``: a factory ``(params, lr=...) -> Optimizer``, e.g. an optimizer class, with ``optimizer_args``
    as further keywords (default: SGD, momentum 0.9, weight decay 5e-4). ``loss``: ``(output, target) -> mean
    loss`` (default cross-entropy). ``train``, ``val``, ``test``: DataLoaders or map-style Datasets yielding
    ``(inputs, labels)`` with integer labels (a Dataset is batched with ``batch_size``); without ``val``, a
    fixed stratified ``val_fraction`` of ``train`` is held out (:func:`lrpilot.tasks.base.stratified_slice`).
    ``num_classes``: default the model's output width. ``epochs``: the default budget; ``lr``: the default
    constant LR. Each split is read once when the Problem is made (labels, checks).
    """

    def __init__(self, model: Callable[[], nn.Module], train: Any, test: Any, *, name: str, val: Any = None,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 optimizer_args: dict[str, Any] | None = None, loss: Callable[[Tensor, Tensor], Tensor] | None = None,
                 epochs: int = 10, lr: float = 0.01, num_classes: int | None = None, batch_size: int = 64,
                 val_fraction: float = 0.1, meta: dict[str, Any] | None = None, eval_every: int | None = None):
        if not isinstance(name, str) or not name.strip():
            raise LRPilotError(f"Problem name={clip(name)} must be a non-empty text: the store keeps its runs under it")
        for what, fn in (("model", model), ("optimizer", optimizer), ("loss", loss)):
            if not callable(fn) and (fn is not None or what == "model"):
                raise LRPilotError(f"Problem {name!r}: {what}={clip(fn)} must be callable (see help(lrpilot.Problem))")
        self.name, self.epochs, self.lr, self.eval_every = name, epochs, lr, eval_every
        self.model_fn, self.optimizer_fn, self.optimizer_args = model, optimizer, dict(optimizer_args or {})
        self.loss_fn = loss or F.cross_entropy
        self.device = torch.device("cpu")
        self.data, labels = _splits(name, {"train": train, "val": val, "test": test}, batch_size, val_fraction)
        self.batch_size = self.data["train"][1]["batch_size"]
        self.iters_per_epoch = len(self._loader("train", torch.Generator()))
        if self.iters_per_epoch == 0:
            raise LRPilotError(f"Problem {name!r}: the train loader gives no batch (drop_last with "
                               f"{len(labels['train'])} examples < batch_size {self.batch_size})")
        width, input_shape = self._probe()
        self.num_classes = width if num_classes is None else num_classes
        _check_labels(labels, self.num_classes, width, name)
        self.meta = {"dataset": name, "model": _model_name(model), "input_shape": input_shape,
                     "n_train": len(labels["train"]), "n_val": len(labels["val"]), "n_test": len(labels["test"]),
                     "num_classes": self.num_classes, **(meta or {})}
        check_task(self, name)

    def _probe(self) -> tuple[int, list[int]]:
        """The output width of a fresh model on the first training batch, and the input shape; the global RNG
        is left as it was."""
        x, _ = next(iter(self._loader("train", torch.Generator().manual_seed(0))))
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model = self.model_fn()
            if not isinstance(model, nn.Module):
                raise LRPilotError(f"Problem {self.name!r}: model() returned {type(model).__name__}, expected an "
                                   "nn.Module; pass the model's class or a function that builds it")
            out = model.eval()(x)
        if not isinstance(out, Tensor) or out.dim() != 2:
            raise LRPilotError(f"Problem {self.name!r}: the model's output on a batch is "
                               f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}; expected "
                               "(batch, classes) logits")
        return out.shape[1], list(x.shape[1:])

    def _loader(self, split: str, generator: torch.Generator | None = None) -> DataLoader:
        """A DataLoader over ``split`` with the given loader's settings: shuffled by ``generator``, else in order."""
        dataset, settings = self.data[split]
        settings = settings if generator is not None else {**settings, "drop_last": False}
        return DataLoader(dataset, shuffle=generator is not None, generator=generator, **settings)

    def to(self, device: torch.device | str) -> "Problem":
        self.device = torch.device(device)
        return self

    def make_model(self) -> nn.Module:
        return self.model_fn()

    def make_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        if self.optimizer_fn is None:
            return super().make_optimizer(params, lr)
        optimizer = self.optimizer_fn(params, lr=lr, **self.optimizer_args)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise LRPilotError(f"Problem {self.name!r}: optimizer(params, lr=...) returned "
                               f"{type(optimizer).__name__}, expected a torch.optim.Optimizer")
        return optimizer

    def train_batches(self, generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in self._loader("train", generator):
            yield x.to(self.device), y.to(self.device)

    def train_loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        return self.loss_fn(model(x), y)

    def evaluate(self, model: nn.Module, split: str = "test") -> Evaluation:
        outputs, labels, total = [], [], 0.0
        for x, y in self._loader(check_split(split)):
            x, y = x.to(self.device), y.to(self.device)
            out = model(x)
            total += float(self.loss_fn(out, y)) * len(y)
            outputs.append(out)
            labels.append(y)
        y = torch.cat(labels)
        return Evaluation(loss=total / len(y), probs=torch.softmax(torch.cat(outputs), dim=1), labels=y)

    # --- the library's commands on this problem ------------------------------------------------

    def train(self, policy: str | None = None, seed: int = 0, **kwargs: Any):
        """One engine run under ``policy`` (default ``FIX(k0=lr)``); ``kwargs`` as :func:`lrpilot.engine.train`."""
        from lrpilot.engine import train

        return train(self, policy or f"FIX(k0={self.lr})", seed=seed, **kwargs)

    def range_test(self, store: Any = None, *, method: str = "both", seeds: tuple[int, ...] = (0, 1),
                   executor: Any = "inprocess", workers: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """The LR range test (``method`` "decade", "sweep" or "both"), stored in ``store`` (default: the default
        store); returns ``{"decade", "sweep", "answer"}`` as ``lrpilot range-test --json`` does, the decade search's
        as a :class:`~lrpilot.bench.range_test.RangeTestResult`, the sweep's as a
        :class:`~lrpilot.bench.range_test.SweepResult`. ``kwargs`` go to
        :func:`lrpilot.bench.range_test.decade_test` (``epochs``, ``tolerance``, ...)."""
        from lrpilot.bench.range_test import decade_test, sweep_test

        if method not in ("decade", "sweep", "both"):
            raise LRPilotError(f"range test method={clip(method)}: use decade, sweep or both")
        out: dict[str, Any] = {}
        with _store(store) as db, _executor(executor, workers) as ex:
            if method != "decade":  # first: it is quick, and the decade search's answer weighs it
                out["sweep"] = sweep_test(db, self, seeds=seeds, executor=ex)
            if method != "sweep":
                out["decade"] = decade_test(db, self, seeds=seeds, sweep=out.get("sweep"), executor=ex, **kwargs)
        out["answer"] = (out["decade"] if "decade" in out else out["sweep"]).answer
        return out

    def bench(self, policies: list[str], *, seeds: tuple[int, ...] = (0,), store: Any = None,
              executor: Any = "inprocess", workers: int | None = None, **kwargs: Any):
        """Train every (policy, seed) not stored yet (:func:`lrpilot.grid.runner.bench`; ``kwargs``: ``epochs``,
        ``steps``, ``race``, ...), then return the ranking of the problem's stored policies
        (:func:`lrpilot.decision.ranking.rank`: ``.format()``, ``.rows``, the decision marked ``chosen``)."""
        from lrpilot.decision.ranking import rank
        from lrpilot.grid.runner import bench

        with _store(store) as db, _executor(executor, workers) as ex:
            bench(db, self, policies, seeds=seeds, executor=ex, **kwargs)
            return rank(db.runs(task=self.name, purpose="bench", outcomes=True))

    def tune(self, budget: float | None = None, *, store: Any = None, seeds: tuple[int, ...] | None = None,
             executor: Any = "inprocess", workers: int | None = None, **kwargs: Any):
        """:func:`lrpilot.bench.tune.tune` on this problem within ``budget`` epoch-equivalents; its result's
        ``format()`` says the decision."""
        from lrpilot.bench.tune import SEEDS, tune

        with _store(store) as db, _executor(executor, workers) as ex:
            return tune(db, self, budget=budget, seeds=SEEDS if seeds is None else seeds, executor=ex, **kwargs)


def _store(store: Any):
    """``store`` (a Storage, a path or URL; None: the default store) as a context manager; one opened here is
    closed at its end."""
    from lrpilot.store import Storage, Store

    return contextlib.nullcontext(store) if isinstance(store, Storage) else Store(store)


def _executor(executor: Any, workers: int | None):
    """An executor name ("inprocess", "local", "ray") with ``workers``, or an Executor as it is."""
    from lrpilot.execution.executors import Executor, make_executor

    return executor if isinstance(executor, Executor) else make_executor(executor, workers)


def _splits(name: str, given: dict[str, Any], batch_size: int,
            val_fraction: float) -> tuple[dict[str, tuple[Dataset, dict[str, Any]]], dict[str, Tensor]]:
    """Each split's dataset with its DataLoader settings, and its labels; without ``val``, the stratified
    ``val_fraction`` of train held out."""
    data = {split: _loader_settings(d, split, batch_size, name) for split, d in given.items() if d is not None}
    labels = {split: _read_labels(dataset, settings, split, name) for split, (dataset, settings) in data.items()}
    if "val" in data:
        return data, labels
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction <= 0.5:
        raise LRPilotError(f"Problem {name!r}: val_fraction={clip(val_fraction)} must be a number in (0, 0.5], the "
                           "share of the training data held out for validation (or pass val=)")
    keep, held = stratified_slice(labels["train"], val_fraction, name)
    dataset, settings = data["train"]
    data["train"], data["val"] = (Subset(dataset, keep.tolist()), settings), (Subset(dataset, held.tolist()), settings)
    labels["train"], labels["val"] = labels["train"][keep], labels["train"][held]
    return data, labels


def _loader_settings(data: Any, split: str, batch_size: int, name: str) -> tuple[Dataset, dict[str, Any]]:
    """The dataset of a split and the DataLoader settings to read it with, or one LRPilotError."""
    where = f"Problem {name!r}: {split}="
    if isinstance(data, DataLoader):
        if data.batch_size is None or not isinstance(data.sampler, (RandomSampler, SequentialSampler)):
            raise LRPilotError(f"{where}DataLoader has a custom sampler or batch_sampler; lrpilot shuffles with its "
                               "own seeded generator: pass the Dataset, or a DataLoader with batch_size and shuffle")
        dataset, settings = data.dataset, {key: getattr(data, key) for key in _KEPT}
        if data.num_workers > 0:
            settings.update(prefetch_factor=data.prefetch_factor, persistent_workers=data.persistent_workers,
                            multiprocessing_context=data.multiprocessing_context)
    elif isinstance(data, Dataset):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise LRPilotError(f"Problem {name!r}: batch_size={clip(batch_size)} must be a whole number >= 1")
        dataset, settings = data, {"batch_size": batch_size}
    else:
        raise LRPilotError(f"{where}{type(data).__name__} is neither a torch DataLoader nor a Dataset: wrap tensors "
                           "as torch.utils.data.TensorDataset(inputs, labels)")
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        raise LRPilotError(f"{where}an iterable dataset without indices: lrpilot reshuffles by index; give a "
                           "map-style Dataset (with __getitem__ and __len__)")
    if len(dataset) == 0:
        raise LRPilotError(f"{where} is empty (0 examples)")
    return dataset, settings


def _read_labels(dataset: Dataset, settings: dict[str, Any], split: str, name: str) -> Tensor:
    """Every label of a split, in order, read through its DataLoader settings; one LRPilotError if a batch is not
    an ``(inputs, labels)`` pair with integer labels."""
    labels = []
    for batch in DataLoader(dataset, **{**settings, "drop_last": False}):
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, Tensor) for t in batch)):
            raise LRPilotError(f"Problem {name!r}: a {split} batch is {type(batch).__name__}; expected a pair "
                               "(inputs, labels) of tensors")
        y = batch[1]
        if y.dim() != 1 or y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
            raise LRPilotError(f"Problem {name!r}: {split} labels are {y.dtype} of shape {tuple(y.shape)}; expected "
                               "one integer class index per example")
        if (i := non_finite(batch[0])) is not None:
            raise DataError(f"Problem {name!r}: the {split} split's example {sum(map(len, labels)) + i} has a "
                            "non-finite input (NaN or infinity); clean or drop it")
        labels.append(y.long())
    return torch.cat(labels)


def _check_labels(labels: dict[str, Tensor], num_classes: Any, width: int, name: str) -> None:
    """Refuse a ``num_classes`` below 2 and labels outside ``[0, num_classes)`` or the model's ``width`` outputs."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise LRPilotError(f"Problem {name!r}: num_classes={clip(num_classes)} must be a whole number >= 2")
    n = min(num_classes, width)
    for split, y in labels.items():
        if (i := outside(y, n)) is not None:
            raise DataError(f"Problem {name!r}: the {split} split has label {int(y[i])}, outside [0, {n}) at "
                            f"example {i} (num_classes={num_classes}, default the model's output width {width})")

