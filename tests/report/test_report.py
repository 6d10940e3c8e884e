"""The report: self-contained HTML, Markdown with its figure files, escaping, range tests and errors."""

import base64
import math
import re

import pytest

from lrpilot.engine import train
from lrpilot.errors import LRPilotError
from lrpilot.records import RunRecord
from lrpilot.report.plots import pyplot, range_test_figure
from lrpilot.report.report import _curve, write_report
from lrpilot.tasks import get_task

PNG = b"\x89PNG\r\n\x1a\n"
ODD = "FIX(k0=0.05) <b>&'|"  # a policy text that HTML and Markdown must escape
DECADE = {"kind": "decade", "points": [{"lr": 0.001, "top1_mean": 80.0, "top1_std": 1.0, "n": 2},
                                       {"lr": 0.01, "top1_mean": 95.5, "top1_std": 0.3, "n": 2},
                                       {"lr": 0.1, "top1_mean": 97.1, "n": 2}, {"lr": 1.0, "top1_mean": None, "n": 2}],
          "k_low": 0.01, "k_high": 0.1, "best_lr": 0.05}
SWEEP = {"kind": "sweep", "rule": "steepest", "suggestion": 0.03, "spread": [0.02, 0.05],
         "curves": [{"seed": s, "lr": [1e-4, 1e-3, 1e-2, 1e-1, 1.0], "loss": [2.3, 2.2, 1.5, 3.0 + s, math.inf],
                     "suggestion": 0.03 + s / 100} for s in range(2)]}


def record(result, run_id, policy=None, budget=30):
    return RunRecord(run_id, result.task, policy or result.policy, result.seed, budget, result.status, result.metrics,
                     result.cost, result.curves, result.record, None, 0.0, 0.0, 0.0, 1.0)


@pytest.fixture(scope="module")
def records():
    """Three short real runs: FIX over two seeds and COS, plus a copy of one under a policy text to escape."""
    task = get_task("digits-lenet")
    fix = [train(task, "FIX(k0=0.05)", seed=s, steps=30) for s in (0, 1)]
    cos = train(task, "COS(k0=0.05, k1=0.001, l=30)", steps=30)
    return [record(fix[0], 1), record(fix[1], 2), record(cos, 3), record(cos, 4, policy=ODD)]


@pytest.fixture(scope="module")
def html_report(records, tmp_path_factory):
    path = tmp_path_factory.mktemp("html") / "report.html"
    written = write_report(records, path, task="digits-lenet", range_tests=[DECADE, SWEEP])
    assert written == [path] and [p.name for p in path.parent.iterdir()] == ["report.html"]
    assert pyplot().get_fignums() == []  # every figure closed
    return path.read_text()


def test_html_has_a_row_per_policy(html_report):
    body = html_report.split("<tbody>")[1].split("</tbody>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body)
    policies = [re.findall(r"<td>(.*?)</td>", row)[0] for row in rows]
    assert sorted(policies) == sorted(["FIX(k0=0.05)", "COS(k0=0.05, k1=0.001, l=30)",
                                       "FIX(k0=0.05) &lt;b&gt;&amp;&#x27;|"])
    fix = rows[policies.index("FIX(k0=0.05)")]
    assert " +- " in fix and fix.endswith('<td class="n">2</td>')  # two seeds: mean +- std, 2 runs
    assert "<h1>lrpilot report: digits-lenet</h1>" in html_report and "Top-1 desc" in html_report


def test_html_embeds_every_figure_as_png(html_report):
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html_report)
    assert len(images) == 4  # LR, accuracy and loss curves, two range tests
    assert all(base64.b64decode(data, validate=True).startswith(PNG) for data in images)
    assert set(re.findall(r'(?:src|href)="([^":]*)', html_report)) == {"data"}  # no external file or URL


def test_html_escapes_policy_text(html_report):
    assert "<b>" not in html_report and "&lt;b&gt;" in html_report


def test_markdown_links_its_png_files(records, tmp_path):
    path = tmp_path / "my report.md"
    written = write_report(records, path, task="digits-lenet", range_tests=[SWEEP], by="cost", top=2)
    text = path.read_text()
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("| ")]
    assert table[0].startswith("| # | policy | budget | val Top-1 % \\[95% CI\\] | test Top-1 % \\[95% CI\\] |")
    assert lines[lines.index(table[0]) + 1].startswith("|---:|:---|---:|")
    assert len(table) == 3  # header and the top 2
    assert "ranked by cost (#Iter at best asc, #Param asc, wall s asc)" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == ["my%20report_files/lr.png", "my%20report_files/curves.png", "my%20report_files/range_test_1.png"]
    files = [tmp_path / "my report_files" / link.split("/")[1] for link in links]
    assert written == [path, *files]
    assert all(f.read_bytes().startswith(PNG) for f in files)


def test_markdown_escapes_table_cells(records, tmp_path):
    write_report(records[3:], tmp_path / "r.md", task="digits-lenet")
    row = next(line for line in (tmp_path / "r.md").read_text().splitlines() if line.startswith("| 1 |"))
    assert "| FIX(k0=0.05) &lt;b&gt;&amp;'\\| |" in row


def test_no_runs_still_give_a_valid_report(tmp_path):
    write_report([], tmp_path / "empty.html", task="digits-lenet", range_tests=[DECADE])
    text = (tmp_path / "empty.html").read_text()
    assert "no finished runs for task digits-lenet" in text and "<table>" not in text
    assert text.count("<img ") == 1 and text.rstrip().endswith("</html>")


@pytest.mark.parametrize("name", ["report.pdf", "report", "report.htm"])
def test_bad_suffix_writes_nothing(tmp_path, name):
    with pytest.raises(LRPilotError, match=rf"{re.escape(str(tmp_path / name))}.*\.html or \.md"):
        write_report([], tmp_path / name, task="digits-lenet")
    assert list(tmp_path.iterdir()) == []


def test_bad_ranking_writes_nothing(records, tmp_path):
    with pytest.raises(LRPilotError, match="by='speed'"):
        write_report(records, tmp_path / "r.html", task="digits-lenet", by="speed")
    assert list(tmp_path.iterdir()) == []


def test_range_test_plots_what_is_there():
    assert range_test_figure({"kind": "decade", "points": []}) is None
    assert range_test_figure({"kind": "decade", "points": [{"lr": 0.1, "top1_mean": None}]}) is None
    assert range_test_figure({"kind": "sweep"}) is None
    for result in ({"kind": "decade", "points": [{"lr": 0.1, "top1_mean": 90.0}]},
                   {"kind": "sweep", "curves": [{"lr": [0.1, 1.0], "loss": [1.0, None]}]}):
        fig = range_test_figure(result)
        assert fig is not None and fig.axes[0].get_xscale() == "log"
        pyplot().close(fig)
    with pytest.raises(LRPilotError, match="kind 'grid'.*'decade' or 'sweep'"):
        range_test_figure({"kind": "grid"})


def test_curves_are_averaged_over_seeds_per_iteration():
    def run(iterations, values):
        return RunRecord(1, "t", "p", 0, 3, "ok", {}, {}, {"iteration": iterations, "test_top1": values}, {}, None,
                         0.0, 0.0, 0.0, 1.0)

    runs = [run([1, 2, 3], [10.0, math.nan, 30.0]), run([1, 2], [20.0, 40.0])]
    assert _curve(runs, "test_top1") == ([1, 2, 3], [15.0, 40.0, 30.0])
    assert _curve(runs, "lr") == ([], [])
