"""Angular velocity (AutoDrop Definition 1) against values computed by hand."""

import math

import pytest
import torch

from lrpilot.angles import angular_velocity
from lrpilot.errors import LRPilotError


@pytest.mark.parametrize(
    "u, v, degrees",
    [
        ([1.0, 0.0], [0.5, math.sqrt(3) / 2], 60.0),
        ([1.0, 0.0], [0.0, 2.0], 90.0),
        ([1.0, 1.0], [-3.0, -3.0], 180.0),
        ([0.1, 0.2, 0.3], [0.1, 0.2, 0.3], 0.0),
    ],
)
def test_angular_velocity_of_tensors(u, v, degrees):
    assert angular_velocity(torch.tensor(u), torch.tensor(v)) == pytest.approx(degrees, abs=1e-5)


def test_angular_velocity_of_parameter_lists():
    s_t = [torch.tensor([1.0, 0.0]), torch.zeros(1, 2)]  # flattened: (1, 0, 0, 0)
    s_prev = [torch.tensor([1.0, 1.0]), torch.ones(1, 2)]  # (1, 1, 1, 1): cos = 1/2
    assert angular_velocity(s_t, s_prev) == pytest.approx(60.0)


def test_angular_velocity_zero_change_is_nan():
    assert math.isnan(angular_velocity(torch.zeros(3), torch.ones(3)))


def test_angular_velocity_size_mismatch():
    with pytest.raises(LRPilotError, match="3 vs 2"):
        angular_velocity(torch.ones(3), torch.ones(2))
