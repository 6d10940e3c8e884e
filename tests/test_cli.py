"""The command line: output, errors as one line with exit status 2, no partial files."""

import json
import os
import subprocess
import sys

import pytest

from lrpilot.decision.ranking import ORDERS
from lrpilot.bench.suite import SUITES
from lrpilot.cli import build_parser, main
from lrpilot.execution.executors import EXECUTORS, ExecutorEntry, InProcess


def test_policies_json_lists_the_13_functions_with_table_I_param_counts(capsys):
    assert main(["policies", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    expected = {"FIX": "1", "STEP": "3", "NSTEP": "n+2", "EXP": "2", "INV": "3", "POLY": "4", "TRI": "3",
                "TRI2": "3", "TRIEXP": "4", "SIN": "3", "SIN2": "3", "SINEXP": "4", "COS": "3"}
    assert {n: rows[n]["n_param"] for n in expected} == expected
    import lrpilot
    for r in rows.values():  # every example given parses (controllers and searches build a spec, not a policy)
        if r["kind"] not in ("controller", "search"):
            assert str(lrpilot.policy(r["example"]))


def test_version_and_usage_errors_are_one_line(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "lrpilot 0.1.0"
    assert main(["rank", "--task", "x", "--by", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrpilot rank: error: argument --by: invalid choice: 'nope'") and err.count("\n") == 1


def test_choices_come_from_the_registries(monkeypatch):
    monkeypatch.setitem(EXECUTORS, "serial", ExecutorEntry(lambda workers, address: InProcess(), "in turn", jobs=True))
    monkeypatch.setitem(SUITES, "fix1", lambda total, k_low, k_high, best: ["FIX(k0=0.1)"])
    monkeypatch.setitem(ORDERS, "top5", (("top5", True),))
    parse = build_parser().parse_args
    args = parse(["bench", "--task", "t", "--suite", "fix1", "--by", "top5", "--executor", "serial"])
    assert (args.suite, args.by, args.executor) == ("fix1", "top5", "serial")
    assert parse(["train", "--task", "t", "--executor", "serial"]).executor == "serial"
    assert parse(["report", "--task", "t", "--by", "top5"]).by == "top5"


def test_plot_writes_a_png(tmp_path, capsys):
    out = tmp_path / "sub" / "p.png"
    assert main(["plot", "FIX(k0=0.1)", "COS(k0=0.1, k1=0.001, l=50)", "--steps", "200", "-o", str(out), "--log"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in out.parent.iterdir()] == ["p.png"]  # no temporary file left beside it
    assert "2 policies" in capsys.readouterr().out


@pytest.mark.parametrize("argv, fragment", [
    (["plot", "TRI2(k0=-1, k1=0.9, l=10)"], "k0=-1"),
    (["plot", "FIX(k0=0.1)", "-o", "x.txt"], ".png"),
    (["plot", "FIX(k0=0.1)", "--steps", "0"], "--steps 0"),
])
def test_bad_input_is_one_line_exit_2_and_no_file(tmp_path, argv, fragment, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and err.startswith("lrpilot plot: error:")
    assert list(tmp_path.iterdir()) == []


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "lrpilot.cli", "plot", "FOO(k0=1)"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown policy 'FOO'" in r.stderr and r.stdout == ""
