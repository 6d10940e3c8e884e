"""The ``lrpilot`` command line: each subcommand is a thin call into the library.

A user error (:class:`lrpilot.LRPilotError`, or a bad argument) becomes one line on stderr and exit status 2.
Each command imports its machinery when it runs, so that the commands that train nothing import no torch;
the choices of --executor, --suite and --by come from their registries; the argument types that check
numbers, devices and paths before any work are in :mod:`lrpilot.cli_args`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import traceback
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, ContextManager

from lrpilot import __version__
from lrpilot.decision.ranking import ORDERS, rank
from lrpilot.decision.tables import DEFAULT_COLUMNS, TABLE_COLUMNS, stale_words, table_columns, wrap
from lrpilot.bench.suite import SUITES, suite
from lrpilot.cli_args import (COUNT, EPOCHS, FACTOR, FLAGGED, LR, NONNEGATIVE, POSITIVE, SEED, STEPS, SWEEP_STEPS,
                              WORKERS, check_device, check_folder, check_output, flag_types, path_type)
from lrpilot.errors import LRPilotError
from lrpilot.execution.executors import DEFAULT_RULE, EXECUTORS, make_executor
from lrpilot.files import atomic_path
from lrpilot.vocabulary import clip

HEADINGS = {"function": "LR functions (LRBench Table I, then WSD and ONECYCLE)", "composite": "Composition",
            "controller": "Controllers (adapt the LR online)",
            "search": "Searches (branch training, keep the best; lrpilot train --executor/--workers)"}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr and exit status 2, as the commands' errors."""

    def error(self, message: str):
        if FLAGGED in message:
            message = message.split(FLAGGED, 1)[1]
        print(f"{self.prog}: error: {clip(message, 600, quote=False)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


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
    for kind, heading in HEADINGS.items():
        group = [r for r in rows if r["kind"] == kind]
        if not group:
            continue
        print(heading)
        for r in group:
            print(f"  {r['name']:<{width}}  #Param {r['n_param']:<6} {r['description']}")
            print(f"  {'':<{width}}  e.g. {r['example']}")
        print()
    return 0


def _add_plot(p: argparse.ArgumentParser) -> None:
    p.add_argument("policies", nargs="+", metavar="POLICY", help='policy text, e.g. "TRI2(k0=0.0001, k1=0.9, l=2000)"')
    p.add_argument("--steps", type=STEPS, default=10000, help="iterations to plot (default 10000)")
    p.add_argument("-o", "--output", default="policies.png", type=path_type(check_output, (".png", ".svg", ".pdf"), "plot file"), help="image file (.png, .svg, .pdf)")
    p.add_argument("--log", action="store_true", help="logarithmic LR axis")


def _run_plot(args: argparse.Namespace) -> int:
    from lrpilot.policy import policy
    from lrpilot.present.plots import plot_policies

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
    _add_task(p)
    p.add_argument("--policy", default=None, help="policy or controller text (default: FIX at the task's LR)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=EPOCHS, help="training budget in epochs (default: the task's)")
    budget.add_argument("--steps", type=STEPS, help="training budget in iterations")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--eval-every", type=STEPS, default=None, metavar="R", help="evaluate every R iterations (default: the task's period, else ~20 per run)")
    p.add_argument("--json", metavar="FILE", type=path_type(check_output, (), "JSON file", dash=True),
                   help="write the run (metrics, cost, curves) as JSON to FILE ('-' for stdout)")
    p.add_argument("--checkpoint", metavar="DIR", type=path_type(check_folder, "checkpoint folder"), help="write a checkpoint to DIR at every epoch end")
    p.add_argument("--resume", action="store_true", help="continue the run from the checkpoint in --checkpoint DIR")
    p.add_argument("--diverge-factor", type=FACTOR, default=10.0, help="a running mean loss above this multiple "
                   "(> 1) of the first one is divergence (default 10)")
    p.add_argument("--device", default=None, type=check_device, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--executor", choices=list(EXECUTORS), default=None,
                   help=f"where a search (stpt, alr) runs its candidates: {_executors(EXECUTORS)} "
                        f"(default: {DEFAULT_RULE})")
    p.add_argument("--workers", type=WORKERS, default=None, help="worker processes of a search's local or ray executor")


def _run_train(args: argparse.Namespace) -> int:
    from lrpilot.engine import Unsaved, train
    from lrpilot.search.run import is_search, run_search
    from lrpilot.tasks import TaskRef

    if args.resume and not args.checkpoint:
        raise LRPilotError("--resume needs --checkpoint DIR (the folder the interrupted run wrote)")
    if args.resume:
        _check_resumable(args.checkpoint)
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
        task = TaskRef(args.task, args.data_dir).build()
        try:
            result = train(task, args.policy or f"FIX(k0={task.lr})", seed=args.seed, steps=args.steps,
                           epochs=args.epochs, eval_every=args.eval_every, checkpoint_dir=args.checkpoint,
                           resume=args.resume, diverge_factor=args.diverge_factor, device=args.device,
                           progress=progress)
        except Unsaved as e:  # finished, its final checkpoint not written: the run is shown all the same
            _show_run(e.result, args.json)
            raise
    _show_run(result, args.json)
    return 0


def _show_run(result, json_file: str | None) -> None:
    """Print the run's summary and write its JSON to ``json_file`` (``-``: print the JSON instead); a JSON file
    that cannot be written is one error, the JSON printed on stdout instead so that the finished run is kept."""
    from lrpilot.distill import attach

    text = json.dumps(attach(result).to_dict(), indent=1, allow_nan=False)
    if json_file == "-":
        print(text)
        return
    print(result.summary())
    if json_file:
        try:
            with atomic_path(json_file, "the --json file", "the run's JSON is printed on stdout instead; free "
                             "space or give another --json FILE") as tmp:
                tmp.write_text(text)
        except LRPilotError:
            print(text)
            raise


def _check_resumable(folder: str) -> None:
    """--resume continues a run: its checkpoint folder and file must be there (never a silent fresh start)."""
    from lrpilot.engine import CHECKPOINT

    path = Path(folder).expanduser()
    if not path.is_dir():
        raise LRPilotError(f"--resume: the checkpoint folder {clip(folder, 300)} does not exist; give the folder the "
                           "interrupted run wrote, or drop --resume to start afresh")
    if not (path / CHECKPOINT).is_file():
        found = "is not a file" if (path / CHECKPOINT).exists() else "is missing"
        raise LRPilotError(f"--resume: {clip(str(path / CHECKPOINT), 300)} {found}; give the folder the interrupted run "
                           "wrote, or drop --resume to start afresh")


def _build_task(args: argparse.Namespace):
    """The task of ``--task``, built (and so checked) before the store is opened or anything trains."""
    from lrpilot.tasks import TaskRef

    return TaskRef(args.task, args.data_dir).build()


def _add_task(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, help="built-in task name (lrpilot tasks) or package.module:function")
    p.add_argument("--data-dir", default=None, help="folder with the task's data files (MNIST IDX, CIFAR-10 binary)")


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", default=None,
                   help="results store: a file path, sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB "
                        "(default: $LRPILOT_DB, else ~/.local/share/lrpilot/results.db)")


def _executors(entries: dict) -> str:
    return "; ".join(f"{name}: {e.doc}" for name, e in entries.items())


def _add_by(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--by", choices=list(ORDERS), default=next(iter(ORDERS)), help=f"{what} (default %(default)s)")


def _add_workers(p: argparse.ArgumentParser) -> None:
    jobs = {name: e for name, e in EXECUTORS.items() if e.jobs}
    p.add_argument("--workers", type=WORKERS, default=None, help="parallel workers (default: one per core; Ray: its CPUs)")
    p.add_argument("--executor", choices=list(jobs), default=next(iter(jobs)), help=_executors(jobs))
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray on 127.0.0.1)")
    p.add_argument("--quiet", action="store_true", help="no progress (a bar on a terminal, else a line per run)")


def _at_least_one(args: argparse.Namespace, name: str) -> None:
    if getattr(args, name) < 1:
        raise LRPilotError(f"--{name} {getattr(args, name)} must be >= 1")


def _print(result, as_json: bool) -> None:
    """A result dataclass as JSON for programs, or its ``format()`` for people."""
    from dataclasses import asdict

    if not as_json:
        print(result.format())
        return
    print(json.dumps(result.to_dict() if hasattr(result, "to_dict") else asdict(result), indent=1))


def _open_store(args: argparse.Namespace):
    from lrpilot.store import Store

    return Store(args.db)


def _executor(args: argparse.Namespace):
    """The executor of --executor, --workers and --address: made (not started) before the task loads, so that a
    bad combination is refused before any work."""
    return make_executor(args.executor, args.workers, args.address)


def _progress(args: argparse.Namespace) -> ContextManager:
    """The command's progress on stderr as a context (:class:`lrpilot.progress.Progress`): one bar on a terminal,
    else one line per finished run; None with --quiet."""
    from lrpilot.progress import Progress

    return nullcontext() if args.quiet else Progress()


def _width() -> int:
    """The width of the printed tables and lines: the terminal's (COLUMNS, else the terminal) up to 120; when
    stdout is not a terminal, at least 80 (120 without COLUMNS)."""
    if sys.stdout.isatty():
        return max(20, min(120, shutil.get_terminal_size().columns))
    return min(120, max(80, shutil.get_terminal_size((120, 24)).columns))


def _say(text: str) -> None:
    """Print ``text`` wrapped to :func:`_width`."""
    print("\n".join(wrap(text, _width())))


def _columns(text: str) -> str:
    """An argparse type: the --columns choice, checked."""
    try:
        table_columns(text)
    except LRPilotError as e:
        raise argparse.ArgumentTypeError(f"{FLAGGED}{e}") from None
    return text


def _add_columns(p: argparse.ArgumentParser) -> None:
    p.add_argument("--columns", type=_columns, default=None, metavar="A,B,...",
                   help=f"the table's columns: all, or some of {','.join(TABLE_COLUMNS)} (default: "
                        f"{','.join(DEFAULT_COLUMNS)}, and score with --by score); --json and --csv hold every one")


def _add_bench(p: argparse.ArgumentParser) -> None:
    _add_task(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--policies", nargs="+", metavar="POLICY", help="policy or controller texts")
    which.add_argument("--policy-file", metavar="FILE", help="YAML file: a list of policy texts (or {policies: [...]})")
    which.add_argument("--suite", choices=list(SUITES), help="a suite of policies scaled to the task (by its "
                       "stored range test, else its default LR)")
    p.add_argument("--repeats", type=COUNT, default=3, help="seeds 0..R-1 per policy (default 3)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=EPOCHS, help="training budget in epochs (default: the task's)")
    budget.add_argument("--steps", type=STEPS, help="training budget in iterations")
    _add_by(p, "ranking of the final table")
    _add_columns(p)
    p.add_argument("--race", action="store_true", help="successive halving over the policies (runs clearly behind "
                   "on validation stop at T/eta^2 and T/eta, stored as pruned) and seed racing (a further seed only "
                   "for the policies still tied with the leader)")
    p.add_argument("--eta", type=COUNT, default=3, help="successive halving's reduction factor with --race (default 3)")
    p.add_argument("--slack", type=POSITIVE, default=1.5, help="with --race, stop a run at a rung when its validation "
                   "error exceeds SLACK x the error of the rung's k-th best (default 1.5; 1: ASHA's rule)")
    p.add_argument("--eval-every", type=STEPS, default=None, metavar="R", help="evaluate every R iterations")
    p.add_argument("--device", default=None, type=check_device, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--rerun-failed", action="store_true", help="train the stored failed runs again, whatever "
                   "failed them (without it only failures of the invocation are: a bad device, out of memory)")
    _add_workers(p)
    _add_db(p)


def _given_policies(args: argparse.Namespace) -> list[str] | None:
    """The texts of --policies or --policy-file, each checked (None for --suite, which needs the store)."""
    from lrpilot.grid.runner import canonical_policies

    texts = args.policies or (_read_policy_file(args.policy_file) if args.policy_file else None)
    if texts is not None:
        canonical_policies(texts)
    return texts


def _bench_policies(args: argparse.Namespace, store, task, given: list[str] | None) -> list[str]:
    if given is not None:
        return given
    from lrpilot.bench.range_test import latest
    from lrpilot.engine import budget

    found = latest(store, task.name)
    k_low, k_high, best = ((found.k_low, found.k_high, found.best_lr) if found
                           else (task.lr / 10, task.lr, task.lr))
    return suite(args.suite, budget(task, args.steps, args.epochs), k_low, k_high, best)


def _read_policy_file(path: str) -> list[str]:
    import yaml

    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise LRPilotError(f"cannot read --policy-file {clip(path, 300)} ({e.strerror})") from None
    if len(raw) > 1_000_000:
        raise LRPilotError(f"--policy-file {clip(path, 300)} has {len(raw):,} bytes; a policy file holds at most 1 MB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LRPilotError(f"--policy-file {clip(path, 300)} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset "
                           f"{e.start}); save it as UTF-8") from None
    depth = deepest = 0
    for ch in text:  # YAML's parser recurses per level: refuse deep nesting before it does
        depth += ch in "[{"
        depth -= ch in "]}" and depth > 0
        deepest = max(deepest, depth)
    if deepest > 20:
        raise LRPilotError(f"--policy-file {clip(path, 300)} nests lists or maps {deepest} deep; it holds a flat list "
                           "of policy texts")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise LRPilotError(f"--policy-file {clip(path, 300)} is not valid YAML ({clip(str(e).splitlines()[0], 120)})") from None
    except RecursionError:
        raise LRPilotError(f"--policy-file {clip(path, 300)} nests too deep; it holds a flat list of policy texts") from None
    if isinstance(data, dict):
        data = data.get("policies")
    if not isinstance(data, list) or not data or not all(isinstance(x, str) for x in data):
        raise LRPilotError(f"--policy-file {clip(path, 300)} must hold a non-empty list of policy texts, "
                           "e.g. [FIX(k0=0.01), COS(k0=0.1, k1=0.001, l=5000)]")
    return data


def _run_bench(args: argparse.Namespace) -> int:
    from lrpilot.grid.racing import Halving
    from lrpilot.grid.runner import bench
    from lrpilot.tasks import TaskRef

    _at_least_one(args, "repeats")
    race = Halving(eta=args.eta, slack=args.slack) if args.race else None
    executor = _executor(args)  # its flags (--executor, --address) are checked before the task loads
    task = TaskRef(args.task, args.data_dir).build()
    given = _given_policies(args)
    with _open_store(args) as store:
        policies = _bench_policies(args, store, task, given)
        with _progress(args) as progress:
            done = bench(store, args.task, policies, seeds=range(args.repeats), steps=args.steps, epochs=args.epochs,
                         data_dir=args.data_dir, executor=executor, eval_every=args.eval_every, device=args.device,
                         progress=progress, race=race, rerun_failed=args.rerun_failed)
        _say(f"{done.task}: {done.trained} runs trained, {done.pruned} pruned, {done.failed} failed, "
             f"{done.finished_before} already in {store.where}, {done.held_elsewhere} held by another process")
        for line in done.raced:
            _say(f"  race: {line}")
        print(rank(done.runs(store), args.by, task=done.task).format(args.columns, _width()))
    return 0


def _add_run_filters(p: argparse.ArgumentParser) -> None:
    from lrpilot.store.base import PURPOSES, STATUSES

    p.add_argument("--task", required=True, help="task name as stored")
    p.add_argument("--policy", default=None, help="only the runs of this policy text")
    p.add_argument("--status", choices=STATUSES, default=None, help="only the runs of this status")
    p.add_argument("--purpose", choices=PURPOSES, default=None, help="only benchmark runs or range-test probes")
    _add_db(p)


def _filters(args: argparse.Namespace) -> dict:
    return {"task": args.task, "policy": args.policy, "status": args.status, "purpose": args.purpose}


def _add_runs(p: argparse.ArgumentParser) -> None:
    _add_run_filters(p)
    _add_json_flag(p)


def _run_runs(args: argparse.Namespace) -> int:
    from lrpilot.fingerprint import short

    with _open_store(args) as store:
        records = store.runs(**_filters(args), curves=False)
    rows = [{"id": r.id, "task": r.task, "policy": r.policy, "seed": r.seed, "budget": r.budget, "purpose": r.purpose,
             "status": r.status, "val_top1": (r.metrics or {}).get("val_top1"), "top1": (r.metrics or {}).get("top1"),
             "finished_at": r.finished_at, "fingerprint": r.fingerprint} for r in records]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print(f"no runs of {args.task} match")
        return 0
    table = [("id", "policy", "seed", "budget", "purpose", "status", "val Top-1", "test Top-1", "finished",
              "fingerprint")]
    table += [(str(r["id"]), r["policy"], str(r["seed"]), str(r["budget"]), r["purpose"], r["status"],
               _percent(r["val_top1"]), _percent(r["top1"]), _when(r["finished_at"]), short(r["fingerprint"]))
              for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    print(f"{len(rows)} runs of {args.task}")
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def _percent(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _when(t: float | None) -> str:
    import time

    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _add_delete(p: argparse.ArgumentParser) -> None:
    _add_run_filters(p)
    p.add_argument("--yes", action="store_true", help="delete without asking (needed without a terminal)")


def _run_delete(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        n = len(store.runs(**_filters(args), curves=False))
        what = " ".join(f"--{k} {clip(v, 120)}" for k, v in _filters(args).items() if v is not None)
        if n == 0:
            print(f"no runs match {what} in {store.where}: nothing deleted")
            return 0
        if not args.yes:
            if not sys.stdin.isatty():
                raise LRPilotError(f"refusing to delete {n} runs ({what}) without a terminal to confirm on: "
                                   "pass --yes")
            if input(f"delete {n} runs ({what}) and their curves from {store.where}? [y/N] ").strip().lower() \
                    not in ("y", "yes"):
                print("nothing deleted")
                return 0
        deleted = store.delete_runs(**_filters(args))
    kept = f"; {n - deleted} held by a running bench kept" if deleted < n else ""
    print(f"deleted {deleted} runs of {args.task}{kept}")
    return 0


def _add_rank(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, help="task name as stored")
    _add_by(p, "ranking")
    p.add_argument("--top", type=COUNT, default=None, help="the first N policies of each budget")
    _add_columns(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON for programs")
    out.add_argument("--csv", metavar="FILE", type=path_type(check_output, (), "CSV file", dash=True), help="write the ranking as CSV to FILE ('-' for stdout)")
    _add_stale(p)
    _add_db(p)


def _add_stale(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stale", action="store_true", help="also the runs trained on other data, model or optimizer "
                   "than the latest of their budget (left out and counted by default)")


def _run_rank(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        ranking = rank(store.runs(task=args.task, purpose="bench", curves=False, outcomes=True), args.by, args.top,
                       task=args.task, stale=args.stale)
    if ranking.stale and (args.json or args.csv):
        print(f"lrpilot: {stale_words(ranking.stale)}", file=sys.stderr)
    if args.json:
        print(json.dumps(ranking.to_dicts(), indent=1))
    elif args.csv:
        ranking.to_csv(sys.stdout if args.csv == "-" else args.csv)
    else:
        print(ranking.format(args.columns, _width()))
    return 0


def _add_range_test(p: argparse.ArgumentParser) -> None:
    _add_task(p)
    p.add_argument("--method", choices=("decade", "sweep", "both"), default="both",
                   help="LRBench's decade search, the exponential LR sweep, or both (default)")
    p.add_argument("--repeats", type=COUNT, default=3, help="seeds per LR (decade) and sweeps (default 3)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=EPOCHS, default=2.0, help="budget of each decade run in epochs (default 2)")
    budget.add_argument("--steps", type=STEPS, help="budget of each decade run in iterations")
    p.add_argument("--start", type=LR, default=0.1, help="first (largest) constant LR of the decade search")
    p.add_argument("--tolerance", type=NONNEGATIVE, default=1.0, help="Top-1 points below the best that stay in the range")
    p.add_argument("--sweep-steps", type=SWEEP_STEPS, default=100, help="iterations of each sweep, at least 10 for "
                   "a loss curve (default 100)")
    p.add_argument("--lr-min", type=LR, default=1e-5, help="first LR of the sweep")
    p.add_argument("--lr-max", type=LR, default=10.0, help="last LR of the sweep")
    _add_json_flag(p)
    _add_workers(p)
    _add_db(p)


def _run_range_test(args: argparse.Namespace) -> int:
    from lrpilot.bench.range_test import decade_test, sweep_test

    _at_least_one(args, "repeats")
    if args.method in ("sweep", "both") and args.lr_min >= args.lr_max:
        raise LRPilotError(f"--lr-min {args.lr_min:g} must be below --lr-max {args.lr_max:g}")
    executor = _executor(args)
    _build_task(args)
    seeds = tuple(range(args.repeats))
    out = {}
    with _open_store(args) as store, executor, _progress(args) as progress:
        if args.method in ("sweep", "both"):  # first: it is quick, and the decade search's answer weighs it
            out["sweep"] = sweep_test(store, args.task, seeds=seeds, steps=args.sweep_steps, lr_min=args.lr_min,
                                      lr_max=args.lr_max, data_dir=args.data_dir, executor=executor,
                                      progress=progress)
        if args.method in ("decade", "both"):
            out["decade"] = decade_test(store, args.task, seeds=seeds, steps=args.steps, epochs=args.epochs,
                                        start=args.start, tolerance=args.tolerance, sweep=out.get("sweep"),
                                        data_dir=args.data_dir, executor=executor, progress=progress)
    out["answer"] = (out["decade"] if "decade" in out else out["sweep"]).answer
    if args.json:
        print(json.dumps({k: v if k == "answer" else v.to_dict() for k, v in out.items()}, indent=1))
        return 0
    if d := out.get("decade"):
        print(f"decade search ({d.budget} iterations per run, {len(d.seeds)} seeds, more where the std "
              f"exceeds {d.spread:g} points, up to {d.max_seeds}): good range [{d.k_low:g}, {d.k_high:g}], "
              f"best constant LR {d.best_lr:g}")
        for p in d.points:
            print(f"  FIX {p['lr']:<8g} validation Top-1 {p['top1_mean']:6.2f} +- {p['top1_std']:.2f} (n={p['n']})")
    if w := out.get("sweep"):
        if w.suggestion is None:
            print("LR sweep: no suggestion (the loss never fell): widen --lr-min/--lr-max or add --sweep-steps")
        else:
            print(f"LR sweep ({len(w.curves)} seeds): suggested LR {w.suggestion:.3g}, spread "
                  f"{w.spread[0]:.3g}..{w.spread[1]:.3g}; rule: {w.rule}")
    a = out["answer"]
    print(f"answer: constant LR {'none' if a['lr'] is None else format(a['lr'], '.3g')} ({a['method']}): {a['why']}")
    return 0


def _add_recommend(p: argparse.ArgumentParser) -> None:
    _add_task(p)
    p.add_argument("--top", type=COUNT, default=5, help="how many policies (default 5)")
    p.add_argument("--no-range-test", action="store_true", help="when nothing is stored, say so instead of "
                   "running a range test")
    _add_json_flag(p)
    _add_workers(p)
    _add_db(p)


def _run_recommend(args: argparse.Namespace) -> int:
    from lrpilot.bench.recommend import recommend

    from lrpilot.tasks import TASKS

    _at_least_one(args, "top")
    executor = _executor(args)
    if args.task not in TASKS:  # a built-in name is valid, and its stored policies need no task built
        _build_task(args)
    with _open_store(args) as store, executor, _progress(args) as progress:
        rec = recommend(store, args.task, top=args.top, data_dir=args.data_dir, range_test=not args.no_range_test,
                        executor=executor, progress=progress)
    _print(rec, args.json)
    return 0


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, help="task name as stored")
    p.add_argument("-o", "--output", default="report.html", type=path_type(check_output, (".html", ".md"), "report file"), help="report file: .html (self-contained) or .md "
                   "(the range tests' short runs appear in their own plots, not in the table)")
    _add_by(p, "ranking")
    p.add_argument("--top", type=COUNT, default=None, help="only the first N policies of each budget (default: all)")
    _add_stale(p)
    _add_db(p)


def _run_report(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        _write_report(store, args.task, args.output, args.by, args.top, args.stale)
    return 0


def _write_report(store, task: str, path: str, by: str, top: int | None, stale: bool = False) -> None:
    from lrpilot.report.report import write_report

    records = store.runs(task=task, purpose="bench", curves=True, outcomes=True)
    tests = [a["result"] for a in store.analyses(task=task) if a["kind"].startswith("range-")]
    row = next((t for t in store.tasks() if t["name"] == task), None)
    write_report(records, path, task=task, range_tests=tests, by=by, top=top, task_row=row, stale=stale)
    print(f"wrote {path} ({len(records)} runs of {task})")


def _port(text: str) -> int:
    """A TCP port number, 1 to 65535."""
    port = COUNT(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number: use 1 to 65535")
    return port


def _add_dashboard(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    p.add_argument("--port", type=_port, default=8080, help="port (default %(default)s)")
    _add_db(p)


def _run_dashboard(args: argparse.Namespace) -> int:
    from lrpilot.dashboard.app import serve

    serve(args.db, args.host, args.port)
    return 0


def _add_tune(p: argparse.ArgumentParser) -> None:
    _add_task(p)
    p.add_argument("--budget", type=EPOCHS, default=None, metavar="E",
                   help="compute in epoch-equivalents, all runs counted (default: 10 x the task's epochs)")
    p.add_argument("--repeats", type=COUNT, default=None, help="at most this many seeds per candidate: seed racing "
                   "adds them to the candidates tied with the leader (default 5: lrpilot.bench.tune.SEEDS)")
    p.add_argument("-o", "--output", default=None, type=path_type(check_output, (".html", ".md"), "report file"), help="also write the report (.html or .md) of the task's runs")
    _add_json_flag(p)
    _add_workers(p)
    _add_db(p)


def _run_tune(args: argparse.Namespace) -> int:
    from lrpilot.bench.tune import SEEDS, _too_small, tune

    executor = _executor(args)
    task = _build_task(args)
    if args.budget is not None and args.budget < task.epochs:  # tune's first check, made before the store is
        raise _too_small(args.budget, task)
    with _open_store(args) as store, executor:
        with _progress(args) as progress:
            seeds = SEEDS if args.repeats is None else tuple(range(args.repeats))
            result = tune(store, args.task, budget=args.budget, seeds=seeds,
                          data_dir=args.data_dir, executor=executor, progress=progress)
        _print(result, args.json)  # first: a report that cannot be written loses none of it
        if args.output:
            _write_report(store, result.task, args.output, "utility", None)
    return 0


# name -> (add its arguments, run it, one-line help)
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]] = {
    "policies": (_add_json_flag, _run_policies,
                 "list the LR functions, composites, controllers and searches with their parameters"),
    "plot": (_add_plot, _run_plot, "plot LR policies over iterations into an image"),
    "tasks": (_add_json_flag, _run_tasks, "list the built-in tasks"),
    "train": (_add_train, _run_train, "train a task once under a policy or controller and report the LRBench metrics"),
    "bench": (_add_bench, _run_bench,
              "train policies over seeds in parallel workers into the results store, then rank them"),
    "runs": (_add_runs, _run_runs, "list a task's stored runs (status, validation and test Top-1, fingerprint)"),
    "delete": (_add_delete, _run_delete, "delete a task's stored runs (filtered) and their curves, after asking"),
    "rank": (_add_rank, _run_rank, "rank a task's stored policies by utility, cost, robustness or a weighted score"),
    "range-test": (_add_range_test, _run_range_test, "find a task's good LR range (decade search, exponential sweep)"),
    "recommend": (_add_recommend, _run_recommend, "recommend policies for a task from stored results"),
    "report": (_add_report, _run_report, "write an HTML or Markdown report of a task's stored results"),
    "dashboard": (_add_dashboard, _run_dashboard, "browse the results store in a read-only web app (extra dashboard)"),
    "tune": (_add_tune, _run_tune, "find a good LR policy for a task: range test, a search over the 13 functions "
             "and the adaptive methods, successive halving and seed racing, within a compute budget"),
}


DEBUG_HELP = "print the full traceback of any error (also: environment LRPILOT_DEBUG=1)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = _Parser(prog="lrpilot", description="Find, compare and adapt learning-rate policies.")
    parser.add_argument("--version", action="version", version=f"lrpilot {__version__}")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_args, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        flag_types(p)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lrpilot`` console script.

    A user error is one line on stderr and exit status 2; any other exception is a bug in lrpilot: one line
    naming it, exit status 1. ``--debug`` (or ``LRPILOT_DEBUG=1``) prints the full traceback of either first.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, or a bad argument (its one line already printed)
        return e.code or 0
    debug = getattr(args, "debug", False) or os.environ.get("LRPILOT_DEBUG", "").strip() not in ("", "0")
    try:
        return args.run(args) or 0
    except LRPilotError as e:
        if debug:
            traceback.print_exc()
        print(f"lrpilot {args.command}: error: {clip(e, 2000, quote=False)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `lrpilot policies | head`
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print(f"lrpilot {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001  (the last resort: a bug, said as one line)
        if debug:
            traceback.print_exc()
            print(f"lrpilot {args.command}: internal error (a bug in lrpilot): {type(e).__name__}", file=sys.stderr)
        else:
            message = clip(e, 200, quote=False)
            print(f"lrpilot {args.command}: internal error (a bug in lrpilot): {type(e).__name__}"
                  f"{': ' + message if message else ''}; rerun with --debug (or LRPILOT_DEBUG=1) for the traceback "
                  "and report it", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
