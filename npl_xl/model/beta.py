"""Beta recovery-rate distributions: moments, fitting, quantiles and reproducible draws.

Recovery rates are decimals of the claim (0.30 = 30 %). The Beta is parametrised by its
mean and standard deviation, as analysts state recovery assumptions, and converted by the
method of moments (docs/MODEL.md, Recoveries)::

    k = mean (1 - mean) / sd**2 - 1,   alpha = mean k,   beta = (1 - mean) k

Historical recoveries often pile up at exactly 0 (nothing recovered) and 1 (paid in full).
:func:`fit_beta` splits those off as point masses and fits the Beta to the interior values
only: a zero/one-inflated Beta (Calabrese; [Calabrese] in docs/SOURCES.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from npl_xl import rng
from npl_xl.errors import ConvergenceError, DomainError

__all__ = ["beta_params", "BetaFit", "fit_beta", "beta_inv", "beta_dist", "beta_draws",
           "MAX_DRAWS"]

#: The most draws one call returns: Excel's row count.
MAX_DRAWS = 1_048_576


def beta_params(mean: float, sd: float, *, mean_name: str = "mean",
                sd_name: str = "sd") -> tuple[float, float]:
    """Beta shape parameters with the given mean and standard deviation.

    Parameters
    ----------
    mean : float
        Mean recovery rate, decimal, strictly between 0 and 1.
    sd : float
        Standard deviation of the recovery rate, decimal, > 0 with sd**2 < mean (1 - mean).

    Returns
    -------
    (alpha, beta) : tuple of float
        Shape parameters, both > 0.

    Raises
    ------
    DomainError
        ``#NUM!``: mean outside (0, 1), sd <= 0, or sd too large for a Beta.

    Examples
    --------
    Mean 0.4, sd 0.2: k = 0.24 / 0.04 - 1 = 5, so alpha = 0.4 k = 2 and beta = 0.6 k = 3:

    >>> from npl_xl import beta_params
    >>> [round(x, 12) for x in beta_params(0.4, 0.2)]
    [2.0, 3.0]
    """
    if not 0.0 < mean < 1.0:
        raise DomainError(f"must be strictly between 0 and 1, got {mean:g}", argument=mean_name)
    if not sd > 0.0:
        raise DomainError(f"must be greater than 0, got {sd:g}", argument=sd_name)
    variance_limit = mean * (1.0 - mean)
    if not sd * sd < variance_limit:
        raise DomainError(
            f"{sd:g} is too large for a Beta with mean {mean:g}: sd must be below "
            f"sqrt(mean(1-mean)) = {np.sqrt(variance_limit):.6g}", argument=sd_name)
    k = variance_limit / (sd * sd) - 1.0
    return mean * k, (1.0 - mean) * k


@dataclass(frozen=True)
class BetaFit:
    """A zero/one-inflated Beta fitted to recovery rates.

    Attributes
    ----------
    alpha, beta : float
        Shape parameters of the Beta fitted to the interior values.
    p_zero, p_one : float
        Shares of all (non-blank) observations that are zero and full recoveries.
    loglik : float
        Beta log-likelihood of the interior values at (alpha, beta), in nats.
    n : int
        Number of interior values.
    method : str
        "MLE" or "MOM".
    """

    alpha: float
    beta: float
    p_zero: float
    p_one: float
    loglik: float
    n: int
    method: str

    @property
    def mean(self) -> float:
        """Mean of the interior Beta."""
        return self.alpha / (self.alpha + self.beta)

    def as_row(self) -> list[float]:
        """The contract's 1x6 row: alpha, beta, p_zero, p_one, loglik, n."""
        return [self.alpha, self.beta, self.p_zero, self.p_one, self.loglik, float(self.n)]


def _beta_loglik(alpha: float, beta: float, mean_log_x: float, mean_log_1mx: float,
                 n: int) -> float:
    return n * ((alpha - 1.0) * mean_log_x + (beta - 1.0) * mean_log_1mx
                - special.betaln(alpha, beta))


def _mle(x: np.ndarray, start: tuple[float, float], max_iter: int = 200) -> tuple[float, float]:
    """Maximum likelihood by Newton's method on (log alpha, log beta), from ``start``.

    Solves psi(a) - psi(a+b) = mean(ln x), psi(b) - psi(a+b) = mean(ln(1-x)); the
    log-likelihood is concave in (a, b), so a step-halving Newton iteration converges.
    """
    s1 = float(np.mean(np.log(x)))
    s2 = float(np.mean(np.log1p(-x)))
    theta = np.log(np.asarray(start, dtype=float))

    def objective(t):
        a, b = np.exp(t)
        return (a - 1.0) * s1 + (b - 1.0) * s2 - special.betaln(a, b)

    current = objective(theta)
    for _ in range(max_iter):
        a, b = np.exp(theta)
        psi_ab = special.digamma(a + b)
        grad_ab = np.array([s1 - special.digamma(a) + psi_ab, s2 - special.digamma(b) + psi_ab])
        tri_ab = special.polygamma(1, a + b)
        hess_ab = np.array([[tri_ab - special.polygamma(1, a), tri_ab],
                            [tri_ab, tri_ab - special.polygamma(1, b)]])
        # chain rule to log-parameters
        jac = np.array([a, b])
        grad = grad_ab * jac
        hess = hess_ab * np.outer(jac, jac) + np.diag(grad)
        try:
            step = -np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = grad
        if not np.all(np.isfinite(step)) or grad @ step <= 0:
            step = grad  # not an ascent direction: fall back to the gradient
        t = 1.0
        while t > 1e-12:
            candidate = theta + t * step
            value = objective(candidate)
            if np.isfinite(value) and value >= current - 1e-15 * abs(current):
                break
            t *= 0.5
        else:
            break
        theta, previous, current = candidate, current, value
        if np.max(np.abs(t * step)) < 1e-12 or abs(current - previous) < 1e-15 * max(1.0, abs(current)):
            a, b = np.exp(theta)
            psi_ab = special.digamma(a + b)
            score = max(abs(s1 - special.digamma(a) + psi_ab), abs(s2 - special.digamma(b) + psi_ab))
            if score < 1e-8:
                return float(a), float(b)
    a, b = np.exp(theta)
    psi_ab = special.digamma(a + b)
    score = max(abs(s1 - special.digamma(a) + psi_ab), abs(s2 - special.digamma(b) + psi_ab))
    if not score < 1e-8:
        raise ConvergenceError("the maximum-likelihood fit did not converge; try method MOM",
                               argument="data")
    return float(a), float(b)


def fit_beta(data, method: str = "MLE", tol: float = 1e-6) -> BetaFit:
    """Fit a zero/one-inflated Beta to observed recovery rates.

    Parameters
    ----------
    data : array_like of float
        Recovery rates, decimals in [0, 1]; NaN entries (blank cells) are ignored.
    method : {"MLE", "MOM"}
        Maximum likelihood on the interior values (default) or the method of moments.
    tol : float
        Values <= tol count as zero recoveries, values >= 1 - tol as full ones. Decimal in
        [0, 0.5); default 1e-6.

    Returns
    -------
    BetaFit

    Raises
    ------
    DomainError
        ``#NUM!``: a value outside [0, 1], tol outside [0, 0.5), or fewer than two
        distinct interior values to fit.
    UnknownCodeError
        ``#N/A``: a method other than MLE or MOM.

    Examples
    --------
    One total loss and one full recovery among seven rates: p_zero = p_one = 1/7, the
    Beta fitted to the other five:

    >>> from npl_xl import fit_beta
    >>> fit = fit_beta([0.1, 0.3, 0.35, 0.5, 0.7, 0.0, 1.0])
    >>> fit.n, round(fit.p_zero, 4), round(fit.alpha, 3), round(fit.beta, 3)
    (5, 0.1429, 1.968, 3.109)
    """
    from npl_xl.errors import UnknownCodeError

    chosen = str(method).strip().upper()
    if chosen not in ("MLE", "MOM"):
        raise UnknownCodeError(f"unknown method {method!r}; use MLE or MOM", argument="method")
    if not 0.0 <= tol < 0.5:
        raise DomainError(f"must be in [0, 0.5), got {tol:g}", argument="tol")
    values = np.asarray(data, dtype=float).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise DomainError("holds no recovery rates", argument="data")
    bad = np.flatnonzero((values < 0.0) | (values > 1.0))
    if bad.size:
        raise DomainError(
            f"value {values[bad[0]]:g} (number {bad[0] + 1} of the range) is outside [0, 1]; "
            "recovery rates are decimals of the claim", argument="data")
    zero = values <= tol
    one = values >= 1.0 - tol
    interior = values[~zero & ~one]
    total = values.size
    if interior.size < 2 or np.ptp(interior) == 0.0:
        raise DomainError(
            f"needs at least two different values strictly between {tol:g} and {1 - tol:g}, "
            f"got {interior.size}", argument="data")
    mean = float(interior.mean())
    var = float(interior.var())  # the moment estimator uses the population variance
    if var >= mean * (1 - mean):  # cannot happen for values in (0,1); guard all the same
        raise DomainError("the interior values are too dispersed for a Beta", argument="data")
    a_mom, b_mom = beta_params(mean, np.sqrt(var), mean_name="data", sd_name="data")
    a, b = (a_mom, b_mom) if chosen == "MOM" else _mle(interior, (a_mom, b_mom))
    loglik = _beta_loglik(a, b, float(np.mean(np.log(interior))),
                          float(np.mean(np.log1p(-interior))), interior.size)
    return BetaFit(a, b, float(zero.sum()) / total, float(one.sum()) / total, float(loglik),
                   int(interior.size), chosen)


def beta_inv(p: float, mean: float, sd: float) -> float:
    """Quantile of the Beta with the given mean and sd.

    Parameters
    ----------
    p : float
        Probability, decimal in [0, 1].
    mean, sd : float
        Mean and standard deviation of the recovery rate, decimals (see :func:`beta_params`).

    Returns
    -------
    float
        The recovery rate x with P(X <= x) = p, decimal in [0, 1].

    Examples
    --------
    >>> from npl_xl import beta_inv
    >>> round(beta_inv(0.5, 0.4, 0.2), 4)   # the median of Beta(2, 3)
    0.3857
    """
    if not 0.0 <= p <= 1.0:
        raise DomainError(f"must be a probability in [0, 1], got {p:g}", argument="p")
    a, b = beta_params(mean, sd)
    return float(special.betaincinv(a, b, p))


def beta_dist(x: float, mean: float, sd: float, cumulative: bool = True) -> float:
    """Distribution function (cumulative) or density of the Beta with that mean and sd.

    Like Excel's BETA.DIST on [0, 1], parametrised by mean and sd.

    Parameters
    ----------
    x : float
        Recovery rate, decimal in [0, 1] (``#NUM!`` outside, as BETA.DIST).
    mean, sd : float
        Mean and standard deviation, decimals.
    cumulative : bool
        TRUE (default) for P(X <= x); FALSE for the density at x (per unit of rate).

    Examples
    --------
    Beta(2, 3) (mean 0.4, sd 0.2): F(x) = 6x^2 - 8x^3 + 3x^4, so F(0.4) = 0.5248:

    >>> from npl_xl import beta_dist
    >>> round(beta_dist(0.4, 0.4, 0.2), 10)
    0.5248
    """
    if not 0.0 <= x <= 1.0:
        raise DomainError(f"must be a recovery rate in [0, 1], got {x:g}", argument="x")
    a, b = beta_params(mean, sd)
    if cumulative:
        return float(special.betainc(a, b, x))
    # density x^(a-1) (1-x)^(b-1) / B(a, b) in logs; xlogy/xlog1py make 0*log(0) = 0 at the
    # edges (scipy.special only: scipy.stats costs half a second to import)
    log_density = special.xlogy(a - 1.0, x) + special.xlog1py(b - 1.0, -x) - special.betaln(a, b)
    return float(np.exp(log_density))


def beta_draws(mean: float, sd: float, n: int, seed: int = 0, cap: bool = False) -> np.ndarray:
    """``n`` reproducible Beta draws with the given mean and sd.

    Draw ``m`` is the Beta quantile of the Philox uniform for counter ``(m // 2, 0,
    STREAM_BETA_DRAWS)`` under ``seed`` (see :mod:`npl_xl.rng`): the same on every machine,
    and the first ``n`` draws do not change when more are asked for.

    Parameters
    ----------
    mean, sd : float
        Mean and standard deviation of the recovery rate, decimals.
    n : int
        Number of draws, 1 to 1,048,576.
    seed : int
        Whole number >= 0; default 0.
    cap : bool
        TRUE returns min(draw, mean): the one-sided stress that removes upside.

    Returns
    -------
    numpy.ndarray
        Shape (n,), recovery rates in [0, 1].

    Examples
    --------
    >>> from npl_xl import beta_draws
    >>> draws = beta_draws(0.4, 0.2, 3, seed=42)
    >>> draws.round(4).tolist()   # the same on every machine
    [0.0421, 0.2322, 0.1645]
    """
    if not 1 <= n <= MAX_DRAWS:
        raise DomainError(f"must be a whole number from 1 to {MAX_DRAWS:,}, got {n}",
                          argument="n")
    if not 0 <= seed < 2**63:
        raise DomainError(f"must be a whole number >= 0, got {seed}", argument="seed")
    a, b = beta_params(mean, sd)
    draws = special.betaincinv(a, b, rng.uniforms(seed, rng.STREAM_BETA_DRAWS, n))
    return np.minimum(draws, mean) if cap else draws
