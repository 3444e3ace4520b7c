"""The deterministic waterfall checked by hand, and NPL_WATERFALL through the registry."""

import numpy as np
import pytest

from npl_xl.inputs.deal import parse_settings, parse_tranches
from npl_xl.engine.waterfall import deterministic_waterfall, waterfall_paths
from npl_xl.sheet.registry import load_all

REGISTRY = load_all()


def _frame(collections, tranches, settings):
    flows, columns, missed, arrears = deterministic_waterfall(
        np.array(collections, float), parse_tranches(tranches), parse_settings(settings))
    return {c: flows[:, i] for i, c in enumerate(columns)}, missed, arrears


THREE = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.10],
         ["B", "mezzanine", 20.0, 0.12], ["S", "subordinated", 30.0, 0.0]]
FEES = {"payment_months": 6, "legal_final_months": 18, "tax_rate": 0.05, "fixed_expenses": 1.0,
        "servicer_fee_rate": 0.02, "reserve_multiple": 2.0, "sub_return_rate": 0.10,
        "excess_fee_share": 0.2}


def test_fees_reserve_and_priority_by_hand():
    f, missed, arrears = _frame([40.0, 80.0, 60.0], THREE, FEES)
    # period 1, C = 40: tax 2, fixed 1, servicer 0.8 -> 36.2; A interest 100*0.10*0.5 = 5 -> 31.2
    # reserve target 2*((0.05+0.02)*40 + 1 + 5) = 17.6 -> 13.6 left for A principal
    # period 2, C = 80: fees 4 + 1 + 1.6 -> 73.4; A interest 86.4*0.05 = 4.32 -> 69.08;
    # target 2*(5.6 + 1 + 4.32) = 21.84, top-up 4.24 -> 64.84 to A principal (86.4 -> 21.56)
    # period 3 (last), C = 60: fees 3 + 1 + 1.2 -> 54.8; A interest 1.078 -> 53.722;
    # reserve 21.84 released -> 75.562; A principal 21.56 -> 54.002; B interest 1.2 per period
    # x 3 = 3.6 -> 50.402; B principal 20 -> 30.402; S principal 30 -> 0.402;
    # S return due 1.5 x 3 = 4.5, paid 0.402, 4.098 unpaid; nothing for excess fee or residual
    np.testing.assert_allclose(f["taxes"], [2.0, 4.0, 3.0])
    np.testing.assert_allclose(f["fixed_expenses"], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(f["servicer_fee"], [0.8, 1.6, 1.2])
    np.testing.assert_allclose(f["A_interest"], [5.0, 4.32, 1.078])
    np.testing.assert_allclose(f["A_principal"], [13.6, 64.84, 21.56])
    np.testing.assert_allclose(f["reserve_balance"], [17.6, 21.84, 0.0])
    np.testing.assert_allclose(f["B_interest"], [0.0, 0.0, 3.6])
    np.testing.assert_allclose(f["B_principal"], [0.0, 0.0, 20.0])
    np.testing.assert_allclose(f["S_principal"], [0.0, 0.0, 30.0])
    np.testing.assert_allclose(f["S_interest"], [0.0, 0.0, 0.402], atol=1e-12)
    np.testing.assert_allclose(f["residual"] + f["excess_servicing_fee"], 0.0, atol=1e-12)
    np.testing.assert_allclose(arrears, [0.0, 0.0, 4.098], atol=1e-12)
    # no senior shortfall, so no EoD; but B's interest (1.2 due in periods 1 and 2, paid 0)
    # and S's fixed return (0.402 of 4.5 in period 3) were missed: both count for the PD
    assert list(missed) == [0.0, 1.0, 1.0] and not f["event_of_default"].any()


def test_excess_fee_and_residual_by_hand():
    f, _, _ = _frame([40.0, 80.0, 160.0], THREE, FEES)
    # as above but period 3 brings 100 more, 93 after taxes and servicer fee: the 0.402 that
    # was left before S's return, + 93, - the whole S return 4.5 = 88.902 remains,
    # split 20% excess servicing fee (17.7804), 80% residual (71.1216)
    left = 0.402 + 100.0 * (1 - 0.05 - 0.02) - 4.5
    assert f["excess_servicing_fee"][2] == pytest.approx(0.2 * left)
    assert f["residual"][2] == pytest.approx(0.8 * left)


def test_cash_is_conserved():
    rs = np.random.default_rng(0)
    coll = rs.uniform(0, 60, 10)
    settings = {**FEES, "legal_final_months": 60, "liquidity_limit": 5.0, "initial_reserve": 7.0}
    f, _, _ = _frame(coll, THREE, settings)
    paid = (f["taxes"] + f["fixed_expenses"] + f["servicer_fee"] + f["excess_servicing_fee"]
            + f["residual"] + f["liquidity_repayment"] - f["liquidity_draw"]
            + sum(f[f"{n}_interest"] + f[f"{n}_principal"] for n in "ABS"))
    reserve_change = np.diff(np.concatenate([[7.0], f["reserve_balance"]]))
    np.testing.assert_allclose(paid + reserve_change, coll, atol=1e-9)


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
    assert row["month"] == 12.0 and row["A_interest"] == pytest.approx(4.32)


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


@hyp_settings(max_examples=60, deadline=None)
@given(coll=st.lists(st.floats(0, 200), min_size=1, max_size=12),
       tax=st.floats(0, 0.2), fixed=st.floats(0, 5), serv=st.floats(0, 0.1),
       mult=st.floats(0, 3), liq=st.floats(0, 20), sub_rate=st.floats(0, 0.1),
       excess=st.floats(0, 0.5), initial=st.floats(0, 10))
def test_kernel_matches_the_plain_python_waterfall_and_conserves_cash(
        coll, tax, fixed, serv, mult, liq, sub_rate, excess, initial):
    deal = {"payment_months": 6, "legal_final_months": 6 * len(coll), "tax_rate": tax,
            "fixed_expenses": fixed, "servicer_fee_rate": serv, "reserve_multiple": mult,
            "liquidity_limit": liq, "sub_return_rate": sub_rate, "excess_fee_share": excess,
            "initial_reserve": initial}
    f, missed, arrears = _frame(coll, THREE, deal)
    ref = reference_waterfall(np.array(coll), parse_tranches(THREE), parse_settings(deal))
    for j, name in enumerate("ABS"):
        np.testing.assert_allclose(f[f"{name}_interest"], ref["interest"][j], atol=1e-9)
        np.testing.assert_allclose(f[f"{name}_principal"], ref["principal"][j], atol=1e-9)
    np.testing.assert_allclose(arrears, ref["arrears"], atol=1e-9)
    assert [bool(m) for m in missed] == ref["missed"]
    paid = (f["taxes"] + f["fixed_expenses"] + f["servicer_fee"] + f["excess_servicing_fee"]
            + f["residual"] + f["liquidity_repayment"] - f["liquidity_draw"]
            + sum(f[f"{n}_interest"] + f[f"{n}_principal"] for n in "ABS"))
    reserve_change = np.diff(np.concatenate([[initial], f["reserve_balance"]]))
    np.testing.assert_allclose(paid + reserve_change, coll, atol=1e-8)
    assert np.all(f["A_balance"] >= 0) and np.all(np.diff(f["A_balance"]) <= 1e-12)


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
