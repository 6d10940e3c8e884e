"""The engine against a minimal hand-written PyTorch loop on the same task.

Same seed, same model initialisation, same batches, same LR policy and the same evaluation
schedule (test loss and Top-1 every R iterations, the train-split loss at the end, which
LRBench's LD needs); both run in this process, alternating,
and the figure is the ratio of the median wall times. Target: engine <= 1.03 x the loop.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/engine_overhead.py [--task digits-lenet] [--epochs 10] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import lrpilot
from lrpilot.engine import seed_everything, train
from lrpilot.tasks import get_task


def hand_written(task, policy_text: str, seed: int, total: int, eval_every: int) -> float:
    """What a user would write: the loop, a LambdaLR per iteration, evaluation of the validation and test splits
    every R steps (as the engine does). Returns the test top-1."""
    seed_everything(seed)
    model = task.make_model()
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=task.momentum, weight_decay=task.weight_decay)
    pol = lrpilot.policy(policy_text)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: pol(t))
    gen = torch.Generator().manual_seed(seed)
    x, y = task.train
    xt, yt = task.test
    xv, yv = task.val
    step, running, top1 = 0, 0.0, 0.0
    while step < total:
        model.train()
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), task.batch_size):
            idx = order[i:i + task.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item()
            step += 1
            if step % eval_every == 0 or step == total:
                model.eval()
                with torch.no_grad():
                    for xs, ys in ((xv, yv), (xt, yt)):
                        logits = model(xs)
                        F.cross_entropy(logits, ys).item()
                        top1 = (logits.argmax(1) == ys).float().mean().item() * 100
                model.train()
                running = 0.0
            if step == total:
                break
    model.eval()
    with torch.no_grad():  # the train loss in eval mode at the end: LRBench's LD needs it
        F.cross_entropy(model(x), y).item()
    return top1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="digits-lenet")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--policy", default="COS(k0=0.05, k1=0.0005, l=430)")
    args = ap.parse_args()
    task = get_task(args.task)
    total = args.epochs * task.iters_per_epoch
    eval_every = max(1, total // 20)
    train(task, args.policy, steps=20)  # warm up torch's lazy initialisation for both
    engine_s, loop_s, out = [], [], {}

    def run_engine():
        out["engine"] = train(task, args.policy, seed=0, steps=total, eval_every=eval_every).metrics["top1"]

    def run_loop():
        out["loop"] = hand_written(task, args.policy, 0, total, eval_every)

    for i in range(args.rounds):  # alternate which goes first, so neither always gets the warmer cache
        for fn, times in ((run_engine, engine_s), (run_loop, loop_s))[:: 1 if i % 2 == 0 else -1]:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    e, h = statistics.median(engine_s), statistics.median(loop_s)
    per_round = sorted(a / b for a, b in zip(engine_s, loop_s))
    print(f"{args.task}: {total} iterations, eval every {eval_every}, torch threads {torch.get_num_threads()}, {args.rounds} rounds")
    print(f"  engine       {e:7.3f} s  (Top-1 {out['engine']:.2f}%)")
    print(f"  hand-written {h:7.3f} s  (Top-1 {out['loop']:.2f}%)")
    print(f"  ratio engine / hand-written = {e / h:.3f}  (target <= 1.03); "
          f"per round {per_round[0]:.3f}..{per_round[-1]:.3f}, median {statistics.median(per_round):.3f}")


if __name__ == "__main__":
    main()
