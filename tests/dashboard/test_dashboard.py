"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) over a store of real short runs:
from the task list to a ranking, to a policy's curves, to a run, to a comparison; a screenshot of each page."""

from __future__ import annotations

import re
import shutil
import urllib.error
import urllib.parse
import urllib.request

import pytest

from lrpilot.decision.rule import outcomes
from lrpilot.bench.range_test import sweep_test
from lrpilot.decision.ranking import rank
from lrpilot.grid.runner import bench
from lrpilot.decision.stats import paired_difference
from lrpilot.cli import build_parser, main
from lrpilot.present import views
from lrpilot.dashboard.app import make_app, serve_in_thread
from lrpilot.errors import LRPilotError
from lrpilot.execution.executors import InProcess
from lrpilot.store import Store

CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/run installs it); never a browser Playwright downloads
TASK = "digits-mlp"
POLICIES = ["STEP(k0=0.1, gamma=0.5, l=10)", "COS(k0=0.1, k1=0.001, l=30)", "FIX(k0=0.05)",
            "autodrop(k0=0.1, rho=0.5, saturation=relative, nd=2, period=3, guard=1.1)"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A store of 4 policies (one adaptive) x 2 seeds of 30 iterations of digits-mlp, and an LR sweep."""
    path = tmp_path_factory.mktemp("store") / "results.db"
    with Store(path) as store:
        bench(store, TASK, POLICIES, seeds=[0, 1], steps=30, executor=InProcess())
        sweep_test(store, TASK, seeds=(0,), steps=20, executor=InProcess())
    return path


@pytest.fixture(scope="module")
def base(db):
    with serve_in_thread(str(db)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"the dashboard tests need Chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, base):
    """A 1400 px wide page that records every request it makes."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    yield page
    assert page.requests and all(url.startswith(base + "/") for url in page.requests), page.requests  # no other host
    page.close()


def shot(page, tmp_path, name):
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    html = page.content()
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # nothing fetched from, or linked to, another host


def ranked(page):
    """(mark, policy) of each row of the ranking table shown."""
    rows = page.locator("table.ranking tbody tr")
    return [(rows.nth(i).locator("td").nth(1).inner_text(), rows.nth(i).get_attribute("data-policy"))
            for i in range(rows.count())]


def test_from_the_task_list_to_a_ranking_a_policy_a_run_and_a_comparison(page, base, db, tmp_path):
    page.goto(base + "/")
    shot(page, tmp_path, "tasks")
    assert page.locator("table.tasks tbody tr").count() == 1
    page.click(f"text={TASK}")
    page.wait_for_selector("table.ranking")
    shot(page, tmp_path, "ranking")
    rows = ranked(page)
    assert sorted(p for _, p in rows) == sorted(POLICIES)
    with Store(db) as store:
        expected = rank(store.runs(task=TASK, outcomes=True), task=TASK)
    assert rows == [(f"{r.rank}{'*' if r.chosen else '=' if r.tied_with_best else ''}", r.policy) for r in expected.rows]
    chosen = next(r for r in expected.rows if r.chosen)
    assert page.locator("tr.chosen").get_attribute("data-policy") == chosen.policy
    settings = page.locator("dl.settings").inner_text()
    assert "30 iterations" in settings and "SGD(dampening=0, momentum=0.9, weight_decay=0.0005)" in settings
    assert f"{chosen.policy}, validation Top-1 {chosen.mean['val_top1']:.2f} %" in page.inner_text("body")

    page.select_option("select[name=fn]", "COS")
    page.click("button:text('filter')")
    page.wait_for_url(re.compile(r"fn=COS"))
    assert [p for _, p in ranked(page)] == ["COS(k0=0.1, k1=0.001, l=30)"]
    page.click("a:text('clear')")
    page.click("th a:text('wall s')")
    page.wait_for_url(re.compile(r"sort=wall_s"))
    walls = [next(r for r in expected.rows if r.policy == p).mean["wall_s"] for _, p in ranked(page)]
    assert walls == sorted(walls)

    page.click(f"td.policy a:text('{POLICIES[0]}')")
    page.wait_for_selector("figure svg")
    shot(page, tmp_path, "curves")
    labels = page.locator("figure svg text").all_text_contents()
    assert "learning rate (exact)" in labels and "validation Top-1 (%)" in labels
    assert page.locator("table.runs tbody tr").count() == 2  # two seeds
    page.click("table.runs a >> nth=1")
    page.wait_for_selector("text=Metrics")
    shot(page, tmp_path, "run")
    identity = page.locator("dl.settings").first.inner_text()
    assert POLICIES[0] in identity and "30 iterations" in identity and "seed\n1" in identity.replace("\t", "\n")
    assert "wall_s" in page.locator("table").nth(1).inner_text()
    with Store(db) as store:
        digest = next(r.fingerprint for r in store.runs(task=TASK, policy=POLICIES[0]) if r.seed == 1)
    assert len(digest) == 64 and f"digest {digest}" in page.locator("h2:text('Fingerprint') + p").inner_text()
    assert '"optimizer"' in page.locator("h2:text('Fingerprint') ~ pre").inner_text()

    page.goto(f"{base}/task/{TASK}")
    page.check(f"input[value='{POLICIES[0]}']")
    page.check(f"input[value='{POLICIES[2]}']")
    page.click("button:text('compare the two picked')")
    page.wait_for_selector("table.differences")
    shot(page, tmp_path, "compare")
    with Store(db) as store:
        a, b = (store.runs(task=TASK, policy=p, outcomes=True, curves=False) for p in (POLICIES[0], POLICIES[2]))
    cells = page.locator("table.differences tbody tr").all_inner_texts()
    for split, row in zip(("val", "test"), cells):
        interval, _ = paired_difference(outcomes(a, split), outcomes(b, split))
        assert f"{interval.mean:+.2f}\t[{interval.low:+.2f}, {interval.high:+.2f}]" in row
        assert row.endswith("0, 1\t" + ("269" if split == "val" else "450"))


def test_pages_split_the_ranking_and_bad_parameters_say_what_to_fix(page, base, tmp_path):
    page.goto(f"{base}/task/{TASK}?per=1&page=2")
    shot(page, tmp_path, "page2")
    assert [m for m, _ in ranked(page)][0].startswith("2")
    assert page.locator(".pages a").all_inner_texts() == ["1", "3", "4"]
    response = page.goto(f"{base}/task/{TASK}?sort=speed")
    assert response.status == 400 and "sort='speed' is unknown: use one of rank, policy" in page.inner_text(".error")
    response = page.goto(f"{base}/task/nope")
    assert response.status == 404 and f"no task 'nope' in the store: use one of ['{TASK}']" in page.inner_text(".error")
    response = page.goto(f"{base}/task/{TASK}/compare?p={urllib.parse.quote(POLICIES[0])}")
    assert response.status == 400 and "pick exactly two policies" in page.inner_text(".error")


def test_an_adaptive_run_shows_its_distilled_policy(page, base, db, tmp_path):
    with Store(db) as store:
        run = store.runs(task=TASK, policy=POLICIES[3])[0]
    page.goto(f"{base}/task/{TASK}/run/{run.id}?policy={urllib.parse.quote(run.policy)}")
    shot(page, tmp_path, "adaptive_run")
    distilled = run.record["distilled"]
    assert page.locator("h2:text('Distilled policy') + dl").inner_text().split("\n")[:2] == [
        "exact piecewise", distilled["piecewise"]]
    labels = page.locator("figure svg text").all_text_contents()
    assert f"seed {run.seed}" in labels and f"seed {run.seed} (sampled)" not in labels  # drawn from the distilled text


def test_range_tests_are_drawn(page, base, tmp_path):
    page.goto(f"{base}/task/{TASK}/range-tests")
    shot(page, tmp_path, "range_tests")
    assert page.locator("h2").first.inner_text().startswith("sweep")
    assert "learning rate" in page.locator("figure svg text").all_text_contents()


def test_a_ranking_is_computed_once_and_refreshed_on_request(db, tmp_path):
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    with Store(copy) as store:
        v = views.Views(store, ttl=3600)
        ranking, records, at = v.ranking(TASK)
        store.finish(store.claim(TASK, "FIX(k0=0.01)", 0, 30), _result(records[0]))
        assert v.ranking(TASK)[:3] == (ranking, records, at)  # cached
        again, more, _ = v.ranking(TASK, refresh=True)
        assert len(more) == len(records) + 1 and "FIX(k0=0.01)" in {r.policy for r in again.rows}


def _result(r):
    from lrpilot.records import RunResult

    return RunResult(r.task, "FIX(k0=0.01)", 0, "ok", r.metrics, r.cost, {}, {}, 30, r.outcomes)


def test_the_query_is_checked():
    assert views.Query.parse({"budget": "30", "desc": "1", "fn": ""}) == views.Query(budget=30, desc=True)
    with pytest.raises(LRPilotError, match=r"seeds='two' must be a whole number"):
        views.Query.parse({"seeds": "two"})
    with pytest.raises(LRPilotError, match=r"status='lost' is unknown: use one of ok, diverged, failed, pruned"):
        views.Query.parse({"status": "lost"})


def test_a_missing_extra_is_one_line_naming_the_install(monkeypatch, db):
    monkeypatch.setitem(__import__("sys").modules, "starlette", None)
    with Store(db) as store, pytest.raises(LRPilotError, match=r"lrpilot dashboard needs starlette: "
                                                                r"pip install 'lrpilot\[dashboard\]'"):
        make_app(store)


def test_the_command_listens_on_this_machine_and_refuses_a_missing_store(tmp_path, capsys):
    args = build_parser().parse_args(["dashboard"])
    assert (args.host, args.port) == ("127.0.0.1", 8080)
    assert main(["dashboard", "--db", str(tmp_path / "none.db")]) == 2
    assert "no results store at" in capsys.readouterr().err and not (tmp_path / "none.db").exists()


def test_served_pages_answer_without_a_browser(base):
    with urllib.request.urlopen(base + "/") as response:
        assert response.status == 200 and TASK in response.read().decode()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{base}/task/{TASK}/run/99999?policy=FIX(k0%3D0.05)")
    assert e.value.code == 404


def test_the_same_pages_on_postgresql(db, pg_database):
    from lrpilot.records import RunResult

    with Store(db) as sqlite, Store(pg_database) as pg:
        for r in sqlite.runs(task=TASK, outcomes=True):
            pg.finish(pg.claim(TASK, r.policy, r.seed, r.budget), RunResult(
                r.task, r.policy, r.seed, r.status, r.metrics, r.cost, r.curves, r.record or {}, r.budget, r.outcomes))
        expected = [row.policy for row in rank(sqlite.runs(task=TASK, outcomes=True), task=TASK).rows]
        one = pg.runs(task=TASK, policy=POLICIES[1])[0]
    with serve_in_thread(pg_database) as url:
        with urllib.request.urlopen(f"{url}/task/{TASK}") as response:
            html = response.read().decode()
        with urllib.request.urlopen(f"{url}/task/{TASK}/run/{one.id}?policy={urllib.parse.quote(one.policy)}") as r:
            run_page = r.read().decode()
    assert re.findall(r'<tr class="\w*" data-policy="([^"]*)"', html) == expected
    assert f"run {one.id}: &#39;{POLICIES[1]}&#39; seed {one.seed}" in run_page and "<svg" in run_page
