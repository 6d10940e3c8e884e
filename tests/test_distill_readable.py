"""A distilled trajectory stays readable: at most a few pieces, LRs to 3 significant figures."""

import math

from lrpilot.distill import READABLE_PIECES, distill, readable


def test_a_hundred_piece_trajectory_becomes_at_most_six_rounded_pieces():
    points = [[10 * i, 0.1 * 0.97 ** i + 1e-12 * i] for i in range(100)]
    out = readable(points, 1000)
    assert 1 < len(out) <= READABLE_PIECES
    assert out[0][0] == 0 and [s for s, _ in out] == sorted({s for s, _ in out})
    for _, lr in out:
        assert float(f"{lr:.3g}") == lr
    # the merged LRs follow the decay: each piece lower than the one before
    assert all(b < a for (_, a), (_, b) in zip(out, out[1:]))


def test_a_constant_trajectory_is_one_piece_and_its_float_noise_is_gone():
    assert readable([[0, 0.16000000000000003]], 100) == [[0, 0.16]]


def test_merging_weights_by_iterations():
    # one long piece at 0.1 and one short at 0.001: merged into one, the LR stays near 0.1 (log-mean by length)
    out = readable([[0, 0.1], [990, 0.001]], 1000, pieces=1)
    assert len(out) == 1 and math.isclose(out[0][1], 0.1 ** 0.99 * 0.001 ** 0.01, rel_tol=1e-2)


def test_distill_says_whether_the_lr_moved():
    moved = distill({"trajectory": [[0, 0.1], [50, 0.05]]}, 100)
    still = distill({"trajectory": [[0, 0.1], [50, 0.1]]}, 100)
    assert moved["moved"] and not still["moved"]
    assert moved["readable"] == "piecewise(FIX(k0=0.1), FIX(k0=0.05)@50)"
