"""What each dashboard page shows, computed from stored runs; no web framework here.

The web app (:mod:`lrpilot.dashboard.app`) and ``lrpilot report`` (:mod:`lrpilot.report.report`) both build their
pages from these functions and render them with the same templates, so a table or a figure has one code path.
Listings read the runs without curves (``Store.runs(curves=False, outcomes=True)``: the outcomes are a few
hundred bytes a run, and the intervals and ties need them); curves are read only for the policies drawn.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from lrpilot import __version__
from lrpilot.decision.ranking import ORDERS, RankedPolicy, Ranking, rank
from lrpilot.decision.rule import RULE
from lrpilot.errors import LRPilotError
from lrpilot.decision.tables import COLUMNS, describe
from lrpilot.records import RunRecord
from lrpilot.vocabulary import FINISHED, clip

PER_PAGE = 50
STATUSES = FINISHED  # the status filter: all runs ok, or some runs <status>
OVERLAY = 5  # policies drawn when none is chosen: the decision, then the best ranked
MARKS = {"chosen": "*", "tied": "="}
KEY = f"* the decision: {RULE}; = statistically tied with the best on validation"
# sort keys of the table's columns: "rank", "policy", "budget", the COLUMNS' metrics, "runs", "score"
SORTS = ("rank", "policy", "budget", *(c[1] for c in COLUMNS), "runs", "score")


def function(text: str) -> str:
    """The leading name of a policy text: ``COS`` of ``COS(k0=0.1, ...)``, ``warmup`` of ``warmup(...)``."""
    match = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", text)
    return match.group(1) if match else text


@dataclass(frozen=True)
class Query:
    """The ranking page's filters, order and page, checked: LRPilotError names a bad value and what is allowed."""

    by: str = next(iter(ORDERS))
    fn: str = ""
    status: str = ""
    budget: int | None = None
    seeds: int | None = None
    sort: str = "rank"
    desc: bool = False
    page: int = 1
    per: int = PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> "Query":
        """The query of a request's parameters (absent or empty ones take their defaults)."""
        get = {k: v for k, v in params.items() if v not in ("", None)}
        q = cls(by=get.get("by", cls.by), fn=get.get("fn", ""), status=get.get("status", ""),
                budget=_whole(get, "budget", None), seeds=_whole(get, "seeds", None), sort=get.get("sort", "rank"),
                desc=get.get("desc", "0") == "1", page=_whole(get, "page", 1), per=_whole(get, "per", PER_PAGE))
        for name, value, allowed in (("by", q.by, ORDERS), ("sort", q.sort, SORTS),
                                     ("status", q.status, ("", *STATUSES))):
            if value not in allowed:
                raise LRPilotError(f"{name}={clip(value)} is unknown: use one of {', '.join(a for a in allowed if a)}")
        if not 1 <= q.per <= 1000:
            raise LRPilotError(f"per={q.per} must be between 1 and 1000 rows a page")
        return q

    def link(self, **change: Any) -> str:
        """This query as URL parameters, with ``change`` applied (defaults left out)."""
        from urllib.parse import urlencode

        values = {**self.__dict__, **change}
        defaults = Query().__dict__
        return urlencode({k: (1 if v is True else v) for k, v in values.items()
                          if v != defaults[k] and v not in (None, "")})


def _whole(params: Mapping[str, str], name: str, default: int | None) -> int | None:
    if name not in params:
        return default
    try:
        value = int(params[name])
    except ValueError:
        raise LRPilotError(f"{name}={clip(params[name])} must be a whole number") from None
    if value < 1:
        raise LRPilotError(f"{name}={value} must be >= 1")
    return value


@dataclass(frozen=True)
class Row:
    """One ranked policy as the table shows it: its cells (``Ranking.table``), mark and status."""

    policy: RankedPolicy
    cells: list[str]
    mark: str  # "chosen", "tied" or ""
    fn: str
    statuses: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A page of the ranked table: headers with their sort keys, the rows shown, counts and filter choices."""

    headers: list[tuple[str, str]]
    rows: list[Row]
    total: int  # rows that pass the filters
    all_rows: int
    query: Query
    pages: int
    functions: list[str]
    budgets: list[int]
    seeds: list[int]
    by_words: str


def rows(ranking: Ranking) -> list[Row]:
    """Every ranked policy as a table row, in rank order."""
    return _rows(ranking, ranking.table()[1])


def _rows(ranking: Ranking, cells: list[list[str]]) -> list[Row]:
    out = []
    for r, c in zip(ranking.rows, cells):
        statuses = tuple(s for s, k in zip(STATUSES, (r.n_ok, r.n_diverged, r.n_failed, r.n_pruned)) if k)
        out.append(Row(r, c, "chosen" if r.chosen else "tied" if r.tied_with_best else "", function(r.policy),
                       statuses))
    return out


def table(ranking: Ranking, query: Query = Query()) -> Table:
    """The page ``query`` asks for of the ranking's rows: filtered, sorted, paginated."""
    headers, cells = ranking.table()
    every = _rows(ranking, cells)
    kept = [row for row in every if _passes(row, query)]
    kept.sort(key=_sort_key(query.sort), reverse=query.desc)
    if query.desc:  # missing values stay last either way
        kept.sort(key=lambda row: _missing(row, query.sort))
    pages = max(1, -(-len(kept) // query.per))
    if query.page > pages:
        raise LRPilotError(f"page={query.page} is past the last page ({pages})")
    shown = kept[(query.page - 1) * query.per: query.page * query.per]
    return Table(list(zip(headers, SORTS)), shown, len(kept), len(every), query, pages,
                 sorted({row.fn for row in every}), sorted({row.policy.budget for row in every}),
                 sorted({row.policy.n for row in every}), f"ranked by {ranking.by} ({describe(ranking.by)})")


def _passes(row: Row, q: Query) -> bool:
    r = row.policy
    return ((not q.fn or row.fn == q.fn) and (q.budget is None or r.budget == q.budget)
            and (q.seeds is None or r.n == q.seeds)
            and (not q.status or (row.statuses == ("ok",) if q.status == "ok" else q.status in row.statuses)))


def _value(row: Row, key: str) -> float:
    r = row.policy
    if key in ("runs", "score"):
        return float(r.n) if key == "runs" else r.score
    return r.mean[key]


def _missing(row: Row, key: str) -> bool:
    return key not in ("rank", "policy", "budget") and math.isnan(_value(row, key))


def _sort_key(key: str) -> Callable[[Row], Any]:
    if key == "rank":
        return lambda row: (row.policy.budget, row.policy.rank)
    if key == "policy":
        return lambda row: row.policy.policy
    if key == "budget":
        return lambda row: (row.policy.budget, row.policy.rank)
    return lambda row: (_missing(row, key), 0.0 if _missing(row, key) else _value(row, key), row.policy.rank)


def overlay(ranking: Ranking, chosen: Sequence[str] = (), budget: int | None = None,
            limit: int | None = OVERLAY) -> list[RankedPolicy]:
    """The ranked policies to draw: those ``chosen`` by text, else the decision and the best ranked (``limit``)
    of one budget (the largest, unless given)."""
    budgets = sorted({r.budget for r in ranking.rows})
    if budget is None and budgets:
        budget = budgets[-1]
    rows_ = [r for r in ranking.rows if r.budget == budget]
    if chosen:
        missing = [p for p in chosen if p not in {r.policy for r in rows_}]
        if missing:
            raise LRPilotError(f"no finished runs of {clip(missing[0])} at budget {budget}: pick a ranked policy")
        return [r for p in dict.fromkeys(chosen) for r in rows_ if r.policy == p]
    first = ([r for r in rows_ if r.chosen] + [r for r in rows_ if not r.chosen])[:limit]
    return sorted(first, key=lambda r: r.rank)


def label(r: RankedPolicy) -> str:
    """A policy's legend label: its place, mark and text."""
    mark = "*" if r.chosen else "=" if r.tied_with_best else ""
    return f"#{r.rank}{mark} {r.policy}"


def decisions(ranking: Ranking) -> list[str]:
    """The decision of each budget in words: the tied group and the policy chosen, with their intervals."""
    out = []
    for budget in sorted({r.budget for r in ranking.rows}):
        rows_ = [r for r in ranking.rows if r.budget == budget]
        chosen = next((r for r in rows_ if r.chosen), None)
        if chosen is None:
            out.append(f"budget {budget} iterations: no policy has full-budget runs with validation outcomes to "
                       "decide on")
            continue
        tied = sum(r.tied_with_best for r in rows_)
        val, test = chosen.val_ci, chosen.top1_ci
        test_words = "" if test is None else (f", test Top-1 {chosen.mean['top1']:.2f} % "
                                              f"[{test[0]:.2f}, {test[1]:.2f}] (reported, not used to choose)")
        out.append(f"budget {budget} iterations: {tied} of {len(rows_)} policies are statistically tied with the best "
                   f"on validation (marked = and *); the decision (*), {RULE}: {chosen.policy}, validation Top-1 "
                   f"{chosen.mean['val_top1']:.2f} % [{val[0]:.2f}, {val[1]:.2f}]{test_words}")
    return out


def settings(task_row: Mapping[str, Any] | None, records: Sequence[RunRecord]) -> list[tuple[str, str]]:
    """The run settings and versions of a task's runs, as (label, value) pairs: what was trained and how."""
    task_row = task_row or {}
    budgets = sorted({r.budget for r in records})
    cost = [r.cost or {} for r in records if r.status == "ok"]
    epochs = sorted({round(c["epochs"], 2) for c in cost if c.get("epochs") is not None})
    batch = sorted({round(c["samples"] / c["iterations"]) for c in cost if c.get("iterations") and c.get("samples")})
    sizes = {split: sorted({int(r.outcomes[split].split(":", 1)[0]) for r in records
                            if r.outcomes and r.outcomes.get(split)}) for split in ("val", "test")}
    model = " / ".join(str(task_row[k]) for k in ("dataset", "model") if task_row.get(k))
    versions = task_row.get("versions") or {}
    out = [("task", str(task_row.get("name") or (records[0].task if records else "-"))),
           ("dataset / model", model or "-"),
           ("classes", _join([task_row.get("num_classes")])),
           ("training examples", _join([task_row.get("n_train")])),
           ("validation examples", _join(sizes["val"])), ("test examples", _join(sizes["test"])),
           ("budget", _join(budgets, " iterations")), ("epochs", _join(epochs)),
           ("batch size", _join(batch)),
           ("optimizer", _join(sorted({optimizer(r) for r in records} - {None})) if any(map(optimizer, records))
            else "not recorded (runs stored before their fingerprints)"),
           ("versions (runs)", ", ".join(f"{k} {v}" for k, v in versions.items()) or "not recorded"),
           ("runs", f"{len(records)} ({', '.join(f'{n} {s}' for s, n in _counts(records))})" if records else "0"),
           ("lrpilot (this page)", __version__)]
    return out


def optimizer(run: RunRecord) -> str | None:
    """The optimizer a run trained with, from the fingerprint in its record: e.g. ``SGD(dampening=0,
    momentum=0.9, weight_decay=0.0005)`` (the LR is the policy's); None when not recorded."""
    opt = (((run.record or {}).get("fingerprint") or {}).get("optimizer")) or {}
    if not opt.get("class"):
        return None
    groups = opt.get("groups") or [{}]
    settings = ", ".join(f"{k}={v}" for k, v in sorted(groups[0].items()))
    more = f", {len(groups)} param groups" if len(groups) > 1 else ""
    return f"{opt['class'].rsplit('.', 1)[-1]}({settings}){more}"


def _join(values: Sequence[Any], unit: str = "") -> str:
    values = [v for v in values if v is not None]
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) + unit if values else "-"


def _counts(records: Sequence[RunRecord]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    return sorted(counts.items())


@dataclass(frozen=True)
class Difference:
    """``a`` minus ``b`` on one split: the paired difference in Top-1 points, its 95 % interval and p-value."""

    split: str
    mean: float
    low: float
    high: float
    p_value: float  # one-sided, H0: a <= b
    seeds: tuple[int, ...]  # the common seeds the difference is paired over (none: by example)
    n_examples: int


def compare(a: Sequence[RunRecord], b: Sequence[RunRecord]) -> list[Difference]:
    """The paired differences of two policies' runs on validation and test (per-example outcomes of ok runs;
    :func:`lrpilot.decision.stats.paired_difference`), for the splits both have."""
    from lrpilot.decision.rule import outcomes
    from lrpilot.decision.stats import paired_difference

    out = []
    for split in ("val", "test"):
        oa, ob = outcomes(a, split), outcomes(b, split)
        if oa and ob:
            interval, p = paired_difference(oa, ob)
            n = len(next(iter(oa.values())))
            out.append(Difference(split, interval.mean, interval.low, interval.high, p,
                                  tuple(sorted(set(oa) & set(ob))), n))
    return out


def method() -> str:
    """The statistics behind intervals, ties and differences, in words."""
    from lrpilot.decision.stats import METHOD  # scipy: only where a page states it

    return METHOD


def run_details(run: RunRecord) -> dict[str, Any]:
    """One run's page: identity, metrics, cost, the distilled policy, fingerprint and the rest of its record."""
    record = dict(run.record or {})
    distilled = record.pop("distilled", None) or {}
    fingerprint = record.pop("fingerprint", None)
    if fingerprint is not None or run.fingerprint:
        fingerprint = {"digest": run.fingerprint or "-", "what": json.dumps(fingerprint, indent=1, sort_keys=True)}
    trajectory = record.pop("trajectory", None)
    when = lambda t: "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + " UTC"
    identity = [("id", str(run.id)), ("task", run.task), ("policy", run.policy), ("seed", str(run.seed)),
                ("budget", f"{run.budget} iterations"), ("purpose", run.purpose), ("status", run.status),
                ("host", run.host or "-"), ("started", when(run.started_at)), ("finished", when(run.finished_at))]
    return {"identity": identity, "metrics": sorted((run.metrics or {}).items()), "cost": sorted((run.cost or {}).items()),
            "distilled": distilled, "fingerprint": fingerprint,
            "trajectory": None if trajectory is None else len(trajectory), "record": sorted(record.items()),
            "outcomes": sorted((k, v.split(":", 1)[0] + " examples") for k, v in (run.outcomes or {}).items())}


def range_tests(analyses: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The stored range tests (``Store.analyses`` rows of kind ``range-*``), oldest first, as :func:`range_test`."""
    return [range_test(a["result"], a.get("settings", ""), a.get("created_at")) for a in analyses
            if str(a["kind"]).startswith("range-")]


def range_test(result: Mapping[str, Any], settings: str = "", created: float | None = None) -> dict[str, Any]:
    """One range test's kind, settings, answer, suggestion rule and figure (SVG, or None with nothing to plot)."""
    from lrpilot.present.figures import range_test_svg

    return {"kind": result.get("kind", "?"), "settings": settings, "answer": result.get("answer") or {},
            "rule": result.get("rule"), "figure": range_test_svg(result),
            "created": "-" if created is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(created))}


class Views:
    """The store-backed pages. Each task's ranking (the slow part: intervals and paired tests over every
    policy) is computed once and then served from memory; a request for one older than ``ttl`` seconds still
    gets it at once while a background thread recomputes it (a bench writing into the store shows up on a
    later request), and ``refresh=True`` recomputes it before answering. Thread-safe."""

    def __init__(self, store: Any, ttl: float = 30.0):
        self.store, self.ttl = store, ttl
        self._cache: dict[tuple[str, str], tuple[float, Ranking, list[RunRecord]]] = {}
        self._busy: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._computing: dict[tuple[str, str], threading.Lock] = {}  # one computation of a ranking at a time

    def tasks(self) -> list[dict[str, Any]]:
        """The stored tasks; with run counts and the decision for those whose ranking is computed (the others
        start computing in the background)."""
        out = []
        for t in self.store.tasks():
            cached = self.cached(t["name"])
            if cached is None:
                self._start(t["name"], next(iter(ORDERS)))
                out.append({**t, "ready": False})
                continue
            ranking, records = cached
            out.append({**t, "ready": True, "runs": len(records), "policies": len({r.policy for r in records}),
                        "budgets": sorted({r.budget for r in records}),
                        "decision": next((r.policy for r in ranking.rows if r.chosen), None)})
        return out

    def task(self, name: str) -> dict[str, Any]:
        """The stored task row of ``name``; LRPilotError naming the stored ones if there is none."""
        known = self.store.tasks()
        for t in known:
            if t["name"] == name:
                return t
        raise LRPilotError(f"no task {clip(name)} in the store: use one of {clip([t['name'] for t in known])}")

    def cached(self, task: str, by: str = next(iter(ORDERS))) -> tuple[Ranking, list[RunRecord]] | None:
        """The ranking already computed, or None."""
        hit = self._cache.get((task, by))
        return None if hit is None else (hit[1], hit[2])

    def ranking(self, task: str, by: str = next(iter(ORDERS)), refresh: bool = False
                ) -> tuple[Ranking, list[RunRecord], float]:
        """The ranking of ``task``'s bench runs ``by`` an order, the runs (no curves) and when it was computed
        (``time.time()``); see the class for when it is recomputed."""
        key = (task, by)
        hit = self._cache.get(key)
        if hit is None or refresh:
            with self._key_lock(key):  # waits for a computation under way, then uses it unless asked to refresh
                if refresh or key not in self._cache:
                    self._compute(key)
            hit = self._cache[key]
        elif time.time() - hit[0] > self.ttl:
            self._start(task, by)
        return hit[1], hit[2], hit[0]

    def _start(self, task: str, by: str) -> None:
        """Recompute a ranking in a background thread unless one is at it."""
        with self._lock:
            if (task, by) in self._busy:
                return
            self._busy.add((task, by))
        threading.Thread(target=self._background, args=((task, by),), daemon=True).start()

    def _key_lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._lock:
            return self._computing.setdefault(key, threading.Lock())

    def _compute(self, key: tuple[str, str]) -> None:
        records = self.store.runs(task=key[0], purpose="bench", curves=False, outcomes=True)
        self._cache[key] = (time.time(), rank(records, by=key[1], task=key[0]), records)

    def _background(self, key: tuple[str, str]) -> None:
        try:
            with self._key_lock(key):
                self._compute(key)
        finally:
            with self._lock:
                self._busy.discard(key)

    def curves(self, task: str, policies: Sequence[RankedPolicy]) -> dict[str, list[RunRecord]]:
        """Legend label -> the finished runs with curves of each policy (one query per policy)."""
        out = {}
        for r in policies:
            runs = [x for x in self.store.runs(task=task, policy=r.policy, purpose="bench", budget=r.budget)
                    if x.status in STATUSES]
            out[label(r)] = [x for x in runs if x.status == "ok"] or runs
        return out

    def run(self, task: str, policy: str, run_id: int) -> RunRecord:
        """One stored run, with curves and outcomes; LRPilotError if ``task`` and ``policy`` hold no such run."""
        from lrpilot.store.meta import policy_row

        r = self.store.run(run_id)
        if r is None or r.task != task or r.policy != policy_row(policy)["text"]:
            raise LRPilotError(f"no run {run_id} of {clip(policy)} on task {clip(task)} in the store")
        return r

    def policy_runs(self, task: str, policy: str, budget: int) -> list[RunRecord]:
        """The finished bench runs of one policy and budget, with outcomes (no curves)."""
        return [r for r in self.store.runs(task=task, policy=policy, purpose="bench", budget=budget, curves=False,
                                           outcomes=True) if r.status in STATUSES]
