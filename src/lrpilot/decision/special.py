"""The special functions of the decision's statistics, vectorised in numpy: the normal's log CDF, Student's t CDF
and quantile, and log-gamma. ``scipy.special`` computes the same (to about 1e-12 of the value here,
tests/bench/test_special.py), but importing it takes longer than a whole ``lrpilot rank``."""

from __future__ import annotations

import math
import statistics

import numpy as np

_LOG_HALF, _SQRT_PI = math.log(0.5), math.sqrt(math.pi)
_GAUSS = np.polynomial.legendre.leggauss(10)  # Gauss-Legendre nodes and weights on [-1, 1]
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188)  # log-gamma's asymptotic series, 1/x ... 1/x^9
_CF_DF = 1000.0  # up to this df, Student's tail by the incomplete beta's continued fraction; above, by quadrature
_lgamma = np.frompyfunc(math.lgamma, 1, 1)


def gammaln(x: np.ndarray) -> np.ndarray:
    """log Gamma(x) for x > 0, elementwise."""
    return np.asarray(_lgamma(np.asarray(x, float)), float)


def gauss_panels(start: np.ndarray, end: np.ndarray, panels: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nodes, weights and integral index of 10-point Gauss-Legendre rules on ``panels`` (at least 1) equal
    panels between each ``start`` and ``end``: an integral i is ``np.bincount(of, weights * f(nodes))[i]``."""
    panels = np.maximum(1, panels).astype(int)
    width = (end - start) / panels
    of = np.repeat(np.arange(start.size), panels)
    first = np.repeat(np.cumsum(panels) - panels, panels)
    left = start[of] + (np.arange(of.size) - first) * width[of]
    nodes = (left[:, None] + (_GAUSS[0] + 1) / 2 * width[of, None]).ravel()
    weights = (_GAUSS[1] / 2 * width[of, None]).ravel()
    return nodes, weights, np.repeat(of, _GAUSS[0].size)


def _log_erfc(x: np.ndarray) -> np.ndarray:
    """log erfc(x): below 2 from erf's series of positive terms, 2/sqrt(pi) e^-x^2 sum (2x^2)^n x / (2n+1)!!;
    from 2 on from the continued fraction erfc(x) = e^-x^2 / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / ...)))."""
    out = np.empty(x.shape)
    far = x >= 2
    y = x[far]
    f = y.copy()
    for n in range(90, 0, -1):
        f = y + (n / 2) / f
    out[far] = -y * y - np.log(_SQRT_PI * f)
    y = x[~far]
    term, total, ratio = y.copy(), y.copy(), 2 * y * y
    for n in range(1, 80):
        term = term * ratio / (2 * n + 1)
        total += term
    out[~far] = np.log1p(-2 / _SQRT_PI * np.exp(-y * y) * total)
    return out


def log_ndtr(z: np.ndarray) -> np.ndarray:
    """log P(N(0, 1) < z), elementwise, without underflow far in the lower tail."""
    x = -np.asarray(z, float) / math.sqrt(2)
    out = np.empty(x.shape)
    low = x >= 0
    out[low] = _LOG_HALF + _log_erfc(x[low])
    out[~low] = np.log1p(-0.5 * np.exp(_log_erfc(-x[~low])))
    return out


def _stirling(x: np.ndarray) -> np.ndarray:
    """log Gamma(x)'s asymptotic series past its (x - 1/2) log x - x + log(2 pi) / 2, to 1/x^9 (x >= 20: < 1e-16)."""
    inv = 1 / x
    sq = inv * inv
    return inv * (_STIRLING[0] + sq * (_STIRLING[1] + sq * (_STIRLING[2] + sq * (_STIRLING[3] + sq * _STIRLING[4]))))


def _log_beta_half(a: np.ndarray) -> np.ndarray:
    """log B(a, 1/2); from a = 20 on by Stirling's series for log Gamma(a) - log Gamma(a + 1/2), which would
    otherwise lose its digits to the cancellation of two large logs."""
    out = np.empty(a.shape)
    big = a >= 20
    b = a[big]
    out[big] = 0.5 - 0.5 * np.log(b) - b * np.log1p(0.5 / b) + _stirling(b) - _stirling(b + 0.5)
    out[~big] = gammaln(a[~big]) - gammaln(a[~big] + 0.5)
    return out + 0.5 * math.log(math.pi)


def _beta_fraction(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The continued fraction of the regularized incomplete beta I_x(a, b) (modified Lentz), for x below
    (a + 1) / (a + b + 2), where it converges in O(sqrt(max(a, b))) terms."""
    tiny = 1e-300
    guard = lambda v: np.where(np.abs(v) < tiny, tiny, v)  # noqa: E731
    c, d = np.ones(x.shape), 1 / guard(1 - (a + b) * x / (a + 1))
    h, done = d.copy(), np.zeros(x.shape, bool)
    for m in range(1, 400):
        for coefficient in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d, c = 1 / guard(1 + coefficient * d), guard(1 + coefficient / c)
            h = np.where(done, h, h * d * c)  # a converged value stays as it would alone
        done |= np.abs(d * c - 1) < 1e-15
        if done.all():
            return h
    raise ArithmeticError("the incomplete beta's continued fraction did not converge")  # pragma: no cover


def _lower_tail_by_fraction(df: np.ndarray, t: np.ndarray) -> np.ndarray:
    """P(T_df < t) for t <= 0 as I_x(df / 2, 1/2) / 2, x = df / (df + t^2), by the continued fraction of the
    smaller side (I_x(a, b) = 1 - I_(1-x)(b, a))."""
    a, t2 = df / 2, t * t
    x, y = df / (df + t2), t2 / (df + t2)
    with np.errstate(divide="ignore"):
        front = np.exp(a * np.log(x) + 0.5 * np.log(y) - _log_beta_half(a))
    out = np.empty(t.shape)
    direct = x < (a + 1) / (a + 2.5)
    out[direct] = front[direct] * _beta_fraction(a[direct], np.full(direct.sum(), 0.5), x[direct]) / a[direct] / 2
    swap = ~direct
    out[swap] = (1 - 2 * front[swap] * _beta_fraction(np.full(swap.sum(), 0.5), a[swap], y[swap])) / 2
    return out


def _lower_tail_by_quadrature(df: np.ndarray, t: np.ndarray) -> np.ndarray:
    """P(T_df < t) for t <= 0 and large df (here > 1000): with t = sqrt(df) tan(theta), the integral of
    cos(theta)^(df - 1) from -pi/2 to atan(t / sqrt(df)), over B(df / 2, 1/2), in Gauss-Legendre panels of twice
    the integrand's scale (its width 1 / sqrt(df - 1), or its decay length at the end, if shorter), over 40 scales."""
    end = np.arctan(t / np.sqrt(df))
    with np.errstate(divide="ignore"):
        scale = np.minimum(1 / np.sqrt(df - 1), 1 / ((df - 1) * np.abs(np.tan(end))))
    start = np.maximum(-math.pi / 2, end - 40 * scale)
    theta, weight, of = gauss_panels(start, end, np.ceil((end - start) / (2 * scale)))
    log_cos = np.log1p(-2 * np.sin(theta / 2) ** 2)  # log cos(theta), its digits kept near 0
    values = weight * np.exp((df[of] - 1) * log_cos - _log_beta_half(df / 2)[of])
    return np.bincount(of, values, minlength=t.size)


def stdtr(df: np.ndarray, t: np.ndarray) -> np.ndarray:
    """P(T < t) for Student's t with ``df`` >= 1 degrees of freedom (inf: the normal), elementwise; nan where
    ``df`` or ``t`` is nan."""
    df, t = np.broadcast_arrays(np.asarray(df, float), np.asarray(t, float))
    shape, df, t = t.shape, df.ravel(), t.ravel()
    x = -np.abs(t)
    lower = np.where(np.isneginf(x) & ~np.isnan(df), 0.0, math.nan)  # P(T < -|t|)
    ok = np.isfinite(x) & ~np.isnan(df)
    normal, small = ok & np.isinf(df), ok & (df <= _CF_DF)
    rest = ok & ~normal & ~small
    lower[normal] = np.exp(log_ndtr(x[normal]))
    lower[small] = _lower_tail_by_fraction(df[small], x[small])
    lower[rest] = _lower_tail_by_quadrature(df[rest], x[rest])
    return np.where(t < 0, lower, 1 - lower).reshape(shape)


def _density(df: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Student's density at ``t`` (df inf: the normal's)."""
    out = np.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    finite = np.isfinite(df)
    nu = df[finite]
    out[finite] = np.exp(-(nu + 1) / 2 * np.log1p(t[finite] ** 2 / nu) - _log_beta_half(nu / 2)) / np.sqrt(nu)
    return out


def stdtrit(df: np.ndarray, p: float) -> np.ndarray:
    """The t with P(T_df < t) = ``p`` (0 < p < 1), elementwise over ``df`` (nan: nan): Newton's method from the
    Cornish-Fisher expansion in 1/df (Abramowitz and Stegun 26.7.5; within 1e-5 of the root from df = 10 on), or
    below df = 10 from the normal's quantile, which lies between the median and the root (Student's tail is the
    heavier), where the CDF is concave, so that every step stays on that side and converges monotonically."""
    if p < 0.5:
        return -stdtrit(df, 1 - p)
    shape, df = np.shape(df), np.asarray(df, float).ravel()
    z = statistics.NormalDist().inv_cdf(p)
    series = (z, (z ** 3 + z) / 4, (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96,
              (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384,
              (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160)
    with np.errstate(divide="ignore"):
        t = np.where(df >= 10, sum(g / df ** i for i, g in enumerate(series)), z)
    open_ = np.flatnonzero(~np.isnan(t))
    for _ in range(100):
        if not open_.size:
            return t.reshape(shape)
        step = (p - stdtr(df[open_], t[open_])) / _density(df[open_], t[open_])
        t[open_] += step
        open_ = open_[np.abs(step) > 1e-8 * (1 + np.abs(t[open_]))]  # the next step would be below 1e-14
    raise ArithmeticError("Student's quantile did not converge")  # pragma: no cover
