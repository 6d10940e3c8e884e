"""The noisy quadratic model task: Definition 2's pieces and Theorem 1's stationary angle."""

import math

import pytest
import torch

from lrpilot.errors import LRPilotError
from lrpilot.angles import angular_velocity
from lrpilot.tasks.nqm import QuadraticModel, make_nqm_task
from nqm_theory import nqm_stationary_angle


def test_curvature_and_noise_diagonals():
    task = make_nqm_task()
    assert torch.allclose(task.a, torch.arange(1, 201) / 10)
    assert (task.a[0].item(), task.a[-1].item()) == pytest.approx((0.1, 20.0))
    assert torch.equal(task.sigma, task.a)
    assert torch.equal(make_nqm_task(dim=4, sigma="identity").sigma, torch.ones(4))
    assert torch.allclose(make_nqm_task(dim=2, sigma=[0.5, 2.0]).sigma, torch.tensor([0.5, 2.0]))


def test_defaults_and_meta():
    task = make_nqm_task()
    assert (task.lr, task.momentum, task.weight_decay, task.num_classes) == (0.06, 0.0, 0.0, None)
    assert (task.iters_per_epoch, task.batch_size, task.epochs) == (100, 1, 100)
    assert task.meta["dataset"] == "nqm" and task.meta["model"] == "quadratic-200"


def _model_at(task, x):
    model = task.make_model()
    with torch.no_grad():
        model.x.copy_(torch.tensor(x))
    return model


def test_loss_and_gradient_at_hand_picked_point():
    task = make_nqm_task(dim=3)  # A = diag(0.1, 0.2, 0.3)
    model = _model_at(task, [1.0, 2.0, 3.0])
    loss = task.train_loss(model, torch.tensor([[1.0, 0.0, -1.0]]))  # x - c = (0, 2, 4)
    assert loss.item() == pytest.approx(0.5 * (0.2 * 4 + 0.3 * 16))
    loss.backward()
    assert torch.allclose(model.x.grad, torch.tensor([0.0, 0.4, 1.2]))  # A (x - c)


def test_batch_gradient_uses_mean_sample():
    task = make_nqm_task(dim=3, batch_size=2)
    model = _model_at(task, [1.0, 1.0, 1.0])
    task.train_loss(model, torch.tensor([[1.0, 0.0, 3.0], [-1.0, 2.0, 1.0]])).backward()  # mean c = (0, 1, 2)
    assert torch.allclose(model.x.grad, torch.tensor([0.1, 0.0, -0.3]))


def test_sgd_step_is_gradient_descent():
    task = make_nqm_task(dim=3)
    model = _model_at(task, [1.0, 2.0, 3.0])
    optimizer = task.make_optimizer(model.parameters(), lr=0.5)
    task.train_loss(model, torch.tensor([[1.0, 0.0, -1.0]])).backward()
    optimizer.step()
    assert torch.allclose(model.x.detach(), torch.tensor([1.0, 2.0 - 0.5 * 0.4, 3.0 - 0.5 * 1.2]))


def test_evaluate_is_expected_excess_loss():
    task = make_nqm_task(dim=3)
    result = task.evaluate(_model_at(task, [1.0, 2.0, 3.0]))
    assert result.loss == pytest.approx(0.5 * (0.1 + 0.2 * 4 + 0.3 * 9))
    assert (result.probs, result.labels) == (None, None)
    assert task.evaluate(_model_at(task, [1.0, 2.0, 3.0]), split="train").loss == result.loss


def test_train_batches_draw_sigma_noise_reproducibly():
    task = make_nqm_task(dim=3, sigma=[0.25, 1.0, 4.0], batch_size=500)
    batches = list(task.train_batches(torch.Generator().manual_seed(1)))
    assert len(batches) == 100 and batches[0].shape == (500, 3)
    again = list(task.train_batches(torch.Generator().manual_seed(1)))
    assert all(torch.equal(b, c) for b, c in zip(batches, again))
    c = torch.cat(batches)
    assert torch.allclose(c.var(dim=0), torch.tensor([0.25, 1.0, 4.0]), rtol=0.03)
    assert torch.allclose(c.mean(dim=0), torch.zeros(3), atol=0.02)


def test_initial_point_depends_on_task_seed_only():
    torch.manual_seed(123)
    first = make_nqm_task(seed=3).make_model().x.detach()
    torch.manual_seed(456)
    assert torch.equal(make_nqm_task(seed=3).make_model().x.detach(), first)
    assert not torch.equal(make_nqm_task(seed=4).make_model().x.detach(), first)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"sigma": "diag"}, "unknown NQM sigma 'diag'"),
        ({"dim": 3, "sigma": [1.0, 2.0]}, "3 finite non-negative"),
        ({"dim": 2, "sigma": [1.0, -2.0]}, "non-negative"),
        ({"dim": 0}, "dim"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"lr": 0.0}, "lr"),
    ],
)
def test_bad_arguments_are_named(kwargs, fragment):
    with pytest.raises(LRPilotError, match=fragment):
        make_nqm_task(**kwargs)


def _mean_stationary_angle(lr, sigma, chains=16, iterations=1_500, burn_in=1_000):
    """Mean angle between consecutive per-iteration SGD updates of independent chains after burn-in.

    The chains are the rows of one ``chains`` x dim model, each fed its own row of a task batch.
    """
    task = make_nqm_task(sigma=sigma, lr=lr, batch_size=chains, iters_per_epoch=iterations)
    model = QuadraticModel(task.make_model().x.detach().repeat(chains, 1), task.a)
    optimizer = task.make_optimizer(model.parameters(), lr=lr)
    angles, x, previous = [], model.x.detach().clone(), None
    for t, c in enumerate(task.train_batches(torch.Generator().manual_seed(0))):
        optimizer.zero_grad()
        model(c).sum().backward()  # row k's gradient: A (x_k - c_k)
        optimizer.step()
        step, x = model.x.detach() - x, model.x.detach().clone()
        if t > burn_in:
            angles += [angular_velocity(s, p) for s, p in zip(step, previous)]
        previous = step
    return task, sum(angles) / len(angles)


@pytest.mark.parametrize("lr, sigma", [(0.06, "A"), (0.03, "identity"), (0.01, "A"), (0.001, "A")])
def test_stationary_angle_matches_theorem_1(lr, sigma):
    task, measured = _mean_stationary_angle(lr, sigma)
    expected = nqm_stationary_angle(lr, task.a.tolist(), task.sigma.tolist())
    assert 90.0 < expected < 120.0
    assert measured == pytest.approx(expected, abs=0.5)


def test_closed_form_tends_to_right_angle_for_small_lr():
    a = [k / 10 for k in range(1, 201)]
    angles = [nqm_stationary_angle(lr, a, a) for lr in (0.06, 0.03, 0.01, 0.001)]
    assert angles == sorted(angles, reverse=True)
    assert angles[-1] == pytest.approx(90.0, abs=0.5)
    assert math.isclose(nqm_stationary_angle(1e-9, a, a), 90.0, abs_tol=1e-6)
