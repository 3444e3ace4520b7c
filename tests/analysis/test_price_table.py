"""NPL_PRICE_TABLE: the median IRR at NPL_BID_PRICE's price, moic and p_loss by numpy."""

import numpy as np
import pytest

from npl_xl.analysis.price_table import price_table
from npl_xl.analysis.pricing import bid_collections, bid_price
from npl_xl.engine import Pool
from npl_xl.sheet.registry import load_all


def pool():
    rs = np.random.default_rng(7)
    n = 400
    claim = rs.uniform(1, 4, n)
    return Pool.from_arrays(claim, claim * rs.uniform(0.2, 0.6, n), rs.uniform(6, 60, n),
                            rs.uniform(0.1, 0.3, n))


SETTINGS = {"n_sims": 4000, "servicer_fee_rate": 0.05, "seed": 5}


@pytest.mark.parametrize("target", [0.08, 0.15])
def test_median_irr_at_the_bid_price_is_the_target(target):
    p = pool()
    price = bid_price(p, target, 0.5, SETTINGS).price
    table = price_table(p, [price], SETTINGS, stderr=True)
    row = table.iloc[0]
    assert abs(row["irr_p50"] - target) <= 3 * row["irr_p50_stderr"] + 1e-12
    assert row["irr_p50"] == pytest.approx(target, abs=2e-3)


def test_moic_and_p_loss_against_numpy():
    p = pool()
    prices = [200.0, 300.0, 400.0]
    table = price_table(p, prices, SETTINGS)
    assert table.columns.tolist() == ["price", "price_to_claim", "mean_irr", "irr_p10",
                                      "irr_p50", "irr_p90", "moic", "p_loss"]
    cash = bid_collections(p, SETTINGS).cash
    total = cash.sum(axis=1)
    for k, price in enumerate(prices):
        assert table["moic"].iloc[k] == pytest.approx(np.mean(total / price), rel=1e-12)
        assert table["p_loss"].iloc[k] == np.mean(total < price)
        assert table["price_to_claim"].iloc[k] == pytest.approx(price / p.total_claim)
    # a dearer package: lower IRRs, lower multiple, likelier loss
    assert table["irr_p50"].is_monotonic_decreasing and table["moic"].is_monotonic_decreasing
    assert table["p_loss"].is_monotonic_increasing
    assert (table["irr_p10"] <= table["irr_p50"]).all() and (table["irr_p50"] <= table["irr_p90"]).all()


def test_through_the_registry():
    tape = [["loan_id", "province", "claim", "collateral_type", "expected_recovery",
             "expected_months", "recovery_sd"]] + [
        [f"L{i}", "江苏", 100.0, "none", 40.0, 6.0 + i, 0.2] for i in range(20)]
    f = load_all()["NPL_PRICE_TABLE"]
    out = f(tape, [[500.0], [700.0]], None, 400)
    assert out[0][:3] == ["price", "price_to_claim", "mean_irr"] and len(out) == 3
    assert out[1][0] == 500.0 and out[1][1] == pytest.approx(0.25)
    assert f(tape, [[-1.0]]).code == "#NUM!" and "prices" in f(tape, [[-1.0]]).message
    assert len(f(tape, [[500.0]], None, 400, None, None, True)[0]) == 14
