"""Closed forms for the noisy quadratic model at stationarity (AutoDrop paper, Theorem 1).

Per coordinate i, with a = a_i, v = Var(c_i) (the i-th diagonal entry of Sigma) and a fixed LR eta,
SGD is x_{t+1} = r x_t + eta a c_t with r = 1 - eta a, stable for 0 < eta a < 2. Then:

* stationary variance: V = r^2 V + (eta a)^2 v, so V = eta a v / (2 - eta a);
* the step s_{t+1} = x_{t+1} - x_t = eta a (c_t - x_t), c_t independent of x_t, so
  E[s^2] = (eta a)^2 (v + V) = 2 (eta a)^2 v / (2 - eta a);
* E[s_{t+1} s_t] = -(eta a)^2 E[x_t (c_{t-1} - x_{t-1})] with x_t = r x_{t-1} + eta a c_{t-1}, so
  = -(eta a)^2 (eta a v - r V) = -(eta a)^3 v / (2 - eta a).

Summing over coordinates gives Theorem 1's I* = -eta^3 sum_i a_i^3 v_i / (2 - eta a_i) (its
sigma_i^2 is our v_i), and the paper's C* = I* / E|s|^2:

    cos* = -(eta / 2) * sum_i a_i^3 v_i / (2 - eta a_i) / sum_i a_i^2 v_i / (2 - eta a_i),

a weighted mean of -eta a_i / 2, so the angle lies in [90, 120] degrees while eta a_i <= 1.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def nqm_stationary_cosine(eta: float, a_diag: Sequence[float], sigma_diag: Sequence[float]) -> float:
    """C* = E<s_t, s_{t+1}> / E|s_t|^2 at stationarity (Theorem 1, Equation (6)); sigma_diag holds variances."""
    a, v = np.asarray(a_diag, dtype=np.float64), np.asarray(sigma_diag, dtype=np.float64)
    weights = a**2 * v / (2 - eta * a)
    return float(-(eta / 2) * (a * weights).sum() / weights.sum())


def nqm_stationary_angle(eta: float, a_diag: Sequence[float], sigma_diag: Sequence[float]) -> float:
    """The stationary angle in degrees between consecutive per-iteration updates, arccos(C*)."""
    return math.degrees(math.acos(nqm_stationary_cosine(eta, a_diag, sigma_diag)))
