"""The cost of one factor-scoring point (Kim and Yu's Algorithm 1), measured side by side in one process.

1. lrpilot's scoring step (``FactorScheduler.step``: one gradient, then every trial point
   ``theta - f * eta * grad`` evaluated with ``torch.func.functional_call`` on one reused buffer)
   against the slides' literal line 4, a deep copy of the model per factor (gradient computed once
   in both, same batch): median time, and the peak extra memory of one call, that is the rise of
   the process's peak RSS (VmHWM) over its RSS just before, after ``malloc_trim`` and a reset of
   VmHWM through /proc/self/clear_refs (Linux). Targets: functional faster, and its peak lower.
2. One scoring step against one plain training step (forward, backward, optimizer step on the
   task's batch), and against the budget "F eval-mode forward passes + one forward-backward" on
   the probe batch. Target: scoring <= about that budget.

Models: digits-lenet and mnist1d-cnn (built-in tasks), ResNet-20 (He et al., with BatchNorm) on
random CIFAR-shaped data, and a 21 M-parameter MLP on random data, where one copy is 84 MB.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/factor_scoring.py [--factors 5] [--rounds 7]
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import gc
import statistics
import time
from typing import Callable

import torch
from torch import nn

from lrpilot.controllers.factor import FACTOR_LISTS
from lrpilot.controllers.factor_probe import FactorScheduler, task_batch
from lrpilot.tasks.models import CifarResNet
from lrpilot.tasks import ClassificationTask, get_task

_LIBC = ctypes.CDLL(None)
PROBE = 32
ETA = 0.005


def synthetic(name: str, make_model: Callable[[], nn.Module], shape: tuple[int, ...], batch_size: int) -> ClassificationTask:
    """A task of random inputs and labels: enough to time a model, nothing to learn."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(512, *shape, generator=g), torch.randint(0, 10, (512,), generator=g)
    return ClassificationTask(name, (x, y), (x[:64], y[:64]), make_model, 10, batch_size=batch_size)


def wide_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(1024, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
                         nn.Linear(4096, 10))


def deep_copy_probe(model: nn.Module, loss_fn, batch, eta: float, factors) -> torch.Tensor:
    """The slides' line 4 taken literally: a deep copy of the model per factor, stepped in place."""
    model.eval()
    grads = torch.autograd.grad(loss_fn(model, batch), list(model.parameters()))
    losses = []
    for f in factors:
        trial = copy.deepcopy(model)
        with torch.no_grad():
            for p, g in zip(trial.parameters(), grads):
                p.sub_(f * eta * g)
            losses.append(loss_fn(trial, batch))
    model.train()
    return torch.stack(losses)


def median_seconds(fns: dict[str, Callable[[], object]], rounds: int, reps: int) -> dict[str, float]:
    """Median seconds per call of each function, the functions alternating within every round."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm up
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            times[name].append((time.perf_counter() - start) / reps)
    return {k: statistics.median(v) for k, v in times.items()}


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def peak_extra_mb(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median over ``repeats`` calls of the rise of peak RSS over the RSS before the call, in MB."""
    rises = []
    for _ in range(repeats):
        gc.collect()
        _LIBC.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
        before = _status_kb("VmRSS")
        fn()
        rises.append((_status_kb("VmHWM") - before) / 1024)
    return statistics.median(rises)


def measure(task, factors, rounds: int) -> dict[str, float]:
    """Part 1 and part 2 on one task."""
    torch.manual_seed(0)
    model = task.make_model()
    opt = task.make_optimizer(model.parameters(), lr=ETA)
    probe = task_batch(task, torch.Generator().manual_seed(1), PROBE)
    train_batch = next(iter(task.train_batches(torch.Generator().manual_seed(2))))
    sched = FactorScheduler(opt, model, task.train_loss, lambda g: task_batch(task, g, PROBE), ETA, factors=factors,
                            bounds=(ETA / 1e9, ETA * 1e9))

    def scoring():
        sched.eta = ETA  # the same trial points at every call
        sched.step()

    def deep_copy():
        deep_copy_probe(model, task.train_loss, probe, ETA, factors)

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        task.train_loss(model, train_batch).backward()
        opt.step()

    def forward():
        with torch.no_grad():
            task.train_loss(model.eval(), probe)
        model.train()

    def forward_backward():
        torch.autograd.grad(task.train_loss(model.eval(), probe), list(model.parameters()))
        model.train()

    reps = max(1, round(0.05 / _once(scoring)))
    t = median_seconds({"scoring": scoring, "deep_copy": deep_copy, "train": train_step, "forward": forward,
                        "fwd_bwd": forward_backward}, rounds, reps)
    return {"params": sum(p.numel() for p in model.parameters()), **t,
            "budget": len(factors) * t["forward"] + t["fwd_bwd"],
            "scoring_mb": peak_extra_mb(scoring), "deep_copy_mb": peak_extra_mb(deep_copy)}


def _once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return max(time.perf_counter() - start, 1e-6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--factors", type=int, default=5, choices=(3, 5, 7), help="Factor_3, Factor_5 or Factor_7")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    factors = FACTOR_LISTS[f"Factor_{args.factors}"]
    tasks = [get_task("digits-lenet"), get_task("mnist1d-cnn"),
             synthetic("resnet20 (random 3x32x32)", lambda: CifarResNet(20), (3, 32, 32), 128),
             synthetic("mlp-21M (random 1024)", wide_mlp, (1024,), 32)]
    print(f"Factor_{args.factors}, probe batch {PROBE}, {args.rounds} rounds, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'model':<27}{'params':>10}{'score ms':>10}{'copy ms':>9}{'copy/score':>11}{'score MB':>10}"
          f"{'copy MB':>9}{'1 copy MB':>10}{'train ms':>10}{'score/train':>12}{'budget ms':>10}{'score/budget':>13}")
    for task in tasks:
        m = measure(task, factors, args.rounds)
        print(f"{task.name:<27}{m['params']:>10,}{m['scoring'] * 1e3:>10.2f}{m['deep_copy'] * 1e3:>9.2f}"
              f"{m['deep_copy'] / m['scoring']:>11.2f}{m['scoring_mb']:>10.1f}{m['deep_copy_mb']:>9.1f}"
              f"{m['params'] * 4 / 2**20:>10.1f}{m['train'] * 1e3:>10.2f}{m['scoring'] / m['train']:>12.2f}"
              f"{m['budget'] * 1e3:>10.2f}{m['scoring'] / m['budget']:>13.2f}")
    print("copy/score > 1: the functional probe is faster; score MB < copy MB: its peak is lower; "
          "score/budget <= ~1: a scoring point costs at most F forwards + one forward-backward")


if __name__ == "__main__":
    main()
