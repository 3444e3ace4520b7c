"""NPL_BREAKEVEN on a 5-loan deal computed by hand, and bracketed with NPL_WATERFALL."""

import numpy as np
import pytest

from npl_xl.analysis.breakeven import base_collections, breakeven
from npl_xl.engine import Pool
from npl_xl.sheet.registry import load_all

REGISTRY = load_all()

# payment dates at months 6, 12, 18, 24 (legal final 24); no taxes, fees or reserve
SETTINGS = {"payment_months": 6, "legal_final_months": 24, "tax_rate": 0,
            "reserve_multiple": 0, "fixed_expenses": 0, "servicer_fee_rate": 0}
SETTINGS_ROWS = [["key", "value"]] + [[k, v] for k, v in SETTINGS.items()]
TRANCHES = [["name", "kind", "balance", "coupon"], ["Senior", "senior", 60.0, 0.04],
            ["Sub", "subordinated", 40.0, None]]
# loan: claim, expected recovery, expected month -> payment date
#   L1 100, 30, month 3  -> month 6  (period 1)
#   L2 100, 20, month 8  -> month 12 (period 2)
#   L3 100, 25, month 12 -> month 12 (period 2: on the date itself)
#   L4 100, 15, month 20 -> month 24 (period 4)
#   L5 100, 10, month 30 -> after the legal final: never collected
RECOVERY = [30.0, 20.0, 25.0, 15.0, 10.0]
MONTHS = [3.0, 8.0, 12.0, 20.0, 30.0]


def pool():
    return Pool.from_arrays([100.0] * 5, RECOVERY, MONTHS, [0.2] * 5)


def test_base_case_collections():
    assert base_collections(pool(), SETTINGS).tolist() == [30.0, 45.0, 0.0, 15.0]


def test_haircut_and_delay_by_hand():
    # Haircut h, f = 1 - h: collections 30f, 45f, 0, 15f. Senior interest per period is
    # 4% x 0.5 year = 2% of the start-of-period balance.
    #   period 1: interest 0.02 x 60 = 1.2; principal 30f - 1.2; balance 61.2 - 30f
    #   period 2: interest 0.02 (61.2 - 30f) = 1.224 - 0.6f;
    #             principal 45f - 1.224 + 0.6f = 45.6f - 1.224; balance 62.424 - 75.6f
    #   period 3: no cash; any balance left owes interest that cannot be paid: a miss.
    # So the senior misses exactly when 62.424 - 75.6 f > 0, f < 62.424 / 75.6:
    #   h* = 1 - 62.424 / 75.6 = 13.176 / 75.6 = 0.1742857...
    h_star = 13.176 / 75.6
    # Delay d (h = 0): L1 moves to month 12 once 3 + d > 6, so for d > 3 period 1 has no
    # cash and its interest (1.2) is missed. For 0 < d <= 3: L3 (12 + d) moves to month 18,
    # L2 (8 + d <= 11) and L4 (20 + d <= 23) stay; collections 30, 20, 25, 15:
    #   period 1: 1.2 interest, 28.8 principal, balance 31.2
    #   period 2: 0.624 interest, 19.376 principal, balance 11.824
    #   period 3: 0.23648 interest, 11.824 principal: repaid, no miss. So d* = 3.
    haircut, delay, collections = breakeven(pool(), TRANCHES, None, SETTINGS)
    assert h_star <= haircut <= h_star + 1e-4
    assert 3.0 < delay <= 3.0 + 0.01
    assert collections == pytest.approx(90.0 * (1 - haircut))
    # through the registry, from a tape with the same overrides
    tape = [["loan_id", "province", "claim", "collateral_type", "expected_recovery",
             "expected_months", "recovery_sd"]] + [
        [f"L{i + 1}", "江苏", 100.0, "none", r, m, 0.2] for i, (r, m) in enumerate(zip(RECOVERY, MONTHS))]
    out = REGISTRY["NPL_BREAKEVEN"](tape, TRANCHES, None, SETTINGS_ROWS)
    assert out == [[pytest.approx(haircut), pytest.approx(delay), pytest.approx(collections)]]


def _misses(rows):
    """The senior's PD event from an NPL_WATERFALL table: interest paid below what its
    start-of-period balance owes (2% a period), or a balance left at the end."""
    header = rows[0]
    interest = header.index("Senior_interest")
    balance = header.index("Senior_balance")
    start = 60.0
    for row in rows[1:]:
        if row[interest] < 0.02 * start - 1e-9:
            return True
        start = row[balance]
    return start > 1e-9


def test_bracketing_with_npl_waterfall():
    haircut, _, _ = breakeven(pool(), TRANCHES, "Senior", SETTINGS)
    base = base_collections(pool(), SETTINGS)
    waterfall = REGISTRY["NPL_WATERFALL"]
    above = waterfall([[c] for c in base * (1 - haircut + 0.001)], TRANCHES, SETTINGS_ROWS)
    below = waterfall([[c] for c in base * (1 - haircut - 0.001)], TRANCHES, SETTINGS_ROWS)
    assert not _misses(above)
    assert _misses(below)


def test_limits():
    # the base case already misses (senior too large for period 1's cash): both 0
    big = [TRANCHES[0], ["Senior", "senior", 3000.0, 0.04], TRANCHES[2]]
    assert breakeven(pool(), big, None, SETTINGS)[:2] == (0.0, 0.0)
    # a tiny zero-coupon senior repaid in period 1: a miss needs almost all cash gone
    tiny = [TRANCHES[0], ["Senior", "senior", 1.0, 0.0], TRANCHES[2]]
    h, d, _ = breakeven(pool(), tiny, None, SETTINGS)
    assert h == pytest.approx(1 - 1 / 90.0, abs=1e-4)  # total 90 f must still cover 1.0 by the final
    # without a coupon it misses only when nothing arrives by month 24: L1 (3 + d) is the
    # last loan inside the legal final, until d > 21
    assert 21.0 < d <= 21.01


def test_headless_recalculation_of_a_breakeven_cell(tmp_path):
    """NPL_BREAKEVEN typed in a workbook (a legacy array formula over 1x3) and computed by
    the headless engine gives the hand-computed break-evens."""
    import openpyxl
    import xlsxwriter

    from npl_xl.recalc import recalc_workbook

    tape = [["loan_id", "province", "claim", "collateral_type", "expected_recovery",
             "expected_months", "recovery_sd"]] + [
        [f"L{i + 1}", "江苏", 100.0, "none", r, m, 0.2] for i, (r, m) in enumerate(zip(RECOVERY, MONTHS))]
    source = tmp_path / "deal.xlsx"
    wb = xlsxwriter.Workbook(str(source))
    ws = wb.add_worksheet("Deal")
    for r, row in enumerate(tape):
        ws.write_row(r, 0, row)          # A1:G6
    for r, row in enumerate(TRANCHES):
        ws.write_row(r, 8, row)          # I1:L3
    for r, row in enumerate(SETTINGS_ROWS):
        ws.write_row(r, 13, row)         # N1:O7
    ws.write_array_formula("A10:C10", "{=NPL_BREAKEVEN(A1:G6,I1:L3,,N1:O7)}")
    wb.close()
    recalc_workbook(source, tmp_path / "deal.recalc.xlsx")
    values = [c.value for c in openpyxl.load_workbook(tmp_path / "deal.recalc.xlsx",
                                                      data_only=True)["Deal"]["A10:C10"][0]]
    h_star = 13.176 / 75.6
    assert h_star <= values[0] <= h_star + 1e-4 and 3.0 < values[1] <= 3.01
    assert values[2] == pytest.approx(90.0 * (1 - values[0]))
