"""NPL_TRANCHE_SIZE against a semi-analytic large-pool answer, and the rating at the size found.

The independent answer: a large homogeneous pool whose loans all recover at month 12
(timing sd 0). Conditional on the national factor M the pool's collection is, by the law
of large numbers, N x claim x E[R | M] with

    E[R | M] = integral G(sqrt(rho) M + sqrt(1 - rho) e) phi(e) de,   G = F^-1_Beta o Phi,

computed here with scipy's exact Beta quantile (not the kernel's tables) and Gauss-Hermite
quadrature in e; the senior's loss given M is the waterfall's on that one collection
vector, and EL(B) = integral loss(B | M) phi(M) dM by Gauss-Hermite quadrature in M. The
balance where EL(B) meets the idealized EL at the senior's WAL (1 year: all principal is
paid at month 12) is found by bisection on this smooth function.
"""

import numpy as np
import pytest
from scipy import optimize, special

from npl_xl.analysis.sizing import size_from_collections, tranche_size, with_balance
from npl_xl.engine import Pool, simulate_collections, simulate_deal
from npl_xl.engine.waterfall import waterfall_paths
from npl_xl.errors import DomainError, UnknownCodeError
from npl_xl.inputs.deal import parse_settings, parse_tranches
from npl_xl.model.rating import RATINGS, idealized_el, rating_from_el
from npl_xl.sheet.registry import load_all

N_LOANS = 10_000
CLAIM = 100.0
MEAN, SD = 0.40, 0.20
RHO = 0.15
SETTINGS = {"n_sims": 8000, "seed": 3, "rho": RHO, "timing_sd_months": 0,
            "timing_stress": 0, "tax_rate": 0, "reserve_multiple": 0, "payment_months": 6,
            "legal_final_months": 36}
TRANCHES = [["name", "kind", "balance", "coupon"],
            ["A", "senior", 300_000.0, 0.03],
            ["Sub", "subordinated", 100_000.0, 0.0]]


def homogeneous_pool(n=N_LOANS):
    return Pool.from_arrays(np.full(n, CLAIM), np.full(n, CLAIM * MEAN), np.full(n, 12.0),
                            np.full(n, SD))


def large_pool_el(balance, settings, tranches, nodes=96):
    """Semi-analytic senior EL and WAL (module docstring)."""
    a = MEAN * (MEAN * (1 - MEAN) / SD ** 2 - 1)
    b = (1 - MEAN) * (MEAN * (1 - MEAN) / SD ** 2 - 1)
    x, w = np.polynomial.hermite_e.hermegauss(nodes)  # probabilists' Hermite: weight phi
    w = w / w.sum()
    z = np.sqrt(RHO) * x[:, None] + np.sqrt(1 - RHO) * x[None, :]
    cond_mean = special.betaincinv(a, b, special.ndtr(z)) @ w  # E[R | M = x_k]
    coll = np.zeros((nodes, settings.n_periods))
    coll[:, 1] = N_LOANS * CLAIM * cond_mean  # month 12 = the second payment date
    candidate = with_balance(tranches, 0, balance)
    metrics = waterfall_paths(coll, candidate, settings)
    return float(metrics["loss"][:, 0] @ w), float(np.nanmean(metrics["wal"][:, 0]))


def semi_analytic_size(rating, settings, tranches):
    def g(balance):
        el, wal = large_pool_el(balance, settings, tranches)
        return el - idealized_el(rating, wal)
    return optimize.brentq(g, 1e5, 4e5, xtol=1.0), g


@pytest.fixture(scope="module")
def deal():
    settings = parse_settings(SETTINGS)
    tranches = parse_tranches(TRANCHES)
    pool = homogeneous_pool()
    return pool, tranches, settings, simulate_collections(pool, settings)


def test_size_agrees_with_the_large_pool_answer(deal):
    pool, tranches, settings, coll = deal
    result = size_from_collections(coll, tranches, ["Baa2", "Ba2"], None, settings,
                                   float(pool.expected_recovery.sum()))
    for _, row in result.table.iterrows():
        exact, g = semi_analytic_size(row["target_rating"], settings, tranches)
        # the tolerance: the Monte Carlo error of the EL at the root, turned into balance by
        # the slope of EL - threshold in the balance (from the semi-analytic curve), 4 s.e.;
        # plus the finite pool: 10,000 loans leave an idiosyncratic relative sd of the
        # collection of sd(R|M) / (E[R|M] sqrt(N)) ~ 0.5 / 100 = 0.5 %, whose effect on
        # the root is second order (convexity of the loss): 0.2 % of the balance allowed
        slope = (g(exact * 1.01) - g(exact * 0.99)) / (0.02 * exact)
        tolerance = 4 * row["el_stderr"] / slope + 0.002 * exact
        assert abs(row["balance"] - exact) <= tolerance, (row["target_rating"], row["balance"], exact, tolerance)
        assert row["WAL"] == pytest.approx(1.0)
        assert row["share_of_expected_recovery"] == pytest.approx(row["balance"] / (N_LOANS * CLAIM * MEAN))
    assert result.table["balance"].is_monotonic_increasing  # lower rating, larger senior


def test_found_balance_rates_the_target_and_one_percent_more_does_not():
    pool = homogeneous_pool(1000)
    settings = parse_settings({**SETTINGS, "n_sims": 2000, "timing_sd_months": 3})
    tranches = parse_tranches([TRANCHES[0], ["A", "senior", 30_000.0, 0.03],
                               ["Sub", "subordinated", 10_000.0, 0.0]])
    result = tranche_size(pool, tranches, ["Baa2", "Ba2"], None, settings)
    for _, row in result.table.iterrows():
        at = simulate_deal(pool, with_balance(tranches, 0, row["balance"]), settings).tranche_table.iloc[0]
        # NPL_TRANCHE_EL at the balance found gives the EL and WAL reported, exactly
        assert at["EL"] == row["EL"] and at["WAL"] == row["WAL"]
        assert RATINGS.index(at["rating"]) <= RATINGS.index(row["target_rating"])
        more = simulate_deal(pool, with_balance(tranches, 0, 1.01 * row["balance"]),
                             settings).tranche_table.iloc[0]
        assert RATINGS.index(more["rating"]) > RATINGS.index(row["target_rating"])
        # found to 0.01 %: 1.0001 x the balance no longer rates the target
        edge = simulate_deal(pool, with_balance(tranches, 0, 1.0001 * row["balance"]),
                             settings).tranche_table.iloc[0]
        assert RATINGS.index(edge["rating"]) > RATINGS.index(row["target_rating"])
        assert edge["rating"] == rating_from_el(edge["EL"], edge["WAL"])


def test_no_positive_balance_and_bad_ratings():
    # a pool that recovers nothing: no balance reaches any rating
    n = 20
    pool = Pool.from_arrays(np.full(n, 1.0), np.zeros(n), np.full(n, 6.0), np.zeros(n))
    with pytest.raises(DomainError, match="zero on every path"):
        tranche_size(pool, TRANCHES, "Aaa", None, {"n_sims": 8})
    with pytest.raises(UnknownCodeError, match="unknown rating"):
        tranche_size(homogeneous_pool(20), TRANCHES, "AAA+", None, {"n_sims": 8})
    with pytest.raises(UnknownCodeError, match="no tranche named"):
        tranche_size(homogeneous_pool(20), TRANCHES, "Aaa", "Class Z", {"n_sims": 8})


def test_through_the_registry():
    tape = [["loan_id", "province", "claim", "collateral_type", "expected_recovery",
             "expected_months", "recovery_sd"]] + [
        [f"L{i}", "江苏", 100.0, "none", 40.0, 6.0 + i, 0.2] for i in range(40)]
    tranches = [["name", "kind", "balance", "coupon"], ["Senior", "senior", 800.0, 0.03],
                ["Sub", "subordinated", 400.0, None]]
    f = load_all()["NPL_TRANCHE_SIZE"]
    out = f(tape, tranches, [["baa2"], ["B2"]], None, None, 400)
    assert [r[0] for r in out] == ["target_rating", "Baa2", "B2"]
    assert out[0] == ["target_rating", "balance", "share_of_expected_recovery", "EL", "WAL"]
    assert 0 < out[1][1] < out[2][1] and out[1][2] == pytest.approx(out[1][1] / 1600.0)
    assert f(tape, tranches, "AAA+").code == "#N/A"
    # a first loan that may recover nothing by the first payment date: the senior's first
    # interest can be deferred on some path, a PV loss no Aaa tranche may have at any size
    aaa = f(tape, tranches, "Aaa", None, None, 400)
    assert aaa.code == "#NUM!" and "no positive balance" in aaa.message
