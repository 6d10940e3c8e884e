"""PyTorch Lightning: an lrpilot policy or controller drives a Trainer's optimizer (``pip install 'lrpilot[lightning]'``).

Usage::

    from lrpilot.integrations.lightning import LRPilotCallback

    trainer = lightning.pytorch.Trainer(max_epochs=30, callbacks=[LRPilotCallback("COS(k0=0.1, k1=0.001, l=9000)")])
    trainer.fit(module, train_loader)

The policy's ``t`` is the optimizer step (Lightning's ``global_step``): the LR is written after every
optimizer step, for the next one, as :class:`lrpilot.PolicyScheduler` does in a plain loop. A controller
(``autodrop(...)``, ``factor(...)``) sees the same events as in lrpilot's engine: ``after_step`` after each
optimizer step, ``after_check`` with the mean training loss (``training_step``'s returned loss) every 10 optimizer
steps and after the first, for the divergence guard, and ``after_epoch`` at each training epoch's end. The callback's state (the controller's and
the LRs so far) travels in the Trainer's checkpoints, so a fit resumed from one continues the LR sequence.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import torch

from lrpilot.controllers.base import Context, make_controller
from lrpilot.engine import CHECK_EVERY, batch_len
from lrpilot.errors import LRPilotError
from lrpilot.extras import require
from lrpilot.records import RunResult
from lrpilot.vocabulary import CURVES, LOSSES, SPLIT_METRICS

pl = require("lightning.pytorch", "lightning", "lrpilot.integrations.lightning")

METRICS = (*SPLIT_METRICS, *LOSSES)
_CONTROLLER_SEED_OFFSET = 7919  # the engine's: a controller's random stream is seed + 7919


class LRPilotCallback(pl.Callback):
    """Sets the LR of the Trainer's (one) optimizer from ``policy``: policy or controller text, or an object.

    ``lrs`` holds the LR of every optimizer step so far (``lrs[t]``: the LR step ``t`` trained with).
    ``store`` (a :class:`lrpilot.store.Storage`, or a path or URL for :class:`lrpilot.store.Store`) gets the
    finished fit as a run of ``task_name`` (default: the LightningModule's class name) and ``seed`` (default:
    ``PL_GLOBAL_SEED``, which ``lightning.seed_everything`` sets, else 0), its budget the Trainer's estimated
    optimizer steps; its metrics are the Trainer's logged values named as lrpilot's (``top1``, ``test_loss``,
    ...). A bad policy text is an LRPilotError here, before any training.
    """

    def __init__(self, policy: Any, store: Any = None, task_name: str | None = None, seed: int | None = None):
        self.controller = make_controller(policy)
        self.policy_text = str(self.controller)
        self.store, self.task_name = store, task_name
        self.seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) if seed is None else int(seed)
        self.lrs: list[float] = []
        self.epoch_rows: dict[int, dict[str, float]] = {}
        self.samples, self.wall_s = 0, 0.0
        self._pending: dict[str, Any] | None = None
        self._run_id: int | None = None
        self._stepped = False
        self._clock = self._beat = 0.0
        self._loss_sum: Any = 0.0  # training_step's losses since the last check, and how many
        self._loss_n = 0
        self._total = 0  # the fit's optimizer steps, from its start

    # --- the fit --------------------------------------------------------------------------------

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the controller on the Trainer's optimizer (then load a resumed checkpoint's state); claim the run."""
        optimizer = _one_optimizer(trainer)
        total = self._total = _budget(trainer)
        generator = torch.Generator().manual_seed(self.seed + _CONTROLLER_SEED_OFFSET)
        self.controller.start(Context(pl_module, optimizer, _TrainerTask(trainer, pl_module), total,
                                      _iters_per_epoch(trainer), generator))
        if self._pending is not None:
            self._restore(self._pending)
            self._pending = None
        if self.store is not None:
            self.store = _open(self.store)
            self.task_name = self.task_name or type(pl_module).__name__
            self._run_id = self._claim(total)
        self._clock = self._beat = time.perf_counter()

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer) -> None:
        """Record the LR this optimizer step trains with."""
        self.lrs.append(float(optimizer.param_groups[0]["lr"]))
        self._stepped = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        """After an optimizer step (not after a batch that only accumulated gradients): the controller's step."""
        self.samples += batch_len(batch)
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self._loss_sum, self._loss_n = self._loss_sum + loss.detach(), self._loss_n + 1
        if not self._stepped:
            return
        self._stepped = False
        self.controller.after_step()
        step = trainer.global_step
        if self._loss_n and (step % CHECK_EVERY == 0 or step == 1):
            mean = float(self._loss_sum) / self._loss_n  # one host sync per check, as in the engine
            self._loss_sum, self._loss_n = 0.0, 0
            if step < self._total:
                self.controller.after_check(step, mean)
        self._heartbeat()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The controller's epoch end; the epoch's logged values become a row of the run's curves."""
        self.controller.after_epoch(trainer.current_epoch + 1)
        self.epoch_rows[trainer.global_step] = _logged(trainer, CURVES[2:])

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write the finished run into the store, if one was given."""
        self.wall_s += time.perf_counter() - self._clock
        if self._run_id is not None:
            self.store.finish(self._run_id, self.result(trainer))
            self._run_id = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """Give a claimed run back to the store's queue: a later fit trains it."""
        if self._run_id is not None:
            self.store.release(self._run_id)
            self._run_id = None

    # --- checkpoints ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain data and tensors: the controller's state, the LRs, the epoch rows, samples and wall time."""
        return {"policy": self.policy_text, "controller": self.controller.state_dict(), "lrs": list(self.lrs),
                "epoch_rows": {int(k): dict(v) for k, v in self.epoch_rows.items()}, "samples": self.samples,
                "wall_s": self.wall_s}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep a checkpoint's state until :meth:`on_fit_start` has started the controller on the optimizer."""
        if state_dict["policy"] != self.policy_text:
            raise LRPilotError(f"the checkpoint was trained under {state_dict['policy']!r}, not {self.policy_text!r}: "
                               "resume with the same policy text, or start a new fit")
        self._pending = state_dict

    def _restore(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.lrs = [float(lr) for lr in state["lrs"]]
        self.epoch_rows = {int(k): dict(v) for k, v in state["epoch_rows"].items()}
        self.samples, self.wall_s = int(state["samples"]), float(state["wall_s"])

    # --- the store ------------------------------------------------------------------------------

    def _claim(self, total: int) -> int:
        run_id = self.store.claim(self.task_name, self.policy_text, self.seed, total)
        if run_id is None:
            raise LRPilotError(f"the store already has run {self.task_name!r} {self.policy_text!r} seed {self.seed} "
                               f"({total} steps) finished or in training elsewhere: pass another seed or task_name")
        return run_id

    def _heartbeat(self) -> None:
        """Keep a claimed run alive, at most every :attr:`~lrpilot.store.Storage.heartbeat_interval` seconds."""
        if self._run_id is None:
            return
        now = time.perf_counter()
        if now - self._beat >= self.store.heartbeat_interval:
            self.store.heartbeat(self._run_id)
            self._beat = now

    def result(self, trainer: pl.Trainer) -> RunResult:
        """The fit so far as a :class:`~lrpilot.records.RunResult` (status ok)."""
        metrics = dict.fromkeys(METRICS)
        metrics.update(_logged(trainer, METRICS))
        metrics["n_param"] = self.controller.n_param
        steps = len(self.lrs)
        now = float(_one_optimizer(trainer).param_groups[0]["lr"])
        rows = {i: {"lr": lr} for i, lr in enumerate([*self.lrs[1:], now], 1)}  # as the engine: set after i steps
        for i, row in self.epoch_rows.items():
            rows.setdefault(i, {}).update(row)
        iterations = sorted(rows)
        curves = {"iteration": iterations, **{k: [rows[i].get(k, math.nan) for i in iterations] for k in CURVES[1:]}}
        epochs = steps / _iters_per_epoch(trainer)
        cost = {"iterations": steps, "samples": self.samples, "epochs": epochs, "epoch_equivalents": epochs,
                "wall_s": self.wall_s, "workers": trainer.world_size}
        return RunResult(self.task_name or "", self.policy_text, self.seed, "ok", metrics, cost, curves,
                         self.controller.record(), _budget(trainer))


class _TrainerTask:
    """What a controller asks of a task, from the Trainer: AutoDrop's angular-velocity period (every epoch),
    the factor controller's probe loss (the module's ``training_step``) and batches (the train DataLoader)."""

    av_period = None
    av_window = 1

    def __init__(self, trainer: pl.Trainer, module: pl.LightningModule):
        self.trainer, self.module = trainer, module

    def train_loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        """The module's ``training_step`` loss, its ``self.log`` calls muted: a probe is no training step."""
        module = self.module
        module.log = module.log_dict = _mute  # instance attributes, shadowing the methods until deleted
        try:
            out = module.training_step(batch, 0)
        finally:
            del module.log, module.log_dict
        return out["loss"] if isinstance(out, dict) else out

    def train_batches(self, generator: torch.Generator):
        for batch in self.trainer.train_dataloader:
            yield self.trainer.strategy.batch_to_device(batch)


def _mute(*args: Any, **kwargs: Any) -> None:
    """A ``LightningModule.log`` that logs nothing."""


def _one_optimizer(trainer: pl.Trainer) -> torch.optim.Optimizer:
    """The Trainer's only optimizer; LRPilotError for several, or for an LR scheduler that would fight lrpilot."""
    if len(trainer.optimizers) != 1:
        raise LRPilotError(f"LRPilotCallback drives one optimizer, the module's configure_optimizers gives "
                           f"{len(trainer.optimizers)}: return one optimizer")
    if trainer.lr_scheduler_configs:
        raise LRPilotError("LRPilotCallback sets the LR itself: return no lr_scheduler from configure_optimizers")
    return trainer.optimizers[0]


def _budget(trainer: pl.Trainer) -> int:
    """The fit's optimizer steps (``max_steps``, or ``max_epochs`` of the train loader); LRPilotError if unbounded."""
    total = trainer.estimated_stepping_batches
    if not math.isfinite(total):
        raise LRPilotError("LRPilotCallback needs a bounded fit: give the Trainer max_epochs or max_steps")
    return int(total)


def _iters_per_epoch(trainer: pl.Trainer) -> int:
    """Optimizer steps per training epoch (at least 1)."""
    batches = trainer.num_training_batches
    per_epoch = batches if math.isfinite(batches) else trainer.estimated_stepping_batches
    return max(1, int(per_epoch) // trainer.accumulate_grad_batches)


def _logged(trainer: pl.Trainer, names: tuple[str, ...]) -> dict[str, float]:
    """The Trainer's logged values among ``names``, as floats."""
    logged = trainer.callback_metrics
    return {k: float(logged[k]) for k in names if k in logged}


def _open(store: Any):
    """``store`` itself if it is a Storage, else the Store at that path or URL."""
    from lrpilot.store import Storage, Store

    return store if isinstance(store, Storage) else Store(store)
