"""The engine: the one training loop that every policy, controller, search and benchmark uses.

:func:`train` is the one call; a :class:`Run` configured by a :class:`RunConfig` is the same run
held open, for a search that trains it in segments (:meth:`Run.run_until`), snapshots it
(:meth:`Run.state`) and makes it data-parallel (:meth:`Run.use_task`).

Per iteration: forward, backward, optimizer step, then the controller sets the LR. Every
``eval_every`` iterations (and at the end) the model is evaluated on the validation and test
splits (selections read validation, test is only reported); every
epoch end records the angular velocity of the parameters (AutoDrop's Definition 1), lets the
controller act, and writes a checkpoint. Every few iterations the running mean training loss goes to the
controller (:meth:`~lrpilot.controllers.base.Controller.after_check`; a guarded adaptive controller may put back
an earlier state); a non-finite loss, or a mean loss above ``diverge_factor`` times the first one, then ends the
run with status ``diverged``.
"""

from __future__ import annotations

import collections
import pickle
import itertools
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrpilot import outcomes
from lrpilot.angles import AngleTracker, flat_params
from lrpilot.controllers.base import Context, Controller, make_controller
from lrpilot.errors import LRPilotError
from lrpilot.files import atomic_path
from lrpilot.metrics import classification_metrics, iters_at_best, top1
from lrpilot.policy import Policy
from lrpilot.records import RunResult
from lrpilot.tasks.base import Evaluation, Task
from lrpilot.vocabulary import CURVES, LOSSES, SPLIT_METRICS, clip

EVAL_SPLITS = ("val", "test")  # evaluated every eval_every iterations; the final model's outcomes are stored
CHECKPOINT = "checkpoint.pt"
_CHECKPOINT_KEYS = ("identity", "step", "epoch", "samples", "wall_s", "rows", "interval_sum", "interval_n",
                    "first_loss", "status", "model", "optimizer", "controller", "tracker", "angles", "torch_rng",
                    "data_rng", "controller_rng", "last_eval")
CHECK_EVERY = 10  # iterations between divergence checks (each one syncs the loss to the host)


class Unsaved(LRPilotError):
    """A run that finished but whose final checkpoint could not be written: its ``result`` is not lost."""

    def __init__(self, message: str, result: RunResult):
        super().__init__(message)
        self.result = result


def budget(task: Task, steps: int | None, epochs: float | None) -> int:
    """Total iterations from ``--steps`` or ``--epochs`` (default: the task's epochs)."""
    if steps is not None and epochs is not None:
        raise LRPilotError(f"give --steps ({steps}) or --epochs ({epochs}), not both")
    if steps is not None:
        if steps < 1:
            raise LRPilotError(f"--steps {steps} must be >= 1")
        return int(steps)
    epochs = task.epochs if epochs is None else epochs
    if not epochs > 0:
        raise LRPilotError(f"--epochs {epochs} must be > 0")
    return max(1, round(epochs * task.iters_per_epoch))


def epoch_samples(task: Task) -> int:
    """Training samples in one epoch of ``task``: the unit of the cost's ``epoch_equivalents``."""
    return task.meta.get("n_train") or task.iters_per_epoch * task.batch_size


def batch_len(batch: Any) -> int:
    """Samples in a batch: a tensor, or a tuple/list whose last element holds the labels."""
    return len(batch[-1]) if isinstance(batch, (tuple, list)) else len(batch)


def evaluate(model: torch.nn.Module, task: Task, split: str = "test") -> Evaluation:
    """``task.evaluate`` of ``model`` in eval mode without gradients; the model is left in train mode."""
    model.eval()
    with torch.no_grad():
        ev = task.evaluate(model, split)
    model.train()
    return ev


def eval_period(task: Task, total: int, eval_every: int | None = None) -> int:
    """Iterations between evaluations: ``eval_every``, else the task's own period, else about 20 a run."""
    return eval_every or task.eval_every or max(1, total // 20)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global random streams."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(task: Task, policy: str | Policy | Controller, *, seed: int = 0, steps: int | None = None,
          epochs: float | None = None, eval_every: int | None = None, checkpoint_dir: str | Path | None = None,
          resume: bool = False, diverge_factor: float = 10.0, device: str | None = None,
          progress: bool = False) -> RunResult:
    """Train ``task`` once under ``policy`` (policy or controller text, or an object) and return the run.

    ``checkpoint_dir`` gets a checkpoint at every epoch end; with ``resume`` a run continues
    from it and ends bit-identical (on CPU) to one that was never interrupted.
    """
    config = RunConfig(total=budget(task, steps, epochs), seed=seed, eval_every=eval_every,
                       diverge_factor=diverge_factor, device=device, checkpoint_dir=checkpoint_dir, resume=resume,
                       progress=progress)
    return Run(task, policy, config).run()


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """How a :class:`Run` trains: ``total`` iterations from ``seed``, evaluated every ``eval_every`` (None: the
    task's period, else about 20 a run), ended ``diverged`` above ``diverge_factor`` times the first loss, on
    ``device`` (None: cuda when available), checkpointed in ``checkpoint_dir`` (resumed from it with ``resume``),
    with a progress bar if ``progress``."""

    total: int
    seed: int = 0
    eval_every: int | None = None
    diverge_factor: float = 10.0
    device: str | None = None
    checkpoint_dir: str | Path | None = None
    resume: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.total, int) and self.total >= 1):
            raise LRPilotError(f"total={self.total!r} iterations must be an integer >= 1")
        if self.eval_every is not None and self.eval_every < 1:
            raise LRPilotError(f"--eval-every {self.eval_every} must be >= 1")
        if not self.diverge_factor > 1:
            raise LRPilotError(f"diverge_factor={self.diverge_factor} must be > 1")


class Run:
    """One engine run of ``task`` under ``policy`` (text or object), as ``config`` says: train it to the end
    (:meth:`run`) or in segments (:meth:`run_until`); its :meth:`state` checkpoints and resumes it between
    epochs, or snapshots it anywhere for a search."""

    def __init__(self, task: Task, policy: str | Policy | Controller, config: RunConfig):
        self.task, self.config = task, config
        self.eval_every = eval_period(task, config.total, config.eval_every)
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.checkpoint = Path(config.checkpoint_dir) / CHECKPOINT if config.checkpoint_dir else None
        self.controller = make_controller(policy)
        self.policy_text = str(self.controller)

        seed_everything(config.seed)
        task.to(self.device)
        self.model = task.make_model().to(self.device)
        task.check(self.model)
        self.optimizer = task.make_optimizer(self.model.parameters(), lr=task.lr)
        self.data_gen = torch.Generator().manual_seed(config.seed)
        self.controller_gen = torch.Generator().manual_seed(config.seed + 7919)
        self.controller.start(Context(self.model, self.optimizer, task, config.total, task.iters_per_epoch,
                                      self.controller_gen))

        self.step = self.epoch = self.samples = self.epoch_step = 0
        self.epoch_rng = self.data_gen.get_state()
        self.wall_s = 0.0
        self.rows: dict[int, dict[str, float]] = {}
        self.interval_sum = torch.zeros((), device=self.device)
        self.interval_n = 0
        self.first_loss: float | None = None
        self.status = "running"
        self.tracker = AngleTracker()
        self.angles: collections.deque[float] = collections.deque(maxlen=task.av_window)
        self.last_eval: dict[str, Evaluation] | None = None  # the latest evaluation of each of EVAL_SPLITS
        self.tracker.update(self._flat_params())
        if config.resume and self.checkpoint is not None and self.checkpoint.exists():
            self._load()

    def use_task(self, task: Task) -> None:
        """Train on ``task`` from now on: a view of the same task, such as one data-parallel rank's share
        (:func:`lrpilot.execution.parallel.data_parallel`)."""
        self.task = task

    # --- the loop -------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Train to the end of the budget and return the run."""
        self._train(self.config.total)
        if self.status == "running":
            self.status = "ok"
        return self._finish()

    def stop(self, status: str) -> RunResult:
        """End the run where it is with ``status`` (``pruned`` by successive halving) and return it; a run that is
        not ``ok`` has no final metrics, its curves hold what it measured."""
        self.status = status
        return self._finish()

    def _finish(self) -> RunResult:
        """The run's result, saved in its final checkpoint; :class:`Unsaved`, holding the result, if that write
        fails."""
        result = self._result()
        try:
            self._save(result)
        except LRPilotError as e:
            raise Unsaved(str(e), result) from None
        return result

    def latest(self, key: str) -> float | None:
        """The value of curve ``key`` (e.g. ``val_top1``) at the latest point that measured it, or None."""
        for i in sorted(self.rows, reverse=True):
            if key in self.rows[i]:
                return self.rows[i][key]
        return None

    def run_until(self, iteration: int) -> None:
        """Train up to ``iteration`` (at most the budget) and stop there, possibly mid-epoch: a search's segment."""
        self._train(min(iteration, self.config.total))

    def _train(self, stop: int) -> None:
        """The loop: train until iteration ``stop``, divergence, or the end of the budget."""
        task, model, optimizer = self.task, self.model, self.optimizer
        after_step = self.controller.after_step  # bound after start(), which may rebind it
        after_check = self.controller.after_check
        av_period, eval_every, total = task.av_period, self.eval_every, self.config.total
        bar = _progress_bar(self.config.progress, total, self.step, task.name)
        clock = time.perf_counter()
        try:
            while self.step < stop and self.status == "running":
                model.train()
                open_epoch = False
                for batch in self._epoch_batches():
                    optimizer.zero_grad(set_to_none=True)
                    loss = task.train_loss(model, batch)
                    loss.backward()
                    optimizer.step()
                    after_step()
                    self.step += 1
                    self.samples += batch_len(batch)
                    self.interval_sum += loss.detach()
                    self.interval_n += 1
                    if bar is not None:
                        bar.update()
                    if av_period and self.step % av_period == 0:
                        self.angles.append(self.tracker.update(self._flat_params()))
                    evaluate = self.step % eval_every == 0 or self.step == total
                    if evaluate or self.step % CHECK_EVERY == 0 or self.step == 1:
                        mean = task.loss_sum(self.interval_sum).item() / self.interval_n  # one host sync per check
                        if self.step < total and after_check(self.step, mean):  # restored: a new start
                            self._forget_losses()
                        elif self._diverged(mean):
                            break
                        elif evaluate:
                            self._evaluate(mean)
                    if self.step >= stop:
                        open_epoch = self.step < total and self.step - self.epoch_step < task.iters_per_epoch
                        break
                if self.status != "running" or open_epoch:
                    break
                self._end_epoch(clock)
                clock = time.perf_counter()
        finally:
            if bar is not None:
                bar.close()
        self.wall_s += time.perf_counter() - clock

    def _epoch_batches(self):
        """The current epoch's batches: a new epoch, or the rest of one left open by :meth:`run_until`."""
        if self.step == self.epoch_step:
            self.epoch_rng = self.data_gen.get_state()
            return self.task.train_batches(self.data_gen)
        self.data_gen.set_state(self.epoch_rng)  # the same batches again, the ones already trained on skipped
        return itertools.islice(self.task.train_batches(self.data_gen), self.step - self.epoch_step, None)

    def _flat_params(self) -> torch.Tensor:
        return flat_params(self.model)

    def _diverged(self, mean: float) -> bool:
        """Whether ``mean``, the running train loss, shows divergence (then the run ends ``diverged``)."""
        if self.first_loss is None:
            self.first_loss = mean
        if math.isfinite(mean) and (self.first_loss <= 0 or mean <= self.config.diverge_factor * self.first_loss):
            return False
        self.status = "diverged"
        self._record(self.step, train_loss=mean)
        return True

    def _evaluate(self, train_loss: float) -> None:
        self.last_eval = {split: evaluate(self.model, self.task, split) for split in EVAL_SPLITS}
        values = {"train_loss": train_loss}
        for split, ev in self.last_eval.items():
            values[f"{split}_loss"] = ev.loss
            values[f"{split}_top1"] = math.nan if ev.probs is None else top1(ev.probs, ev.labels)
        self._record(self.step, **values)
        self._forget_losses()

    def _forget_losses(self) -> None:
        """Start the running mean training loss over (after an evaluation, or a controller's restore)."""
        self.interval_sum.zero_()
        self.interval_n = 0

    def _end_epoch(self, clock: float) -> None:
        self.epoch += 1
        self.epoch_step = self.step
        if self.task.av_period is None:
            self.angles.append(self.tracker.update(self._flat_params()))
        finite = [a for a in self.angles if not math.isnan(a)]
        self._record(self.step, angular_velocity=sum(finite) / len(finite) if finite else math.nan)
        self.controller.after_epoch(self.epoch)
        self.wall_s += time.perf_counter() - clock
        if self.step < self.config.total:  # at the end, the finished run's checkpoint follows (_finish)
            self._save()

    def _record(self, iteration: int, **values: float) -> None:
        row = self.rows.setdefault(iteration, {"lr": float(self.optimizer.param_groups[0]["lr"])})
        row.update(values)

    # --- the result -----------------------------------------------------------------------

    def _result(self) -> RunResult:
        iterations = sorted(self.rows)
        curves = {"iteration": iterations}
        for key in CURVES[1:]:
            curves[key] = [self.rows[i].get(key, math.nan) for i in iterations]
        metrics, correct = self._final_metrics()
        cost = {"iterations": self.step, "samples": self.samples, "epochs": self.step / self.task.iters_per_epoch,
                "epoch_equivalents": self.samples / epoch_samples(self.task), "wall_s": self.wall_s, "workers": 1}
        return RunResult(self.task.name, self.policy_text, self.config.seed, self.status, metrics, cost, curves,
                         self.controller.record(), self.config.total, correct)

    def _final_metrics(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The run's metrics (None where it has none) and, for an ok classification run, the final model's
        encoded per-example correctness on each of :data:`EVAL_SPLITS`: the one place every run (plain or a
        search's kept trajectory) gets them. Test metrics keep their plain names (``top1``); validation ones are
        prefixed (``val_top1``); ``best_top1``/``iters_at_best`` come from each split's curve."""
        metrics = dict.fromkeys((*SPLIT_METRICS, *LOSSES, *(f"val_{k}" for k in SPLIT_METRICS), "val_loss"))
        metrics["n_param"] = self.controller.n_param
        if self.status != "ok" or self.last_eval is None:
            return metrics, {}
        test, val = self.last_eval["test"], self.last_eval["val"]
        train_loss = evaluate(self.model, self.task, "train").loss
        metrics.update(train_loss=train_loss, test_loss=test.loss, val_loss=val.loss, ld=test.loss - train_loss)
        if test.probs is None:
            return metrics, {}
        correct = {}
        for split, prefix in (("test", ""), ("val", "val_")):
            ev = self.last_eval[split]
            metrics.update({prefix + k: v for k, v in classification_metrics(ev.probs, ev.labels).items()})
            evals = [(i, r[f"{split}_top1"]) for i, r in sorted(self.rows.items()) if f"{split}_top1" in r]
            metrics[prefix + "best_top1"] = max(t for _, t in evals)
            metrics[prefix + "iters_at_best"] = iters_at_best([i for i, _ in evals], [t for _, t in evals])
            correct[split] = outcomes.encode((ev.probs.argmax(dim=1) == ev.labels).cpu().numpy())
        return metrics, correct

    # --- checkpoints ----------------------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        c = self.config
        return {"task": self.task.name, "policy": self.policy_text, "seed": c.seed, "total": c.total}

    def _save(self, result: RunResult | None = None) -> None:
        if self.checkpoint is None:
            return
        state = {"identity": self._identity(), **self.state(), "result": None if result is None else result.to_dict()}
        with atomic_path(self.checkpoint, "the checkpoint", "free space or use another --checkpoint folder") as tmp, \
                open(tmp, "wb") as f:
            _torch_save(state, f)

    def _load(self) -> None:
        """Continue from the checkpoint file; LRPilotError naming the file for anything but one of this run."""
        path = self.checkpoint
        fix = "delete it or use another --checkpoint folder (or drop --resume)"
        if path.is_dir():
            raise LRPilotError(f"the checkpoint {path} is a folder, not a file: {fix}")
        try:
            state = torch.load(path, weights_only=True, map_location=self.device)
        except pickle.UnpicklingError as e:
            why = "it holds objects other than tensors and plain data" if "weights_only" in str(e) else "damaged"
            raise LRPilotError(f"the checkpoint {path} is not one lrpilot wrote ({why}): {fix}") from None
        except OSError as e:
            raise LRPilotError(f"cannot read the checkpoint {path} ({e.strerror or e}): {fix}") from None
        except Exception as e:  # noqa: BLE001 - torch raises RuntimeError, EOFError, ... for a damaged file
            raise LRPilotError(f"the checkpoint {path} is damaged or not a torch file ({type(e).__name__}): "
                               f"{fix}") from None
        if not isinstance(state, dict):
            raise LRPilotError(f"the checkpoint {path} holds a {type(state).__name__}, not a run's state: {fix}")
        missing = [k for k in _CHECKPOINT_KEYS if k not in state]
        if missing:
            raise LRPilotError(f"the checkpoint {path} lacks {', '.join(missing[:5])}"
                               f"{' ...' if len(missing) > 5 else ''}: it is not a run's state; {fix}")
        if state["identity"] != self._identity():
            raise LRPilotError(f"the checkpoint in {path.parent} is of another run ({clip(state['identity'], 200, quote=False)}), "
                               f"not {self._identity()}; use another --checkpoint directory or drop --resume")
        try:
            self.restore(state)
        except (RuntimeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise LRPilotError(f"the checkpoint {path} does not fit this run's model or optimizer "
                               f"({type(e).__name__}: {clip(first, 200, quote=False)}): {fix}") from None

    def state(self) -> dict[str, Any]:
        """Everything the run needs to go on, also mid-epoch: model, optimizer, controller, RNG states, position,
        curves; plain data and tensors (``torch.load(weights_only=True)``), as checkpoints and search snapshots."""
        return {
            "step": self.step, "epoch": self.epoch, "samples": self.samples, "epoch_step": self.epoch_step,
            "wall_s": self.wall_s, "rows": self.rows, "interval_sum": self.interval_sum.cpu(),
            "interval_n": self.interval_n, "first_loss": self.first_loss, "status": self.status,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "controller": self.controller.state_dict(), "tracker": self.tracker.state_dict(),
            "angles": list(self.angles), "torch_rng": torch.get_rng_state(), "data_rng": self.data_gen.get_state(),
            "epoch_rng": self.epoch_rng, "controller_rng": self.controller_gen.get_state(),
            "last_eval": None if self.last_eval is None else {k: vars(ev) for k, ev in self.last_eval.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state` (of this run or of another run of the same task and model)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.controller.load_state_dict(state["controller"])
        self.tracker.load_state_dict(state["tracker"])
        self.angles.clear()
        self.angles.extend(state["angles"])
        torch.set_rng_state(state["torch_rng"])
        self.data_gen.set_state(state["data_rng"])
        self.controller_gen.set_state(state["controller_rng"])
        self.step, self.epoch, self.samples = state["step"], state["epoch"], state["samples"]
        self.epoch_step = state.get("epoch_step", self.step)  # checkpoints before mid-epoch segments: epoch ends
        self.epoch_rng = state.get("epoch_rng", self.data_gen.get_state())
        self.wall_s, self.rows, self.first_loss = state["wall_s"], state["rows"], state["first_loss"]
        self.interval_sum = state["interval_sum"].to(self.device)
        self.interval_n, self.status = state["interval_n"], state["status"]
        last = state["last_eval"]
        self.last_eval = None if last is None else {k: Evaluation(**last[k]) for k in EVAL_SPLITS}


def _torch_save(obj: Any, file: Any) -> None:
    """``torch.save(obj)`` into the open ``file``; a write that fails raises its OSError (a full disk, a quota),
    which torch's writer reports as a RuntimeError ("unexpected pos")."""
    failed: list[OSError] = []

    class Writer:
        def write(self, data: bytes) -> int:
            try:
                return file.write(data)
            except OSError as e:
                failed.append(e)
                raise

        def flush(self) -> None:
            file.flush()

    try:
        torch.save(obj, Writer())
    except RuntimeError:
        if failed:
            raise failed[0] from None
        raise


def _progress_bar(enabled: bool, total: int, initial: int, name: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="it", mininterval=0.5, leave=False)
