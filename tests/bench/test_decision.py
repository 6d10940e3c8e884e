"""The decision among benchmarked policies: validation selects, test reports, ties are said, the cheapest is chosen."""

from __future__ import annotations

import json

import numpy as np

from lrpilot.decision.rule import decide
from lrpilot.decision.ranking import rank
from lrpilot.grid.runner import bench
from lrpilot.cli import main
from lrpilot.outcomes import encode
from lrpilot.records import RunRecord

from tests.bench.conftest import Inline, correct


def record(policy: str, seed: int, q_val: float, q_test: float, status: str = "ok", n_param: int = 1,
           iters: int = 10, m: int = 450, **extra) -> RunRecord:
    val, test = correct(q_val, seed, m), correct(q_test, seed + 1000, m)
    ok = status == "ok"
    return RunRecord(id=0, task="t", policy=policy, seed=seed, budget=100, status=status,
                     metrics={"val_top1": 100 * val.mean(), "top1": 100 * test.mean(), "n_param": n_param,
                              "val_iters_at_best": iters} if ok else {"n_param": n_param},
                     cost={}, curves={}, record=extra, host=None, created_at=0.0, started_at=None,
                     heartbeat_at=None, finished_at=None,
                     outcomes={"val": encode(val), "test": encode(test)} if ok else None)


def test_the_best_is_chosen_on_validation_and_its_test_number_only_reported():
    # B is better on test, A on validation: the decision follows validation
    runs = [record("A", s, 0.95, 0.80) for s in range(3)] + [record("B", s, 0.70, 0.99) for s in range(3)]
    d = decide(runs)
    assert d.ties.best == d.chosen == "A" and d.tied == ("A",)
    assert d.test["B"].mean > d.test["A"].mean
    assert "no other policy is tied" in d.words()


def test_among_tied_policies_the_cheapest_is_chosen_and_said():
    runs = ([record("COS(...)", s, 0.95, 0.95, n_param=3) for s in range(3)]
            + [record("FIX(k0=0.05)", s, 0.95, 0.95, n_param=1, iters=30) for s in range(3)]
            + [record("FIX(k0=0.02)", s, 0.95, 0.95, n_param=1, iters=20) for s in range(3)]
            + [record("worse", s, 0.60, 0.60) for s in range(3)])
    d = decide(runs)
    assert set(d.tied) == {"COS(...)", "FIX(k0=0.05)", "FIX(k0=0.02)"} and d.chosen == "FIX(k0=0.02)"
    assert d.words().startswith("2 policies are statistically tied with the best")
    assert ("2 are shown within 0.5 points of it over 2 or more common seeds; chose FIX(k0=0.02), the cheapest"
            in d.words())


def test_a_cheaper_policy_tied_but_not_shown_close_to_the_best_is_not_chosen():
    # FIX is 1 point behind on 450 examples with other mistakes: not significantly worse, not shown within 0.5
    runs = ([record("COS(...)", s, 0.95, 0.95, n_param=3) for s in range(3)]
            + [record("FIX(k0=0.05)", s, 0.94, 0.94, n_param=1) for s in range(3)])
    d = decide(runs)
    assert d.tied == ("COS(...)", "FIX(k0=0.05)") and d.close == ("COS(...)",) and d.chosen == "COS(...)"
    assert d.ties.comparisons["FIX(k0=0.05)"].difference.high > d.margin
    assert ("none is shown within 0.5 points of it over 2 or more common seeds, so chose COS(...), the best itself"
            in d.words())
    # with a margin wide enough to hold the interval, the cheaper one is chosen
    wide = decide(runs, margin=10.0)
    assert wide.close == wide.tied and wide.chosen == "FIX(k0=0.05)" and "the cheapest" in wide.words()


def test_a_cheaper_policy_on_one_common_seed_is_not_shown_close():
    # on its one seed FIX trains as COS does: the difference over that seed holds no seed-to-seed variation
    runs = ([record("COS(...)", s, 0.95, 0.95, n_param=3) for s in range(3)]
            + [record("FIX(k0=0.05)", 0, 0.95, 0.95, n_param=1)])
    d = decide(runs)
    assert d.tied == ("COS(...)", "FIX(k0=0.05)") and d.ties.comparisons["FIX(k0=0.05)"].difference.high <= d.margin
    assert d.close == ("COS(...)",) and d.chosen == "COS(...)"
    # a second common seed makes it eligible, and the cheaper
    assert decide(runs + [record("FIX(k0=0.05)", 1, 0.95, 0.95, n_param=1)]).chosen == "FIX(k0=0.05)"


def test_policies_with_diverged_pruned_or_unvalidated_runs_take_no_part():
    old = record("old", 0, 0.99, 0.99)
    old.outcomes = None  # stored before validation splits
    runs = [record("A", 0, 0.9, 0.9), record("div", 0, 0.99, 0.99), record("div", 1, 0, 0, status="diverged"),
            record("cut", 0, 0, 0, status="pruned", pruned_at=30), old]
    d = decide(runs)
    assert d.chosen == "A"
    assert d.excluded == {"div": "1 of 2 runs diverged", "cut": "pruned by successive halving at iteration 30",
                          "old": "no validation outcomes (stored before validation splits)"}


def test_identical_training_is_always_tied_and_a_clearly_worse_lr_never(store):
    # real runs on digits-lenet at its budget: two texts that train identically, and an LR 100x too small
    texts = ["FIX(k0=0.05)", "clamp(FIX(k0=0.05), max=1)", "FIX(k0=0.0005)"]
    bench(store, "digits-lenet", texts, seeds=[0, 1, 2], executor=Inline())
    runs = store.runs(task="digits-lenet", outcomes=True)
    a, b = ([r.correct("val") for r in runs if r.policy == t and r.seed == 0][0] for t in texts[:2])
    assert np.array_equal(a, b)
    rows = {r.policy: r for r in rank(runs).rows}
    assert rows[texts[0]].tied_with_best and rows[texts[1]].tied_with_best
    assert not rows[texts[2]].tied_with_best
    assert rows[texts[0]].chosen  # #Param 1 against the clamp's 2 or more
    for r in rows.values():
        low, high = r.val_ci
        assert low <= r.mean["val_top1"] <= high


def test_rank_json_rows_carry_intervals_and_the_tied_flag(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    assert main(["bench", "--task", "digits-mlp", "--policies", "FIX(k0=0.05)", "FIX(k0=0.0005)",
                 "--repeats", "2", "--steps", "60", "--workers", "1", "--db", db, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "= statistically tied with the best" in out or "*" in out
    assert main(["rank", "--task", "digits-mlp", "--json", "--db", db]) == 0
    rows = json.loads(capsys.readouterr().out)
    for row in rows:
        assert {"val_top1_mean", "val_top1_ci", "top1_ci", "tied_with_best"} <= set(row)
        assert len(row["val_top1_ci"]) == 2 and row["val_top1_ci"][0] <= row["val_top1_mean"] <= row["val_top1_ci"][1]
    assert [r["tied_with_best"] for r in rows] == [True, False]


def test_a_tie_on_a_small_validation_split_says_its_power():
    # digits-lenet's 269 validation examples, 3 seeds, two policies 0.4 points apart: tied, and the words say
    # that a 0.5-point difference would mostly go unseen
    small = [record("A", s, 0.97, 0.97, m=269) for s in range(3)] + [record("B", s, 0.966, 0.966, m=269)
                                                                     for s in range(3)]
    d = decide(small)
    p, n, seeds = d.power
    assert d.tied == ("A", "B") and n == 269 and seeds == 3 and p < 0.5
    assert (f"; with 269 validation examples x 3 seeds, a 0.5-point difference is detected with power {p:.2f}, so "
            "the tie does not show the tied policies equal") in d.words()
    large = [record("A", s, 0.97, 0.97, m=20_000) for s in range(5)] + [record("B", s, 0.969, 0.969, m=20_000)
                                                                        for s in range(5)]
    assert decide(large).power[0] > p and decide(large).power[1:] == (20_000, 5)
    alone = decide([record("A", s, 0.97, 0.97) for s in range(3)])
    assert alone.power is None and "power" not in alone.words()
