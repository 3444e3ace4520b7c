"""Standard errors beside every simulated figure, checked against the spread over seeds.

A reported standard error is right when it matches how much the figure moves from one seed
to the next. For each figure we run the same deal under many seeds and compare the standard
deviation of the estimates with the mean reported standard error.
"""

from __future__ import annotations

import numpy as np
import pytest

from npl_xl.analysis import pricing
from npl_xl.engine import Pool, simulate_deal
from npl_xl.sheet.registry import load_all

R = load_all()
SEEDS = range(30)


def small_pool(n=60, seed=4):
    rs = np.random.default_rng(seed)
    claim = rs.uniform(1e6, 5e6, n)
    rate = rs.uniform(0.2, 0.6, n)
    return Pool.from_arrays(claim, claim * rate, rs.uniform(6, 40, n), np.full(n, 0.2),
                            rs.integers(1, 6, n))


POOL = small_pool()
EXPECTED = POOL.expected_recovery.sum()
TRANCHES = [["name", "kind", "balance", "coupon"],
            ["Senior", "senior", 0.6 * EXPECTED, 0.04],
            ["Sub", "subordinated", 0.3 * EXPECTED, 0.10]]
SETTINGS = [["key", "value"], ["rho", 0.3], ["initial_reserve", 0.02 * EXPECTED]]


def ratio(estimates, reported):
    """sd of the estimates over seeds / mean reported standard error."""
    return np.std(estimates, ddof=1) / np.mean(reported)


def test_bid_price_and_irr_standard_errors_match_the_spread_over_seeds():
    results = [pricing.bid_price(POOL, 0.12, 0.75, SETTINGS, n_sims=400, seed=s) for s in SEEDS]
    prices = [r.price for r in results]
    assert 0.5 < ratio(prices, [r.price_stderr for r in results]) < 2.0
    irrs = [r.irr_at_price_mean for r in results]
    assert 0.4 < ratio(irrs, [r.irr_stderr for r in results]) < 2.5


def test_tranche_standard_errors_match_the_spread_over_seeds():
    tables = [simulate_deal(POOL, TRANCHES, SETTINGS, n_sims=400, seed=s).tranche_table
              for s in SEEDS]
    for row in range(2):
        for figure in ("EL", "PD", "WAL", "mean_irr"):
            column = {"mean_irr": "irr"}.get(figure, figure.lower())
            estimates = [t.loc[row, figure] for t in tables]
            reported = [t.loc[row, f"{column}_stderr"] for t in tables]
            if np.std(estimates) == 0:  # e.g. a senior never losing: nothing to estimate
                continue
            # the collapsed-strata estimator is conservative: it may overstate, not understate
            assert 0.3 < ratio(estimates, reported) < 1.6, (row, figure)


def test_optional_stderr_outputs_extend_the_contract_shapes():
    tape = [["loan_id", "province", "claim", "collateral_type", "collateral_value"],
            ["L1", "ZJ", 2e6, "residential", 3e6], ["L2", "JS", 7e5, "none", None],
            ["L3", "SD", 6e6, "industrial", 5e6], ["L4", "FJ", 8e6, "residential", 9e6]]
    tranches = [["name", "kind", "balance", "coupon"], ["Senior", "senior", 4e6, 0.035],
                ["Sub", "subordinated", 2e6, 0.0]]
    plain = R["NPL_TRANCHE_EL"](tape, tranches, None, 200.0, 1.0)
    wide = R["NPL_TRANCHE_EL"](tape, tranches, None, 200.0, 1.0, None, True)
    assert wide[0] == plain[0] + ["pd_stderr", "wal_stderr", "irr_stderr"]
    assert [row[:7] for row in wide] == plain
    bid = R["NPL_BID_PRICE"](tape, 0.1, None, None, 200.0, 1.0)
    bid_se = R["NPL_BID_PRICE"](tape, 0.1, None, None, 200.0, 1.0, None, True)
    assert len(bid) == 1 and bid_se[0] == bid[0] and len(bid_se) == 2
    price, ratio_to_claim, _ = bid[0]
    se_price, se_ratio, se_irr = bid_se[1]
    assert se_price > 0 and se_irr > 0
    assert se_ratio == pytest.approx(se_price * ratio_to_claim / price)
