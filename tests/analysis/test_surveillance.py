"""Surveillance: booking, actual vs expected, re-projection, re-rating from the report date."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

from npl_xl.analysis import surveillance
from npl_xl.engine.simulate import mc_mean, simulate_collections
from npl_xl.errors import DomainError, TableError, XlError
from npl_xl.inputs.collections import excel_serial, read_collections
from npl_xl.inputs.deal import parse_settings
from npl_xl.sheet.tapes import valued_tape
from npl_xl.sheet.registry import load_all

REGISTRY = load_all()

# Three loans with deterministic recoveries (sd 0, timing_sd 0) so that the model's expected
# curve is exact and the figures can be computed by hand.
TAPE3 = [["loan_id", "province", "claim", "collateral_type", "expected_recovery",
          "expected_months", "recovery_sd"],
         ["A", "浙江", 100.0, "none", 60.0, 5.0, 0.0],
         ["B", "江苏", 200.0, "none", 80.0, 7.0, 0.0],
         ["C", "上海", 100.0, "none", 30.0, 12.0, 0.0]]
SETTINGS3 = [["key", "value"], ["payment_months", 6], ["legal_final_months", 36],
             ["timing_sd_months", 0], ["n_sims", 8], ["as_of_months", 12]]
COLL3 = [["loan_id", "month", "amount", "resolved"],
         ["A", 3, 50.0, False], ["A", 6, 5.0, True], ["B", 11, 90.0, True]]


def test_actual_vs_expected_by_hand_on_three_loans():
    # Expected (issuance model, deterministic here): A 60 at month 5 -> period 1 (t = 6);
    # B 80 at month 7 and C 30 at month 12 -> period 2 (t = 12): expected 60, 110.
    # Actual: A 50 at month 3 and 5 at month 6 (6 <= t1 = 6) -> period 1: 55; B 90 at month
    # 11 -> period 2: 90. Total claim 400.
    # cumulative_expected_share 60/400 = 0.15, 170/400 = 0.425
    # cumulative_actual_share 55/400 = 0.1375, 145/400 = 0.3625
    # ratio 55/60 = 0.91666..., 145/170 = 0.85294...
    out = REGISTRY["NPL_ACTUAL_VS_EXPECTED"](TAPE3, COLL3, SETTINGS3)
    assert out[0] == ["period", "month", "expected", "actual", "cumulative_expected_share",
                      "cumulative_actual_share", "ratio"]
    rows = out[1:]
    assert [r[0] for r in rows] == [1, 2] and [r[1] for r in rows] == [6, 12]
    assert [r[2] for r in rows] == pytest.approx([60.0, 110.0], rel=1e-12)
    assert [r[3] for r in rows] == pytest.approx([55.0, 90.0], rel=1e-12)
    assert [r[4] for r in rows] == pytest.approx([0.15, 0.425], rel=1e-12)
    assert [r[5] for r in rows] == pytest.approx([0.1375, 0.3625], rel=1e-12)
    assert [r[6] for r in rows] == pytest.approx([55 / 60, 145 / 170], rel=1e-12)


def test_actual_vs_expected_partial_last_period_pro_rata():
    # as_of 9: period 1 in full, then period 2 up to month 9: expected 110 x (9 - 6)/6 = 55.
    settings = [r for r in SETTINGS3 if r[0] != "as_of_months"] + [["as_of_months", 9]]
    coll = COLL3[:3]
    rows = REGISTRY["NPL_ACTUAL_VS_EXPECTED"](TAPE3, coll, settings)[1:]
    assert [r[1] for r in rows] == [6, 9]
    assert [r[2] for r in rows] == pytest.approx([60.0, 55.0])
    assert [r[3] for r in rows] == pytest.approx([55.0, 0.0])


def test_collections_total_equals_the_actual_column():
    rows = REGISTRY["NPL_ACTUAL_VS_EXPECTED"](TAPE3, COLL3, SETTINGS3)[1:]
    assert sum(r[3] for r in rows) == pytest.approx(50 + 5 + 90)


def test_reproject_conservation_and_status():
    # A: collected 55, resolved -> remaining 0; B: collected 90 > expected 80, resolved -> 0;
    # C: open, nothing collected: remaining 30, months 12 - 12 = 0 -> not positive -> overdue 6.
    out = REGISTRY["NPL_REPROJECT"](TAPE3, COLL3, SETTINGS3)
    assert out[0] == ["loan_id", "collected", "remaining_expected", "remaining_months", "status"]
    by_id = {r[0]: r[1:] for r in out[1:]}
    assert by_id["A"] == [55.0, 0.0, 0.0, "resolved"]
    assert by_id["B"] == [90.0, 0.0, 0.0, "resolved"]
    assert by_id["C"] == [0.0, 30.0, 6.0, "open"]
    # an open loan below expectation: collected + remaining = valued expected recovery
    coll = [COLL3[0], ["B", 11, 30.0, False]]
    by_id = {r[0]: r[1:] for r in REGISTRY["NPL_REPROJECT"](TAPE3, coll, SETTINGS3)[1:]}
    assert by_id["B"][0] + by_id["B"][1] == pytest.approx(80.0)
    assert by_id["B"][2:] == [6.0, "open"]  # 7 - 12 < 0: overdue_months


def test_reproject_open_loan_ahead_of_its_month():
    settings = [r for r in SETTINGS3 if r[0] != "as_of_months"] + [["as_of_months", 6]]
    rows = {r[0]: r[1:] for r in REGISTRY["NPL_REPROJECT"](TAPE3, COLL3[:2], settings)[1:]}
    assert rows["C"] == [0.0, 30.0, 6.0, "open"]     # 12 - 6
    assert rows["B"] == [0.0, 80.0, 1.0, "open"]     # 7 - 6


def test_collections_after_the_report_date_are_left_out():
    # C's receipt at month 13 and B's resolution at month 14 are not known at month 12.
    coll = COLL3[:3] + [["C", 13, 7.0, True], ["B", 14, 0.0, True]]
    by_id = {r[0]: r[1:] for r in REGISTRY["NPL_REPROJECT"](TAPE3, coll, SETTINGS3)[1:]}
    assert by_id["C"] == [0.0, 30.0, 6.0, "open"]
    assert by_id["B"] == [0.0, 80.0, 6.0, "open"]
    rows = REGISTRY["NPL_ACTUAL_VS_EXPECTED"](TAPE3, coll, SETTINGS3)[1:]
    assert sum(r[3] for r in rows) == pytest.approx(55.0)


def test_unknown_loan_and_bad_amount_are_reported_with_cells():
    with pytest.raises(TableError) as info:
        read_collections([["贷款编号", "回收月份", "回收金额"], ["Z", 1, 5.0], ["A", 2, "x"]],
                         origin="Collections!A1", loan_ids=["A", "B"])
    text = str(info.value)
    assert "Collections!A2" in text and "'Z' is not in the tape" in text
    assert "Collections!C3" in text


def test_chinese_headers_and_dates_with_closing_date():
    closing = excel_serial("2024-01-01")
    frame = read_collections([["贷款编号", "回收日期", "回收金额", "已结清"],
                              ["A", "2024年7月1日", 10.0, "是"], ["B", "2024/1/1", 5.0, None]],
                             closing_date=closing)
    # 2024-01-01 to 2024-07-01 is 182 days: 182 x 12 / 365.25 months
    assert frame["month"].tolist() == pytest.approx([182 * 12 / 365.25, 0.0])
    assert frame["resolved"].tolist() == [True, False]
    assert parse_settings({"closing_date": "2024-01-01"}).closing_date == closing
    with pytest.raises(TableError, match="closing_date"):
        read_collections([["loan_id", "date", "amount"], ["A", "2024-07-01", 1.0]])


# --- the deal from the report date -------------------------------------------------------

def _pool_tape(n=400, seed=7):
    rng = np.random.default_rng(seed)
    claim = rng.uniform(50, 150, n)
    rate = rng.uniform(0.3, 0.6, n)
    months = rng.uniform(6, 40, n)
    rows = [["loan_id", "province", "claim", "collateral_type", "expected_recovery",
             "expected_months", "recovery_sd"]]
    for i in range(n):
        rows.append([f"L{i}", "浙江", claim[i], "none", claim[i] * rate[i], months[i], 0.2])
    return rows


TAPE = _pool_tape()
TRANCHES = [["name", "kind", "balance", "coupon"], ["A", "senior", 9000.0, 0.03],
            ["B", "mezzanine", 3000.0, 0.05], ["S", "subordinated", 6000.0, None]]
BASE = [["key", "value"], ["n_sims", 2000], ["seed", 3], ["rho", 0.15], ["payment_months", 6],
        ["legal_final_months", 60], ["tax_rate", 0.0], ["reserve_multiple", 0]]


def _table(out):
    return pd.DataFrame(out[1:], columns=out[0]).set_index("name")


def test_issuance_figures_unchanged_at_as_of_zero_without_collections():
    plain = REGISTRY["NPL_TRANCHE_EL"](TAPE, TRANCHES, BASE)
    with_header_only = REGISTRY["NPL_TRANCHE_EL"](TAPE, TRANCHES, BASE, None, None, None, False,
                                                  [["loan_id", "month", "amount"]])
    explicit_zero = REGISTRY["NPL_TRANCHE_EL"](TAPE, TRANCHES, BASE + [["as_of_months", 0]],
                                               None, None, None, False, None)
    assert plain == with_header_only == explicit_zero
    # and through the remaining-deal path with an (empty) Collections frame at as_of 0
    deal = surveillance.remaining_deal(valued_tape(TAPE), TRANCHES, BASE,
                                       pd.DataFrame({"loan_id": [], "month": [], "amount": []}))
    figures, _ = surveillance.tranche_figures(deal)
    assert figures.values.tolist() == [r for r in plain[1:]]


def _on_expectation_collections(settings, as_of):
    """Every loan due by the report date (expected month <= as_of) collected its expected
    recovery on time and is resolved; the others are open with nothing collected."""
    valued = valued_tape(TAPE)
    due = valued["expected_months"].to_numpy() <= as_of
    rows = [["loan_id", "month", "amount", "resolved"]]
    for loan, m, x in zip(valued["loan_id"][due], valued["expected_months"][due],
                          valued["expected_recovery"][due]):
        rows.append([loan, float(m), float(x), True])
    return rows


def test_rerating_on_expectation_keeps_ratings_and_half_is_downgraded():
    issuance = _table(REGISTRY["NPL_TRANCHE_EL"](TAPE, TRANCHES, BASE))
    settings = BASE + [["as_of_months", 12]]
    on_plan = _on_expectation_collections(settings, 12)
    after = _table(REGISTRY["NPL_TRANCHE_EL"](TAPE, TRANCHES, settings, None, None, None,
                                              False, on_plan))
    # On plan, the senior's EL from the report date is no worse than at issuance beyond
    # Monte Carlo error (the resolved loans' uncertainty is gone).
    se = np.hypot(issuance.loc["A", "el_stderr"], after.loc["A", "el_stderr"])
    assert after.loc["A", "EL"] <= issuance.loc["A", "EL"] + 4 * se + 1e-6
    assert after.loc["A", "rating"] == issuance.loc["A", "rating"] or \
        after.loc["A", "EL"] <= issuance.loc["A", "EL"]
    # Half of what was due: the same loans collected half and still resolved (lost the rest).
    half = [on_plan[0]] + [[r[0], r[1], r[2] * 0.5, True] for r in on_plan[1:]]
    worse = _table(REGISTRY["NPL_TRANCHE_EL"](TAPE, TRANCHES, settings, None, None, None,
                                              False, half))
    order = ["Aaa", "Aa1", "Aa2", "Aa3", "A1", "A2", "A3", "Baa1", "Baa2", "Baa3", "Ba1", "Ba2",
             "Ba3", "B1", "B2", "B3", "Caa1", "Caa2", "Caa3", "Ca", "C"]
    for name in ("A", "B"):
        assert worse.loc[name, "EL"] > after.loc[name, "EL"]
    assert order.index(worse.loc["B", "rating"]) > order.index(issuance.loc["B", "rating"])


def test_repaid_senior_has_zero_el():
    tranches = [TRANCHES[0] + ["outstanding"], TRANCHES[1] + [0.0], TRANCHES[2] + [3000.0],
                TRANCHES[3] + [6000.0]]
    settings = BASE + [["as_of_months", 24]]
    out = _table(REGISTRY["NPL_TRANCHE_EL"](TAPE, tranches, settings, None, None, None, False,
                                            [["loan_id", "month", "amount"]]))
    assert out.loc["A", ["EL", "PD", "WAL", "el_stderr"]].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert out.loc["A", "mean_irr"] == ""
    assert out.loc["B", "EL"] >= 0 and out.loc["S", "rating"] == "NR"


def test_no_open_loan_recovers_before_the_report_date():
    # Large timing sd and loans already overdue: many draws fall before the report date.
    # Collected on the first payment date after it, nothing is lost: per loan-path the total
    # of the remaining deal's collections is the recovery, so its mean is the remaining
    # expected recovery (within Monte Carlo error), with a legal final far away.
    settings = parse_settings(dict(BASE[1:]) | {"as_of_months": 24, "timing_sd_months": 12,
                                                "legal_final_months": 600, "rho": 0.0})
    deal = surveillance.remaining_deal(valued_tape(TAPE), TRANCHES, settings, None)
    coll = simulate_collections(deal.pool, deal.settings)
    total, se = mc_mean(coll.sum(axis=1), True)
    assert abs(total - deal.pool.expected_recovery.sum()) < 4 * se + 1e-9
    # the first period of the remaining deal is the first payment date after the report
    # date (month 30 after closing): it holds every draw dated before the report date,
    # about P(T < 0) = Phi(-remaining_months / 12) of each loan's recovery.
    months = deal.pool.expected_months
    share0 = special.ndtr((6 - months) / 12.0)
    first = mc_mean(coll[:, 0], True)
    assert abs(first[0] - (deal.pool.expected_recovery * share0).sum()) < 4 * first[1] + 1e-9
    assert deal.settings.legal_final_months == 600 - 24


def test_expected_to_date_matches_the_simulated_curve():
    # Independent check of the issuance model's expected curve: E[R 1{T <= t}] =
    # expected_recovery x Phi((t - m) / timing_sd) per loan (no timing stress, no cap).
    valued = valued_tape(TAPE)
    settings = parse_settings(dict(BASE[1:]) | {"n_sims": 4000})
    coll = simulate_collections(surveillance.remaining_deal(valued, TRANCHES, settings).pool,
                                settings)
    cum = np.cumsum(coll, axis=1)
    for k, t in enumerate(settings.period_dates[:6]):
        mean, se = mc_mean(cum[:, k], True)
        semi = surveillance.expected_to_date(valued, settings, t).sum()
        assert abs(mean - semi) < 4 * se + 1e-6 * semi


def test_report_date_must_be_a_payment_date_for_the_tranche_figures():
    out = REGISTRY["NPL_TRANCHE_EL"](TAPE, TRANCHES, BASE + [["as_of_months", 13]], None, None,
                                     None, False, [["loan_id", "month", "amount"]])
    assert isinstance(out, XlError) and out.code == "#NUM!" and "as_of_months" in out.message
    with pytest.raises(DomainError, match="legal final"):
        surveillance.remaining_deal(valued_tape(TAPE), TRANCHES, BASE + [["as_of_months", 60]])


def test_deal_state_from_the_booked_collections():
    # No tax, fees or reserve: with period-1 collections of 1,000 the senior (9,000 at 3 %,
    # six months: interest 9,000 x 0.03 x 0.5 = 135) gets 135 interest then 865 principal
    # (pass-through), so 8,135 outstanding at month 6; the mezzanine's interest
    # (3,000 x 0.05 x 0.5 = 75) is unpaid, nothing else moves.
    settings = parse_settings(dict(BASE[1:]) | {"as_of_months": 6})
    coll = pd.DataFrame({"loan_id": ["L0"], "month": [6.0], "amount": [1000.0]})
    deal = surveillance.remaining_deal(valued_tape(TAPE), TRANCHES, settings, coll)
    assert deal.outstanding["A"] == pytest.approx(8135.0)
    assert deal.outstanding["B"] == pytest.approx(3000.0)
    assert deal.outstanding["S"] == pytest.approx(6000.0)
    assert [t.balance for t in deal.tranches] == pytest.approx([8135.0, 3000.0, 6000.0])
    assert deal.reserve == 0.0
