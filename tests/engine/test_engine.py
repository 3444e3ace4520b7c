"""The Monte Carlo engine: semi-analytic check, limiting cases, reference path, determinism."""

import math

import numba
import numpy as np
import pytest
from scipy import special, stats

from npl_xl.inputs.deal import parse_settings, parse_tranches
from npl_xl.engine import Pool, simulate_collections, simulate_deal
from npl_xl.engine.reference import reference_collections, reference_metrics
from npl_xl.engine.simulate import BLOCK_PATHS, mc_mean
from npl_xl.engine.waterfall import waterfall_paths

QUIET = {"tax_rate": 0, "servicer_fee_rate": 0, "fixed_expenses": 0, "reserve_multiple": 0,
         "timing_sd_months": 0, "timing_stress": 0}


def _homogeneous(n, mu, sd, months=12.0):
    return Pool.from_arrays(np.ones(n), np.full(n, mu), np.full(n, months), np.full(n, sd))


def _tranches(senior, sub, senior_coupon=0.0):
    return [["name", "kind", "balance", "coupon"], ["A", "senior", senior, senior_coupon],
            ["S", "subordinated", sub, 0.0]]


def _expected_shortfall(level, mean, sd):
    """E[(level - X)^+] for X ~ N(mean, sd^2)."""
    d = (level - mean) / sd
    return (level - mean) * special.ndtr(d) + sd * np.exp(-0.5 * d * d) / math.sqrt(2 * math.pi)


def _large_pool_el(n, mu, sd, rho, senior, sub):
    """Senior and sub EL of zero-coupon tranches paid from one date's pool collections S.

    Conditional on the systematic factor M, S is approximately normal with mean n m(M) and
    variance n v(M), m and v the mean and variance over eps of G(sqrt(rho) M + sqrt(1-rho) eps)
    (Gauss-Hermite over eps); the conditional expected shortfalls are closed-form and are
    integrated over M by Gauss-Hermite quadrature.
    """
    k = mu * (1 - mu) / sd ** 2 - 1
    a, b = mu * k, (1 - mu) * k
    x, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    z = math.sqrt(rho) * x[:, None] + math.sqrt(1 - rho) * x[None, :]
    g = special.betaincinv(a, b, special.ndtr(z))
    m = g @ w
    v = (g * g) @ w - m * m
    mean, sdev = n * m, np.sqrt(n * v)
    senior_loss = _expected_shortfall(senior, mean, sdev) / senior
    sub_loss = (_expected_shortfall(senior + sub, mean, sdev)
                - _expected_shortfall(senior, mean, sdev)) / sub
    return float(senior_loss @ w), float(sub_loss @ w)


def test_zero_coupon_pair_matches_large_pool_integral():
    n, mu, sd, rho = 2000, 0.4, 0.25, 0.15
    senior, sub = 0.75 * mu * n, 0.35 * mu * n
    result = simulate_deal(_homogeneous(n, mu, sd), _tranches(senior, sub),
                           {**QUIET, "rho": rho, "n_sims": 4000, "seed": 11})
    want_senior, want_sub = _large_pool_el(n, mu, sd, rho, senior, sub)
    table = result.tranche_table.set_index("name")
    assert abs(table.loc["A", "EL"] - want_senior) < 3 * table.loc["A", "el_stderr"] + 1e-4
    assert abs(table.loc["S", "EL"] - want_sub) < 3 * table.loc["S", "el_stderr"] + 1e-4
    assert 0.02 < want_senior < 0.3 and want_sub > want_senior  # a test that can fail


def test_rho_zero_pool_recovery_is_nearly_deterministic():
    n, mu, sd = 2000, 0.4, 0.25
    result = simulate_deal(_homogeneous(n, mu, sd), _tranches(100, 100),
                           {**QUIET, "rho": 0.0, "n_sims": 2000})
    rate = result.pool_collections / n
    assert rate.mean() == pytest.approx(mu, abs=3 * sd / math.sqrt(n * 2000) + 1e-6)
    # independent loans: sd of the pool rate = sd / sqrt(n)
    assert rate.std() == pytest.approx(sd / math.sqrt(n), rel=0.08)


def test_rho_one_pool_rate_is_the_beta_itself():
    n, mu, sd = 50, 0.4, 0.25
    result = simulate_deal(_homogeneous(n, mu, sd), _tranches(10, 10),
                           {**QUIET, "rho": 1.0, "n_sims": 4000})
    rate = result.pool_collections / n
    k = mu * (1 - mu) / sd ** 2 - 1
    ks = stats.kstest(rate, stats.beta(mu * k, (1 - mu) * k).cdf).statistic
    assert ks < 0.005  # stratified factor: far tighter than the 0.02 of iid sampling


def test_every_recovery_zero():
    pool = Pool.from_arrays(np.full(100, 5.0), np.zeros(100), np.full(100, 12.0), np.full(100, 0.2))
    result = simulate_deal(pool, _tranches(100, 50, 0.04), {"n_sims": 100})
    table = result.tranche_table
    assert np.all(table["EL"] == 1.0) and np.all(table["PD"] == 1.0)
    assert np.all(table["mean_irr"] == -1.0)
    assert np.all(result.pool_collections == 0.0)


def test_single_tranche_takes_the_whole_pool():
    rs = np.random.default_rng(5)
    n = 300
    claim = rs.uniform(1, 3, n)
    pool = Pool.from_arrays(claim, claim * rs.uniform(0.1, 0.8, n), rs.uniform(0, 50, n),
                            rs.uniform(0.05, 0.3, n))
    b0, c = 2.0 * claim.sum(), 0.05  # never repaid: every collection goes to the tranche
    result = simulate_deal(pool, [["name", "kind", "balance", "coupon"], ["A", "senior", b0, c]],
                           {**QUIET, "timing_sd_months": 3, "n_sims": 400})
    dates = result.period_months
    discount = np.cumprod(1.0 / (1.0 + c * np.diff(np.concatenate([[0.0], dates])) / 12.0))
    expected = 1.0 - result.path_collections @ discount / b0
    np.testing.assert_allclose(result.tranche_loss["A"], expected, rtol=0, atol=1e-12)


def _small_case(vr):
    rs = np.random.default_rng(3)
    n = 60
    claim = rs.lognormal(10, 1, n)
    mu = rs.uniform(0.0, 0.9, n)
    mu[:3] = 0.0
    sd = rs.uniform(0.02, 0.2, n)
    sd[5] = 0.0
    pool = Pool.from_arrays(claim, claim * mu, rs.uniform(0, 70, n), sd, rs.integers(0, 3, n))
    er = (claim * mu).sum()
    tranches = parse_tranches([["name", "kind", "balance", "coupon", "issue_price"],
                               ["A", "senior", 0.5 * er, 0.035, None],
                               ["B", "mezz", 0.15 * er, 0.06, None],
                               ["Sub", "次级", 0.2 * er, 0.01, 0.22 * er]])
    settings = parse_settings({"n_sims": 40, "region_weight": 0.5, "cap_at_expected": vr,
                               "variance_reduction": vr, "fixed_expenses": 1000,
                               "servicer_fee_rate": 0.01, "liquidity_limit": 5000,
                               "sub_return_rate": 0.05, "excess_fee_share": 0.2,
                               "initial_reserve": 2000, "timing_stress": 0.25})
    return pool, tranches, settings


@pytest.mark.parametrize("vr", [True, False])
def test_kernels_agree_with_scipy_reference(vr):
    pool, tranches, settings = _small_case(vr)
    fast = simulate_collections(pool, settings)
    slow = reference_collections(pool, settings)
    # tables are good to ~1e-6 of each claim; same Philox draws otherwise
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-5 * pool.claim.max())
    assert slow.sum() > 0
    forecast = fast.mean(axis=0)  # the issuance forecast both waterfalls see
    metrics = waterfall_paths(fast, tranches, settings, forecast=forecast)
    for p in range(fast.shape[0]):
        ref = reference_metrics(fast[p], tranches, settings, forecast=forecast)
        for key, values in ref.items():
            np.testing.assert_allclose(metrics[key][p], values, rtol=1e-9, atol=1e-12,
                                       equal_nan=True, err_msg=f"{key} on path {p}")


def _deal():
    rs = np.random.default_rng(8)
    n = 400
    claim = rs.uniform(1, 5, n)
    pool = Pool.from_arrays(claim, claim * rs.uniform(0.1, 0.7, n), rs.uniform(3, 48, n),
                            rs.uniform(0.05, 0.3, n), rs.integers(0, 4, n))
    er = pool.expected_recovery.sum()
    tranches = [["name", "kind", "balance", "coupon"], ["A", "senior", 0.55 * er, 0.04],
                ["Sub", "subordinated", 0.3 * er, 0.0]]
    return pool, tranches


def test_same_seed_same_numbers_with_one_or_two_threads():
    pool, tranches = _deal()
    settings = {"n_sims": 2 * BLOCK_PATHS + 100, "region_weight": 0.5, "seed": 3}
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = simulate_deal(pool, tranches, settings)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = simulate_deal(pool, tranches, settings)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one.path_collections, two.path_collections)
    assert one.tranche_table.equals(two.tranche_table)


@pytest.mark.parametrize("vr", [True, False])
def test_blocks_in_any_order_give_the_same_paths(vr):
    pool, _ = _deal()
    settings = parse_settings({"n_sims": 3 * BLOCK_PATHS + 36, "variance_reduction": vr})
    forward = simulate_collections(pool, settings)
    backward = simulate_collections(pool, settings, block_order=[3, 1, 0, 2])
    assert np.array_equal(forward, backward)


def test_different_seeds_differ_and_progress_is_reported():
    pool, tranches = _deal()
    calls = []
    a = simulate_deal(pool, tranches, {"n_sims": 3000}, seed=1,
                      progress=lambda done, total: calls.append((done, total)))
    b = simulate_deal(pool, tranches, {"n_sims": 3000}, seed=2)
    assert not np.array_equal(a.pool_collections, b.pool_collections)
    assert calls[-1] == (3000, 3000) and len(calls) == 2


def test_mc_mean_standard_error_is_right_for_the_design():
    # Repeat a small deal over seeds: the spread of the estimates matches the reported SE.
    pool, tranches = _deal()
    for vr in (True, False):
        estimates, errors = [], []
        for seed in range(30):
            r = simulate_deal(pool, tranches, {"n_sims": 400, "variance_reduction": vr}, seed=seed)
            estimates.append(r.tranche_table.loc[1, "EL"])
            errors.append(r.tranche_table.loc[1, "el_stderr"])
        ratio = np.std(estimates, ddof=1) / np.mean(errors)
        # collapsed strata overstate a little; never understate much (30 seeds: +-26% noise)
        assert 0.55 < ratio < 1.3, (vr, ratio)


def test_mc_mean_formulas():
    x = np.array([1.0, 3.0, 2.0, 2.0, 5.0, 1.0, 0.0, 4.0])
    mean, se = mc_mean(x, antithetic=True)
    # pairs 2, 2, 3, 2; collapsed strata (2-2)^2 + (3-2)^2 = 1 over Q^2 = 16
    assert mean == 2.25 and se == pytest.approx(0.25)
    mean, se = mc_mean(x, antithetic=False)
    assert se == pytest.approx(np.std(x, ddof=1) / math.sqrt(8))


def test_timing_stress_and_legal_final():
    # every loan expected at month 58 with a 60-month legal final: stressed paths lose it
    pool = Pool.from_arrays(np.ones(200), np.full(200, 0.5), np.full(200, 58.0), np.full(200, 0.1))
    base = simulate_deal(pool, _tranches(50, 50), {**QUIET, "n_sims": 400})
    stressed = simulate_deal(pool, _tranches(50, 50), {**QUIET, "timing_stress": 0.25, "n_sims": 400})
    assert np.all(base.pool_collections > 0)
    lost = stressed.pool_collections == 0
    # exp(0.25 max(0, -M)) * 58 > 60 iff M < -4 log(60/58) = -0.1356: P = 0.446
    assert lost.mean() == pytest.approx(special.ndtr(-4 * math.log(60 / 58)), abs=0.01)


def test_timing_sd_zero_with_default_settings_gives_deterministic_dates():
    # FUNCTIONS.md: timing_sd_months 0 makes dates deterministic. Every loan is expected at
    # month 58, legal final 60, payments every 6 months: all of it is collected on the month
    # 60 date (period 10) on every path, whatever the systematic factor (timing_stress is an
    # opt-in stress with default 0)
    pool = Pool.from_arrays(np.ones(200), np.full(200, 0.5), np.full(200, 58.0), np.full(200, 0.1))
    settings = parse_settings({"timing_sd_months": 0, "n_sims": 400})
    coll = simulate_collections(pool, settings)
    assert np.all(coll[:, :9] == 0.0) and np.all(coll[:, 9] > 0.0)
    np.testing.assert_allclose(coll, reference_collections(pool, settings), rtol=0, atol=1e-5)
    assert settings.timing_stress == 0.0


def test_cap_at_expected_never_beats_expected():
    pool = _homogeneous(100, 0.4, 0.2)
    r = simulate_deal(pool, _tranches(10, 10), {**QUIET, "cap_at_expected": True, "n_sims": 200})
    assert r.pool_collections.max() <= 0.4 * 100 + 1e-9
    assert r.pool_collections.mean() < 0.4 * 100 - 1.0


def test_a_subordinated_tranche_is_never_rated_and_yield_is_on_the_coupons_basis():
    # the review's case: a sub issued at 108 % with a 0 coupon showed EL 0 and rated Aa2;
    # it is not rated ("NR") whatever its figures
    pool, _ = _deal()
    er = pool.expected_recovery.sum()
    tranches = [["name", "kind", "balance", "coupon", "issue_price"],
                ["A", "senior", 0.2 * er, 0.0348, None],
                ["Sub", "subordinated", 0.1 * er, None, 0.108 * er]]
    result = simulate_deal(pool, tranches, {**QUIET, "n_sims": 400, "sub_return_rate": 0.05})
    table = result.tranche_table.set_index("name")
    assert table.loc["Sub", "rating"] == "NR"
    assert table.loc["A", "rating"] != "NR"
    # a small senior (20 % of expected recovery) is repaid in full on every path: its IRR
    # is effective annual, 1.0174^2 - 1 = 3.5103 %, and its yield at the coupon's half-
    # yearly compounding is the coupon, 3.48 %
    assert table.loc["A", "PD"] == 0.0
    assert table.loc["A", "mean_irr"] == pytest.approx(1.0174 ** 2 - 1, abs=1e-10)
    assert table.loc["A", "yield_at_coupon_basis"] == pytest.approx(0.0348, abs=1e-10)
