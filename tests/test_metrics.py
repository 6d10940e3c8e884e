"""LRBench metrics against values computed by hand."""

import math

import numpy as np
import pytest
import torch

from lrpilot.errors import LRPilotError
from lrpilot.metrics import classification_metrics, iters_at_best, loss_difference

# 6 samples, 3 classes. Correct: rows 0, 1 (class 0; confidences 0.7, 0.5), rows 2, 5 (class 1;
# 0.6, 0.4). Row 3 (class 1) predicts 2, row 4 (class 2) predicts 0: class 2 has no correct sample.
PROBS = [
    [0.7, 0.2, 0.1],
    [0.5, 0.3, 0.2],
    [0.1, 0.6, 0.3],
    [0.2, 0.3, 0.5],
    [0.6, 0.3, 0.1],
    [0.3, 0.4, 0.3],
]
LABELS = [0, 0, 1, 1, 2, 1]


def test_hand_computed_example():
    m = classification_metrics(torch.tensor(PROBS), torch.tensor(LABELS))
    assert m["top1"] == pytest.approx(100 * 4 / 6)
    assert m["top5"] == pytest.approx(100.0)  # C = 3 < 5: top-3 always holds the label
    assert m["ac"] == pytest.approx((0.7 + 0.5 + 0.6 + 0.4) / 4)
    assert m["cd"] == pytest.approx(math.sqrt((0.15**2 + 0.05**2 + 0.05**2 + 0.15**2) / 4))
    # per-class AC: class 0 -> 0.6, class 1 -> 0.5, class 2 left out -> population std 0.05
    assert m["cdac"] == pytest.approx(0.05)
    assert all(isinstance(v, float) for v in m.values())


def test_numpy_input_matches_tensor_input():
    from_numpy = classification_metrics(np.array(PROBS), np.array(LABELS))
    assert from_numpy == pytest.approx(classification_metrics(torch.tensor(PROBS), torch.tensor(LABELS)))


def test_all_wrong_gives_zero_confidence_metrics_not_nan():
    m = classification_metrics([[0.1, 0.9], [0.8, 0.2]], [0, 1])
    assert m == {"top1": 0.0, "top5": 100.0, "ac": 0.0, "cd": 0.0, "cdac": 0.0}


def test_single_correct_sample_has_zero_deviations():
    m = classification_metrics([[0.9, 0.1], [0.8, 0.2]], [0, 1])
    assert (m["top1"], m["ac"], m["cd"], m["cdac"]) == pytest.approx((50.0, 0.9, 0.0, 0.0))


def test_top5_with_more_than_five_classes():
    row = [0.30, 0.20, 0.15, 0.12, 0.10, 0.08, 0.05]
    m = classification_metrics([row, row, row], [4, 5, 0])  # ranks 5, 6 and 1
    assert m["top5"] == pytest.approx(100 * 2 / 3)
    assert m["top1"] == pytest.approx(100 / 3)


def test_top5_with_fewer_than_five_classes_is_top_c():
    m = classification_metrics([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]], [2, 0])
    assert (m["top1"], m["top5"]) == (0.0, 100.0)


@pytest.mark.parametrize(
    "probs, labels, fragment",
    [
        ([0.2, 0.8], [1], "N x C"),
        (PROBS, LABELS[:-1], "N=6"),
        (PROBS, [0, 0, 1, 1, 3, 1], "[0, 3)"),
        (PROBS, [0.0, 0.0, 1.0, 1.0, 2.0, 1.0], "integers"),
        (torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), "empty"),
    ],
)
def test_bad_shapes_are_named(probs, labels, fragment):
    with pytest.raises(LRPilotError, match=fragment.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        classification_metrics(probs, labels)


def test_loss_difference_is_test_minus_train():
    assert loss_difference(1.5, 0.25) == 1.25
    assert loss_difference(torch.tensor(0.5), 0.75) == -0.25


def test_iters_at_best_takes_first_highest():
    assert iters_at_best([100, 200, 300, 400], [50.0, 80.0, 80.0, 70.0]) == 200
    assert iters_at_best([10, 20], [math.nan, 5.0]) == 20
    assert iters_at_best([10, 20], [math.nan, math.nan]) == 10


def test_iters_at_best_rejects_bad_curves():
    with pytest.raises(LRPilotError, match="differ in length"):
        iters_at_best([1, 2], [0.5])
    with pytest.raises(LRPilotError, match="no evaluations"):
        iters_at_best([], [])
