"""STPT: equivalence with plain training, the choice of the best candidate, the LR walk, the record and
the cost, the text form and its errors, and the command line."""

import json
import math

import pytest

import lrpilot
from lrpilot.cli import main
from lrpilot.distill import attach
from lrpilot.engine import train
from lrpilot.errors import LRPilotError
from lrpilot.policy.base import build
from lrpilot.policy.text import parse
from lrpilot.search import candidate
from lrpilot.search.run import run_search
from lrpilot.tasks import get_task


@pytest.fixture(scope="module")
def digits():
    return get_task("digits-mlp")


def _same_run(a, b):
    """Equal curves and metrics (#Param aside: the search has its own)."""
    a, b = a.to_dict(), b.to_dict()
    a["metrics"].pop("n_param"), b["metrics"].pop("n_param")
    return a["curves"] == b["curves"] and a["metrics"] == b["metrics"]


def test_one_lr_scored_on_the_training_split_is_plain_training(digits):
    plain = train(digits, "FIX(k0=0.05)", seed=1, epochs=3)
    stpt = run_search(digits, "stpt(k0=0.05, set=[1], alpha=5, warmup=0, score=train)", seed=1, epochs=3)
    assert _same_run(plain, stpt)
    assert stpt.record["trajectory"] == [[0, 0.05]] and [e["lrs"] for e in stpt.record["epochs"]] == [[0.05]] * 3


def test_one_lr_scored_on_validation_is_plain_training_and_scores_the_val_split(digits, monkeypatch):
    plain = train(digits, "FIX(k0=0.05)", seed=2, epochs=2)
    seen = []
    monkeypatch.setattr(type(digits), "evaluate", lambda self, model, split="test", _orig=type(digits).evaluate:
                        seen.append(split) or _orig(self, model, split))
    stpt = run_search(digits, "stpt(k0=0.05, set=[1], alpha=0.5, warmup=0)", seed=2, epochs=2)
    assert _same_run(plain, stpt) and stpt.outcomes == plain.outcomes
    assert all(0 < e["scores"][0] <= 100 for e in stpt.record["epochs"])
    n_evals = sum(not math.isnan(v) for v in plain.curves["val_loss"])  # the main run evaluates val like any run
    assert seen.count("val") == n_evals + 2 and "test" in seen  # + one score per epoch (2 epochs)


def test_an_old_text_with_val_is_refused_naming_the_change():
    with pytest.raises(LRPilotError, match="val=0.2 is no longer a setting.*validation split"):
        build(parse("stpt(k0=0.1, val=0.2)"))


def test_the_highest_score_wins_and_the_lr_walks(digits, monkeypatch):
    # rigged: the score is the closeness of the candidate's LR to 0.03
    monkeypatch.setitem(candidate.SCORES, "rigged",
                        lambda run: -abs(math.log(run.optimizer.param_groups[0]["lr"] / 0.03)))
    r = run_search(digits, "stpt(k0=0.1, set=[2, 1, 0.5], alpha=3, warmup=1, warmup_lr=0.001, score=rigged)",
                   seed=0, epochs=4)
    epochs = r.record["epochs"]
    assert [e["phase"] for e in epochs] == ["warmup", "custom", "custom", "custom"]
    assert [e["best_lr"] for e in epochs] == [0.001, 0.05, 0.025, 0.025]
    assert epochs[1]["lrs"] == [0.2, 0.1, 0.05] and epochs[2]["lrs"] == [0.1, 0.05, 0.025]
    for e in epochs[1:]:
        assert e["best_lr"] == e["lrs"][max(range(3), key=e["scores"].__getitem__)]
    ipe = digits.iters_per_epoch
    assert r.record["trajectory"] == [[0, 0.001], [ipe, 0.05], [2 * ipe, 0.025]]


def test_ties_go_to_the_first_lr_and_bounds_clip_without_repeats(digits, monkeypatch):
    monkeypatch.setitem(candidate.SCORES, "flat", lambda run: 1.0)
    r = run_search(digits, "stpt(k0=0.05, set=wide, alpha=2, warmup=0, bounds=[0.01, 0.15], score=flat)",
                   seed=0, steps=2 * digits.iters_per_epoch)
    first, second = r.record["epochs"]
    assert first["lrs"] == pytest.approx([0.15, 0.1165, 0.05, 0.04, 0.03, 0.02, 0.01])  # 5x, 3.67x: 0.15 once
    assert second["lrs"] == pytest.approx([0.15, 0.12, 0.09, 0.06, 0.03])
    assert first["best_lr"] == second["best_lr"] == 0.15


def test_record_and_cost_count_every_candidate(digits):
    ipe = digits.iters_per_epoch  # score=train: nothing held out
    r = run_search(digits, "stpt(k0=0.05, set=narrow, alpha=4, warmup=1, score=train)", seed=0, epochs=3)
    c = r.cost
    assert c["iterations"] == ipe + 2 * (ipe + 7 * 4) == sum(e["iterations"] for e in r.record["epochs"])
    assert c["epoch_equivalents"] == pytest.approx(c["samples"] / len(digits.train[1]))
    assert c["epochs"] == 3 and c["workers"] == 1 and c["wall_s"] > 0
    assert {"piecewise", "fit", "fit_error"} <= set(attach(r).record["distilled"])
    assert all(len(e["scores"]) == 8 for e in r.record["epochs"][1:])


@pytest.mark.parametrize("n, expected", [
    (40, ["warmup"] * 4 + ["narrow"] * 15 + ["middle"] * 10 + ["wide"] * 11),  # Table 4
    (10, ["warmup"] + ["narrow"] * 4 + ["middle"] * 2 + ["wide"] * 3),
])
def test_mix_is_table_4_scaled_to_the_run(n, expected):
    assert build(parse("stpt(k0=0.1)")).phases(n) == expected


@pytest.mark.parametrize("text, canonical", [
    ("stpt(k0=0.1, set=mix, alpha=0.08, warmup=0.1, score=val, choose=nearest, z=2)", "stpt(k0=0.1, choose=nearest)"),
    ("stpt(k0=0.1, choose=best, z=3)", "stpt(k0=0.1, choose=best)"),
    ("stpt(k0=0.1, z=3)", "stpt(k0=0.1, choose=nearest, z=3)"),
    ("stpt(k0=0.1, lrs=[0.2, 0.1], alpha=200, warmup=4, warmup_lr=0.005)",
     "stpt(k0=0.1, lrs=[0.2, 0.1], alpha=200, warmup=4, warmup_lr=0.005, choose=nearest)"),
    ("alr(k0=0.1, beam=2, factors=3)", "alr(k0=0.1)"),
    ("alr(k0=0.1, beam=3, factors=[4, 1, 0.25], bounds=[0.001, 0.5])",
     "alr(k0=0.1, beam=3, factors=[4, 1, 0.25], bounds=[0.001, 0.5])"),
])
def test_canonical_text_parses_back(text, canonical):
    assert str(build(parse(text))) == canonical and str(build(parse(canonical))) == canonical


@pytest.mark.parametrize("text, fragment", [
    ("stpt(k0=0)", "k0=0"),
    ("stpt(k0=0.1, set=huge)", "set='huge'"),
    ("stpt(k0=0.1, set=[])", "set=[]"),
    ("stpt(k0=0.1, lrs=[0.1], set=wide)", "not both"),
    ("stpt(k0=0.1, alpha=1.5)", "alpha=1.5"),
    ("stpt(k0=0.1, warmup=-1)", "warmup=-1"),
    ("stpt(k0=2)", "bounds"),
    ("stpt(k0=0.1, score=best)", "score='best'"),
    ("stpt(k0=0.1, beta=3)", "unknown parameter 'beta'"),
    ("alr(k0=0.1, beam=0)", "beam=0"),
    ("alr(k0=0.1, factors=4)", "factors=4"),
])
def test_bad_settings_name_the_value(text, fragment):
    with pytest.raises(LRPilotError) as e:
        build(parse(text))
    assert fragment in str(e.value)


def test_a_search_is_neither_a_policy_nor_a_controller(digits):
    with pytest.raises(LRPilotError, match="search"):
        lrpilot.policy("stpt(k0=0.1)")
    with pytest.raises(LRPilotError, match="search"):
        train(digits, "stpt(k0=0.1)", steps=5)
    with pytest.raises(LRPilotError, match="not a search"):
        run_search(digits, "FIX(k0=0.1)", steps=5)


def test_cli_train_runs_stpt_and_lists_it(tmp_path, capsys):
    out = tmp_path / "run.json"
    assert main(["train", "--task", "digits-mlp", "--policy", "stpt(k0=0.05, set=narrow, alpha=0.08)",
                 "--epochs", "2", "--json", str(out), "--quiet"]) == 0
    run = json.loads(out.read_text())
    assert run["policy"] == "stpt(k0=0.05, set=narrow, choose=nearest)" and run["status"] == "ok"
    assert run["record"]["epochs"][0]["phase"] == "narrow" and run["cost"]["epoch_equivalents"] > 2
    capsys.readouterr()
    assert main(["policies", "--json"]) == 0
    kinds = {r["name"]: r["kind"] for r in json.loads(capsys.readouterr().out)}
    assert kinds["stpt"] == kinds["alr"] == "search"
    assert main(["train", "--task", "digits-mlp", "--policy", "stpt(k0=0.05, alpha=0)", "--steps", "5"]) == 2
    assert "alpha=0" in capsys.readouterr().err
