"""The storage contract (lrpilot.store.base), the same cases on every backend."""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import sqlalchemy as sa

from lrpilot import outcomes
from lrpilot.engine import CURVES
from lrpilot.records import RunResult
from lrpilot.errors import LRPilotError
from lrpilot.store import Store, schema

HERE = Path(__file__).parent
NAN, INF = math.nan, math.inf


def result(seed=0, status="ok", top1=90.0, policy="FIX(k0=0.01)", task="tiny", **curves) -> RunResult:
    return RunResult(task, policy, seed, status, {"top1": top1, "ld": NAN}, {"iterations": 100, "wall_s": 1.5},
                     curves or {"iteration": [0, 50, 100], "train_loss": [2.3, 1.0, 0.5]}, {"device": "cpu"})


def version(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        v = conn.execute(sa.text("SELECT version FROM schema_version")).scalar_one()
    engine.dispose()
    return v


def test_created_on_first_use_and_reopened(open_store, url):
    store = open_store()
    assert store.migrated_from == 0 and version(url) == schema.VERSION
    assert store.runs() == [] and store.tasks() == []
    again = open_store()
    assert again.migrated_from == schema.VERSION and again.runs() == []


def test_finish_is_idempotent_and_a_rerun_adds_nothing(open_store):
    store = open_store()
    run_id = store.claim("tiny", "FIX(k0=0.01)", 0, 100)
    assert store.finish(run_id, result()) is True
    assert store.finish(run_id, result()) is False
    assert store.claim("tiny", "FIX(k0=0.01)", 0, 100) is None
    assert open_store().claim("tiny", "FIX(k0=0.01)", 0, 100) is None
    [run] = store.runs()
    assert (run.id, run.status, run.metrics["top1"], run.budget) == (run_id, "ok", 90.0, 100)
    assert store.claim("tiny", "FIX(k0=0.01)", 0, 200) not in (None, run_id)  # another budget: another run
    assert len(store.runs()) == 2


def test_finished_run_is_immutable(open_store):
    store = open_store()
    run_id = store.claim("tiny", "FIX(k0=0.01)", 0, 100)
    store.finish(run_id, result(top1=90.0))
    before = store.runs()[0].to_dict()
    assert store.finish(run_id, result(status="diverged", top1=10.0, iteration=[1])) is False
    with pytest.raises(LRPilotError, match="not held"):
        store.heartbeat(run_id)
    after = store.runs()[0].to_dict()
    assert after["status"] == "ok" and after["metrics"]["top1"] == 90.0 and after["curves"] == before["curves"]


def test_claim_heartbeat_and_reclaim_after_a_stale_heartbeat(open_store):
    # a timeout of 2 s, so that a loaded machine's slow first query does not look like a dead holder
    a, b = open_store(heartbeat_timeout=2.0), open_store(heartbeat_timeout=2.0)
    run_id = a.claim("tiny", "FIX(k0=0.01)", 0, 100)
    assert run_id is not None and b.claim("tiny", "FIX(k0=0.01)", 0, 100) is None
    time.sleep(1.2)
    a.heartbeat(run_id)
    time.sleep(1.2)
    assert b.claim("tiny", "FIX(k0=0.01)", 0, 100) is None  # 2.4 s since the claim, 1.2 s since the heartbeat
    time.sleep(2.2)
    assert b.claim("tiny", "FIX(k0=0.01)", 0, 100) == run_id  # a's process "died"
    with pytest.raises(LRPilotError, match="not held"):
        a.heartbeat(run_id)
    with pytest.raises(LRPilotError, match="another process"):
        a.finish(run_id, result())
    assert b.finish(run_id, result()) is True
    assert [r.status for r in a.runs()] == ["ok"]


def test_a_released_run_is_claimable_at_once(open_store):
    a, b = open_store(), open_store()
    run_id = a.claim("tiny", "FIX(k0=0.01)", 0, 100)
    b.release(run_id)  # not b's: nothing happens
    assert b.claim("tiny", "FIX(k0=0.01)", 0, 100) is None
    a.release(run_id)
    assert [r.status for r in a.runs()] == ["queued"] and b.claim("tiny", "FIX(k0=0.01)", 0, 100) == run_id
    assert b.finish(run_id, result()) is True


def test_a_run_held_by_a_dead_process_on_this_host_is_claimable_at_once(open_store, url):
    code = f"from lrpilot.store import Store; print(Store({url!r}).claim('tiny', 'FIX(k0=0.01)', 0, 100))"
    held = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    run_id = int(held.stdout)
    store = open_store(heartbeat_timeout=3600)
    assert store.runs()[0].status == "running" and store.claim("tiny", "FIX(k0=0.01)", 0, 100) == run_id
    assert open_store(heartbeat_timeout=3600).claim("tiny", "FIX(k0=0.01)", 0, 100) is None  # this one is alive


def test_analyses_are_kept_replaced_and_filtered(open_store):
    store = open_store()
    store.save_analysis("tiny", "range-decade", "epochs=1 seeds=0", {"k_low": 0.01, "x": [NAN, INF]})
    store.save_analysis("tiny", "range-sweep", "seeds=0", {"suggestion": 0.1})
    store.save_analysis("other", "range-sweep", "seeds=0", {"suggestion": 0.2})
    store.save_analysis("tiny", "range-decade", "epochs=1 seeds=0", {"k_low": 0.02})
    got = open_store().analyses(task="tiny")
    assert [(a["kind"], a["result"]) for a in got] == [("range-sweep", {"suggestion": 0.1}),
                                                      ("range-decade", {"k_low": 0.02})]
    assert [a["task"] for a in store.analyses(kind="range-sweep")] == ["tiny", "other"]
    store.save_analysis("tiny", "range-decade", "epochs=2", {"x": [NAN, -INF]})
    x = store.analyses(task="tiny", kind="range-decade")[-1]["result"]["x"]
    assert math.isnan(x[0]) and x[1] == -INF


def test_queued_runs_are_claimable(open_store):
    store = open_store()
    run_id = store.queue("tiny", "FIX(k0=0.01)", 3, 100)
    assert store.queue("tiny", "FIX(k0=0.01)", 3, 100) == run_id
    assert [r.id for r in store.runs(status="queued")] == [run_id]
    assert open_store().claim("tiny", "FIX(k0=0.01)", 3, 100) == run_id
    assert store.runs(status="queued") == [] and len(store.runs(status="running")) == 1


def test_nan_and_infinity_round_trip(open_store):
    store = open_store()
    values = {"nan": NAN, "inf": INF, "-inf": -INF, "none": None, "nested": [NAN, {"x": -INF}], "zero": -0.0}
    res = RunResult("tiny", "FIX(k0=0.01)", 0, "diverged", values, {"wall_s": INF}, {"train_loss": [1.0, NAN, INF]},
                    {"why": [NAN]})
    store.finish(store.claim("tiny", "FIX(k0=0.01)", 0, 100), res)
    [run] = open_store().runs(status="diverged")
    m = run.metrics
    assert math.isnan(m["nan"]) and m["inf"] == INF and m["-inf"] == -INF and m["none"] is None
    assert math.isnan(m["nested"][0]) and m["nested"][1] == {"x": -INF} and math.copysign(1, m["zero"]) == -1
    assert run.cost == {"wall_s": INF} and math.isnan(run.record["why"][0])
    assert run.curves["train_loss"][0] == 1.0 and math.isnan(run.curves["train_loss"][1])
    assert run.curves["train_loss"][2] == INF


def test_curves_round_trip(open_store):
    store = open_store()
    n = 200
    curves = {name: [i / 7 + k for i in range(n)] for k, name in enumerate(CURVES)}
    curves["iteration"] = list(range(n))
    curves["test_loss"][::3] = [None] * len(curves["test_loss"][::3])
    store.finish(store.claim("tiny", "FIX(k0=0.01)", 0, n), result(**curves))
    store.finish(store.claim("tiny", "FIX(k0=0.02)", 0, n), result(policy="FIX(k0=0.02)", train_loss=[1.0]))
    runs = open_store().runs(task="tiny")
    assert runs[0].curves == curves and runs[1].curves == {"train_loss": [1.0]}
    assert [r.curves for r in store.runs(curves=False)] == [{}, {}]
    assert [r.policy for r in store.runs(policy=" FIX( k0 = 0.02 )")] == ["FIX(k0=0.02)"]  # canonicalised


def test_outcomes_round_trip_only_when_asked(open_store):
    store = open_store()
    correct = np.arange(1001) % 3 == 0
    stored = {"val": outcomes.encode(correct[:7]), "test": outcomes.encode(correct)}
    store.finish(store.claim("tiny", "FIX(k0=0.01)", 0, 100), dataclasses.replace(result(), outcomes=stored))
    store.finish(store.claim("tiny", "FIX(k0=0.01)", 1, 100), result(seed=1))  # none: NULL
    with_, without = open_store().runs(outcomes=True)
    assert with_.outcomes == stored and np.array_equal(with_.correct("test"), correct)
    assert without.outcomes is None and without.correct("val") is None
    assert [r.outcomes for r in store.runs()] == [None, None]  # listings stay light by default


def test_task_and_policy_rows(open_store, url):
    store = open_store()
    task = SimpleNamespace(name="tiny", num_classes=10,
                           meta={"dataset": "MNIST-1D", "model": "MLP", "n_train": 4000, "num_classes": 10})
    store.claim(task, "FIX(k0=0.01)", 0, 100)
    store.claim("tiny", "autodrop_unregistered(k0=0.1, w=5)", 0, 100)
    [row] = store.tasks()
    assert {k: row[k] for k in ("name", "dataset", "model", "num_classes", "n_train", "framework")} == \
        {"name": "tiny", "dataset": "MNIST-1D", "model": "MLP", "num_classes": 10, "n_train": 4000,
         "framework": "pytorch"}
    assert set(row["versions"]) == {"torch", "lrpilot", "python"}
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT text, name, n_param FROM policies ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("FIX(k0=0.01)", "FIX", 1),
                                        ("autodrop_unregistered(k0=0.1, w=5)", "autodrop_unregistered", None)]


def _writer(url: str, n: int, start, finished) -> None:
    """A benchmark runner: claim, heartbeat and finish runs 0..n-1 of one benchmark; report how many it finished."""
    count = 0
    with Store(url) as store:
        start.wait(timeout=60)
        for seed in range(n):
            run_id = store.claim("race", "FIX(k0=0.01)", seed, 10)
            if run_id is not None:
                store.heartbeat(run_id)
                res = result(seed, top1=float(seed), task="race", train_loss=[2.0, 1.0 / (seed + 1)])
                count += store.finish(run_id, res)
    finished.put(count)


def test_two_processes_writing_at_once_lose_nothing(open_store, url):
    n, ctx = 20, multiprocessing.get_context("fork")  # fork: no second import of torch in the children
    open_store().close()  # the schema exists, and the children inherit no open connection
    start, finished = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, n, start, finished)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert finished.get(timeout=5) + finished.get(timeout=5) == n
    runs = open_store().runs(task="race")
    assert sorted(r.seed for r in runs) == list(range(n)) and {r.status for r in runs} == {"ok"}
    assert all(r.metrics["top1"] == r.seed and r.curves["train_loss"][1] == 1.0 / (r.seed + 1) for r in runs)


def load_fixture(url: str, old: int) -> None:
    """Write the frozen store of schema version ``old`` (tests/store/fixtures) at ``url``."""
    engine = sa.create_engine(url)
    pk = "SERIAL PRIMARY KEY" if engine.dialect.name == "postgresql" else "INTEGER PRIMARY KEY"
    with engine.begin() as conn:
        for statement in (HERE / "fixtures" / f"v{old}.sql").read_text().replace("{pk}", pk).split(";"):
            lines = [ln for ln in statement.splitlines() if not ln.startswith("--")]
            if "".join(lines).strip():
                conn.exec_driver_sql("\n".join(lines))
    engine.dispose()


@pytest.mark.parametrize("old", [1, 2])
def test_an_older_store_opens_and_migrates(url, old):
    load_fixture(url, old)
    with Store(url, heartbeat_timeout=60) as store:
        assert store.migrated_from == old and version(url) == schema.VERSION
        assert {r.purpose for r in store.runs()} == {"bench"}
        done, alive = store.runs()
        assert (done.status, done.metrics["top1"], done.host) == ("ok", 98.5, "old-host")
        assert math.isnan(done.metrics["ld"]) and done.curves == {"train_loss": [2.3, 0.1, INF]}
        assert store.claim("mnist-lenet", "FIX(k0=0.01)", 0, 1000) is None
        assert store.claim("mnist-lenet", "FIX(k0=0.01)", 1, 1000) == alive.id  # no heartbeat: its process is gone
        new = store.claim("mnist-lenet", "FIX(k0=0.01)", 2, 1000)
        assert new not in (None, done.id, alive.id) and store.finish(new, RunResult(
            "mnist-lenet", "FIX(k0=0.01)", 2, "failed", {}, {}, {}, {"error": "x"})) is True
        assert store.tasks()[0]["dataset"] == "MNIST" and store.analyses() == []
        store.save_analysis("mnist-lenet", "range-decade", "epochs=1", {"k_low": 0.01})
        assert [a["result"] for a in store.analyses(task="mnist-lenet")] == [{"k_low": 0.01}]
    with Store(url) as again:
        assert again.migrated_from == schema.VERSION


def test_a_v3_store_migrates_with_its_range_test_probes_tagged(url):
    load_fixture(url, 3)
    with Store(url, heartbeat_timeout=60) as store:
        assert store.migrated_from == 3 and version(url) == schema.VERSION
        runs = store.runs()
        assert [(r.id, r.task, r.policy, r.budget, r.purpose) for r in runs] == [
            (1, "mnist-lenet", "FIX(k0=0.01)", 1000, "bench"),
            (2, "mnist-lenet", "FIX(k0=0.1)", 100, "range-test"),  # a FIX run at the range test's budget
            (3, "mnist-lenet", "FIX(k0=0.01)", 100, "range-test"),
            (4, "mnist-lenet", "FIX(k0=0.01)", 1000, "bench"),
            (5, "mnist-lenet", "COS(k0=0.1, k1=0.001, l=100)", 100, "bench"),  # not FIX: never a probe
            (6, "mnist-mlp", "FIX(k0=0.1)", 100, "bench")]  # its task has no range test
        assert math.isnan(runs[0].metrics["ld"]) and runs[0].curves == {"train_loss": [2.3, 0.1, INF]}
        assert runs[1].curves == {"train_loss": [2.3, 0.5]} and runs[2].metrics == {"top1": 95.0}
        assert [r.id for r in store.runs(task="mnist-lenet", purpose="bench")] == [1, 4, 5]
        assert store.claim("mnist-lenet", "FIX(k0=0.1)", 0, 100, purpose="range-test") is None  # finished probe
        bench = store.claim("mnist-lenet", "FIX(k0=0.1)", 0, 100)  # a benchmark at the probe's budget: new run
        assert bench not in (None, *(r.id for r in runs))
        assert store.claim("mnist-lenet", "FIX(k0=0.01)", 1, 1000) == 4  # no heartbeat: its process is gone
        assert [a["kind"] for a in store.analyses(task="mnist-lenet")] == ["range-decade", "range-sweep"]
        assert store.tasks()[0]["input_shape"] == [1, 28, 28]
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":  # the rebuilt runs and curves tables keep their references
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert not {"runs_v3", "curves_v3"} & set(sa.inspect(conn).get_table_names())
    engine.dispose()
    with Store(url) as again:
        assert again.migrated_from == schema.VERSION and len(again.runs(purpose="bench")) == 5


def test_a_v4_store_migrates_with_no_outcomes_and_no_validation(url):
    load_fixture(url, 4)
    with Store(url, heartbeat_timeout=60) as store:
        assert store.migrated_from == 4 and version(url) == schema.VERSION
        runs = store.runs(outcomes=True)
        assert [(r.id, r.status, r.purpose) for r in runs] == [(1, "ok", "bench"), (2, "ok", "range-test"),
                                                                (3, "running", "bench")]
        assert all(r.outcomes is None and not r.has_validation for r in runs)
        assert math.isnan(runs[0].metrics["ld"]) and runs[0].curves["test_top1"] == [10.0, 98.6, 98.5]
        assert store.claim("mnist-lenet", "FIX(k0=0.01)", 1, 1000) == 3  # no heartbeat: its process is gone
        stored = {"val": outcomes.encode(np.array([True, False])), "test": outcomes.encode(np.array([True]))}
        done = dataclasses.replace(result(task="mnist-lenet", seed=1), outcomes=stored,
                                   metrics={"top1": 100.0, "val_top1": 50.0})
        assert store.finish(3, done) is True
        again = store.runs(outcomes=True)[2]
        assert again.outcomes == stored and again.has_validation
    with Store(url) as reopened:
        assert reopened.migrated_from == schema.VERSION


def test_purpose_is_part_of_a_runs_identity(open_store):
    store = open_store()
    probe = store.claim("tiny", "FIX(k0=0.01)", 0, 100, purpose="range-test")
    assert store.finish(probe, result()) is True
    assert store.claim("tiny", "FIX(k0=0.01)", 0, 100, purpose="range-test") is None
    bench = store.claim("tiny", "FIX(k0=0.01)", 0, 100)  # the default purpose: a benchmark, another run
    assert bench not in (None, probe)
    assert store.queue("tiny", "FIX(k0=0.01)", 1, 100, purpose="range-test") not in (probe, bench)
    assert [(r.id, r.purpose) for r in open_store().runs(purpose="bench")] == [(bench, "bench")]
    assert [r.status for r in store.runs(purpose="range-test")] == ["ok", "queued"]
    assert [r.purpose for r in store.runs()] == ["range-test", "bench", "range-test"]
    assert store.runs()[0].to_dict()["purpose"] == "range-test"


def test_a_newer_store_is_refused(open_store, url):
    open_store()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = 99"))
    engine.dispose()
    with pytest.raises(LRPilotError, match="schema version 99, newer than"):
        Store(url)


def test_bad_arguments_are_user_errors(open_store):
    store = open_store()
    with pytest.raises(LRPilotError, match="budget 0"):
        store.claim("tiny", "FIX(k0=0.01)", 0, 0)
    with pytest.raises(LRPilotError, match="unknown run status 'done'"):
        store.runs(status="done")
    with pytest.raises(LRPilotError, match="unknown run purpose 'tune': use one of \\('bench', 'range-test'\\)"):
        store.claim("tiny", "FIX(k0=0.01)", 0, 100, purpose="tune")
    with pytest.raises(LRPilotError, match="unknown run purpose 'probe'"):
        store.runs(purpose="probe")
    run_id = store.claim("tiny", "FIX(k0=0.01)", 0, 100)
    with pytest.raises(LRPilotError, match="not a finished one"):
        store.finish(run_id, result(status="running"))
    with pytest.raises(LRPilotError, match="seed 0, not tiny FIX\\(k0=0.01\\) seed 5"):
        store.finish(run_id, result(seed=5))
    with pytest.raises(LRPilotError, match="no run 9999"):
        store.finish(9999, result())


# --- issue 14: faults in the store ------------------------------------------------------------------------------

def _sql(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


def test_a_store_missing_its_schema_version_row_is_refused_as_damaged(open_store, url):
    # issue 14, "A damaged store": a missing schema-version row
    open_store()
    _sql(url, "DELETE FROM schema_version")
    with pytest.raises(LRPilotError, match="damaged: its schema_version table holds 0 row"):
        Store(url)


def test_a_store_missing_a_table_is_refused_on_open(open_store, url):
    # issue 14, "A damaged store": a store missing a table (was accepted with exit 0)
    open_store()
    _sql(url, "DROP TABLE analyses")
    with pytest.raises(LRPilotError, match="damaged: its table 'analyses' is missing"):
        Store(url)
    _sql(url, "DROP TABLE schema_version")
    with pytest.raises(LRPilotError, match="damaged: it has the table\\(s\\) .*runs.* but no schema_version"):
        Store(url)


@pytest.mark.parametrize("column", ["metrics", "record"])
def test_bad_json_in_a_runs_metrics_is_reported_with_its_table_and_run(open_store, url, column):
    # issue 14, "A damaged store": bad JSON in a run's metrics (SQLite; PostgreSQL's JSON type refuses bad text,
    # so there the value is valid JSON that does not decode)
    store = open_store()
    run_id = store.claim("tiny", "FIX(k0=0.01)", 0, 100)
    store.finish(run_id, result())
    bad = "'{\"top1\": 9' || '0.0, oops'" if url.startswith("sqlite") else "'{\"$float\": \"bogus\"}'"
    _sql(url, f"UPDATE runs SET {column} = {bad} WHERE id = {run_id}")
    with pytest.raises(LRPilotError, match=f"damaged: table runs, run {run_id} \\(tiny FIX\\(k0=0.01\\)\\): "
                                           f"its {column} is not valid"):
        store.runs()


def test_bad_json_in_a_curve_is_reported_with_its_run(open_store, url):
    # issue 14, "A damaged store": bad JSON in a run's curve
    store = open_store()
    run_id = store.claim("tiny", "FIX(k0=0.01)", 0, 100)
    store.finish(run_id, result())
    bad = "'[1, 2,'" if url.startswith("sqlite") else "'[{\"$float\": \"bogus\"}]'"
    _sql(url, f"UPDATE curves SET points = {bad} WHERE run_id = {run_id} AND name = 'train_loss'")
    with pytest.raises(LRPilotError, match=f"damaged: table curves, run {run_id}: its curve 'train_loss'"):
        store.runs()
    assert store.runs(curves=False)[0].metrics["top1"] == 90.0


def test_an_unknown_status_tag_is_reported_with_its_run(open_store, url):
    # issue 14, "A damaged store": an unknown status tag
    store = open_store()
    run_id = store.claim("tiny", "FIX(k0=0.01)", 0, 100)
    _sql(url, f"UPDATE runs SET status = 'weird' WHERE id = {run_id}")
    with pytest.raises(LRPilotError, match=f"damaged: table runs, run {run_id} .*unknown status 'weird'"):
        store.runs()


def test_a_restart_with_the_dead_holders_pid_takes_its_runs_over(open_store, url):
    # issue 14: "A restart whose process has the dead bench's PID (PID 1 in a container) treats the dead holder
    # as alive": the holder's token (boot id and start time), not the PID alone, says whether it is this process
    import os

    store = open_store(heartbeat_timeout=3600)
    run_id = store.claim("tiny", "FIX(k0=0.01)", 0, 100)
    host = store.owner.split(":")[0]
    dead = f"{host}:{os.getpid()}:0123456789ab:deadbeef.1"  # this PID, but an earlier process's token
    _sql(url, f"UPDATE runs SET owner = '{dead}' WHERE id = {run_id}")
    assert open_store(heartbeat_timeout=3600).claim("tiny", "FIX(k0=0.01)", 0, 100) == run_id
    # another live store of this process is alive: its run is not taken
    other = open_store(heartbeat_timeout=3600)
    assert other.claim("tiny", "FIX(k0=0.01)", 1, 100) is not None
    assert open_store(heartbeat_timeout=3600).claim("tiny", "FIX(k0=0.01)", 1, 100) is None


def test_a_live_process_that_reused_the_holders_pid_is_not_the_holder(open_store, url):
    # issue 14, owner identity: a PID of a live process whose start time differs from the holder's
    store = open_store(heartbeat_timeout=3600)
    run_id = store.claim("tiny", "FIX(k0=0.01)", 0, 100)
    host, _, _, token = store.owner.split(":")
    if token.startswith("r"):
        pytest.fail("no /proc: the PID-reuse check needs Linux")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _sql(url, f"UPDATE runs SET owner = '{host}:{sleeper.pid}:0123456789ab:{token.split('.')[0]}.1' "
                  f"WHERE id = {run_id}")
        assert open_store(heartbeat_timeout=3600).claim("tiny", "FIX(k0=0.01)", 0, 100) == run_id
    finally:
        sleeper.kill()
        sleeper.wait()


def test_failures_of_the_invocation_are_claimed_again_and_failures_of_the_run_are_final(open_store):
    # issue 14: "A bad per-run flag poisons the store for good": record["error_kind"] "invocation" is retried
    store = open_store()
    bad_flag = store.claim("tiny", "FIX(k0=0.01)", 0, 100)
    store.finish(bad_flag, RunResult("tiny", "FIX(k0=0.01)", 0, "failed", {}, {}, {},
                                     {"error": "RuntimeError: bogus device", "error_kind": "invocation"}))
    policy_bug = store.claim("tiny", "FIX(k0=0.01)", 1, 100)
    store.finish(policy_bug, RunResult("tiny", "FIX(k0=0.01)", 1, "failed", {}, {}, {},
                                       {"error": "ValueError: boom", "error_kind": "run"}))
    old = store.claim("tiny", "FIX(k0=0.01)", 2, 100)
    store.finish(old, RunResult("tiny", "FIX(k0=0.01)", 2, "failed", {}, {}, {}, {"error": "old store"}))
    again = open_store()
    assert again.claim("tiny", "FIX(k0=0.01)", 0, 100) == bad_flag
    assert again.claim("tiny", "FIX(k0=0.01)", 1, 100) is None and again.claim("tiny", "FIX(k0=0.01)", 2, 100) is None
    assert again.finish(bad_flag, result()) is True
    [run] = again.runs(status="ok")
    assert run.id == bad_flag and run.curves["train_loss"] == [2.3, 1.0, 0.5]
    assert again.claim("tiny", "FIX(k0=0.01)", 0, 100) is None


def test_a_run_taken_over_raises_claim_lost_at_heartbeat_and_finish(open_store):
    # issue 14: "A bench paused (SIGSTOP) past the heartbeat timeout": the paused holder learns it lost the run
    from lrpilot.store import ClaimLost

    a, b = open_store(heartbeat_timeout=0.3), open_store(heartbeat_timeout=0.3)
    run_id = a.claim("tiny", "FIX(k0=0.01)", 0, 100)
    time.sleep(0.5)
    assert b.claim("tiny", "FIX(k0=0.01)", 0, 100) == run_id
    with pytest.raises(ClaimLost):
        a.heartbeat(run_id)
    with pytest.raises(ClaimLost):
        a.finish(run_id, result())
    assert b.finish(run_id, result()) is True


def _hold_write_lock(url: str):
    """A connection of another client holding the store's write lock (runs locked against writes)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    conn = engine.connect()
    if url.startswith("sqlite"):
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
    else:
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql("LOCK TABLE runs, tasks, policies IN EXCLUSIVE MODE")
    return engine, conn


def test_reads_never_wait_on_a_writers_lock_and_a_long_wait_says_so(open_store, url, capfd):
    # issue 14: "A held SQLite write lock blocks even a read-only rank for 612 s with no message"
    store = open_store(lock_timeout=5)
    store.finish(store.claim("tiny", "FIX(k0=0.01)", 0, 100), result())
    engine, conn = _hold_write_lock(url)
    try:
        began = time.monotonic()
        reader = Store(url, lock_timeout=5)  # opening a current store takes no write lock
        assert [r.status for r in reader.runs()] == ["ok"] and reader.tasks() and reader.analyses() == []
        reader.close()
        assert time.monotonic() - began < 2.0
        capfd.readouterr()
        began = time.monotonic()
        with pytest.raises(LRPilotError, match="stayed locked by another process for [0-9]+ s"):
            store.claim("tiny", "FIX(k0=0.01)", 1, 100)
        assert 4.5 < time.monotonic() - began < 15
        err = capfd.readouterr().err
        assert "waiting for the lock on the results store" in err and len(err.strip().splitlines()) == 1
    finally:
        conn.rollback() if not url.startswith("sqlite") else conn.exec_driver_sql("ROLLBACK")
        conn.close()
        engine.dispose()
    assert store.claim("tiny", "FIX(k0=0.01)", 1, 100) is not None


def test_numbers_too_large_for_the_stores_integers_are_user_errors(open_store):
    # issue 14, "Numbers": --seed 18446744073709551616, --steps 1e20 (too large for SQLite's INTEGER)
    store = open_store()
    with pytest.raises(LRPilotError, match="seed 18446744073709551616 is too large for the results store"):
        store.claim("tiny", "FIX(k0=0.01)", 18446744073709551616, 100)
    with pytest.raises(LRPilotError, match="budget 100000000000000000000 is too large"):
        store.claim("tiny", "FIX(k0=0.01)", 0, 10**20)
    assert store.claim("tiny", "FIX(k0=0.01)", 2**31 - 1, 2**31 - 1) is not None and len(store.runs()) == 1


def test_a_v5_store_migrates_with_no_fingerprints_which_stay_valid(url):
    load_fixture(url, 5)
    with Store(url, heartbeat_timeout=60) as store:
        assert store.migrated_from == 5 and version(url) == schema.VERSION
        runs = store.runs(outcomes=True)
        assert [(r.id, r.status, r.purpose) for r in runs] == [(1, "ok", "bench"), (2, "failed", "bench"),
                                                                (3, "ok", "range-test"), (4, "running", "bench")]
        assert all(r.fingerprint is None for r in runs) and runs[0].correct("val").tolist() == [True, False, True, True]
        assert runs[0].curves == {"train_loss": [2.3, 0.1, INF], "val_top1": [10.0, 81.0]}
        assert store.claim("digits-lenet", "FIX(k0=0.05)", 0, 10, fingerprint="f" * 64) is None  # none: not stale
        assert store.claim("digits-lenet", "FIX(k0=0.1)", 0, 10, fingerprint="f" * 64) is None  # a final failure
        assert store.claim("digits-lenet", "FIX(k0=0.1)", 0, 10, rerun_failed=True) == 2
        assert store.claim("digits-lenet", "FIX(k0=0.05)", 1, 10, fingerprint="f" * 64) == 4  # its process is gone
        assert store.finish(4, result(task="digits-lenet", seed=1, policy="FIX(k0=0.05)")) is True
        assert store.runs(status="ok", task="digits-lenet", purpose="bench")[-1].fingerprint == "f" * 64
    with Store(url) as reopened:
        assert reopened.migrated_from == schema.VERSION


def test_a_finished_run_of_another_fingerprint_is_claimed_again_and_replaced(open_store):
    store = open_store()
    first = store.claim("tiny", "FIX(k0=0.01)", 0, 100, fingerprint="a" * 64)
    assert store.finish(first, result(top1=50.0, train_loss=[9.0], old=[1.0])) is True
    assert store.runs()[0].fingerprint == "a" * 64
    again = open_store()
    assert again.claim("tiny", "FIX(k0=0.01)", 0, 100, fingerprint="a" * 64) is None  # the same: its result stands
    assert again.claim("tiny", "FIX(k0=0.01)", 0, 100) is None  # a claim that knows no fingerprint: not stale
    assert again.claim("tiny", "FIX(k0=0.01)", 0, 100, fingerprint="b" * 64) == first
    assert store.claim("tiny", "FIX(k0=0.01)", 0, 100, fingerprint="b" * 64) is None  # held by `again` now
    assert again.finish(first, result(top1=80.0)) is True
    [run] = again.runs()
    assert (run.id, run.metrics["top1"], run.fingerprint) == (first, 80.0, "b" * 64)
    assert run.curves == {"iteration": [0, 50, 100], "train_loss": [2.3, 1.0, 0.5]}  # the old curves are gone
    assert again.claim("tiny", "FIX(k0=0.01)", 0, 100, fingerprint="b" * 64) is None
    with pytest.raises(LRPilotError, match="fingerprint"):
        again.claim("tiny", "FIX(k0=0.01)", 1, 100, fingerprint="x" * 65)


def test_rerun_failed_claims_every_failure_and_nothing_else(open_store):
    store = open_store()
    for seed, status, kind in ((0, "failed", "run"), (1, "failed", None), (2, "ok", None), (3, "diverged", None)):
        run_id = store.claim("tiny", "FIX(k0=0.01)", seed, 100)
        record = {"error": "ValueError: boom", **({"error_kind": kind} if kind else {})} if status == "failed" else {}
        store.finish(run_id, dataclasses.replace(result(seed=seed, status=status), record=record))
    again = open_store()
    assert [again.claim("tiny", "FIX(k0=0.01)", s, 100) for s in range(4)] == [None] * 4
    claimed = [again.claim("tiny", "FIX(k0=0.01)", s, 100, rerun_failed=True) for s in range(4)]
    assert claimed[:2] == [r.id for r in again.runs()[:2]] and claimed[2:] == [None, None]
    assert {r.seed: r.status for r in again.runs()} == {0: "running", 1: "running", 2: "ok", 3: "diverged"}


def test_delete_runs_deletes_the_filtered_runs_and_their_curves_keeping_live_holders(open_store, url):
    store = open_store()
    for seed, status in enumerate(("ok", "failed", "ok")):
        store.finish(store.claim("tiny", "FIX(k0=0.01)", seed, 100), result(seed=seed, status=status))
    other = store.claim("tiny", "FIX(k0=0.1)", 0, 100)
    store.finish(other, result(policy="FIX(k0=0.1)"))
    probe = store.claim("tiny", "FIX(k0=0.01)", 0, 100, purpose="range-test")
    store.finish(probe, result())
    store.finish(store.claim("elsewhere", "FIX(k0=0.01)", 0, 100), result(task="elsewhere"))
    live = store.claim("tiny", "FIX(k0=0.01)", 3, 100)  # held by this live store object
    assert store.delete_runs(task="tiny", policy="FIX(k0=0.01)", status="failed") == 1
    assert [r.seed for r in store.runs(task="tiny", policy="FIX(k0=0.01)", purpose="bench")] == [0, 2, 3]
    assert store.delete_runs(task="tiny", purpose="range-test") == 1
    assert store.delete_runs(task="tiny", policy="FIX(k0=0.01)") == 2  # the live holder's run is kept
    assert [(r.policy, r.status) for r in store.runs(task="tiny")] == [("FIX(k0=0.1)", "ok"),
                                                                       ("FIX(k0=0.01)", "running")]
    assert store.runs(task="elsewhere")[0].status == "ok" and store.delete_runs(task="nope") == 0
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        left = {row[0] for row in conn.execute(sa.text("SELECT DISTINCT run_id FROM curves"))}
    engine.dispose()
    assert left == {other, store.runs(task="elsewhere")[0].id}  # the deleted runs' curves went with them
    store.release(live)
    assert store.delete_runs(task="tiny") == 2 and store.runs(task="tiny") == []
    with pytest.raises(LRPilotError, match="task"):
        store.delete_runs(task="")
    with pytest.raises(LRPilotError, match="unknown run status 'done'"):
        store.delete_runs(task="tiny", status="done")


def test_a_run_by_id_and_runs_filtered_by_budget_and_seeds_in_the_query(open_store):
    store = open_store()
    ids = {}
    for budget in (100, 200):
        for seed in range(3):
            ids[budget, seed] = store.claim("tiny", "FIX(k0=0.01)", seed, budget)
            store.finish(ids[budget, seed], result(seed=seed))
    store.finish(store.claim("elsewhere", "FIX(k0=0.01)", 1, 100), result(seed=1, task="elsewhere"))
    run = store.run(ids[200, 1])
    assert (run.task, run.seed, run.budget, run.status) == ("tiny", 1, 200, "ok")
    assert run.curves["train_loss"] == [2.3, 1.0, 0.5] and store.run(ids[200, 1], curves=False).curves == {}
    assert store.run(10**6) is None
    with pytest.raises(LRPilotError, match="whole number"):
        store.run("3")
    assert [(r.budget, r.seed) for r in store.runs(task="tiny", budget=200, seeds=[0, 2])] == [(200, 0), (200, 2)]
    assert [r.task for r in store.runs(budget=100, seeds=(1,))] == ["tiny", "elsewhere"]
    assert store.runs(task="tiny", seeds=[]) == [] and len(store.runs(task="tiny", budget=100)) == 3
    with pytest.raises(LRPilotError, match="budget filter"):
        store.runs(budget=1.5)
