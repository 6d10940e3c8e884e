"""The ``lrpilot`` command line: each subcommand is a thin call into the library.

A user error (:class:`lrpilot.LRPilotError`) becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

from lrpilot.errors import LRPilotError

def _add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON for programs")


def _run_policies(args: argparse.Namespace) -> int:
    from lrpilot.policy import entries

    rows = [{"name": e.name, "kind": e.kind, "params": list(e.params), "n_param": e.n_param,
             "description": e.doc, "example": e.example} for e in entries()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for kind in ("function", "composite", "controller", "search"):
        group = [r for r in rows if r["kind"] == kind]
        if not group:
            continue
        print({"function": "LR functions (LRBench Table I)", "composite": "Composition",
               "controller": "Controllers (adapt the LR online)",
               "search": "Searches (branch training, keep the best; lrpilot train --executor/--workers)"}[kind])
        for r in group:
            print(f"  {r['name']:<{width}}  #Param {r['n_param']:<6} {r['description']}")
            print(f"  {'':<{width}}  e.g. {r['example']}")
        print()
    return 0


def _add_plot(p: argparse.ArgumentParser) -> None:
    p.add_argument("policies", nargs="+", metavar="POLICY", help='policy text, e.g. "TRI2(k0=0.0001, k1=0.9, l=2000)"')
    p.add_argument("--steps", type=int, default=10000, help="iterations to plot (default 10000)")
    p.add_argument("-o", "--output", default="policies.png", help="image file (.png, .svg, .pdf)")
    p.add_argument("--log", action="store_true", help="logarithmic LR axis")


def _run_plot(args: argparse.Namespace) -> int:
    from lrpilot.policy import policy
    from lrpilot.report.plots import plot_policies

    pols = [policy(s) for s in args.policies]
    plot_policies(pols, args.steps, args.output, log=args.log)
    print(f"wrote {args.output} ({len(pols)} policies, {args.steps} iterations)")
    return 0


def _run_tasks(args: argparse.Namespace) -> int:
    from lrpilot.tasks import list_tasks

    rows = list_tasks()
    if args.json:
        print(json.dumps([{"name": n, "description": d} for n, d in rows], indent=2))
        return 0
    width = max(len(n) for n, _ in rows)
    for name, description in rows:
        print(f"  {name:<{width}}  {description}")
    print("\n  or your own: --task package.module:function (see the README)")
    return 0


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, help="built-in task name (lrpilot tasks) or package.module:function")
    p.add_argument("--policy", default=None, help="policy or controller text (default: FIX at the task's LR)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=float, help="training budget in epochs (default: the task's)")
    budget.add_argument("--steps", type=int, help="training budget in iterations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=None, metavar="R", help="evaluate every R iterations (default: ~20 per run)")
    p.add_argument("--data-dir", default=None, help="folder with the task's data files (MNIST IDX, CIFAR-10 binary)")
    p.add_argument("--json", metavar="FILE", help="write the run (metrics, cost, curves) as JSON to FILE ('-' for stdout)")
    p.add_argument("--checkpoint", metavar="DIR", help="write a checkpoint to DIR at every epoch end")
    p.add_argument("--resume", action="store_true", help="continue the run from the checkpoint in --checkpoint DIR")
    p.add_argument("--diverge-factor", type=float, default=10.0, help="a loss above this multiple of the first one is divergence")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--executor", choices=("inprocess", "local", "ray", "torchrun"), default=None,
                   help="where a search (stpt, alr) runs its candidates (default: torchrun under torchrun, "
                        "local with --workers > 1, else inprocess)")
    p.add_argument("--workers", type=int, default=None, help="worker processes of a search's local or ray executor")


def _run_train(args: argparse.Namespace) -> int:
    from lrpilot.engine import train
    from lrpilot.report.files import atomic_path
    from lrpilot.search.run import is_search, run_search
    from lrpilot.tasks import get_task

    if args.resume and not args.checkpoint:
        raise LRPilotError("--resume needs --checkpoint DIR (the folder the interrupted run wrote)")
    progress = not args.quiet and sys.stderr.isatty()
    if is_search(args.policy):
        if args.checkpoint:
            raise LRPilotError("a search (stpt, alr) does not write checkpoints; drop --checkpoint")
        result = run_search(args.task, args.policy, seed=args.seed, steps=args.steps, epochs=args.epochs,
                            eval_every=args.eval_every, data_dir=args.data_dir, executor=args.executor,
                            workers=args.workers, diverge_factor=args.diverge_factor, device=args.device,
                            progress=progress)
        if result is None:  # a torchrun rank other than 0: rank 0 reports
            return 0
    else:
        task = get_task(args.task, data_dir=args.data_dir)
        result = train(task, args.policy or f"FIX(k0={task.lr})", seed=args.seed, steps=args.steps,
                       epochs=args.epochs, eval_every=args.eval_every, checkpoint_dir=args.checkpoint,
                       resume=args.resume, diverge_factor=args.diverge_factor, device=args.device, progress=progress)
    text = json.dumps(result.to_dict(), indent=1, allow_nan=False)
    if args.json == "-":
        print(text)
    else:
        print(result.summary())
        if args.json:
            with atomic_path(args.json) as tmp:
                tmp.write_text(text)
    return 0


# name -> (add its arguments, run it, one-line help)
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]] = {
    "policies": (_add_json_flag, _run_policies, "list the LR functions, composites and controllers with their parameters"),
    "plot": (_add_plot, _run_plot, "plot LR policies over iterations into an image"),
    "tasks": (_add_json_flag, _run_tasks, "list the built-in tasks"),
    "train": (_add_train, _run_train, "train a task once under a policy or controller and report the LRBench metrics"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="lrpilot", description="Find, compare and adapt learning-rate policies.")
    from lrpilot import __version__

    parser.add_argument("--version", action="version", version=f"lrpilot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_args, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lrpilot`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except LRPilotError as e:
        print(f"lrpilot {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `lrpilot policies | head`
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print(f"lrpilot {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
