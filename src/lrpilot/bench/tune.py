"""``lrpilot tune``: the one command for a new task: range test, a search over policies, racing, a decision.

Steps, all stored, so that a second call reuses what the first measured:

1. the range test's answer (decade search, one seed, one epoch per LR, or a tenth of the run when that is
   shorter) unless one is stored;
2. the first candidates, each trained whole (no successive halving, which would judge a schedule that decays late
   by its early iterations): FIX at the range test's answer ``best`` (the lower end of its good range, which
   trains at the full budget), COS from the top of its good range, and WSD at ``best`` (Hägele et al.'s
   warmup-stable-decay: a 5 % warmup, the last 20 % a 1-sqrt cooldown to 0);
3. a search over the 13 functions' parameters around the range test (:mod:`lrpilot.bench.space`):
   LRBench's own suite scaled to the range test first (:func:`lrpilot.bench.space.suite_trials`), then
   proposals of Optuna's TPE sampler (multivariate, seeded, a constant liar for the parallel workers),
   ``workers`` at a time, each trained on the first seed with successive halving
   (:mod:`lrpilot.grid.racing`; the rungs' scores are those of the earlier batches, so that the result
   does not depend on which worker finishes first) and its validation Top-1 (or its rung score, when
   pruned) told to the sampler, until ``search_share`` of the compute is spent;
   then the adaptive methods with settings that can move on the task, with successive halving, where
   they fit in 70 % of the compute, each at its defaults from the range test's answer (``factor(k0=best)``:
   the lookahead probe every 1/40 of the run within ``[k0 / 1000, 10 k0]``; ``autodrop(k0=best, rho=0.2)``:
   the relative saturation test over 40 periods a run; ``stpt(k0=best)``: each epoch, of the LRs within noise
   of the best, the one nearest the current LR);
4. the LR trajectories of the adaptive candidates tied with the best on the first seed, made readable (at most
   6 pieces, LRs to 3 significant figures) and trained as candidates of their own: a trajectory must win on
   validation across seeds like any policy, not on the run it came from; an adaptive candidate whose LR never
   moved is said so;
5. seed racing among the policies tied with the leader on validation (at most ``contenders``, best first),
   more seeds (up to ``seeds``) while the decision is open and the compute lasts, for the leading ones
   that fit when not all do;
6. the decision (:func:`lrpilot.decision.rule.decide`): the best on validation, the policies tied with
   it, and among those shown close to it the cheapest; its test Top-1 with its interval is reported,
   never used to choose.

The budget counts epoch-equivalents of compute (samples trained over the training split's size): the
range test's runs and every candidate's runs, pruned ones and a search's probes included.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from lrpilot.bench.range_test import RangeTestResult, decade_test, latest
from lrpilot.bench.space import propose, suite_trials
from lrpilot.decision.rule import Decision, decide
from lrpilot.distill import replayable
from lrpilot.engine import budget as iterations_of
from lrpilot.errors import LRPilotError
from lrpilot.execution.executors import LocalExecutor
from lrpilot.grid.racing import Halving
from lrpilot.grid.runner import Grid, canonical_policies
from lrpilot.policy.text import fmt_sig, parse
from lrpilot.progress import expect_budget
from lrpilot.records import RunRecord, json_safe
from lrpilot.store import Storage
from lrpilot.tasks import TaskRef

_STPT_COST = 1.6  # STPT's epoch-equivalents per epoch with 8 LRs and alpha 0.08: 8 x 0.08 + 0.92, rounded up
_AUTODROP_K_MIN = 1e-4  # AutoDrop's default floor (k_min), which must be below k0
_SEARCH_REPEATS = 20  # the search ends after this many batches in a row of proposals all trained before
_ADAPTIVE_SHARE = 0.7  # the adaptive candidates are trained when they fit in this share of the budget
_RANGE_SHARE = 0.1  # at most this share of the run per LR of the range test (else one epoch)
SCHEDULES = 3  # the first candidates that are schedules; the adaptive ones follow
WSD_WARMUP = 0.05  # of the run: the first WSD candidate's warmup (its cooldown: WSD's default, the last 20 %, 1-sqrt)
SEEDS = (0, 1, 2, 3, 4)  # at most this many seeds per candidate: seed racing stops earlier once the leader is resolved


@dataclass
class TuneResult:
    """The decision of a tune, what it tried and what it spent."""

    task: str
    best: str  # replayable policy text
    trained_as: str  # the text the chosen runs were trained under
    decision: Decision
    candidates: list[str]
    pruned: int
    notes: list[str]
    epoch_equivalents: float
    budget: float
    range: dict[str, float] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, Any]:
        """The chosen policy's validation and test Top-1: mean and 95 % interval."""
        d = self.decision
        return {f"{split}_{k}": v for split, ivs in (("val_top1", d.val), ("top1", d.test))
                for k, v in (("mean", ivs[self.trained_as].mean), ("ci", ivs[self.trained_as].to_list()))
                if self.trained_as in ivs}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the fields, the chosen policy's metrics, the decision's words; NaN and infinity as None."""
        return json_safe({**asdict(self), "metrics": self.metrics, "decided": self.decision.words()})

    def format(self) -> str:
        """Lines for the terminal."""
        d = self.decision
        lines = [f"{self.task}: chose {self.best}", f"  {d.words()}",
                 f"  over seeds {', '.join(map(str, d.seeds.get(self.trained_as, ())))}; the test Top-1 is reported, "
                 "not used to choose"]
        if self.trained_as != self.best:
            lines.append(f"  found by {self.trained_as}; the text above replays its LR trajectory")
        if len(d.seeds.get(self.trained_as, ())) == 1:
            lines.append("  decided on one seed: the intervals cover the examples only, not the seeds; raise --budget "
                         "so that seed racing can run")
        if len(d.tied) > 1:
            lines.append("  tied with the best: " + "; ".join(
                f"{p} {d.val[p].mean:.2f}" for p in d.tied[:8]) + (" ..." if len(d.tied) > 8 else ""))
        lines.append(f"  range test: good range [{self.range['k_low']:g}, {self.range['k_high']:g}] (best short run "
                     f"{self.range['best_lr']:g}); its answer, the start of the candidates: {self.range['answer']:g}")
        lines.append(f"  {len(self.candidates)} candidates ({self.pruned} pruned by successive halving), "
                     f"{self.epoch_equivalents:.1f} of {self.budget:g} epoch-equivalents of compute")
        lines += [f"  {n}" for n in self.notes]
        from lrpilot.tasks import TASKS  # a built-in name or "module:function" is a task the command line builds

        lines.append(f"  train with it: lrpilot train --task {self.task} --policy \"{self.best}\"" if self.task in TASKS
                     or ":" in self.task else f"  train with it: problem.train({self.best!r}) (a lrpilot.Problem), "
                     f"or lrpilot.PolicyScheduler(optimizer, {self.best!r}) in your own loop")
        return "\n".join(lines)


def tune(store: Storage, task: str | TaskRef, *, budget: float | None = None, seeds: tuple[int, ...] = SEEDS,
         data_dir: str | None = None, executor: Any = None, progress: Callable[[str], None] | None = None,
         search_share: float = 0.5, contenders: int = 4, sampler_seed: int = 0,
         halving: Halving = Halving()) -> TuneResult:
    """Tune ``task`` (a name with ``data_dir``, or a :class:`TaskRef`) within ``budget`` epoch-equivalents
    (default: 10 runs of the task's budget); see the module."""
    ref = TaskRef.of(task, data_dir)
    task_obj = ref.build()
    budget = 10.0 * task_obj.epochs if budget is None else budget
    if not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget > 0):
        raise LRPilotError(f"--budget {budget!r} must be a number of epoch-equivalents > 0")
    if not seeds:
        raise LRPilotError("tune needs at least one seed")
    expect_budget(progress, budget)
    with executor or LocalExecutor() as executor:  # one set of workers for the range test and the candidates
        return _Tune(store, ref, budget, tuple(dict.fromkeys(seeds)), executor, progress, search_share,
                     contenders, sampler_seed, halving).run()


class _Tune:
    """One tune's state: its compute, its candidates, the sampler."""

    def __init__(self, store, ref, budget, seeds, executor, progress, search_share, contenders, sampler_seed,
                 halving):
        self.store, self.ref, self.budget, self.seeds = store, ref, budget, seeds
        self.say = progress or (lambda line: None)
        self.task = ref.build()
        self.total = iterations_of(self.task, None, None)
        self.grid = Grid(store, ref, self.total, executor, progress=progress)
        self.search_share, self.contenders, self.sampler_seed, self.halving = (search_share, contenders,
                                                                                sampler_seed, halving)
        self.workers = max(1, getattr(executor, "workers", 1))
        self.candidates: list[str] = []
        self.notes: list[str] = []
        self.range_cost = 0.0

    # --- compute -------------------------------------------------------------------------------

    def runs(self) -> list[RunRecord]:
        """This tune's stored runs: its candidates at the task's budget, on its seeds."""
        return [r for r in self.store.runs(task=self.task.name, purpose="bench", curves=False, outcomes=True)
                if r.budget == self.total and r.policy in self.candidates and r.seed in self.seeds]

    def spent(self, runs: list[RunRecord] | None = None) -> float:
        """Epoch-equivalents spent: the range test and ``runs`` (default: all the candidates' runs)."""
        return self.range_cost + sum(_epoch_equivalents(r, self.task) for r in (self.runs() if runs is None else runs))

    def estimate(self, text: str) -> float:
        """A run's expected cost in epoch-equivalents (a pruned one costs less)."""
        return self.task.epochs * (_STPT_COST if parse(text).name == "stpt" else 1.0)

    def fits(self, texts: list[str], share: float = 1.0, seed: int | None = None) -> bool:
        """Whether runs of ``texts`` on ``seed`` (default: the first) fit in ``share`` of the budget, counting the other
        runs on the seeds up to it: what a first tune had spent at that point, so that a second one, finding later
        seeds' runs stored, proposes and races what the first did."""
        seed = self.seeds[0] if seed is None else seed
        earlier = self.seeds[:self.seeds.index(seed)]
        runs = [r for r in self.runs() if r.seed in earlier or (r.seed == seed and r.policy not in texts)]
        return self.spent(runs) + sum(map(self.estimate, texts)) <= share * self.budget

    # --- the steps -----------------------------------------------------------------------------

    def run(self) -> TuneResult:
        if self.budget < self.task.epochs:  # refused before the range test spends any of it
            raise _too_small(self.budget, self.task)
        found = self.range_test()
        first = canonical_policies(first_candidates(found, self.total))
        if not self.fits(first[:1]):
            raise _too_small(self.budget, self.task, self.range_cost)
        self.train([t for i, t in enumerate(first[:SCHEDULES]) if i == 0 or self.fits(first[:i + 1])], whole=True)
        self.search(found)
        adaptive = first[SCHEDULES:]
        self.train([t for i, t in enumerate(adaptive) if self.fits(adaptive[:i + 1], _ADAPTIVE_SHARE)])
        self.trajectories()
        decision = self.race()
        if decision.chosen is None:
            raise LRPilotError(f"tune of {self.task.name}: no candidate finished with validation outcomes "
                               "(all pruned, diverged or failed); see `lrpilot rank`")
        chosen_runs = [r for r in self.runs() if r.policy == decision.chosen]
        return TuneResult(self.task.name, replayable(decision.chosen, chosen_runs), decision.chosen, decision,
                          self.candidates, sum(r.status == "pruned" for r in self.runs()), self.notes, self.spent(),
                          self.budget, {"k_low": found.k_low, "k_high": found.k_high, "best_lr": found.best_lr,
                                        "answer": start_lr(found)})

    def range_test(self) -> RangeTestResult:
        found = latest(self.store, self.task.name)
        if found is None:
            epochs = min(1.0, _RANGE_SHARE * self.task.epochs)
            self.say(f"range test (decade search, one seed, {epochs:.3g} epoch{'s' * (epochs != 1)} per LR)")
            found = decade_test(self.store, self.ref, seeds=(0,), epochs=epochs, executor=self.grid.executor,
                                progress=self.say)
        # counted whether run now or before, so that a second tune spends (and reuses) exactly what the first did
        self.range_cost = sum(p["n"] for p in found.points) * found.budget / self.task.iters_per_epoch
        return found

    def train(self, texts: list[str], whole: bool = False) -> None:
        """Train the new ones of ``texts`` on the first seed with successive halving (``whole``: without); they
        become candidates."""
        texts = [t for t in texts if t not in self.candidates]
        self.candidates += texts
        if texts:
            # rungs from the store alone: the same proposals and prunings whatever order the workers finish in, so
            # that a second tune reuses exactly what the first trained
            self.grid.run(texts, [self.seeds[0]], None if whole else self.halving, live=False)

    def search(self, found: RangeTestResult) -> None:
        """TPE proposals over the 13 functions, ``workers`` at a time, while the search's share lasts."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():  # multivariate, group and constant_liar are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(seed=self.sampler_seed, multivariate=True, group=True,
                                                 constant_liar=True, n_startup_trials=8)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for params in suite_trials(found.k_low, found.k_high, found.best_lr):
            study.enqueue_trial(params)  # LRBench's suite scaled to the range test first, then TPE's own proposals
        chance = 100.0 / (self.task.num_classes or 100)
        repeats = 0  # batches in a row that proposed only candidates already trained
        while repeats < _SEARCH_REPEATS:
            trials, texts = [], []
            for _ in range(self.workers):
                trial = study.ask()
                text = canonical_policies([propose(trial, self.total, found.k_low, found.k_high,
                                                   bool(self.task.meta.get("warmup")))])[0]
                trials.append(trial)
                texts.append(text)
            new = list(dict.fromkeys(t for t in texts if t not in self.candidates))
            if new and not self.fits(new, self.search_share):
                for trial in trials:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                break
            repeats = 0 if new else repeats + 1
            self.train(new)
            by_policy = {r.policy: r for r in self.runs() if r.seed == self.seeds[0]}
            for trial, text in zip(trials, texts):
                r = by_policy.get(text)
                value = _told(r, chance)
                if r is not None and r.status == "pruned":
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    study.tell(trial, value)
        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        told = sum(t.state in done for t in study.trials)
        self.say(f"search: {told} proposals (LRBench's 13 functions first, then TPE's); "
                 f"{len(self.candidates)} candidates in all")

    def trajectories(self) -> None:
        """The readable trajectories of the adaptive candidates tied with the best on the first seed, as candidates;
        one whose LR never moved is said so."""
        first = [r for r in self.runs() if r.seed == self.seeds[0]]
        leading = set(decide(first, budget=self.total).tied)
        texts = []
        for r in first:
            distilled = (r.record or {}).get("distilled")
            if r.status != "ok" or not distilled:
                continue
            if not distilled.get("moved", True):
                self.notes.append(f"{r.policy}: its LR never moved on this task (it trained as "
                                  f"{distilled['readable']})")
            elif r.policy not in leading:
                self.notes.append(f"{r.policy}: behind the best on seed {self.seeds[0]}, so its trajectory "
                                  "was not trained as a candidate")
            elif distilled["readable"] not in self.candidates:
                texts.append(distilled["readable"])
        texts = list(dict.fromkeys(texts))
        if texts and self.fits(texts):
            self.say(f"{len(texts)} adaptive trajectories as candidates of their own")
            self.train(texts)

    def race(self) -> Decision:
        """More seeds for the contenders tied with the leader on validation (on the first seed), while the compute
        lasts."""
        decision = decide([r for r in self.runs() if r.seed == self.seeds[0]], budget=self.total)
        alive = sorted(decision.tied, key=lambda p: -decision.val[p].mean)[:self.contenders]
        if len(alive) > 1 and len(self.seeds) > 1:
            summary = self.grid.race(alive, list(self.seeds), halving=None,
                                     more=lambda texts, seed: self.fits(texts, seed=seed))
            self.notes += summary.raced
            decision = decide([r for r in self.runs() if r.policy in alive], budget=self.total)
        return decision


def start_lr(found: RangeTestResult) -> float:
    """The range test's answer (stored since the range test gives one), else its best short run's LR."""
    return (found.answer or {}).get("lr") or found.best_lr


def first_candidates(found: RangeTestResult, total: int) -> list[str]:
    """The :data:`SCHEDULES` first schedules (FIX at the range test's answer, COS from the top of its good range, WSD
    at the answer) and the adaptive methods from the answer with settings that can move within a run of ``total``
    iterations (see the module)."""
    lr, high, low = start_lr(found), found.k_high, found.k_low
    best = fmt_sig(lr, 3)
    autodrop = f"autodrop(k0={best}, rho=0.2"
    autodrop += ")" if lr > _AUTODROP_K_MIN else f", k_min={fmt_sig(lr / 10, 3)})"
    return [f"FIX(k0={best})", f"COS(k0={fmt_sig(max(high, lr), 3)}, k1={fmt_sig(low / 10, 3)}, "
            f"l={total})", wsd_candidate(found, total), f"factor(k0={best})", autodrop, f"stpt(k0={best})"]


def wsd_candidate(found: RangeTestResult, total: int) -> str:
    """WSD at the range test's answer for a run of ``total`` iterations: a :data:`WSD_WARMUP` warmup, WSD's default
    cooldown (the last 20 %, 1-sqrt, to 0)."""
    return f"WSD(k0={fmt_sig(start_lr(found), 3)}, l={total}, w={round(WSD_WARMUP * total)})"


def _told(run: RunRecord | None, chance: float) -> float:
    """The value a trial tells the sampler: validation Top-1, chance level for a diverged or failed run."""
    if run is None or run.status in ("diverged", "failed"):
        return chance
    if run.status == "pruned":
        return (run.record or {}).get("rung_score") or chance
    return (run.metrics or {}).get("val_top1") or chance


def _too_small(budget: float, task_obj: Any, spent: float = 0.0) -> LRPilotError:
    """The error for a budget that fits no candidate after ``spent`` epoch-equivalents of range test."""
    need = spent + task_obj.epochs
    return LRPilotError(f"--budget {budget:g} epoch-equivalents does not fit one run of {task_obj.name} "
                        f"({task_obj.epochs:g} epochs)"
                        + (f" after a range test of {spent:.1f}" if spent else "") + f": raise it to {need:.4g} or more")


def _epoch_equivalents(run: Any, task: Any) -> float:
    cost = run.cost or {}
    if cost.get("epoch_equivalents") is not None:
        return float(cost["epoch_equivalents"])
    return float(cost.get("iterations", 0)) / task.iters_per_epoch
