"""The LR policy ranking: aggregates over seeds, the four orderings, failures, budgets, exports and errors."""

import builtins
import csv
import importlib.util
import io
import json
import math

import pytest

from lrpilot.decision.ranking import FIELDS, ORDERS, rank
from lrpilot.decision.tables import describe
from lrpilot.errors import LRPilotError
from lrpilot.records import RunRecord, RunResult
from lrpilot.store import Store

_ids = iter(range(1, 10**6))


def rec(policy, seed=0, status="ok", budget=100, task="digits-lenet", top1=99.0, ac=0.99, cd=0.03, cdac=0.002,
        ld=0.02, iters_at_best=80, n_param=3, wall_s=10.0, **metrics):
    """A stored run with the given metrics, the same on validation as on test (accuracy metrics None when it did
    not finish ok)."""
    m = dict(top1=top1, top5=99.9, ac=ac, cd=cd, cdac=cdac, best_top1=top1, iters_at_best=iters_at_best, ld=ld,
             train_loss=0.05, test_loss=0.05 + ld, n_param=n_param) | metrics
    m |= {f"val_{k}": m[k] for k in ("top1", "ac", "cd", "cdac", "iters_at_best")} | {"val_loss": 0.05 + m["ld"]}
    if status != "ok":
        m = dict.fromkeys(m) | {"n_param": n_param}
    cost = {"iterations": budget, "samples": 32 * budget, "epochs": budget / 43, "wall_s": wall_s}
    return RunRecord(next(_ids), task, policy, seed, budget, status, m, cost, {}, {}, "host", 0.0, 0.0, 0.0, 1.0)


def order(ranking):
    return [r.policy for r in ranking.rows]


def test_mean_and_sample_std_over_seeds():
    rows = rank([rec("TRI", 0, top1=99.26, wall_s=4.0), rec("TRI", 1, top1=99.30, wall_s=6.0)]).rows
    (r,) = rows
    assert (r.rank, r.policy, r.budget, r.n, r.n_ok, r.n_diverged, r.n_failed) == (1, "TRI", 100, 2, 2, 0, 0)
    assert r.mean["top1"] == pytest.approx(99.28) and r.std["top1"] == pytest.approx(0.04 / math.sqrt(2))
    assert r.mean["wall_s"] == 5.0 and r.std["wall_s"] == pytest.approx(math.sqrt(2))
    assert r.mean["abs_ld"] == pytest.approx(0.02) and r.std["ac"] == 0.0
    (one,) = rank([rec("SIN", top1=97.5)]).rows
    assert one.std["top1"] == 0.0 and one.mean["top1"] == 97.5


def test_three_seeds_std_by_hand():
    (r,) = rank([rec("COS", s, top1=t) for s, t in enumerate([90.0, 92.0, 97.0])]).rows
    assert r.mean["top1"] == pytest.approx(93.0)
    assert r.std["top1"] == pytest.approx(math.sqrt((9 + 1 + 16) / 2))


def test_infinite_values_have_no_std_and_export_as_none():
    (r,) = rank([rec("A", 0, ld=math.inf), rec("A", 1, ld=0.5)], by="score").rows
    assert r.mean["ld"] == math.inf and math.isnan(r.std["ld"]) and r.score == pytest.approx(0.8)
    headers, cells = rank([rec("A", 0, ld=math.inf), rec("A", 1, ld=0.5)]).table()
    assert r.to_dict()["ld_mean"] is None and cells[0][headers.index("LD")] == "inf"


def test_utility_order_and_tie_breaks():
    runs = [rec("A", top1=99.0), rec("B", top1=99.3), rec("C", top1=99.3, ac=0.995), rec("D", top1=99.3, ac=0.995,
            cd=0.02), rec("E", top1=99.3, ac=0.995, cd=0.02, cdac=0.001)]
    assert order(rank(runs)) == ["E", "D", "C", "B", "A"]
    assert [r.rank for r in rank(runs).rows] == [1, 2, 3, 4, 5]


def test_cost_order_and_tie_breaks():
    runs = [rec("A", iters_at_best=50, n_param=4, wall_s=1.0), rec("B", iters_at_best=40, n_param=4, wall_s=9.0),
            rec("C", iters_at_best=50, n_param=3, wall_s=9.0), rec("D", iters_at_best=50, n_param=4, wall_s=2.0)]
    assert order(rank(runs, by="cost")) == ["B", "C", "A", "D"]


def test_robustness_uses_absolute_ld_then_top1():
    runs = [rec("A", ld=0.05), rec("B", ld=-0.01, top1=98.0), rec("C", ld=0.01, top1=99.0), rec("D", ld=-0.03)]
    assert order(rank(runs, by="robustness")) == ["C", "B", "D", "A"]


def test_score_formula():
    a = rec("A", top1=99.0, iters_at_best=100, ld=0.04)  # best Top-1 only: 0.6
    b = rec("B", top1=98.0, iters_at_best=50, ld=0.00)  # best cost and robustness: 0.4
    c = rec("C", top1=98.5, iters_at_best=75, ld=0.02)  # halfway on all three: 0.5
    ranking = rank([a, b, c], by="score")
    assert order(ranking) == ["A", "C", "B"]
    assert [r.score for r in ranking.rows] == pytest.approx([0.6, 0.5, 0.4])
    (alone,) = rank([a], by="score").rows
    assert alone.score == pytest.approx(1.0)
    assert "score" in ranking.table()[0] and "score" not in rank([a]).table()[0]


def test_a_new_order_is_one_entry_in_orders(monkeypatch):
    monkeypatch.setitem(ORDERS, "top5", (("top5", True), ("best_top1", False)))
    runs = [rec("A", top5=99.0), rec("B", top5=99.5)]
    assert order(rank(runs, "top5")) == ["B", "A"]
    assert describe("top5") == "Top-5 desc, best_top1 asc"


@pytest.mark.parametrize("by", ["utility", "cost", "robustness", "score"])
def test_diverged_and_failed_rank_below_every_clean_policy(by):
    runs = [rec("BAD", 0, top1=99.9, iters_at_best=1, ld=0.0, wall_s=0.1), rec("BAD", 1, status="diverged"),
            rec("WORSE", 0, status="failed"), rec("WORSE", 1, status="diverged"),
            rec("OK1", top1=90.0, iters_at_best=90, ld=0.3), rec("OK2", top1=91.0, iters_at_best=95, ld=0.2)]
    ranking = rank(runs, by=by)
    assert order(ranking)[2:] == ["BAD", "WORSE"]
    bad, worse = ranking.rows[2:]
    assert (bad.n, bad.n_ok, bad.n_diverged, bad.n_failed) == (2, 1, 1, 0)
    assert (worse.n, worse.n_ok, worse.n_diverged, worse.n_failed) == (2, 0, 1, 1)
    assert bad.mean["top1"] == 99.9 and math.isnan(worse.mean["top1"])
    headers, cells = ranking.table()
    assert cells[3][headers.index("runs")] == "0/2 ok, 1 diverged, 1 failed"
    assert cells[2][headers.index("runs")] == "1/2 ok, 1 diverged"


def test_queued_and_running_runs_are_ignored():
    ranking = rank([rec("A", 0), rec("A", 1, status="running"), rec("B", status="queued")])
    assert order(ranking) == ["A"] and ranking.rows[0].n == 1


def test_budgets_ranked_apart_and_top_per_budget():
    runs = [rec("A", budget=100, top1=90.0), rec("B", budget=100, top1=95.0), rec("C", budget=100, top1=93.0),
            rec("A", budget=500, top1=99.0), rec("B", budget=500, top1=97.0)]
    ranking = rank(runs)
    assert [(r.budget, r.policy, r.rank) for r in ranking.rows] == [
        (100, "B", 1), (100, "C", 2), (100, "A", 3), (500, "A", 1), (500, "B", 2)]
    assert ranking.rows[0].n == 1 and ranking.rows[3].mean["top1"] == 99.0
    top = rank(runs, top=1)
    assert [(r.budget, r.policy) for r in top.rows] == [(100, "B"), (500, "A")]
    assert len(rank(runs, top=10).rows) == 5


def test_format_cells():
    ranking = rank([rec("TRI2(k0=0.01, k1=0.06, l=2000)", 0, top1=99.26), rec("TRI2(k0=0.01, k1=0.06, l=2000)", 1,
                    top1=99.30), rec("FIX(k0=0.01)", top1=98.0)])
    text = ranking.format()
    assert "digits-lenet" in text and "val Top-1 desc, val AC desc, val CD asc, val CDAC asc" in text
    lines = text.splitlines()
    assert lines[1].split()[:5] == ["#", "policy", "budget", "val", "Top-1"]
    assert "99.28" in lines[2] and lines[2].split()[:2] == ["1", "TRI2(k0=0.01,"]
    headers, cells = ranking.table()  # every column; the terminal's table shows a compact choice of them
    assert cells[0][headers.index("AC")] == "0.9900 +- 0.0000" and "AC" not in lines[1]
    assert lines[3].split()[3:5] == ["98.00", "98.00"]  # one run: no interval without outcomes, no std
    assert len({len(line) for line in lines[1:]}) == 1  # aligned columns


def test_empty_ranking_says_so():
    for records in ([], [rec("A", status="queued")]):
        ranking = rank(records, task="digits-lenet")
        assert ranking.rows == [] and ranking.to_dicts() == []
        assert ranking.format().startswith("no finished runs for task digits-lenet")
    assert rank([]).format().startswith("no finished runs to rank")


def test_csv_round_trip(tmp_path):
    ranking = rank([rec("A", 0, top1=99.26), rec("A", 1, top1=99.30), rec("B", 0, status="diverged")])
    ranking.to_csv(tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(FIELDS)
    assert [r["policy"] for r in rows] == ["A", "B"]
    assert float(rows[0]["top1_mean"]) == pytest.approx(99.28) and rows[0]["n"] == "2"
    assert rows[1]["top1_mean"] == "" and rows[1]["n_diverged"] == "1"
    buf = io.StringIO()
    ranking.to_csv(buf)
    with open(tmp_path / "r.csv", newline="") as f:
        assert buf.getvalue() == f.read()


def test_dicts_are_json_able_without_nan():
    ranking = rank([rec("A"), rec("B", status="diverged")])
    dicts = ranking.to_dicts()
    text = json.dumps(dicts, allow_nan=False)
    assert json.loads(text) == dicts and list(dicts[0]) == list(FIELDS)
    assert dicts[0]["n_param_mean"] == 3.0 and dicts[0]["top1_std"] == 0.0
    assert dicts[1]["top1_mean"] is None and dicts[1]["n_param_mean"] is None  # no ok run to average


def test_dataframe_or_a_clear_error(monkeypatch):
    ranking = rank([rec("A", top1=97.0), rec("B", top1=98.0)])
    if importlib.util.find_spec("pandas"):
        df = ranking.to_dataframe()
        assert list(df.columns) == list(FIELDS) and list(df["policy"]) == ["B", "A"]
        assert df["top1_mean"].tolist() == [98.0, 97.0]
    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(LRPilotError, match="pip install pandas"):
        ranking.to_dataframe()


@pytest.mark.parametrize("kwargs, message", [
    ({"by": "speed"}, "by='speed'.*utility, cost, robustness, score"),
    ({"top": 0}, "top=0 must be a whole number >= 1"),
    ({"top": 2.5}, "top=2.5"),
    ({"top": True}, "top=True"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(LRPilotError, match=message):
        rank([rec("A")], **kwargs)


def test_runs_of_several_tasks_are_an_error():
    with pytest.raises(LRPilotError, match=r"several tasks \(a, b\).*store.runs\(task=...\)"):
        rank([rec("A", task="a"), rec("A", task="b")])
    with pytest.raises(LRPilotError, match="several tasks"):
        rank([rec("A", task="a")], task="b")


def test_ranks_the_runs_of_a_real_store(tmp_path):
    def result(policy, seed, status, top1):
        metrics = dict(top1=top1, top5=100.0, ac=0.9, cd=0.1, cdac=0.01, best_top1=top1, iters_at_best=40, ld=0.1,
                       train_loss=0.2, test_loss=0.3, n_param=1, val_top1=top1)
        if status != "ok":
            metrics = dict.fromkeys(metrics) | {"n_param": 1, "ld": math.nan}
        cost = dict(iterations=50, samples=1600, epochs=1.2, wall_s=0.5)
        curves = dict(iteration=[25, 50], lr=[0.1, 0.1], train_loss=[1.0, 0.5], test_loss=[1.1, math.nan],
                      test_top1=[50.0, top1], angular_velocity=[math.nan, math.nan])
        return RunResult("digits-lenet", policy, seed, status, metrics, cost, curves)

    with Store(tmp_path / "r.db") as store:
        for policy, seed, status, top1 in [("FIX(k0=0.05)", 0, "ok", 96.0), ("FIX(k0=0.05)", 1, "ok", 97.0),
                                           ("FIX(k0=0.1)", 0, "ok", 98.0), ("FIX(k0=0.1)", 1, "diverged", None),
                                           ("FIX(k0=0.01)", 0, "ok", 90.0)]:
            run_id = store.claim("digits-lenet", policy, seed, 50)
            assert store.finish(run_id, result(policy, seed, status, top1))
        store.queue("digits-lenet", "FIX(k0=0.2)", 0, 50)
        store.claim("other-task", "FIX(k0=0.05)", 0, 50)
        ranking = rank(store.runs(task="digits-lenet"))
    assert ranking.task == "digits-lenet"
    assert order(ranking) == ["FIX(k0=0.05)", "FIX(k0=0.01)", "FIX(k0=0.1)"]
    first = ranking.rows[0]
    assert first.mean["top1"] == 96.5 and first.std["top1"] == pytest.approx(math.sqrt(0.5)) and first.n == 2
    assert ranking.rows[2].n_diverged == 1 and ranking.rows[2].mean["top1"] == 98.0
    assert len(first.runs) == 2 and first.runs[0].curves["test_top1"] == [50.0, 96.0]


def test_stale_runs_are_left_out_and_counted_unless_asked_for():
    import dataclasses

    def fp(r, digest, at):
        return dataclasses.replace(r, fingerprint=digest, finished_at=at)

    runs = [fp(rec("FIX(k0=0.1)", seed=s, top1=99.5), "old", 1.0) for s in (0, 1)]  # a bench before the data changed
    runs += [fp(rec("FIX(k0=0.05)", seed=s), "new", 2.0) for s in (0, 1)]
    runs += [rec("FIX(k0=0.2)", top1=90.0), fp(rec("FIX(k0=0.1)", budget=200), "old", 1.0)]  # no fingerprint; alone
    ranking = rank(runs)
    assert order(ranking) == ["FIX(k0=0.05)", "FIX(k0=0.2)", "FIX(k0=0.1)"] and ranking.stale == 2
    assert [r.budget for r in ranking.rows] == [100, 100, 200]
    assert "2 stored runs trained on other data, model or optimizer than the latest of their budget" in ranking.format()
    shown = rank(runs, stale=True)
    assert order(shown)[0] == "FIX(k0=0.1)" and shown.stale == 0 and "stale" not in shown.format()


def test_rank_and_report_on_the_command_line_hide_stale_runs_and_say_so(tmp_path, capsys):
    import dataclasses

    from lrpilot.cli import main

    db = str(tmp_path / "runs.db")
    with Store(db) as store:
        for policy, digest in (("FIX(k0=0.1)", "a" * 10), ("FIX(k0=0.05)", "b" * 10)):
            run = store.claim("digits-lenet", policy, 0, 100, fingerprint=digest)
            store.finish(run, RunResult("digits-lenet", policy, 0, "ok", rec(policy).metrics, rec(policy).cost, {}, {},
                                        100))
    assert main(["rank", "--task", "digits-lenet", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "FIX(k0=0.05)" in out and "FIX(k0=0.1)" not in out and "1 stored run trained on other data" in out
    assert main(["rank", "--task", "digits-lenet", "--db", db, "--stale"]) == 0
    assert "FIX(k0=0.1)" in capsys.readouterr().out
    assert main(["rank", "--task", "digits-lenet", "--db", db, "--json"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 1 and "1 stored run trained" in captured.err
    assert main(["report", "--task", "digits-lenet", "--db", db, "-o", str(tmp_path / "r.html")]) == 0
    assert "1 stored run trained on other data" in (tmp_path / "r.html").read_text()


def test_policies_summarised_together_equal_each_summarised_alone():
    """One nanstd per group size gives the bits of one call per group: means exactly rounded, stds as numpy's
    (compared as text: NaN is missing, and NaN != NaN)."""
    import random
    import statistics

    from lrpilot.decision.ranking import METRICS, _mean_std

    rng = random.Random(0)
    groups = [[[rng.gauss(0, 1) if rng.random() > 0.1 else math.nan for _ in METRICS] for _ in range(n)]
              for n in (5, 5, 3, 1, 0, 5, 2)]
    means, stds = _mean_std(groups)
    alone = [_mean_std([g]) for g in groups]
    assert repr((means, stds)) == repr(([m[0] for m, _ in alone], [s[0] for _, s in alone]))
    column = [row[0] for row in groups[0] if not math.isnan(row[0])]
    assert means[0][0] == statistics.fmean(column) and stds[0][0] == pytest.approx(statistics.stdev(column), rel=1e-15)
    assert repr(stds[3]) == repr([math.nan if math.isnan(x) else 0.0 for x in groups[3][0]])  # one run: std 0
    assert all(math.isnan(m) for m in means[4] + stds[4])  # a policy without ok runs
