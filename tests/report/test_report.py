"""The report: self-contained HTML, Markdown with its figure files, escaping, range tests and errors; its figures."""

import math
import re

import pytest

from lrpilot.engine import train
from lrpilot.errors import LRPilotError
from lrpilot.records import RunRecord
from lrpilot.present.figures import curves_figure, lr_values, seed_band
from lrpilot.present.plots import pyplot, range_test_figure
from lrpilot.report.report import write_report
from lrpilot.tasks import get_task

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
                     result.cost, result.curves, result.record, None, 0.0, 0.0, 0.0, 1.0, outcomes=result.outcomes)


@pytest.fixture(scope="module")
def records():
    """Short real runs: FIX and STEP over two seeds, COS, plus a copy of COS under a policy text to escape."""
    task = get_task("digits-lenet")
    fix = [train(task, "FIX(k0=0.05)", seed=s, steps=30) for s in (0, 1)]
    step = [train(task, "STEP(k0=0.1, gamma=0.5, l=10)", seed=s, steps=30) for s in (0, 1)]
    cos = train(task, "COS(k0=0.05, k1=0.001, l=30)", steps=30)
    return [record(fix[0], 1), record(fix[1], 2), record(cos, 3), record(cos, 4, policy=ODD), record(step[0], 5),
            record(step[1], 6)]


@pytest.fixture(scope="module")
def html_report(records, tmp_path_factory):
    path = tmp_path_factory.mktemp("html") / "report.html"
    written = write_report(records, path, task="digits-lenet", range_tests=[DECADE, SWEEP])
    assert written == [path] and [p.name for p in path.parent.iterdir()] == ["report.html"]
    assert pyplot().get_fignums() == []  # every figure closed
    return path.read_text()


def table_rows(html):
    body = html.split('<table class="ranking">')[1].split("</tbody>")[0]
    return re.findall(r'<tr class="(\w*)" data-policy="[^"]*">\s*(.*?)</tr>', body, re.S)


def test_html_has_a_row_per_policy_with_the_decision_marked(html_report):
    rows = table_rows(html_report)
    policies = [re.findall(r'<td class="policy">(.*?)</td>', row)[0] for _, row in rows]
    assert sorted(policies) == sorted(["FIX(k0=0.05)", "COS(k0=0.05, k1=0.001, l=30)", "STEP(k0=0.1, gamma=0.5, l=10)",
                                       "FIX(k0=0.05) &lt;b&gt;&amp;&#39;|"])
    fix = rows[policies.index("FIX(k0=0.05)")][1]
    assert '<span class="sd">+- ' in fix and fix.rstrip().endswith('<td class="n">2</td>')  # two seeds: +- std, 2 runs
    marks = [re.findall(r'<td class="n[ a-z]*">(\d+[*=]?)</td>', row)[0] for _, row in rows]
    classes = [cls for cls, _ in rows]
    assert classes.count("chosen") == 1 and marks[classes.index("chosen")].endswith("*")
    assert all(m.endswith("=") for m, c in zip(marks, classes) if c == "tied")
    assert "<h1>lrpilot report: digits-lenet</h1>" in html_report and "Top-1 desc" in html_report


def test_html_lists_the_settings_and_the_decision(html_report):
    settings = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", html_report))
    assert settings["budget"] == "30 iterations" and settings["test examples"] == "450"
    assert settings["validation examples"] == "269" and settings["batch size"] == "32"
    assert "statistically tied with the best on validation" in html_report


def test_html_inlines_every_figure_as_svg(html_report):
    assert html_report.count("<svg") == 3 and "<img" not in html_report  # curves, two range tests
    assert set(re.findall(r'(?:src|href)="([^"]*)', html_report)) <= {"#"} | {
        h for h in re.findall(r'href="(#[^"]*)"', html_report)}  # no file, no URL: in-document references only
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html_report)


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
    assert links == ["my%20report_files/curves_30.svg", "my%20report_files/range_test_1.svg"]
    files = [tmp_path / "my report_files" / link.split("/")[1].replace("%20", " ") for link in links]
    assert written == [path, *files]
    assert all(f.read_text().startswith("<svg") for f in files)


def test_markdown_escapes_table_cells(records, tmp_path):
    write_report(records[3:4], tmp_path / "r.md", task="digits-lenet")
    row = next(line for line in (tmp_path / "r.md").read_text().splitlines() if line.startswith("| 1"))
    assert "| FIX(k0=0.05) &lt;b&gt;&amp;'\\| |" in row


def test_no_runs_still_give_a_valid_report(tmp_path):
    write_report([], tmp_path / "empty.html", task="digits-lenet", range_tests=[DECADE])
    text = (tmp_path / "empty.html").read_text()
    assert "no finished runs for task digits-lenet" in text and "<table" not in text
    assert text.count("<svg") == 1 and text.rstrip().endswith("</html>")


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


def test_every_policy_is_listed_unless_top_says(records, tmp_path):
    many = [RunRecord(10 + i, "digits-lenet", f"FIX(k0={0.01 + i / 1000})", 0, 30, "ok", r.metrics, r.cost, r.curves,
                      {}, None, 0.0, 0.0, 0.0, 1.0, outcomes=r.outcomes) for i, r in enumerate(records * 3)]
    write_report(many, tmp_path / "all.html", task="digits-lenet")
    assert len(table_rows((tmp_path / "all.html").read_text())) == 18  # more than the old top 10
    write_report(many, tmp_path / "top.html", task="digits-lenet", top=4)
    assert len(table_rows((tmp_path / "top.html").read_text())) == 4


def run(iterations, values, seed=0, key="test_top1", policy="p", budget=3):
    return RunRecord(1, "t", policy, seed, budget, "ok", {}, {}, {"iteration": iterations, key: values}, {}, None,
                     0.0, 0.0, 0.0, 1.0)


def test_seed_bands_are_min_max_or_mean_std_per_iteration():
    runs = [run([1, 2, 3], [10.0, math.nan, 30.0]), run([1, 2], [20.0, 40.0], seed=1)]
    x, mean, low, high = seed_band(runs, "test_top1", "minmax")
    assert x.tolist() == [1, 2, 3] and mean.tolist() == [15.0, 40.0, 30.0]
    assert low.tolist() == [10.0, 40.0, 30.0] and high.tolist() == [20.0, 40.0, 30.0]
    _, _, low, high = seed_band(runs, "test_top1", "std")
    assert low.tolist() == [10.0, 40.0, 30.0] and high.tolist() == [20.0, 40.0, 30.0]  # population std 5 at 1
    assert seed_band(runs, "lr", "std")[0].size == 0


def test_the_lr_is_drawn_exactly_from_the_policy_text():
    t, lr = lr_values(run([], [], policy="STEP(k0=0.1, gamma=0.5, l=10)", budget=30))
    assert t.tolist() == list(range(30)) and lr[9] == 0.1 and lr[10] == 0.05 and lr[20] == 0.025
    assert lr_values(run([], [], policy="autodrop(k0=0.1, rho=0.2)")) is None  # adaptive, nothing distilled


def test_panels_have_their_own_legend_bands_and_a_zoomed_top1_axis(records):
    groups = {"FIX": records[:2], "COS": records[2:3]}
    fig = curves_figure(groups)
    try:
        axes = {ax.get_ylabel(): ax for ax in fig.axes}
        assert {"validation Top-1 (%)", "test Top-1 (%)", "learning rate (exact)"} <= set(axes)
        assert all(ax.get_legend() is not None and len(ax.get_legend().get_texts()) == 2 for ax in fig.axes)
        top1 = axes["test Top-1 (%)"]
        assert len(top1.collections) == 1  # FIX has two seeds: one band; COS one seed: none
        late = [v for r in records[:3] for i, v in zip(r.curves["iteration"], r.curves["test_top1"])
                if i >= 15 and v is not None]
        pad = 0.1 * (max(late) - min(late))  # the second half of training, padded by 10 %
        assert top1.get_ylim() == pytest.approx((max(min(late) - pad, 0), min(max(late) + pad, 100)))
        (cos_lr,) = [line for line in axes["learning rate (exact)"].get_lines() if line.get_label() == "COS"]
        assert len(cos_lr.get_xdata()) == 30  # every iteration, not the evaluation points
    finally:
        pyplot().close(fig)
