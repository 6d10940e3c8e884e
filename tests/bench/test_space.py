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
