"""The benchmark commands of the CLI (bench, rank, range-test, recommend, report), in process, on a temporary store."""

import csv
import io
import json
import math

import pytest

from lrpilot.bench.range_test import decade_test
from lrpilot.decision.ranking import FIELDS, rank
from lrpilot.grid.runner import bench
from lrpilot.cli import main
from lrpilot.store import Store

from tests.bench.conftest import Inline, Scripted

TASK = "digits-lenet"
POLICIES = ["FIX(k0=0.05)", "COS(k0=0.1, k1=0.001, l=10)", "FIX(k0=0.0001)"]


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A store holding real 10-iteration runs of three policies over two seeds; the expected ranking."""
    db = str(tmp_path_factory.mktemp("filled") / "results.db")
    with Store(db) as s:
        bench(s, TASK, POLICIES, seeds=[0, 1], steps=10, executor=Inline())
        order = [r.policy for r in rank(s.runs(task=TASK, curves=False, outcomes=True), task=TASK).rows]
    assert sorted(order) == sorted(POLICIES)
    return db, order


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "results.db")


def stored_runs(db):
    with Store(db) as s:
        return s.runs(curves=False)


def one_error_line(capsys, command, *fragments):
    """The captured stderr: one line, the command's error, naming each fragment."""
    err = capsys.readouterr().err
    assert err.startswith(f"lrpilot {command}: error:") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


# --- rank ---------------------------------------------------------------------------------------------

def test_rank_prints_the_table_in_ranking_order(filled, capsys, monkeypatch):
    db, order = filled
    monkeypatch.setenv("COLUMNS", "120")  # the widest table: its title and headers on one line each
    assert main(["rank", "--task", TASK, "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"LR policies for task {TASK} ranked by utility")
    assert "policy" in lines[1] and "val Top-1 % [95% CI]" in lines[1] and "test Top-1 % [95% CI]" in lines[1]
    rows = lines[2:5]
    assert len(rows) == 3 and lines[5].startswith("= statistically tied with the best on validation")
    for place, (line, policy) in enumerate(zip(rows, order), 1):
        assert line.split()[0].rstrip("*=") == str(place) and policy in line and " 10 " in line
    assert sum(line.split()[0].endswith("*") for line in rows) == 1  # one decision


def test_rank_json_has_the_fields(filled, capsys):
    db, order = filled
    assert main(["rank", "--task", TASK, "--db", db, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["policy"] for r in rows] == order and [r["rank"] for r in rows] == [1, 2, 3]
    assert set(FIELDS) <= set(rows[0]) and {(r["budget"], r["n"]) for r in rows} == {(10, 2)}
    assert all(0 <= r["top1_mean"] <= 100 for r in rows)


def test_rank_csv_to_stdout_parses(filled, capsys):
    db, order = filled
    assert main(["rank", "--task", TASK, "--db", db, "--csv", "-", "--top", "2"]) == 0
    reader = csv.DictReader(io.StringIO(capsys.readouterr().out))
    rows = list(reader)
    assert tuple(reader.fieldnames) == FIELDS
    assert [r["policy"] for r in rows] == order[:2] and [r["rank"] for r in rows] == ["1", "2"]


def test_rank_of_a_task_without_runs_says_so(db, capsys):
    assert main(["rank", "--task", TASK, "--db", db]) == 0
    assert "no finished runs for task digits-lenet" in capsys.readouterr().out


def test_rank_leaves_out_the_range_tests_probes_but_not_a_benchmark_at_their_budget(db, capsys):
    script = Scripted(lambda lr: 90.0 - abs(math.log10(lr / 0.01)))
    with Store(db) as s:
        decade_test(s, TASK, seeds=(0,), steps=4, executor=script)
    assert main(["rank", "--task", TASK, "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    with Store(db) as s:
        user = Scripted(script.top1)
        bench(s, TASK, ["FIX(k0=0.01)"], seeds=[0], steps=4, executor=user)  # the probe's policy and budget
    assert [j.policy for j in user.jobs] == ["FIX(k0=0.01)"]  # its own run, not the probe's
    assert main(["rank", "--task", TASK, "--db", db, "--json"]) == 0
    assert [(r["policy"], r["budget"]) for r in json.loads(capsys.readouterr().out)] == [("FIX(k0=0.01)", 4)]


def test_rank_by_unknown_criterion_is_exit_2_naming_it(filled, capsys):
    assert main(["rank", "--task", TASK, "--db", filled[0], "--by", "nope"]) == 2
    one_error_line(capsys, "rank", "'nope'", "utility")


# --- report ------------------------------------------------------------------------------------------

def test_report_writes_self_contained_html(filled, tmp_path, capsys):
    out = tmp_path / "x.html"
    assert main(["report", "--task", TASK, "--db", filled[0], "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "<svg" in html and "<img" not in html and all(p in html for p in ("FIX(k0=0.05)", "FIX(k0=0.0001)"))
    assert f"wrote {out} (6 runs of {TASK})" in capsys.readouterr().out


def test_report_leaves_the_range_tests_short_runs_out_of_its_table(tmp_path, capsys):
    db = str(tmp_path / "results.db")
    with Store(db) as s:
        bench(s, TASK, ["COS(k0=0.1, k1=0.001, l=10)"], seeds=[0], steps=10, executor=Inline())
        decade_test(s, TASK, seeds=(0,), steps=4, executor=Scripted(lambda lr: 90.0 - abs(math.log10(lr / 0.01))))
    out = tmp_path / "r.md"
    assert main(["report", "--task", TASK, "--db", db, "-o", str(out)]) == 0
    assert "(1 runs of digits-lenet)" in capsys.readouterr().out
    text = out.read_text()
    assert "COS(k0=0.1, k1=0.001, l=10)" in text and "FIX(k0=" not in text
    assert (tmp_path / "r_files" / "range_test_1.svg").exists()


def test_report_to_txt_is_exit_2_and_writes_nothing(filled, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--task", TASK, "--db", filled[0], "-o", "x.txt"]) == 2
    one_error_line(capsys, "report", "x.txt", ".html")
    assert list(tmp_path.iterdir()) == []


# --- recommend -----------------------------------------------------------------------------------------

def test_recommend_on_an_empty_store_without_range_test_says_so(db, capsys):
    assert main(["recommend", "--task", TASK, "--json", "--no-range-test", "--db", db]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["task"] == TASK and rec["case"] == "range-test" and rec["policies"] == []
    assert "no range test" in rec["note"] and stored_runs(db) == []


def test_recommend_from_the_stored_runs(filled, capsys):
    db, order = filled
    assert main(["recommend", "--task", TASK, "--top", "2", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{TASK}: its 2 best stored policies, by utility"
    with Store(db) as s:
        rows = rank(s.runs(task=TASK, curves=False, outcomes=True), task=TASK).rows
    decided = [r.policy for r in sorted(rows, key=lambda r: not r.chosen)]  # the decision first
    assert [line.split(". ", 1)[1].split("  validation Top-1 ")[0] for line in lines[1:]] == decided[:2]
    assert "chosen: the cheapest (#Param, then #Iterations at the best validation Top-1) of the tied policies" in lines[1]


def test_recommend_with_the_ray_executor_option_and_nothing_to_run(db, capsys):
    assert main(["recommend", "--task", TASK, "--no-range-test", "--executor", "ray", "--db", db]) == 0
    assert "no range test" in capsys.readouterr().out


def test_recommend_top_0_is_exit_2(db, capsys):
    assert main(["recommend", "--task", TASK, "--top", "0", "--db", db]) == 2
    one_error_line(capsys, "recommend", "--top 0")


# --- bench: errors before any run ---------------------------------------------------------------------------

@pytest.mark.parametrize("content", ["- FIX(k0=0.1)\n- [unclosed", "policies: FIX(k0=0.1)\n", "{}\n", "[]\n",
                                     "- FIX(k0=0.1)\n- 3\n"])
def test_bench_with_a_bad_policy_file_is_exit_2_naming_it(db, tmp_path, capsys, content):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    assert main(["bench", "--task", TASK, "--policy-file", str(path), "--steps", "10", "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrpilot bench: error: --policy-file") and str(path) in err
    assert stored_runs(db) == []


def test_bench_policy_file_that_is_not_a_list_is_a_one_line_error(db, tmp_path, capsys):
    path = tmp_path / "mapping.yaml"
    path.write_text("policies: FIX(k0=0.1)\n")
    assert main(["bench", "--task", TASK, "--policy-file", str(path), "--steps", "10", "--db", db]) == 2
    one_error_line(capsys, "bench", str(path), "list of policy texts")


def test_bench_with_a_missing_policy_file_is_exit_2(db, tmp_path, capsys):
    path = tmp_path / "missing.yaml"
    assert main(["bench", "--task", TASK, "--policy-file", str(path), "--db", db]) == 2
    one_error_line(capsys, "bench", "cannot read", str(path))
    assert stored_runs(db) == []


@pytest.mark.parametrize("argv, fragment", [
    (["--policies", "COS(k1=1)", "--steps", "10"], "k0"),
    (["--policies", "FIX(k0=0.1)", "--repeats", "0"], "--repeats 0"),
    (["--policies", "FIX(k0=0.1)", "--by", "nope", "--steps", "10"], "'nope'"),
    (["--suite", "lrbench13", "--steps", "4"], "4 iterations"),
])
def test_bench_refuses_bad_input_before_any_run(db, capsys, argv, fragment):
    assert main(["bench", "--task", TASK, "--db", db, *argv]) == 2
    one_error_line(capsys, "bench", fragment)
    assert stored_runs(db) == []


def test_range_test_repeats_0_is_exit_2(db, capsys):
    assert main(["range-test", "--task", TASK, "--repeats", "0", "--db", db]) == 2
    one_error_line(capsys, "range-test", "--repeats 0")
    assert stored_runs(db) == []


def test_range_test_bad_tolerance_is_exit_2(db, capsys):
    assert main(["range-test", "--task", TASK, "--method", "decade", "--tolerance", "-1", "--db", db,
                 "--quiet"]) == 2
    one_error_line(capsys, "range-test", "--tolerance -1")
    assert stored_runs(db) == []


# --- bench: a real run in a worker process --------------------------------------------------------------------

def test_bench_trains_in_a_worker_ranks_and_a_rerun_trains_nothing(db, capsys):
    argv = ["bench", "--task", TASK, "--policies", "FIX(k0=0.05)", "--workers", "1", "--steps", "10",
            "--repeats", "1", "--db", db]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{TASK}: 1 runs trained, 0 pruned, 0 failed, 0 already in" in out
    assert "ranked by utility" in out and any(line.split()[:2] == ["1*", "FIX(k0=0.05)"] for line in out.splitlines())
    (run,) = stored_runs(db)
    assert (run.policy, run.seed, run.budget, run.status) == ("FIX(k0=0.05)", 0, 10, "ok")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "0 runs trained, 0 pruned, 0 failed, 1 already in" in out and "FIX(k0=0.05)" in out
    assert len(stored_runs(db)) == 1


# --- tune ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [(["--budget", "0"], "--budget 0"), (["--repeats", "0"], "--repeats 0"),
                                            (["--workers", "0"], "--workers 0")])
def test_tune_bad_arguments_are_exit_2_and_train_nothing(db, capsys, args, fragment):
    assert main(["tune", "--task", TASK, "--db", db, *args]) == 2
    one_error_line(capsys, "tune", fragment)
    assert stored_runs(db) == []
