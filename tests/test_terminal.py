"""The terminal: rank's and bench's tables fit 80-120 columns; one progress bar for a bench, range test or tune."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from lrpilot import cli
from lrpilot.decision.ranking import rank
from lrpilot.decision.tables import TABLE_COLUMNS
from lrpilot.grid.runner import bench, canonical_policies
from lrpilot.bench.tune import tune
from lrpilot.cli import main
from lrpilot.policy.text import parse
from lrpilot.progress import Progress
from lrpilot.store import Store

from tests.bench.conftest import Graded, store  # noqa: F401 (a fixture)
from tests.bench.test_tune import graded

TASK = "digits-lenet"
LONG = canonical_policies([
    "piecewise(warmup(SINEXP(k0=0.00005, k1=0.006, gamma=0.99994, l=2000), steps=500), "
    "clamp(EXP(k0=0.1, gamma=0.999), min=0.001)@1000, NSTEP(k0=0.1, gamma=0.1, l=[1500, 1800, 2500])@3000)",
    "warmup(clamp(TRIEXP(k0=0.05, k1=0.3, gamma=0.94, l=100), min=0.0001, max=0.25), steps=20)",
    "autodrop(k0=0.0123456, rho=0.2, nd=4, period=10, k_min=0.000123)",
    "FIX(k0=0.05)"])
QUALITY = dict(zip(LONG, (0.91, 0.95, 0.93, 0.80)))


def graded_by_policy() -> Graded:
    return Graded(lambda job: QUALITY[job.policy])


@pytest.fixture(scope="module")
def long_db(tmp_path_factory):
    """A store holding two seeds of four policies, three of them long texts (one over 150 characters)."""
    db = str(tmp_path_factory.mktemp("long") / "results.db")
    with Store(db) as s:
        bench(s, TASK, LONG, seeds=[0, 1], steps=20, executor=graded_by_policy())
    assert max(map(len, LONG)) > 150
    return db


def widest(text: str) -> int:
    return max(map(len, text.splitlines()))


def decisions(text: str) -> int:
    """The rows marked as the decision (``1*``)."""
    return len(re.findall(r"^\d+\*", text, flags=re.M))


@pytest.mark.parametrize("columns", [None, "all", "policy,top5,ac,cd,cdac,ld,wall_s,runs"])
@pytest.mark.parametrize("width", ["80", "120", None])
def test_rank_fits_the_width(long_db, capsys, monkeypatch, columns, width):
    if width is None:  # not a terminal, no COLUMNS: 120
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", width)
    assert main(["rank", "--task", TASK, "--db", long_db] + (["--columns", columns] if columns else [])) == 0
    out = capsys.readouterr().out
    assert widest(out) <= int(width or 120) and widest(out) > 60, out
    assert out.startswith(f"LR policies for task {TASK} ranked by utility") and "= statistically tied" in out
    if columns != "policy,top5,ac,cd,cdac,ld,wall_s,runs":
        assert decisions(out) == 1
    if columns is None:  # the compact default: the two Top-1 intervals, not AC
        header = out.splitlines()[:5]
        assert "#Param" in out and "0.9000" not in out and any("val Top-1" in line for line in header)  # no AC


def test_rank_columns_choose_and_keep_the_order(long_db, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["rank", "--task", TASK, "--db", long_db, "--columns", "top5,policy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if "policy" in line)
    assert lines[header].split() == ["Top-5", "(%)", "policy"]
    row = lines[header + 1].split()
    assert row[0] == "-" and LONG[1].startswith(row[1])  # no Top-5 stored; the best policy first


def test_rank_unknown_column_is_a_usage_error(long_db, capsys):
    assert main(["rank", "--task", TASK, "--db", long_db, "--columns", "policy,colour"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--columns 'policy,colour': unknown colour" in err
    assert ",".join(TABLE_COLUMNS) in err


def test_json_and_csv_keep_every_field(long_db, capsys):
    assert main(["rank", "--task", TASK, "--db", long_db, "--csv", "-"]) == 0
    out = capsys.readouterr().out
    assert all(p in out for p in LONG)  # the whole texts, never wrapped


@pytest.mark.parametrize("width", ["80", "120"])
def test_bench_output_fits_the_width(tmp_path, capsys, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", width)
    monkeypatch.setattr(cli, "_executor", lambda args: graded_by_policy())
    db = str(tmp_path / "a-folder-with-a-rather-long-name-for-the-results-store" / "results.db")
    argv = ["bench", "--task", TASK, "--policies", *LONG, "--steps", "20", "--repeats", "2", "--db", db]
    assert main(argv + ["--race"]) == 0
    captured = capsys.readouterr()
    assert widest(captured.out) <= int(width) and "race: seed 0:" in captured.out
    assert decisions(captured.out) == 1 and "= statistically tied" in captured.out
    assert captured.err.count("[") >= len(LONG)  # not a terminal: a line per finished run, as before


def test_quiet_bench_prints_nothing_on_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_executor", lambda args: graded_by_policy())
    argv = ["bench", "--task", TASK, "--policies", *LONG[2:], "--steps", "20", "--db", str(tmp_path / "r.db")]
    assert main(argv + ["--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "2 runs" not in captured.err and "6 runs trained" in captured.out
    assert main(["bench", "--task", TASK, "--policies", LONG[3], "--steps", "30", "--db", str(tmp_path / "r.db")]) == 0
    assert "[1/3]" in capsys.readouterr().err  # without --quiet: the lines


# --- the progress bar -----------------------------------------------------------------------------------------

def terminal() -> Console:
    """A fake terminal that keeps what is drawn on it."""
    return Console(file=io.StringIO(), force_terminal=True, width=160, color_system=None)


class Counting(Progress):
    """A Progress that keeps the description after every finished run."""

    def __init__(self, console: Console):
        super().__init__(console)
        self.seen: list[str] = []

    def finished(self, line: str, **run) -> None:
        super().finished(line, **run)
        self.seen.append(self.describe())


def test_one_bar_advances_once_per_finished_run_and_shows_the_leader(store):
    console = terminal()
    with Counting(console) as p:
        bench(store, TASK, LONG, seeds=[0, 1], steps=20, executor=graded_by_policy(), progress=p)
        assert p._bar.tasks[0].completed == p._bar.tasks[0].total == 8
    assert (p.runs, p.expected) == (8, 8) and len(p.seen) == 8
    assert [s.split(" runs")[0] for s in p.seen] == [f"{k}/8" for k in range(1, 9)]
    best = max(LONG, key=QUALITY.get)
    assert p.leader is not None and p.leader[1] == best and p.seen[-1].startswith("8/8 runs, leader ")
    drawn = console.file.getvalue()
    assert "8/8 runs, leader" in drawn and best[:30] in drawn and "ETA" in drawn
    assert "[1/8]" not in drawn  # on a terminal the bar replaces the per-run lines


def test_the_bar_spans_the_rounds_of_a_race_and_prints_the_phase_lines(store):
    from lrpilot.grid.racing import Halving

    console = terminal()
    with Progress(console) as p:
        done = bench(store, TASK, LONG, seeds=[0, 1, 2], steps=20, executor=graded_by_policy(), progress=p,
                     race=Halving())
    assert p.runs == done.trained + done.pruned + done.failed == p.expected
    assert done.raced[0] in " ".join(console.file.getvalue().split())  # a phase line, above the bar (wrapped)


def test_without_a_terminal_the_progress_prints_the_lines_a_callable_gets(tmp_path):
    lines: list[str] = []
    plain = Console(file=io.StringIO(), force_terminal=False)
    with Store(tmp_path / "a.db") as a, Store(tmp_path / "b.db") as b:
        bench(a, TASK, LONG, seeds=[0], steps=20, executor=graded_by_policy(), progress=lines.append)
        with Progress(plain) as p:
            bench(b, TASK, LONG, seeds=[0], steps=20, executor=graded_by_policy(), progress=p)
    assert plain.file.getvalue().splitlines() == lines and len(lines) == len(LONG)
    assert p.runs == len(LONG) and p.leader[1] == max(LONG, key=QUALITY.get)


def test_tune_bar_counts_its_budget_in_epoch_equivalents(store):
    console = terminal()
    with Progress(console) as p:
        result = tune(store, TASK, budget=100.0, seeds=(0,), executor=graded({"COS": 0.97, "FIX": 0.9}),
                      progress=p)
    assert p.budget == 100.0 and p._bar.tasks[0].total == 100.0
    assert p.spent == pytest.approx(result.epoch_equivalents) and 0 < p.spent <= 100.0
    assert p.leader is not None and parse(p.leader[1]).name == "COS"
    assert f"{p.spent:.1f}/100 epoch-eq., {p.runs} runs, leader" in console.file.getvalue()


def test_a_failed_run_prints_above_the_bar(store):
    console = terminal()

    def quality(job):
        raise RuntimeError("boom")

    with Progress(console) as p:
        bench(store, TASK, LONG[3:], seeds=[0], steps=20, executor=Graded(quality), progress=p)
    assert p.runs == 1 and p.leader is None and "failed: " in console.file.getvalue()


def test_rank_table_api_keeps_every_column():
    from tests.bench.test_rank import rec

    ranking = rank([rec("A", 0), rec("B", 0, top1=90.0)], by="score")
    headers, cells = ranking.table()
    assert headers[:3] == ["#", "policy", "budget"] and headers[-2:] == ["runs", "score"] and len(headers) == 15
    assert ranking.table(["policy", "runs"]) == (["policy", "runs"], [["A", "1"], ["B", "1"]])


def test_a_command_that_trains_nothing_draws_no_bar(store):
    bench(store, TASK, LONG[3:], seeds=[0], steps=20, executor=graded_by_policy())
    console = terminal()
    with Progress(console) as p:
        bench(store, TASK, LONG[3:], seeds=[0], steps=20, executor=graded_by_policy(), progress=p)
    assert (p.runs, p.expected) == (0, 0) and console.file.getvalue() == ""
