"""tune's search space: every proposal is a valid policy of one of its functions, inside the range test's bounds."""

import math

import optuna
import pytest

from lrpilot.bench.space import FUNCTIONS, propose
from lrpilot.errors import LRPilotError
from lrpilot.policy import policy


@pytest.fixture(autouse=True)
def _quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("warmup", [False, True])
def test_random_proposals_cover_every_function_and_stay_in_their_bounds(warmup):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    total, k_low, k_high = 645, 0.01, 0.1
    seen, warmed = set(), set()
    for _ in range(400):
        trial = study.ask()
        text = propose(trial, total, k_low, k_high, warmup=warmup)
        p = policy(text)
        assert str(p) == str(policy(str(p)))  # canonical, parses back
        lrs = p.values(range(total))
        assert all(math.isfinite(x) and x >= 0 for x in lrs) and max(lrs) <= 4 * k_high * 1.01, text
        name = text.removeprefix("warmup(").split("(")[0]
        if text.startswith("warmup(") or "w=" in text:
            warmed.add(name)
            assert lrs[0] == 0.0 and (text.startswith("WSD") or policy(text).values([total - 1])[0] > 0), text
        elif name in FUNCTIONS[:13]:  # LRBench's 13 never go below the space's lowest ratio
            assert min(lrs) >= k_low * 1e-3 * 0.3 * 0.99, text
        else:
            assert min(lrs[:-1]) > 0, text
        seen.add(name)
        study.tell(trial, float(max(lrs)))
    assert seen == set(FUNCTIONS)
    starting_low = {"TRI", "TRI2", "TRIEXP", "SIN", "SIN2", "SINEXP", "ONECYCLE"}
    assert warmed == (set(FUNCTIONS) - starting_low if warmup else set())


def test_a_warmup_precedes_the_schedule_fitted_to_the_rest_of_the_run():
    study = optuna.create_study()
    study.enqueue_trial({"fn": "POLY", "hi": 0.1, "ratio": 0.01, "poly_p": 1.0, "warmup": 0.1})
    study.enqueue_trial({"fn": "WSD", "hi": 0.1, "wsd_decay": 1.0, "wsd_shape": "linear", "warmup": 0.1})
    poly, wsd = (propose(study.ask(), 1000, 0.01, 0.1, warmup=True) for _ in range(2))
    assert poly == "warmup(POLY(k0=0.1, k1=0.001, p=1, l=900), steps=100)"
    assert wsd == "WSD(k0=0.1, l=1000, w=100, decay=0.9, shape=linear)"  # warmup, then linear decay to zero
    for text in (poly, wsd):
        lrs = policy(text).values(range(1001))
        assert lrs[0] == 0 and lrs[50] == pytest.approx(0.05) and lrs[100] == pytest.approx(0.1)
    assert policy(wsd)(550) == pytest.approx(0.05) and policy(wsd)(1000) == 0.0


def test_tpe_is_reproducible_with_a_seed():
    def draws(seed):
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        out = []
        for i in range(12):
            trial = study.ask()
            out.append(propose(trial, 1000, 0.001, 0.05))
            study.tell(trial, float(i % 5))
        return out
    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


@pytest.mark.parametrize("total, low, high, fragment", [(645, 0.0, 0.1, "k_low"), (645, 0.2, 0.1, "k_low"),
                                                          (4, 0.01, 0.1, "too short")])
def test_bad_ranges_are_one_clear_error(total, low, high, fragment):
    study = optuna.create_study()
    with pytest.raises(LRPilotError, match=fragment):
        propose(study.ask(), total, low, high)


@pytest.mark.parametrize("total, k_low, k_high, best", [(4000, 0.1, 0.2, 0.2), (510, 0.02, 0.1, 0.05)])
def test_the_suite_trials_write_lrbench13_in_the_space(total, k_low, k_high, best):
    from lrpilot.bench.space import suite_trials
    from lrpilot.bench.suite import lrbench13

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    for params in suite_trials(k_low, k_high, best):
        study.enqueue_trial(params)
    proposed = [propose(study.ask(), total, k_low, k_high, warmup=True) for _ in range(15)]
    for mine, theirs in zip(proposed, lrbench13(total, k_low, k_high, best), strict=False):
        a, b = policy(mine).values(range(total)), policy(theirs).values(range(total))
        assert mine.split("(")[0] == theirs.split("(")[0]
        assert max(abs(x - y) / y for x, y in zip(a, b)) < 0.01, (mine, theirs)  # the same up to 3-figure rounding
    high = f"{k_high:g}"  # then WSD and ONECYCLE at their sources' defaults, without warmup
    assert [str(policy(t)) for t in proposed[13:]] == [f"WSD(k0={high}, l={total})", f"ONECYCLE(k0={high}, l={total})"]
