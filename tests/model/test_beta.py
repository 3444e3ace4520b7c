"""Recovery distributions: closed forms, an independent MLE, sampling error, contract errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, special, stats

from npl_xl.model import beta
from npl_xl.errors import XlError
from npl_xl.sheet.registry import load_all

REGISTRY = load_all()


def call(name, *args):
    return REGISTRY[name](*args)


# ---------------------------------------------------------------- method of moments
def test_params_closed_form_domain_example():
    # domain.md §2.1: mean 0.40, sd 0.20 -> k = 0.24/0.04 - 1 = 5, alpha = 2, beta = 3
    alpha, b = beta.beta_params(0.40, 0.20)
    assert alpha == pytest.approx(2.0, rel=1e-12) and b == pytest.approx(3.0, rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(mean=st.floats(0.001, 0.999), frac=st.floats(0.01, 0.99))
def test_params_reproduce_the_moments(mean, frac):
    sd = frac * np.sqrt(mean * (1 - mean))
    alpha, b = beta.beta_params(mean, sd)
    m, v = stats.beta.stats(alpha, b, moments="mv")
    assert m == pytest.approx(mean, rel=1e-9)
    assert np.sqrt(v) == pytest.approx(sd, rel=1e-7)


@pytest.mark.parametrize("mean, sd, argument", [
    (0.0, 0.1, "mean"), (1.0, 0.1, "mean"), (-0.2, 0.1, "mean"), (0.4, 0.0, "sd"),
    (0.4, -0.1, "sd"), (0.4, 0.49, "sd"), (0.5, 0.5, "sd"),
])
def test_params_domain_errors(mean, sd, argument):
    result = call("NPL_BETA_PARAMS", mean, sd)
    assert isinstance(result, XlError) and result.code == "#NUM!"
    assert result.message.startswith(argument + ":")


# ---------------------------------------------------------------- fitting
def independent_mle(x):
    """Solve the score equations with a different solver and start (MINPACK's hybrd from alpha = beta = 1)."""
    s1, s2 = np.mean(np.log(x)), np.mean(np.log1p(-x))

    def score(log_params):
        a, b = np.exp(log_params)
        return [special.digamma(a) - special.digamma(a + b) - s1,
                special.digamma(b) - special.digamma(a + b) - s2]

    solution = optimize.root(score, x0=[0.0, 0.0], method="hybr", tol=1e-13)
    assert np.max(np.abs(score(solution.x))) < 1e-11
    return np.exp(solution.x)


@pytest.mark.parametrize("a, b, n", [(2.0, 3.0, 400), (0.6, 0.9, 300), (8.0, 2.5, 1000)])
def test_mle_solves_the_score_equations(a, b, n):
    x = stats.beta.rvs(a, b, size=n, random_state=np.random.default_rng(11))
    fit = beta.fit_beta(x)
    expected = independent_mle(x)
    assert fit.alpha == pytest.approx(expected[0], rel=1e-7)
    assert fit.beta == pytest.approx(expected[1], rel=1e-7)
    # and scipy's own optimiser (Nelder-Mead on the likelihood) lands in the same place
    sa, sb, _, _ = stats.beta.fit(x, floc=0, fscale=1)
    assert fit.alpha == pytest.approx(sa, rel=1e-3) and fit.beta == pytest.approx(sb, rel=1e-3)
    assert fit.loglik == pytest.approx(stats.beta.logpdf(x, fit.alpha, fit.beta).sum(), rel=1e-10)
    assert fit.n == n and fit.p_zero == 0.0 and fit.p_one == 0.0


def test_mom_fit_uses_population_moments():
    x = np.array([0.1, 0.25, 0.4, 0.55, 0.2])
    fit = beta.fit_beta(x, method="mom")
    m, v = x.mean(), x.var()
    k = m * (1 - m) / v - 1
    assert (fit.alpha, fit.beta) == pytest.approx((m * k, (1 - m) * k), rel=1e-12)
    assert fit.method == "MOM"


def test_point_masses_are_split_off():
    interior = [0.2, 0.35, 0.5, 0.6, 0.45]
    data = [0.0, 0.0, 5e-7, 1.0, 1 - 1e-7] + interior  # 3 zeros, 2 ones with tol 1e-6
    fit = beta.fit_beta(data)
    assert fit.p_zero == pytest.approx(3 / 10) and fit.p_one == pytest.approx(2 / 10)
    assert fit.n == 5
    same = beta.fit_beta(interior)
    assert (fit.alpha, fit.beta) == pytest.approx((same.alpha, same.beta), rel=1e-12)
    # a wider tol moves values near the edges into the point masses
    assert beta.fit_beta(data + [0.004], tol=0.01).p_zero == pytest.approx(4 / 11)


def test_fit_through_the_registry_ignores_blanks():
    column = [[0.2], [None], [0.35], [""], [0.0], [0.5], [1.0], [0.6]]
    row = call("NPL_BETA_FIT", column)
    fit = beta.fit_beta([0.2, 0.35, 0.0, 0.5, 1.0, 0.6])
    assert row == [pytest.approx(fit.as_row())]
    assert len(row[0]) == 6


@pytest.mark.parametrize("data, method, tol, code, argument", [
    ([[0.2], [1.5]], None, None, "#NUM!", "data"),
    ([[0.2], ["n/a"]], None, None, "#VALUE!", "data"),
    ([[0.2, 0.3], [0.4, 0.5]], None, None, "#VALUE!", "data"),
    ([[0.0], [1.0], [0.3]], None, None, "#NUM!", "data"),
    ([[0.3], [0.3], [0.3]], None, None, "#NUM!", "data"),
    ([[None], [None]], None, None, "#VALUE!", "data"),
    ([[0.2], [0.4]], "median", None, "#N/A", "method"),
    ([[0.2], [0.4]], 3.0, None, "#VALUE!", "method"),
    ([[0.2], [0.4]], None, 0.7, "#NUM!", "tol"),
])
def test_fit_errors(data, method, tol, code, argument):
    result = call("NPL_BETA_FIT", data, method, tol)
    assert isinstance(result, XlError), result
    assert result.code == code and result.message.startswith(argument + ":"), result


# ---------------------------------------------------------------- quantile and distribution
@pytest.mark.parametrize("p", [0.0, 1e-6, 0.05, 0.5, 0.95, 1.0])
def test_inverse_matches_scipy(p):
    assert call("NPL_BETA_INV", p, 0.4, 0.2) == pytest.approx(stats.beta.ppf(p, 2, 3), abs=1e-12)


@pytest.mark.parametrize("x", [0.0, 1e-12, 0.3, 0.999, 1.0])
@pytest.mark.parametrize("mean, sd", [(0.4, 0.2), (0.5, 0.2887), (0.2, 0.3), (0.85, 0.3)])
def test_density_matches_scipy_at_edges(x, mean, sd):
    a, b = beta.beta_params(mean, sd)
    expected = stats.beta.pdf(x, a, b)
    got = call("NPL_BETA_DIST", x, mean, sd, False)
    if np.isfinite(expected):
        assert got == pytest.approx(expected, rel=1e-10, abs=1e-300)
    else:  # alpha or beta < 1: the density is infinite at that edge
        assert isinstance(got, XlError) and got.code == "#NUM!"


def test_dist_matches_scipy_and_inverts():
    assert call("NPL_BETA_DIST", 0.3, 0.4, 0.2) == pytest.approx(stats.beta.cdf(0.3, 2, 3))
    assert call("NPL_BETA_DIST", 0.3, 0.4, 0.2, False) == pytest.approx(stats.beta.pdf(0.3, 2, 3))
    assert call("NPL_BETA_DIST", 0.3, 0.4, 0.2, None) == call("NPL_BETA_DIST", 0.3, 0.4, 0.2, True)
    q = call("NPL_BETA_INV", 0.37, 0.25, 0.15)
    assert call("NPL_BETA_DIST", q, 0.25, 0.15) == pytest.approx(0.37, abs=1e-12)


@pytest.mark.parametrize("name, args, code, argument", [
    ("NPL_BETA_INV", (1.2, 0.4, 0.2), "#NUM!", "p"),
    ("NPL_BETA_INV", (None, 0.4, 0.2), "#VALUE!", "p"),
    ("NPL_BETA_INV", ("half", 0.4, 0.2), "#VALUE!", "p"),
    ("NPL_BETA_INV", (0.5, [[0.4, 0.5]], 0.2), "#VALUE!", "mean"),
    ("NPL_BETA_DIST", (-0.1, 0.4, 0.2), "#NUM!", "x"),
    ("NPL_BETA_DIST", (0.1, 0.4, 0.2, "maybe"), "#VALUE!", "cumulative"),
    ("NPL_BETA_DIST", (0.1, 0.4, True), "#VALUE!", "sd"),
    ("NPL_BETA_DRAWS", (0.4, 0.2, 0), "#NUM!", "n"),
    ("NPL_BETA_DRAWS", (0.4, 0.2, 2.5), "#NUM!", "n"),
    ("NPL_BETA_DRAWS", (0.4, 0.2, 2_000_000), "#NUM!", "n"),
    ("NPL_BETA_DRAWS", (0.4, 0.2, 10, -1), "#NUM!", "seed"),
    ("NPL_BETA_DRAWS", (0.4, 0.2, 10, 0, "yes please"), "#VALUE!", "cap"),
])
def test_contract_errors(name, args, code, argument):
    result = call(name, *args)
    assert isinstance(result, XlError), result
    assert result.code == code, result
    assert result.message.startswith(argument + ":"), result.message


def test_error_arguments_propagate():
    na = XlError("#N/A", "upstream")
    assert call("NPL_BETA_PARAMS", na, 0.2) is na
    assert call("NPL_BETA_FIT", [[0.2], ["#DIV/0!"], [0.3]]).code == "#DIV/0!"


# ---------------------------------------------------------------- draws
def test_draws_mean_and_sd_within_sampling_error():
    mean, sd, n = 0.35, 0.18, 200_000
    draws = np.array(call("NPL_BETA_DRAWS", mean, sd, float(n), 42.0)).ravel()
    a, b = beta.beta_params(mean, sd)
    mu4 = stats.beta.moment(4, a, b, loc=-mean)  # 4th central moment
    assert abs(draws.mean() - mean) < 4 * sd / np.sqrt(n)
    se_var = np.sqrt((mu4 - sd**4) / n)
    assert abs(draws.var() - sd**2) < 4 * se_var
    assert stats.kstest(draws, stats.beta(a, b).cdf).pvalue > 1e-3


def test_draws_reproducible_by_seed():
    first = call("NPL_BETA_DRAWS", 0.4, 0.2, 50.0, 7.0)
    assert call("NPL_BETA_DRAWS", 0.4, 0.2, 50.0, 7.0) == first
    assert call("NPL_BETA_DRAWS", 0.4, 0.2, 50.0, 8.0) != first
    assert call("NPL_BETA_DRAWS", 0.4, 0.2, 10.0, 7.0) == first[:10]  # prefix-stable
    assert call("NPL_BETA_DRAWS", 0.4, 0.2, 5.0) == call("NPL_BETA_DRAWS", 0.4, 0.2, 5.0, 0.0)
    # pinned values: a change to the generator must be deliberate
    assert first[0][0] == pytest.approx(
        special.betaincinv(2.0, 3.0, beta.rng.uniforms(7, beta.rng.STREAM_BETA_DRAWS, 1)[0]))


def test_cap_removes_upside_only():
    plain = np.array(call("NPL_BETA_DRAWS", 0.4, 0.2, 1000.0, 3.0)).ravel()
    capped = np.array(call("NPL_BETA_DRAWS", 0.4, 0.2, 1000.0, 3.0, True)).ravel()
    np.testing.assert_array_equal(capped, np.minimum(plain, 0.4))
    assert (plain > 0.4).any() and capped.max() == 0.4
