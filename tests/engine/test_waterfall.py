"""The deterministic waterfall checked by hand, and NPL_WATERFALL through the registry."""

import numpy as np
import pytest

from npl_xl.inputs.deal import parse_settings, parse_tranches
from npl_xl.engine.waterfall import deterministic_waterfall, waterfall_paths
from npl_xl.sheet.registry import load_all

REGISTRY = load_all()


def _frame(collections, tranches, settings, **options):
    flows, columns, missed, arrears = deterministic_waterfall(
        np.array(collections, float), parse_tranches(tranches), parse_settings(settings),
        **options)
    return {c: flows[:, i] for i, c in enumerate(columns)}, missed, arrears


THREE = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.10],
         ["B", "mezzanine", 20.0, 0.12], ["S", "subordinated", 30.0, 0.0]]
FEES = {"payment_months": 6, "legal_final_months": 18, "tax_rate": 0.05, "fixed_expenses": 1.0,
        "servicer_fee_rate": 0.02, "reserve_multiple": 2.0, "sub_return_rate": 0.10,
        "excess_fee_share": 0.2}


def test_fees_reserve_and_priority_by_hand():
    f, missed, arrears = _frame([40.0, 80.0, 60.0], THREE, FEES)
    # the forecast is the collections themselves (no forecast given): F = 40, 80, 60
    # period 1, C = 40: tax 2, fixed 1, servicer 0.8 -> 36.2; A interest 100*0.10*0.5 = 5 -> 31.2
    # reserve target on A's balance b after this period's principal:
    #   2 x ((0.05+0.02) x F2 80 + fixed 1) + 2 x 0.5 x 0.10 x b = 13.2 + 0.1 b
    # cash + reserve 31.2 = principal x + target(100 - x) = x + 13.2 + 10 - 0.1 x
    #   -> x = 8/0.9 = 8.888889, b = 91.111111, reserve 13.2 + 9.111111 = 22.311111
    # period 2, C = 80: fees 4 + 1 + 1.6 -> 73.4; A interest 91.111111 x 0.05 = 4.555556
    #   -> 68.844444 + reserve 22.311111 = 91.155556 >= A's 91.111111: A is repaid in full
    #   and the reserve released (target 0); 0.044444 left: B interest due 1.2 (period 1,
    #   deferred) + 1.2 = 2.4, paid 0.044444, 2.355556 deferred
    # period 3 (last), C = 60: fees 3 + 1 + 1.2 -> 54.8; B interest 1.2 + 2.355556 =
    # 3.555556 -> 51.244444; B principal 20 -> 31.244444; S principal 30 -> 1.244444;
    # S return due 1.5 x 3 = 4.5, paid 1.244444, 3.255556 unpaid; no excess fee or residual
    np.testing.assert_allclose(f["taxes"], [2.0, 4.0, 3.0])
    np.testing.assert_allclose(f["fixed_expenses"], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(f["servicer_fee"], [0.8, 1.6, 1.2])
    np.testing.assert_allclose(f["A_interest"], [5.0, 4.555556, 0.0], rtol=1e-6)
    np.testing.assert_allclose(f["A_principal"], [8.888889, 91.111111, 0.0], rtol=1e-6)
    np.testing.assert_allclose(f["reserve_balance"], [22.311111, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(f["reserve_target"], [22.311111, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(f["B_interest"], [0.0, 0.4 / 9, 3.6 - 0.4 / 9])
    np.testing.assert_allclose(f["B_principal"], [0.0, 0.0, 20.0])
    np.testing.assert_allclose(f["S_principal"], [0.0, 0.0, 30.0])
    np.testing.assert_allclose(f["S_interest"], [0.0, 0.0, 1.244444], rtol=1e-6)
    np.testing.assert_allclose(f["residual"] + f["excess_servicing_fee"], 0.0, atol=1e-12)
    np.testing.assert_allclose(arrears, [0.0, 0.0, 3.255556], rtol=1e-6)
    # no senior shortfall, so no EoD; but B's interest (1.2 due in period 1, paid 0)
    # and S's fixed return (1.244 of 4.5 in period 3) were missed: both count for the PD
    assert list(missed) == [0.0, 1.0, 1.0] and not f["event_of_default"].any()
    _assert_conserved(f, [40.0, 80.0, 60.0], "ABS")


def test_reserve_target_uses_the_forecast_not_this_periods_collections():
    # one senior A 100 at 10 %, reserve_multiple 1, fixed 2, servicer 5 %, no tax; the
    # forecast F = 50, 10, 50 differs from the collections C = 50, 80, 50
    tranches = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.10],
                ["S", "subordinated", 20.0, 0.0]]
    deal = {"legal_final_months": 18, "tax_rate": 0, "fixed_expenses": 2.0,
            "servicer_fee_rate": 0.05, "reserve_multiple": 1.0}
    f, _, _ = _frame([50.0, 80.0, 50.0], tranches, deal, forecast=[50.0, 10.0, 50.0])
    # period 1: fees 2 + 2.5 -> 45.5; A interest 5 -> 40.5 = x + target, target =
    #   1 x (0.05 x F2 10 + 2) + 1 x 0.5 x 0.10 x (100 - x) = 2.5 + 5 - 0.05 x
    #   -> 0.95 x = 33 -> x = 34.736842, A = 65.263158, target 2.5 + 3.263158 = 5.763158
    #   (the old rule, on this period's collections and A's balance before principal, was
    #   1 x (0.05 x 50 + 2 + 5) = 9.5)
    assert f["A_principal"][0] == pytest.approx(33 / 0.95)
    assert f["reserve_balance"][0] == pytest.approx(2.5 + 0.05 * (100 - 33 / 0.95))
    # period 2: fees 2 + 4 -> 74; A interest 3.263158 -> 70.736842 + reserve 5.763158 = 76.5
    # >= A's 65.263158: A is repaid in full and the reserve released (target 0):
    # S principal 20, residual 76.5 - 65.263158 - 20 = -8.76 < 0 -> S gets 11.236842
    assert f["A_principal"][1] == pytest.approx(100 - 33 / 0.95)
    assert f["reserve_balance"][1] == 0.0 and f["reserve_target"][1] == 0.0
    assert f["S_principal"][1] == pytest.approx(76.5 - (100 - 33 / 0.95))
    _assert_conserved(f, [50.0, 80.0, 50.0], "AS")


def test_excess_fee_and_residual_by_hand():
    f, _, _ = _frame([40.0, 80.0, 160.0], THREE, FEES, forecast=[40.0, 80.0, 60.0])
    # as above (same forecast, so periods 1-2 are identical) but period 3 brings 100 more,
    # 93 after taxes and servicer fee: the 1.244444 that was left before S's return, + 93,
    # - the whole S return 4.5 = 89.744444 remains, split 20% excess servicing fee, 80%
    # residual
    left = 40 + 80 - 0.07 * 120 - 2 - 5 - 4.5555556 - 100 - 0.0444444 + 0  # 0 after period 2
    assert left == pytest.approx(0.0, abs=1e-6)
    left = 160 * 0.93 - 1 - 3.5555556 - 20 - 30 - 4.5
    assert f["excess_servicing_fee"][2] == pytest.approx(0.2 * left, rel=1e-6)
    assert f["residual"][2] == pytest.approx(0.8 * left, rel=1e-6)


def _assert_conserved(f, coll, names, initial_reserve=0.0):
    """Every period: collections = every payment out + the change in the reserve."""
    paid = (f["taxes"] + f["fixed_expenses"] + f["servicer_fee"] + f["excess_servicing_fee"]
            + f["residual"] + f["liquidity_repayment"] + f["liquidity_interest"]
            - f["liquidity_draw"] + f["deferred_fee_paid"]
            + sum(f[f"{n}_interest"] + f[f"{n}_principal"] for n in names))
    reserve_change = np.diff(np.concatenate([[initial_reserve], f["reserve_balance"]]))
    np.testing.assert_allclose(paid + reserve_change, coll, atol=1e-8)


def test_cash_is_conserved():
    rs = np.random.default_rng(0)
    coll = rs.uniform(0, 60, 10)
    settings = {**FEES, "legal_final_months": 60, "liquidity_limit": 5.0, "initial_reserve": 7.0}
    f, _, _ = _frame(coll, THREE, settings)
    _assert_conserved(f, coll, "ABS", initial_reserve=7.0)


def test_liquidity_draws_and_event_of_default_by_hand():
    tranches = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.10],
                ["S", "subordinated", 10.0, 0.0]]
    settings = {"legal_final_months": 18, "tax_rate": 0, "fixed_expenses": 2.0,
                "reserve_multiple": 1.0, "liquidity_limit": 3.0}
    f, missed, arrears = _frame([1.0, 0.0, 200.0], tranches, settings)
    # period 1, C = 1: fixed 2 = 1 cash + 1 drawn; A interest 5: 2 drawn (limit 3 reached),
    # 3 unpaid -> event of default; no reserve after an EoD
    # period 2, C = 0: fixed 2 unpaid, A interest 5 + 3 unpaid, nothing drawn (limit used)
    # period 3, C = 200: fixed 2 + 2 = 4 -> 196; repay the facility 3 -> 193; A interest
    # 5 + 8 = 13 -> 180; A principal 100 -> 80; S principal 10; residual 70
    np.testing.assert_allclose(f["liquidity_draw"], [3.0, 0.0, 0.0])
    np.testing.assert_allclose(f["liquidity_balance"], [3.0, 3.0, 0.0])
    np.testing.assert_allclose(f["liquidity_repayment"], [0.0, 0.0, 3.0])
    np.testing.assert_allclose(f["fixed_expenses"], [2.0, 0.0, 4.0])
    np.testing.assert_allclose(f["A_interest"], [2.0, 0.0, 13.0])
    np.testing.assert_allclose(f["A_principal"], [0.0, 0.0, 100.0])
    np.testing.assert_allclose(f["S_principal"], [0.0, 0.0, 10.0])
    np.testing.assert_allclose(f["residual"], [0.0, 0.0, 70.0])
    np.testing.assert_allclose(f["event_of_default"], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(f["reserve_balance"], 0.0)
    assert missed[0] == 1.0 and arrears[0] == 0.0
    # the path figures: PV of A at 10% = 2/1.05 + 113/1.05^3 = 99.5180 -> loss 0.4820%
    m = waterfall_paths(np.array([[1.0, 0.0, 200.0]]), parse_tranches(tranches), parse_settings(settings))
    assert m["loss"][0, 0] == pytest.approx(1 - (2 / 1.05 + 113 / 1.05 ** 3) / 100)
    assert m["default"][0, 0] == 1.0  # an interest shortfall is a default even if later cured
    assert m["wal"][0, 0] == pytest.approx(1.5)
    assert m["loss"][0, 1] == 0.0 and m["default"][0, 1] == 0.0
    # S paid 80 at 1.5 years for 10: (1 + y)^1.5 = 8
    assert m["irr"][0, 1] == pytest.approx(8 ** (1 / 1.5) - 1)


def test_par_senior_paid_as_promised_has_irr_above_coupon_and_zero_loss():
    tranches = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.06]]
    settings = parse_settings({"legal_final_months": 12, "tax_rate": 0, "reserve_multiple": 0})
    m = waterfall_paths(np.array([[53.0, 60.0]]), parse_tranches(tranches), settings)
    # pays 3 + 50, then 1.5 + 50 (+ residual 8.5 stays outside: no subordinated tranche)
    assert m["loss"][0, 0] == pytest.approx(0.0, abs=1e-12)
    assert m["irr"][0, 0] == pytest.approx(1.03 ** 2 - 1)  # effective annual of 3% per half year
    assert m["wal"][0, 0] == pytest.approx(0.75)


def test_npl_waterfall_through_the_registry():
    out = REGISTRY["NPL_WATERFALL"]([[40.0], [80.0], [60.0]], THREE,
                                    [["key", "value"]] + [[k, v] for k, v in FEES.items()])
    header = out[0]
    assert header[:3] == ["period", "month", "collections"]
    assert "A_interest" in header and "reserve_balance" in header and "residual" in header
    assert len(out) == 4
    row = dict(zip(header, out[2]))
    assert row["month"] == 12.0 and row["A_interest"] == pytest.approx(91.111111 * 0.05)


def test_npl_waterfall_errors():
    bad = REGISTRY["NPL_WATERFALL"]([[1.0], [-2.0]], THREE)
    assert bad.code == "#NUM!" and "collections" in bad.message
    bad = REGISTRY["NPL_WATERFALL"]([[1.0]], [["name", "kind", "balance"], ["A", "senior", "x"]])
    assert bad.code == "#VALUE!" and "balance" in bad.message


def test_initial_reserve_covers_the_first_interest():
    tranches = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.10],
                ["S", "subordinated", 10.0, 0.0]]
    settings = {"legal_final_months": 12, "tax_rate": 0, "reserve_multiple": 1.0,
                "initial_reserve": 6.0}
    f, missed, _ = _frame([1.0, 120.0], tranches, settings)
    # period 1, C = 1: A interest 5 = 1 cash + 4 from the reserve (6 -> 2); target
    # 1 x 100 x 0.05 = 5: top-up from nothing; no shortfall, no EoD
    # period 2 (last): interest 5 -> 115; reserve 2 released -> 117; A 100, S 10, residual 7
    np.testing.assert_allclose(f["reserve_draw"], [4.0, 0.0])
    np.testing.assert_allclose(f["reserve_balance"], [2.0, 0.0])
    np.testing.assert_allclose(f["A_interest"], [5.0, 5.0])
    np.testing.assert_allclose(f["residual"], [0.0, 7.0])
    assert missed[0] == 0.0 and not f["event_of_default"].any()


from hypothesis import given, settings as hyp_settings, strategies as st  # noqa: E402

from npl_xl.engine.reference import reference_metrics, reference_waterfall  # noqa: E402


@st.composite
def _structures(draw):
    """A random tranche table: 1-3 seniors, 0-2 mezzanines, 1-2 subordinated, with random
    pari-passu groups (sequential or pro rata principal) and coupons."""
    rows = [["name", "kind", "balance", "coupon", "pari_group", "principal"]]
    for kind, low, high in (("senior", 1, 3), ("mezzanine", 0, 2), ("subordinated", 1, 2)):
        n = draw(st.integers(low, high))
        grouped = n > 1 and draw(st.booleans())
        rule = draw(st.sampled_from(["sequential", "pro_rata"]))
        for i in range(n):
            coupon = draw(st.floats(0, 0.15)) if kind != "subordinated" else None
            rows.append([f"{kind[:3]}{i}", kind, draw(st.floats(1, 100)), coupon,
                         kind if grouped else None, rule if grouped else None])
    return rows


def _random_deal(draw_values, n_periods):
    return {"payment_months": 6, "legal_final_months": 6 * n_periods, **draw_values}


@hyp_settings(max_examples=1000, deadline=None)
@given(coll=st.lists(st.floats(0, 200), min_size=1, max_size=12), tranches=_structures(),
       noise=st.lists(st.floats(0.3, 2.0), min_size=12, max_size=12),
       tax=st.floats(0, 0.2), fixed=st.floats(0, 5), serv=st.floats(0, 0.1),
       mult=st.floats(0, 3), liq=st.floats(0, 20), liq_rate=st.floats(0, 0.2),
       sub_rate=st.floats(0, 0.1), excess=st.floats(0, 0.5), initial=st.floats(0, 10),
       mezz=st.sampled_from(["after_senior_principal", "before_senior_principal"]),
       eod_trigger=st.booleans(), ccr=st.sampled_from([0.0, 0.8, 0.9, 1.0]),
       deferred=st.floats(0, 1))
def test_kernel_matches_the_plain_python_waterfall_and_conserves_cash(
        coll, tranches, noise, tax, fixed, serv, mult, liq, liq_rate, sub_rate, excess,
        initial, mezz, eod_trigger, ccr, deferred):
    # 1,000 random waterfalls: the kernel against the plain-Python reference (which finds
    # the reserve target by a root search), every rule on, every period conserving cash
    deal = _random_deal({"tax_rate": tax, "fixed_expenses": fixed, "servicer_fee_rate": serv,
                         "reserve_multiple": mult, "liquidity_limit": liq,
                         "liquidity_rate": liq_rate, "sub_return_rate": sub_rate,
                         "excess_fee_share": excess, "initial_reserve": initial,
                         "mezz_interest": mezz, "eod_trigger": eod_trigger,
                         "ccr_trigger": ccr, "deferred_fee_share": deferred}, len(coll))
    forecast = np.array(coll) * np.array(noise[:len(coll)])
    parsed = parse_tranches(tranches)
    names = parsed.names
    f, missed, arrears = _frame(coll, tranches, deal, forecast=forecast)
    ref = reference_waterfall(np.array(coll), parsed, parse_settings(deal), forecast=forecast)
    for j, name in enumerate(names):
        np.testing.assert_allclose(f[f"{name}_interest"], ref["interest"][j], atol=1e-7)
        np.testing.assert_allclose(f[f"{name}_principal"], ref["principal"][j], atol=1e-7)
    np.testing.assert_allclose(arrears, ref["arrears"], atol=1e-7)
    assert [bool(m) for m in missed] == ref["missed"]
    for column, key in (("reserve_balance", "reserve"), ("liquidity_write_off", "write_off"),
                        ("liquidity_balance", "liquidity"), ("deferred_fee_paid", "deferred_fee_paid"),
                        ("servicer_fee_deferred", "servicer_fee_deferred")):
        np.testing.assert_allclose(f[column], ref[key], atol=1e-7, err_msg=column)
    for column, key in (("event_of_default", "eod"), ("ccr_breached", "ccr_breached"),
                        ("mezz_subordinated", "mezz_subordinated")):
        assert list(f[column]) == ref[key], column
    _assert_conserved(f, coll, names, initial)
    reserve_change = np.diff(np.concatenate([[initial], ref["reserve"]]))
    liquidity_draws = f["liquidity_draw"]
    np.testing.assert_allclose(np.array(ref["paid_out"]) - liquidity_draws + reserve_change,
                               coll, atol=1e-7)
    for name in names:
        assert np.all(f[f"{name}_balance"] >= -1e-12)
        assert np.all(np.diff(f[f"{name}_balance"]) <= 1e-12)


MEZZ_MISS = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.04],
             ["B", "mezzanine", 40.0, 0.10], ["C", "subordinated", 30.0, 0.08]]
PLAIN = {"payment_months": 6, "legal_final_months": 24, "tax_rate": 0, "reserve_multiple": 0}


def test_a_mezzanine_interest_shortfall_is_a_default_though_it_is_cured():
    f, missed, arrears = _frame([2.5, 120.0, 60.0, 80.0], MEZZ_MISS, PLAIN)
    # period 1, C = 2.5: A interest 100 x 0.04 x 0.5 = 2.0 -> 0.5 to A principal (99.5);
    # B's interest due 40 x 0.10 x 0.5 = 2.0 is paid 0 (deferred): a miss, not an EoD
    # period 2, C = 120: A interest 99.5 x 0.02 = 1.99, A principal 99.5 -> 18.51 left;
    # B interest 2.0 + 2.0 in arrears = 4.0 -> 14.51 to B principal (40 -> 25.49)
    # period 3, C = 60: B interest 25.49 x 0.05 = 1.2745, B principal 25.49, C 30, residual
    # 3.2355; period 4: residual 80
    np.testing.assert_allclose(f["B_interest"], [0.0, 4.0, 1.2745, 0.0])
    np.testing.assert_allclose(f["B_principal"], [0.0, 14.51, 25.49, 0.0])
    np.testing.assert_allclose(f["residual"], [0.0, 0.0, 3.2355, 80.0])
    assert not f["event_of_default"].any() and arrears[1] == 0.0
    assert list(missed) == [0.0, 1.0, 0.0]
    m = waterfall_paths(np.array([[2.5, 120.0, 60.0, 80.0]]), parse_tranches(MEZZ_MISS),
                        parse_settings(PLAIN))
    # A is paid as promised; B missed the period-1 interest and C is repaid, no fixed return
    assert list(m["default"][0]) == [0.0, 1.0, 0.0]


def test_a_subordinated_fixed_return_shortfall_is_a_default():
    f, missed, arrears = _frame([2.5, 120.0, 60.0, 80.0], MEZZ_MISS,
                                {**PLAIN, "sub_return_rate": 0.06})
    # as above; C's fixed return 30 x 0.06 x 0.5 = 0.9 a period is paid 0 in periods 1-2
    # (nothing left after B), then 0.9 x 3 = 2.7 of the 3.2355 in period 3: cured, but
    # missed; period 4 owes nothing (C was repaid in period 3)
    np.testing.assert_allclose(f["C_interest"], [0.0, 0.0, 2.7, 0.0])
    assert list(missed) == [0.0, 1.0, 1.0] and arrears[2] == 0.0


def test_subordinated_pv_excludes_the_residual_which_stays_in_the_irr():
    tranches = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.0],
                ["S", "subordinated", 10.0, 0.10]]
    settings = parse_settings({"legal_final_months": 12, "tax_rate": 0, "reserve_multiple": 0,
                               "sub_return_rate": 0.06, "excess_fee_share": 0.5})
    m = waterfall_paths(np.array([[0.0, 200.0]]), parse_tranches(tranches), settings)
    # period 1: nothing; S's fixed return 10 x 0.06 x 0.5 = 0.3 deferred
    # period 2, C = 200: A 100; S principal 10; S return 0.3 + 0.3 = 0.6; 89.4 left, half
    # excess servicing fee (44.7), half residual (44.7) to S
    # PV of S's interest and principal at its 10% coupon, 5% a half year: 10.6 / 1.05^2
    # = 9.61451 -> loss 1 - 0.961451 = 3.855%; the residual is not interest or principal
    assert m["pv"][0, 1] == pytest.approx(10.6 / 1.05 ** 2)
    assert m["loss"][0, 1] == pytest.approx(1 - 10.6 / 1.05 ** 2 / 10)
    # IRR on all S's payments, residual included: 10.6 + 44.7 = 55.3 at 1 year for 10
    assert m["irr"][0, 1] == pytest.approx(55.3 / 10 - 1)
    ref = reference_metrics(np.array([0.0, 200.0]), parse_tranches(tranches), settings)
    assert ref["loss"][1] == pytest.approx(m["loss"][0, 1], abs=1e-12)
    assert ref["irr"][1] == pytest.approx(m["irr"][0, 1], rel=1e-10)


# ---------------------------------------------------------------------------------------
# Pari-passu classes, the mezzanine's position, triggers, liquidity write-off (issue 8)

PARI = [["name", "kind", "balance", "coupon", "pari_group", "principal"],
        ["A1", "senior", 60.0, 0.10, "A", None], ["A2", "senior", 40.0, 0.05, "A", None],
        ["S", "subordinated", 10.0, None, None, None]]
NO_FEES = {"payment_months": 6, "legal_final_months": 12, "tax_rate": 0, "reserve_multiple": 0}


def test_pari_passu_seniors_share_a_shortfall_pro_rata_to_interest_due():
    f, missed, arrears = _frame([2.0, 120.0], PARI, NO_FEES)
    # period 1, C = 2: interest due A1 60 x 0.10 x 0.5 = 3, A2 40 x 0.05 x 0.5 = 1, total 4;
    # 2 paid pro rata to due: A1 2 x 3/4 = 1.5, A2 2 x 1/4 = 0.5 (sequentially it would be
    # A1 2, A2 0); both short -> event of default for the class
    # period 2 (last), C = 120: due A1 3 + 1.5 = 4.5, A2 1 + 0.5 = 1.5 -> 114; principal by
    # table order (sequential): A1 60 -> 54, A2 40 -> 14; S 10 -> 4; residual 4
    np.testing.assert_allclose(f["A1_interest"], [1.5, 4.5])
    np.testing.assert_allclose(f["A2_interest"], [0.5, 1.5])
    np.testing.assert_allclose(f["A1_principal"], [0.0, 60.0])
    np.testing.assert_allclose(f["A2_principal"], [0.0, 40.0])
    np.testing.assert_allclose(f["S_principal"], [0.0, 10.0])
    np.testing.assert_allclose(f["residual"], [0.0, 4.0])
    assert list(missed) == [1.0, 1.0, 0.0] and list(f["event_of_default"]) == [1.0, 1.0]
    assert list(arrears) == [0.0, 0.0, 0.0]
    _assert_conserved(f, [2.0, 120.0], ["A1", "A2", "S"])
    # the same class with principal pro rata, period 2 C = 56: after interest 6, 50 shared
    # 60:40 -> A1 30, A2 20; both left half outstanding at the legal final
    pro = [r[:5] + ["pro_rata"] if r[4] == "A" else r for r in PARI]
    f, _, _ = _frame([2.0, 56.0], pro, NO_FEES)
    np.testing.assert_allclose(f["A1_principal"], [0.0, 30.0])
    np.testing.assert_allclose(f["A2_principal"], [0.0, 20.0])
    np.testing.assert_allclose(f["A1_balance"], [60.0, 30.0])
    np.testing.assert_allclose(f["A2_balance"], [40.0, 20.0])
    _assert_conserved(f, [2.0, 56.0], ["A1", "A2", "S"])
    # a sequential group with the same 56: A1 50 of 60, A2 nothing
    f, _, _ = _frame([2.0, 56.0], PARI, NO_FEES)
    np.testing.assert_allclose(f["A1_principal"], [0.0, 50.0])
    np.testing.assert_allclose(f["A2_principal"], [0.0, 0.0])


MEZZ = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.04],
        ["B", "mezzanine", 20.0, 0.10], ["S", "subordinated", 10.0, None]]


def test_mezzanine_interest_after_or_before_senior_principal():
    after, missed_after, _ = _frame([30.0, 100.0], MEZZ, NO_FEES)
    # after senior principal (default). period 1, C = 30: A interest 100 x 0.02 = 2 -> 28,
    # all to A principal (72 left); B interest 20 x 0.05 = 1 deferred (a miss for B's PD)
    # period 2, C = 100: A interest 72 x 0.02 = 1.44 -> 98.56; A principal 72 -> 26.56;
    # B interest 1 + 1 deferred = 2 -> 24.56; B principal 20 -> 4.56; S principal 4.56
    np.testing.assert_allclose(after["A_principal"], [28.0, 72.0])
    np.testing.assert_allclose(after["B_interest"], [0.0, 2.0])
    np.testing.assert_allclose(after["S_principal"], [0.0, 4.56])
    assert list(missed_after) == [0.0, 1.0, 0.0]
    np.testing.assert_allclose(after["mezz_subordinated"], [1.0, 1.0])
    before, missed_before, _ = _frame([30.0, 100.0], MEZZ,
                                      {**NO_FEES, "mezz_interest": "before_senior_principal"})
    # before senior principal. period 1: A interest 2 -> 28; B interest 1 -> 27 to A
    # principal (73 left). period 2: A interest 73 x 0.02 = 1.46 -> 98.54; B interest 1 ->
    # 97.54; A principal 73 -> 24.54; B principal 20 -> 4.54; S principal 4.54
    np.testing.assert_allclose(before["A_principal"], [27.0, 73.0])
    np.testing.assert_allclose(before["A_interest"], [2.0, 1.46])
    np.testing.assert_allclose(before["B_interest"], [1.0, 1.0])
    np.testing.assert_allclose(before["S_principal"], [0.0, 4.54])
    assert list(missed_before) == [0.0, 0.0, 0.0]  # B paid every period: no miss
    np.testing.assert_allclose(before["mezz_subordinated"], [0.0, 0.0])
    for f, c in ((after, [30.0, 100.0]), (before, [30.0, 100.0])):
        _assert_conserved(f, c, "ABS")


EOD_DEAL = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.10],
            ["B", "mezzanine", 20.0, 0.10], ["S", "subordinated", 10.0, None]]


def test_an_event_of_default_switches_the_order():
    base = {"payment_months": 6, "legal_final_months": 18, "tax_rate": 0,
            "reserve_multiple": 0, "mezz_interest": "before_senior_principal"}
    coll = [3.0, 20.0, 150.0]
    plain, _, _ = _frame(coll, EOD_DEAL, base)
    switched, _, _ = _frame(coll, EOD_DEAL, {**base, "eod_trigger": True})
    # period 1, C = 3: A interest due 5, paid 3 -> event of default (arrears 2); B's
    # interest 1 is deferred either way (no cash left)
    # period 2, C = 20: A interest 5 + 2 = 7 -> 13.
    #   without the trigger B interest stays before senior principal: 1 + 1 arrears = 2
    #   -> 11 to A principal (89 left)
    #   with eod_trigger the post-default order pays senior interest and principal first:
    #   13 to A principal (87 left), B's 2 deferred
    # period 3 (last), C = 150:
    #   without: A interest 89 x 0.05 = 4.45 -> 145.55; B interest 1 -> 144.55; A 89 ->
    #   55.55; B principal 20 -> 35.55; S 10; residual 25.55
    #   with: A interest 87 x 0.05 = 4.35 -> 145.65; A 87 -> 58.65; B interest 1 + 2 = 3
    #   -> 55.65; B 20 -> 35.65; S 10; residual 25.65
    np.testing.assert_allclose(plain["A_principal"], [0.0, 11.0, 89.0])
    np.testing.assert_allclose(plain["B_interest"], [0.0, 2.0, 1.0])
    np.testing.assert_allclose(plain["residual"], [0.0, 0.0, 25.55])
    np.testing.assert_allclose(switched["A_principal"], [0.0, 13.0, 87.0])
    np.testing.assert_allclose(switched["B_interest"], [0.0, 0.0, 3.0])
    np.testing.assert_allclose(switched["residual"], [0.0, 0.0, 25.65])
    np.testing.assert_allclose(plain["event_of_default"], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(plain["mezz_subordinated"], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(switched["mezz_subordinated"], [1.0, 1.0, 1.0])
    _assert_conserved(plain, coll, "ABS")
    _assert_conserved(switched, coll, "ABS")


def test_ccr_breach_is_the_shown_ratio_below_the_trigger_on_the_boundary():
    # Found by hypothesis: 128.09288539799022 collected against a forecast of 1.25 times
    # that shows a CCR of 0.7999999999999999 (x / 1.25x in doubles), below a 0.8 trigger, so
    # the period is in breach; comparing x < 0.8 x 1.25x instead said it was not.
    x = 128.09288539799022
    assert x / (x * 1.25) < 0.8 and not x < 0.8 * (x * 1.25)
    deal = _random_deal({"ccr_trigger": 0.8}, 1)
    tranches = [["name", "kind", "balance", "coupon"], ["sen0", "senior", 1.0, 0.0],
                ["sub0", "subordinated", 1.0, None]]
    f, _, _ = _frame([x], tranches, deal, forecast=np.array([x * 1.25]))
    assert f["ccr"][0] == x / (x * 1.25)
    assert f["ccr_breached"][0] == 1.0


def test_ccr_trigger_hits_in_period_3():
    deal = {"payment_months": 6, "legal_final_months": 30, "tax_rate": 0,
            "reserve_multiple": 0, "servicer_fee_rate": 0.10,
            "mezz_interest": "before_senior_principal", "ccr_trigger": 0.85,
            "deferred_fee_share": 0.5}
    coll = [50.0, 40.0, 20.0, 80.0, 200.0]
    forecast = [50.0] * 5
    f, missed, _ = _frame(coll, EOD_DEAL, deal, forecast=forecast)
    # CCR = cumulative collections / cumulative forecast: 50/50 = 1, 90/100 = 0.9,
    # 110/150 = 0.733 < 0.85 (breached in period 3), 190/200 = 0.95 (cured), 390/250
    # period 1, C = 50: fee 5 -> 45; A interest 5 -> 40; B interest 1 (before senior
    # principal) -> 39 to A (61 left)
    # period 2, C = 40: fee 4 -> 36; A interest 3.05 -> 32.95; B 1 -> 31.95 to A (29.05)
    # period 3, C = 20, breached: fee 2, half deferred: 1 paid -> 19; A interest 29.05 x
    # 0.05 = 1.4525 -> 17.5475; B's interest moves after senior principal: A gets 17.5475
    # (11.5025 left), B's 1 is deferred (a miss)
    # period 4, C = 80, cured: fee 8 -> 72; A interest 0.575125 -> 71.424875; B interest
    # 1 + 1 arrears -> 69.424875; A principal 11.5025 -> 57.922375; the senior is repaid:
    # the deferred fee 1 -> 56.922375; B principal 20 -> 36.922375; S 10; residual 26.922375
    # period 5, C = 200: fee 20, residual 180
    np.testing.assert_allclose(f["ccr"], [1.0, 0.9, 110 / 150, 0.95, 390 / 250])
    np.testing.assert_allclose(f["ccr_breached"], [0.0, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(f["mezz_subordinated"], [0.0, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(f["servicer_fee"], [5.0, 4.0, 1.0, 8.0, 20.0])
    np.testing.assert_allclose(f["servicer_fee_deferred"], [0.0, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(f["deferred_fee_paid"], [0.0, 0.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(f["A_principal"], [39.0, 31.95, 17.5475, 11.5025, 0.0])
    np.testing.assert_allclose(f["B_interest"], [1.0, 1.0, 0.0, 2.0, 0.0])
    np.testing.assert_allclose(f["residual"], [0.0, 0.0, 0.0, 26.922375, 180.0])
    assert list(missed) == [0.0, 1.0, 0.0]
    _assert_conserved(f, coll, "ABS")
    # without the trigger the same collections never defer B's interest
    f, missed, _ = _frame(coll, EOD_DEAL, {**deal, "ccr_trigger": 0}, forecast=forecast)
    assert not f["ccr_breached"].any() and list(missed) == [0.0, 0.0, 0.0]


def test_liquidity_outstanding_at_the_legal_final_is_written_off():
    tranches = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.10]]
    deal = {**NO_FEES, "liquidity_limit": 10.0, "liquidity_rate": 0.08}
    f, _, _ = _frame([0.0, 3.0], tranches, deal)
    # period 1, C = 0: A interest 5 drawn from the facility (balance 5)
    # period 2 (legal final), C = 3: facility interest 5 x 0.08 x 0.5 = 0.2 -> 2.8, repaid
    # 2.8 of the 5 advanced (2.2 left); A interest 5 drawn again (7.2); nothing left: the
    # 7.2 outstanding is written off, the provider's loss
    np.testing.assert_allclose(f["liquidity_draw"], [5.0, 5.0])
    np.testing.assert_allclose(f["liquidity_interest"], [0.0, 0.2])
    np.testing.assert_allclose(f["liquidity_repayment"], [0.0, 2.8])
    np.testing.assert_allclose(f["liquidity_write_off"], [0.0, 7.2])
    np.testing.assert_allclose(f["liquidity_balance"], [5.0, 0.0])
    _assert_conserved(f, [0.0, 3.0], "A")
    m = waterfall_paths(np.array([[0.0, 3.0]]), parse_tranches(tranches), parse_settings(deal))
    assert m["liquidity_loss"][0] == pytest.approx(7.2)
    # unpaid interest is written off too: C = 0.1 in period 2 pays 0.1 of the 0.2 interest,
    # draws 5 (balance 10, the limit): write-off 10 + 0.1
    f, _, _ = _frame([0.0, 0.1], tranches, deal)
    np.testing.assert_allclose(f["liquidity_write_off"], [0.0, 10.1])
    # and cash left at the legal final repays this period's advances before any residual:
    # C = 120: interest 0.2, repay 5 -> 114.8; A interest 5 -> 109.8; A 100 -> 9.8 left,
    # nothing was drawn this period, so residual 9.8 and no write-off
    f, _, _ = _frame([0.0, 120.0], tranches, deal)
    np.testing.assert_allclose(f["liquidity_write_off"], [0.0, 0.0])
    np.testing.assert_allclose(f["residual"], [0.0, 9.8])


def test_initial_balances_and_reserve_start_the_waterfall_mid_life():
    # the deal of test_initial_reserve_covers_the_first_interest, started with A at 50
    # outstanding and 3 in the reserve: A interest 50 x 0.05 = 2.5 = 1 cash + 1.5 reserve
    tranches = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.10],
                ["S", "subordinated", 10.0, 0.0]]
    deal = {"legal_final_months": 12, "tax_rate": 0, "reserve_multiple": 0}
    f, _, _ = _frame([1.0, 120.0], tranches, deal, initial_balances=[50.0, 10.0],
                     initial_reserve=3.0)
    # period 1: reserve 3 - 1.5 = 1.5, released (target 0) -> 1.5 to A principal (48.5)
    # period 2: A interest 2.425 -> 117.575; A 48.5; S 10; residual 59.075
    np.testing.assert_allclose(f["reserve_draw"], [1.5, 0.0])
    np.testing.assert_allclose(f["A_interest"], [2.5, 2.425])
    np.testing.assert_allclose(f["A_principal"], [1.5, 48.5])
    np.testing.assert_allclose(f["residual"], [0.0, 59.075])
    _assert_conserved(f, [1.0, 120.0], "AS", initial_reserve=3.0)


def test_subordinated_pv_discounts_at_sub_return_rate_when_its_coupon_is_blank():
    tranches = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.0],
                ["S", "subordinated", 10.0, None]]
    settings = parse_settings({"legal_final_months": 12, "tax_rate": 0, "reserve_multiple": 0,
                               "sub_return_rate": 0.06})
    m = waterfall_paths(np.array([[0.0, 200.0]]), parse_tranches(tranches), settings)
    # S's fixed return 0.3 a period, 0.6 paid in period 2 with its 10 of principal; at the
    # blank coupon's stand-in, sub_return_rate 6 % (3 % a half year): 10.6 / 1.03^2
    assert m["pv"][0, 1] == pytest.approx(10.6 / 1.03 ** 2)
    # 10.6 / 1.0609 = 9.99152 -> loss 1 - 0.999152 = 0.0848 % (at a 0 coupon it would be 0)
    assert m["loss"][0, 1] == pytest.approx(1 - 10.6 / 1.03 ** 2 / 10)


def test_npl_waterfall_keeps_its_columns_and_appends_the_trigger_states():
    out = REGISTRY["NPL_WATERFALL"]([[50.0], [40.0], [20.0], [80.0], [200.0]], EOD_DEAL,
                                    [["key", "value"], ["legal_final_months", 30],
                                     ["servicer_fee_rate", 0.1], ["reserve_multiple", 0],
                                     ["tax_rate", 0], ["ccr_trigger", 0.85],
                                     ["deferred_fee_share", 0.5],
                                     ["mezz_interest", "before_senior_principal"]],
                                    [[50.0]] * 5)
    header = out[0]
    # the original layout: period, month, the twelve original columns, then the tranches
    assert header[:14] == ["period", "month", "collections", "taxes", "fixed_expenses",
                           "servicer_fee", "liquidity_draw", "liquidity_repayment",
                           "liquidity_balance", "reserve_draw", "reserve_balance",
                           "excess_servicing_fee", "residual", "event_of_default"]
    assert header[14:17] == ["A_interest", "A_principal", "A_balance"]
    assert header[-3:] == ["ccr", "ccr_breached", "mezz_subordinated"]
    rows = [dict(zip(header, r)) for r in out[1:]]
    # the hand computation of test_ccr_trigger_hits_in_period_3, through the sheet
    assert [r["ccr_breached"] for r in rows] == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert rows[3]["deferred_fee_paid"] == pytest.approx(1.0)
    bad = REGISTRY["NPL_WATERFALL"]([[1.0], [2.0]], THREE, None, [[1.0]])
    assert bad.code == "#NUM!" and "forecast" in bad.message
