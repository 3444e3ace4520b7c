"""Per-loan tables of the copula quantile map G(z) = F^-1_Beta(Phi(z)), for the kernels.

scipy.special cannot be called from numba, and one scipy ``betaincinv`` costs about a
microsecond, far too slow for 10^8 draws. Instead every loan gets a table of its map

    G_i(z) = F^-1_Beta(Phi(z); alpha_i, beta_i)      (recovery rate, decimal of the claim)

on the z grid ``Z_MIN .. Z_MAX`` (-8 .. 8) with ``N_INTERVALS`` (128) equal intervals, as
piecewise cubic Hermite polynomials whose node slopes are the exact derivative
dG/dz = phi(z) / f_Beta(G). A draw is then one table lookup and a Horner step. z outside
[-8, 8] (probability 1.2e-15) is clamped to the end of the grid.

Accuracy (tests/test_engine_quantile.py against scipy.special.betaincinv): below 1e-6
absolute on |z| <= 6 for alpha, beta >= 0.5; the extreme U-shaped Betas that the sd cap
allows (alpha + beta near 0.23) are steep in z and are only good to about 1e-3 there.

The node values are computed here, in numba, by Newton's method on the regularised
incomplete beta function (continued fraction, Numerical Recipes' ``betacf`` with the
modified Lentz method), in log coordinates so that tails of 1e-300 stay exact. Only the
lower half (z <= 0) is ever solved: the upper half follows from the symmetry
G_{a,b}(z) = 1 - G_{b,a}(-z), which keeps the precision of values near 1.
Loans are independent, so the table build runs in parallel over loans.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["Z_MIN", "Z_MAX", "N_INTERVALS", "build_tables", "table_lookup", "table_values"]

Z_MIN = -8.0
Z_MAX = 8.0
N_INTERVALS = 128
_H = (Z_MAX - Z_MIN) / N_INTERVALS
_INV_H = 1.0 / _H
INV_H = _INV_H                   #: intervals per unit of z (the lookups' scale)
T_TOP = N_INTERVALS - 1e-9       #: the last position t = (z - Z_MIN) INV_H of a lookup
_HALF = N_INTERVALS // 2
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@nb.njit(cache=True)
def _betacf(a, b, x):
    """Continued fraction of the incomplete beta (modified Lentz), converging for
    x < (a + 1) / (a + b + 2)."""
    tiny = 1e-300
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < tiny:
        d = tiny
    d = 1.0 / d
    h = d
    for m in range(1, 10000):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < tiny:
            d = tiny
        c = 1.0 + aa / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < tiny:
            d = tiny
        c = 1.0 + aa / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


@nb.njit(cache=True)
def _log_betainc(a, b, log_x, lbeta):
    """log I_x(a, b) for x = exp(log_x) in (0, 1); lbeta = log B(a, b)."""
    x = math.exp(log_x)
    log_1mx = math.log1p(-x)
    log_front = a * log_x + b * log_1mx - lbeta
    if x < (a + 1.0) / (a + b + 2.0):
        return log_front + math.log(_betacf(a, b, x) / a)
    upper = math.exp(log_front) * _betacf(b, a, 1.0 - x) / b  # 1 - I_x
    return math.log1p(-upper)


@nb.njit(cache=True)
def _log_norm_cdf(z):
    """log Phi(z) for z <= 0, accurate in the far tail."""
    return math.log(0.5 * math.erfc(-z / math.sqrt(2.0)))


@nb.njit(cache=True)
def _lower_half(a, b, out_log_x, out_slope):
    """Solve I_x(a, b) = Phi(z_k) for the nodes z_k = Z_MIN + k h, k = _HALF .. 0 (z <= 0).

    Writes log x_k and the slope dG/dz at each node. Newton in y = log x on
    g(y) = log I - log p (nearly linear in the lower tail), guarded by a bracket: the
    node below a solved node lies below it, which gives the upper end of the bracket.
    """
    lbeta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    y_cap = math.log1p(-1e-15)  # log x cannot resolve x closer to 1 than this
    y = min(math.log(a / (a + b)), y_cap)
    hi = y_cap
    at_cap = True
    dlog_above = 0.0
    y_above = 0.0
    for k in range(_HALF, -1, -1):
        z = Z_MIN + k * _H
        log_p = _log_norm_cdf(z)
        lo = -np.inf
        if at_cap:  # a Beta with nearly all its mass at 1: is this node at 1 too?
            at_cap = _log_betainc(a, b, y_cap, lbeta) <= log_p
            if at_cap:
                y = y_cap
        for _ in range(200):
            if at_cap:
                break
            g = _log_betainc(a, b, y, lbeta) - log_p
            if g == 0.0:
                break
            if g > 0.0:
                hi = y
            else:
                lo = y
            # d log I / d log x = x f(x) / I
            x = math.exp(y)
            log_xf = a * y + (b - 1.0) * math.log1p(-x) - lbeta
            slope = math.exp(log_xf - (g + log_p))
            step = g / slope
            if abs(step) <= 1e-7 * abs(y):
                # Newton converges quadratically: the error left after this step is ~1e-14
                # of |y|. Relative, not absolute: near x = 1 (the median of a Beta whose
                # second parameter is tiny, e.g. Beta(2.03, 0.041)) y is ~1e-7 itself, and
                # an absolute 1e-7 left 1 - x wrong by orders of magnitude (a table that
                # fell from 2e-8 to 2e-13 between two nodes)
                y = min(max(y - step, lo), hi)
                break
            y_new = y - step
            if not (lo < y_new < hi):  # also catches a NaN step
                y_new = 0.5 * (lo + hi) if lo > -np.inf else y - 2.0 * abs(step) - 1.0
            y = y_new
        out_log_x[k] = y
        x = math.exp(y)
        # dG/dz = phi(z) / f(x), in logs: phi / f = exp(log phi - ((a-1) y + (b-1) log(1-x) - lbeta))
        log_f = (a - 1.0) * y + (b - 1.0) * math.log1p(-x) - lbeta
        log_slope = -0.5 * z * z - _LOG_SQRT_2PI - log_f
        out_slope[k] = math.exp(log_slope)
        hi = y  # the next node (further down) lies below this one
        # start the next node from the cubic Hermite through this node and the one above,
        # extrapolated one step down (t = -1), in log x: d log x / dz = slope / x
        dlog = math.exp(min(log_slope - y, 50.0))
        y_here = y
        if k == _HALF:
            y = y - _H * dlog
        else:
            y = -4.0 * y - 4.0 * _H * dlog + 5.0 * y_above - 2.0 * _H * dlog_above
        y = min(y, y_here)
        y_above = y_here
        dlog_above = dlog


@nb.njit(cache=True)
def _fill_table(a, b, mean, coef):
    """Cubic Hermite coefficients (c0, c1, c2, c3 per interval, in t = (z - z_k)/h)."""
    n_nodes = N_INTERVALS + 1
    values = np.empty(n_nodes)
    slopes = np.empty(n_nodes)
    if not (a > 0.0 and b > 0.0):  # deterministic loan: G(z) = mean
        for k in range(N_INTERVALS):
            coef[k, 0] = mean
            coef[k, 1] = 0.0
            coef[k, 2] = 0.0
            coef[k, 3] = 0.0
        return
    log_x = np.empty(_HALF + 1)
    slope = np.empty(_HALF + 1)
    _lower_half(a, b, log_x, slope)
    for k in range(_HALF + 1):
        values[k] = math.exp(log_x[k])
        slopes[k] = slope[k]
    _lower_half(b, a, log_x, slope)  # mirror: G_{a,b}(z) = 1 - G_{b,a}(-z)
    for k in range(_HALF + 1, n_nodes):
        mirror = N_INTERVALS - k
        values[k] = -math.expm1(log_x[mirror])
        slopes[k] = slope[mirror]
    for k in range(N_INTERVALS):
        g0 = values[k]
        g1 = values[k + 1]
        d0 = _H * slopes[k]
        d1 = _H * slopes[k + 1]
        coef[k, 0] = g0
        coef[k, 1] = d0
        coef[k, 2] = -3.0 * g0 - 2.0 * d0 + 3.0 * g1 - d1
        coef[k, 3] = 2.0 * g0 + d0 - 2.0 * g1 + d1


@nb.njit(cache=True, parallel=True)
def _build_tables(alpha, beta, mean, coef):
    for i in nb.prange(alpha.shape[0]):
        _fill_table(alpha[i], beta[i], mean[i], coef[i])


def build_tables(alpha: np.ndarray, beta: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Quantile tables for n loans.

    Parameters
    ----------
    alpha, beta : array of float, shape (n,)
        Beta shape parameters; a loan with alpha or beta <= 0 is deterministic.
    mean : array of float, shape (n,)
        Mean recovery rate (decimal), the value of a deterministic loan.

    Returns
    -------
    numpy.ndarray, shape (n, N_INTERVALS, 4)
        Hermite coefficients; evaluate with :func:`table_lookup`.
    """
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    beta = np.ascontiguousarray(beta, dtype=np.float64)
    mean = np.ascontiguousarray(mean, dtype=np.float64)
    coef = np.empty((alpha.shape[0], N_INTERVALS, 4))
    _build_tables(alpha, beta, mean, coef)
    return coef


@nb.njit(cache=True, inline="always")
def table_lookup(coef_i, z):
    """G_i(z) from one loan's table ``coef_i`` (shape (N_INTERVALS, 4)); recovery rate in [0, 1]."""
    t = min(max((z - Z_MIN) * _INV_H, 0.0), T_TOP)  # branch-free
    k = int(t)
    f = t - k
    g = coef_i[k, 0] + f * (coef_i[k, 1] + f * (coef_i[k, 2] + f * coef_i[k, 3]))
    return min(max(g, 0.0), 1.0)


@nb.njit(cache=True)
def _values(coef, z, out):
    for i in range(coef.shape[0]):
        for m in range(z.shape[0]):
            out[i, m] = table_lookup(coef[i], z[m])


def table_values(coef: np.ndarray, z: np.ndarray) -> np.ndarray:
    """G_i(z_m) for every loan i and point m (for tests and diagnostics), shape (n, len(z))."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    out = np.empty((coef.shape[0], z.shape[0]))
    _values(coef, z, out)
    return out
