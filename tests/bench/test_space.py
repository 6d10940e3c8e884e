"""tune's search space: every proposal is a valid policy of one of the 13 functions, inside the range test's bounds."""

import math

import optuna
import pytest

from lrpilot.bench.space import FUNCTIONS, propose
from lrpilot.errors import LRPilotError
from lrpilot.policy import policy


@pytest.fixture(autouse=True)
def _quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_random_proposals_cover_the_13_functions_and_stay_in_their_bounds():
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    total, k_low, k_high = 645, 0.01, 0.1
    seen = set()
    for _ in range(400):
        trial = study.ask()
        text = propose(trial, total, k_low, k_high)
        p = policy(text)
        assert str(p) == str(policy(str(p)))  # canonical, parses back
        lrs = p.values(range(total))
        assert all(math.isfinite(x) and x > 0 for x in lrs), text
        assert max(lrs) <= 4 * k_high * 1.01 and min(lrs) >= k_low * 1e-3 * 0.3 * 0.99, text
        seen.add(text.split("(")[0])
        study.tell(trial, float(max(lrs)))
    assert seen == set(FUNCTIONS)


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
    proposed = [propose(study.ask(), total, k_low, k_high) for _ in range(13)]
    for mine, theirs in zip(proposed, lrbench13(total, k_low, k_high, best)):
        a, b = policy(mine).values(range(total)), policy(theirs).values(range(total))
        assert mine.split("(")[0] == theirs.split("(")[0]
        assert max(abs(x - y) / y for x, y in zip(a, b)) < 0.01, (mine, theirs)  # the same up to 3-figure rounding
