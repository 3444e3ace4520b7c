"""NPL_BID_PRICE: the quantile price and the IRR it implies."""

import numpy as np
import pytest
from scipy import special

from npl_xl.engine import Pool, simulate_collections
from npl_xl.inputs.deal import parse_settings
from npl_xl.engine.waterfall import irr_paths
from npl_xl.errors import DomainError
from npl_xl.analysis.pricing import bid_price
from npl_xl.sheet.registry import load_all

REGISTRY = load_all()


def _pool():
    rs = np.random.default_rng(2)
    n = 300
    claim = rs.uniform(1, 4, n)
    return Pool.from_arrays(claim, claim * rs.uniform(0.2, 0.6, n), rs.uniform(6, 40, n),
                            rs.uniform(0.1, 0.25, n))


def test_deterministic_pool_price_is_the_pv_at_the_target():
    # no randomness: every loan recovers 0.5 at month 12 -> price = 0.5 claim / 1.12
    n = 10
    pool = Pool.from_arrays(np.full(n, 2.0), np.full(n, 1.0), np.full(n, 12.0), np.zeros(n))
    s = {"timing_sd_months": 0, "timing_stress": 0, "n_sims": 8, "servicer_fee_rate": 0.1}
    r = bid_price(pool, 0.12, 0.9, s)
    assert r.price == pytest.approx(0.9 * 10.0 / 1.12)  # 10% servicing deducted
    assert r.price_to_claim == pytest.approx(r.price / 20.0)
    assert r.irr_at_price_mean == pytest.approx(0.12)
    r = bid_price(pool, 0.12, 0.9, {**s, "bid_net_of_servicing": False})
    assert r.price == pytest.approx(10.0 / 1.12)


def test_confidence_is_the_share_of_paths_reaching_the_target():
    pool = _pool()
    settings = parse_settings({"n_sims": 2000, "servicer_fee_rate": 0.05})
    for confidence in (0.5, 0.8):
        r = bid_price(pool, 0.15, confidence, settings)
        coll = simulate_collections(pool, settings) * 0.95
        irr = irr_paths(coll, settings.period_dates, r.price)
        assert np.mean(irr >= 0.15 - 1e-12) == pytest.approx(confidence, abs=1.5 / 2000)
    # higher confidence, lower price
    assert bid_price(pool, 0.15, 0.9, settings).price < bid_price(pool, 0.15, 0.5, settings).price


def test_bid_price_through_the_registry():
    tape = [["loan_id", "province", "claim", "collateral_type", "expected_recovery",
             "expected_months", "recovery_sd"]] + [
        [f"L{i}", "江苏", 100.0, "none", 40.0, 6.0 + i, 0.2] for i in range(20)]
    out = REGISTRY["NPL_BID_PRICE"](tape, 0.12, None, None, 400.0)
    assert len(out) == 1 and len(out[0]) == 3
    price, ratio, irr = out[0]
    assert 0 < price < 800 and ratio == pytest.approx(price / 2000.0) and irr > 0.0
    assert REGISTRY["NPL_BID_PRICE"](tape, 0.12, 1.0).code == "#NUM!"
    assert "confidence" in REGISTRY["NPL_BID_PRICE"](tape, 0.12, 1.0).message


def test_a_package_buyer_keeps_recoveries_after_the_abs_legal_final():
    # One loan, 40 recovered for sure, expected at month 52; the timing stress 0.25 makes a
    # path's date T = 52 exp(0.25 max(0, -M)), paid on the next 6-month date d = 6 ceil(T/6).
    # The ABS legal final (60) is not the buyer's: bid_horizon_months (default 240) is.
    pool = Pool.from_arrays([100.0], [40.0], [52.0], [0.0])
    s = {"timing_sd_months": 0, "timing_stress": 0.25, "n_sims": 4000, "legal_final_months": 60,
         "bid_with_stresses": True}
    r = bid_price(pool, 0.10, 0.75, s)
    # P(IRR >= 10%) = 0.75: the 25% quantile of PV; M_0.25 = -0.6745 -> T = 52 e^0.1686 =
    # 61.55 -> paid at month 66 -> price 40 / 1.1^5.5 = 23.676
    assert r.price == pytest.approx(40 / 1.1 ** 5.5)
    # mean IRR at that price over the dates: P(d) from the normal M; (40/price)^(12/d) - 1
    # P(T <= t) = P(M >= -4 ln(t/52)) = Phi(4 ln(t/52)) for t >= 52 (0.5 at T = 52: M >= 0)
    edges = np.arange(48.0, 246.0, 6.0)  # T in (d - 6, d] is paid at d
    cdf = np.where(edges >= 52.0, special.ndtr(4 * np.log(np.maximum(edges, 52.0) / 52.0)), 0.0)
    want = np.diff(cdf) @ ((40 / r.price) ** (12 / edges[1:]) - 1)
    assert r.irr_at_price_mean == pytest.approx(want, abs=2e-3)
    assert 0.08 < want < 0.12
    # cut at the 60-month legal final, 28.4% of paths (M < -4 ln(60/52) = -0.5724) get
    # nothing: the 25% quantile of PV is 0
    with pytest.raises(DomainError, match="worth nothing"):
        bid_price(pool, 0.10, 0.75, {**s, "bid_horizon_months": 60})
    short = bid_price(pool, 0.10, 0.5, {**s, "bid_horizon_months": 60})
    assert short.irr_at_price_mean < 0.0 < bid_price(pool, 0.10, 0.5, s).irr_at_price_mean


def test_bid_horizon_must_cover_a_payment_period():
    with pytest.raises(DomainError, match="bid_horizon_months"):
        parse_settings({"bid_horizon_months": 3, "payment_months": 6})
    assert parse_settings(None).bid_horizon_months == 240.0


def test_the_bid_is_unstressed_unless_bid_with_stresses():
    # the same loan: 40 for sure at month 52, paid at month 54. The rating stresses
    # (timing_stress, cap_at_expected) are off for the buyer by default, so every path is
    # paid at 54 and the price is 40 / 1.1^4.5 at any confidence
    pool = Pool.from_arrays([100.0], [40.0], [52.0], [0.0])
    s = {"timing_sd_months": 0, "timing_stress": 0.25, "cap_at_expected": True, "n_sims": 400}
    for confidence in (0.25, 0.5, 0.9):
        assert bid_price(pool, 0.10, confidence, s).price == pytest.approx(40 / 1.1 ** 4.5)
    # with bid_with_stresses the 75 % confidence price is the stressed one (month 66)
    stressed = bid_price(pool, 0.10, 0.75, {**s, "n_sims": 4000, "bid_with_stresses": True})
    assert stressed.price == pytest.approx(40 / 1.1 ** 5.5)


def test_price_to_principal_when_the_tape_has_a_principal_column():
    # 20 loans, each principal 70 + interest 30 = claim 100, recovering 40 (sd 0) at month 12
    # (timing sd 0): every path pays 20 x 40 = 800 less the 10 % servicer fee = 720 at month
    # 12, so at a 12 % target the price is 720 / 1.12 = 642.857142...;
    # price_to_claim = 642.857... / 2,000 = 0.3214285...;
    # price_to_principal = 642.857... / (20 x 70 = 1,400) = 0.4591836... (本金折扣率 0.408...)
    tape = [["loan_id", "province", "principal", "interest", "collateral_type",
             "expected_recovery", "expected_months", "recovery_sd"]] + [
        [f"L{i}", "江苏", 70.0, 30.0, "none", 40.0, 12.0, 0.0] for i in range(20)]
    settings = [["key", "value"], ["timing_sd_months", 0], ["servicer_fee_rate", 0.1]]
    out = REGISTRY["NPL_BID_PRICE"](tape, 0.12, None, settings, 40.0, None, None, True)
    assert len(out) == 2 and len(out[0]) == 4 and len(out[1]) == 4
    price, to_claim, irr, to_principal = out[0]
    assert price == pytest.approx(720.0 / 1.12, rel=1e-12)
    assert to_claim == pytest.approx(720.0 / 1.12 / 2_000.0, rel=1e-12)
    assert to_principal == pytest.approx(720.0 / 1.12 / 1_400.0, rel=1e-12)
    assert irr == pytest.approx(0.12, abs=1e-12)
    # standard errors in the same units: price's over principal (0 here: every path alike)
    assert out[1][3] == pytest.approx(out[1][0] / 1_400.0, abs=1e-12)
    # one loan without a principal (its claim given): the ratio is unknown, so 1x3
    partial = [tape[0] + ["claim"]] + [r + [100.0] for r in tape[1:]]
    partial[5][2] = partial[5][3] = None
    out = REGISTRY["NPL_BID_PRICE"](partial, 0.12, None, settings, 40.0)
    assert len(out) == 1 and len(out[0]) == 3
    assert out[0][0] == pytest.approx(720.0 / 1.12, rel=1e-12)
