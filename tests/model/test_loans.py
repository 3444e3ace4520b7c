"""Loan valuation: hand-computed loans, properties, and the vectorised tape path against the
scalar reference."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npl_xl.inputs.codes import COLLATERAL_CODES, DEFECT_CODES, PROVINCES, STAGE_CODES
from npl_xl.errors import TableError
from npl_xl.model.loans import loan_recovery, value_tape
from npl_xl.sheet.registry import load_all
from npl_xl.inputs.tape import read_tape

R = load_all()
# residential tier A ladder (start .75, cut .2, p .45/.45/.35, premiums .15/.08/0), in kind at start_2:
# .45 x .8625 + .2475 x .648 + .105875 x .60 + .196625 x .60 = .730005 of the appraisal
TIER_A_RES = 0.388125 + 0.16038 + 0.063525 + 0.117975


def test_secured_loan_by_hand():
    # claim 200, appraisal 150 in Zhejiang: proceeds 150 x .730005 = 109.50075;
    # less 4% costs: 105.120720 (< claim). Grade D1 (sd .10; cap .9 sqrt(.5256 x .4744) = .449)
    v = loan_recovery(200.0, 150.0, "住宅", "浙江")
    assert TIER_A_RES == pytest.approx(0.730005)
    assert v.expected_recovery == pytest.approx(150 * TIER_A_RES * 0.96)
    assert v.expected_months == pytest.approx(12.16775)
    assert (v.recovery_sd, v.difficulty, v.region_tier) == (0.10, "D1", "A")
    # sole residence: deduct 10% of proceeds (10.950075) -> 94.170645; D3 sd .20; +3 months
    v = loan_recovery(200.0, 150.0, "住宅", "浙江", defects=["唯一住房"])
    assert v.expected_recovery == pytest.approx(150 * TIER_A_RES * (0.96 - 0.10))
    assert v.expected_months == pytest.approx(15.16775)
    assert (v.recovery_sd, v.difficulty) == (0.20, "D3")
    # pre-registration keeps 0.79 of the net; plus borrower 5 and other 3
    v = loan_recovery(200.0, 150.0, "住宅", "浙江", defects=["预告抵押登记"], borrower=5.0, other=3.0)
    assert v.expected_recovery == pytest.approx(0.79 * 150 * TIER_A_RES * 0.96 + 8.0)
    # prior claims 50 come off before this lender: 105.12072 - 50 = 55.12072; grade D4
    v = loan_recovery(200.0, 150.0, "住宅", "浙江", prior_claims=50.0)
    assert v.expected_recovery == pytest.approx(150 * TIER_A_RES * 0.96 - 50)
    assert v.difficulty == "D4"


def test_recovery_capped_at_claim_and_sd_zero_when_certain():
    v = loan_recovery(100.0, 150.0, "residential", "ZJ", guarantor=50.0)
    assert v.expected_recovery == 100.0 and v.recovery_sd == 0.0  # mu = 1: cap .9 sqrt(0) = 0


def test_unsecured_loans():
    # guarantor 30 of 100, tier B: grade D4 sd .25 (< cap .9 sqrt(.3 x .7) = .412);
    # months: 1.5 + 6.35 + 1 + unsecured enforcement 6 + 2 = 16.85
    v = loan_recovery(100.0, guarantor=30.0, province="Fujian")
    assert (v.expected_recovery, v.difficulty, v.recovery_sd) == (30.0, "D4", 0.25)
    assert v.expected_months == pytest.approx(16.85)
    # borrower 10 only: D5 sd .30 capped at .9 sqrt(.1 x .9) = .27; blank province = tier B
    v = loan_recovery(100.0, borrower=10.0)
    assert v.recovery_sd == pytest.approx(0.27) and v.difficulty == "D5" and v.region_tier == "B"
    assert v.expected_months == pytest.approx(16.85)


def test_loan_at_distribution_uses_price_given_a_sale():
    # tier A residential, sold: E[price | sold] = .612030 / .803375 of the appraisal
    v = loan_recovery(1000.0, 100.0, "residential", "SH", "分配")
    assert v.expected_recovery == pytest.approx(100 * 0.612030 / 0.803375 * 0.96)
    assert v.expected_months == pytest.approx(1.5)


claims = st.floats(1.0, 1e8)
fractions = st.floats(0.0, 3.0)
stages = st.sampled_from(STAGE_CODES)
secured_types = st.sampled_from(COLLATERAL_CODES[:-1])
defect_sets = st.sets(st.sampled_from(DEFECT_CODES))
provinces = st.sampled_from(PROVINCES.codes)


@settings(max_examples=300, deadline=None)
@given(claims, fractions, secured_types, provinces, stages, defect_sets, fractions, fractions, fractions)
def test_loan_properties(claim, cover, ctype, province, stage, defects, prior, guarantor, extra):
    v = loan_recovery(claim, cover * claim, ctype, province, stage, sorted(defects),
                      guarantor=guarantor * claim * 0.1, prior_claims=prior * claim)
    mu = v.expected_recovery / claim
    assert 0.0 <= v.expected_recovery <= claim * (1 + 1e-12)
    # the sd keeps a Beta feasible: sd <= 0.9 sqrt(mu(1-mu)) < sqrt(mu(1-mu)) unless 0
    assert v.recovery_sd <= 0.9 * math.sqrt(max(mu * (1 - mu), 0.0)) + 1e-12
    assert v.recovery_sd == 0 or v.recovery_sd ** 2 < mu * (1 - mu)
    more_prior = loan_recovery(claim, cover * claim, ctype, province, stage, sorted(defects),
                               guarantor=guarantor * claim * 0.1, prior_claims=(prior + extra) * claim)
    assert more_prior.expected_recovery <= v.expected_recovery + 1e-9 * claim
    with_defect = loan_recovery(claim, cover * claim, ctype, province, stage,
                                sorted(defects | {"lease"}), guarantor=guarantor * claim * 0.1,
                                prior_claims=prior * claim)
    assert with_defect.expected_months >= v.expected_months - 1e-12
    assert with_defect.expected_recovery <= v.expected_recovery + 1e-9 * claim


# --- vectorised path against the scalar reference -------------------------------------

def random_tape(n, seed):
    rng = np.random.default_rng(seed)
    ctype = rng.choice(COLLATERAL_CODES, n)
    claim = rng.lognormal(14, 1.2, n)
    rows = [["loan_id", "province", "claim", "collateral_type", "collateral_value", "lien_rank",
             "prior_claims", "stage", "defects", "borrower_recovery", "guarantor_recovery",
             "other_recovery"]]
    for i in range(n):
        defects = ",".join(rng.choice(DEFECT_CODES, rng.integers(0, 3), replace=False))
        rows.append([f"L{i}", str(rng.choice(PROVINCES.codes)), float(claim[i]), str(ctype[i]),
                     None if ctype[i] == "none" else float(claim[i] * rng.uniform(0, 2.5)),
                     float(rng.choice([1, 1, 1, 2])), float(rng.choice([0.0, claim[i] * 0.2])),
                     str(rng.choice(STAGE_CODES)), defects or None,
                     float(claim[i] * rng.uniform(0, 0.1)),
                     float(rng.choice([0.0, claim[i] * rng.uniform(0, 0.3)])), 0.0])
    return read_tape(rows)


def test_value_tape_agrees_with_loan_by_loan_valuation():
    tape = random_tape(400, 7)
    valued = value_tape(tape)
    for row in valued.itertuples():
        v = loan_recovery(row.claim, None if row.collateral_type == "none" else row.collateral_value,
                          row.collateral_type, row.province, row.stage,
                          row.defects.split(",") if row.defects else (), row.borrower_recovery,
                          row.guarantor_recovery, row.other_recovery, row.prior_claims, row.lien_rank)
        assert row.expected_recovery == pytest.approx(v.expected_recovery, rel=1e-12, abs=1e-9)
        assert row.expected_months == pytest.approx(v.expected_months, rel=1e-12)
        assert row.recovery_sd == pytest.approx(v.recovery_sd, rel=1e-12, abs=1e-15)
        assert (row.difficulty, row.region_tier) == (v.difficulty, v.region_tier)
        assert row.region_id == int(PROVINCES.codes.index(row.province)) + 1


def test_value_tape_honours_overrides_and_keeps_columns():
    tape = random_tape(5, 1)
    tape["expected_recovery"] = [tape.claim[0] * 0.5, np.nan, np.nan, np.nan, np.nan]
    tape["expected_months"] = [np.nan, 7.0, np.nan, np.nan, np.nan]
    tape["recovery_sd"] = [0.05, np.nan, np.nan, np.nan, np.nan]
    tape["my_note"] = list("abcde")
    valued = value_tape(tape)
    assert valued.expected_recovery[0] == tape.claim[0] * 0.5 and valued.recovery_sd[0] == 0.05
    assert valued.expected_months[1] == 7.0
    assert list(valued.my_note) == list("abcde")
    assert list(valued.columns[-3:]) == ["region_tier", "region_id", "difficulty"]
    assert list(valued.columns[:-3]) == list(tape.columns)
    # an infeasible sd override is refused, naming the loan
    tape["recovery_sd"] = [0.6, np.nan, np.nan, np.nan, np.nan]
    with pytest.raises(TableError, match="loan L0: recovery_sd 0.6"):
        value_tape(tape)


def test_value_tape_empty():
    tape = read_tape([["loan_id", "province", "claim", "collateral_type"]])
    assert len(value_tape(tape)) == 0


# --- worksheet functions through the registry -----------------------------------------

def test_loan_recovery_registry_excel_shapes():
    row = R["NPL_LOAN_RECOVERY"](200.0, 150.0, "住宅", "浙江省", None, None, None, None, None)
    assert row == [[pytest.approx(150 * TIER_A_RES * 0.96), pytest.approx(12.16775), 0.10]]
    row = R["NPL_LOAN_RECOVERY"](200.0, 150.0, "RESIDENTIAL", "ＺＪ", "未诉", [["唯一住房"], [None]])
    assert row[0][0] == pytest.approx(150 * TIER_A_RES * 0.86)
    # a value without a type is residential; no value and no type is unsecured
    assert R["NPL_LOAN_RECOVERY"](200.0, 150.0, None, "ZJ") == R["NPL_LOAN_RECOVERY"](200.0, 150.0, "住宅", "ZJ")
    assert R["NPL_LOAN_RECOVERY"](100.0, None, None, "FJ", None, None, None, 30.0)[0][:2] == [30.0, pytest.approx(16.85)]
    assert R["NPL_LOAN_RECOVERY"](100.0, None, None, None, None, None, None, None, None, 0.0, 2.0)[0][0] == 0.0


@pytest.mark.parametrize("args, code, argument", [
    ((None,), "#VALUE!", "claim"),
    (("abc",), "#VALUE!", "claim"),
    ((0.0,), "#NUM!", "claim"),
    ((100.0, -1.0, "住宅"), "#NUM!", "collateral_value"),
    ((100.0, None, "住宅"), "#VALUE!", "collateral_value"),
    ((100.0, 50.0, "none"), "#VALUE!", "collateral_value"),
    ((100.0, 50.0, "boat"), "#N/A", "collateral_type"),
    ((100.0, 50.0, None, "Atlantis"), "#N/A", "province"),
    ((100.0, 50.0, None, None, "appeal"), "#N/A", "stage"),
    ((100.0, 50.0, None, None, None, "flood"), "#N/A", "defects"),
    ((100.0, 50.0, None, None, None, None, -1.0), "#NUM!", "borrower"),
    ((100.0, 50.0, None, None, None, None, None, "x"), "#VALUE!", "guarantor"),
    ((100.0, 50.0, None, None, None, None, None, None, -1.0), "#NUM!", "other"),
    ((100.0, 50.0, None, None, None, None, None, None, None, -1.0), "#NUM!", "prior_claims"),
    ((100.0, 50.0, None, None, None, None, None, None, None, None, 0.0), "#NUM!", "lien_rank"),
    ((100.0, 50.0, None, None, None, None, None, None, None, None, 1.5), "#NUM!", "lien_rank"),
])
def test_loan_recovery_bad_inputs(args, code, argument):
    result = R["NPL_LOAN_RECOVERY"](*args)
    assert result.code == code and result.message.startswith(argument), result


TAPE = [["贷款编号", "省份", "未偿本息", "抵押物类型", "评估价值", "五级分类"],
        ["L1", "浙江", 2e6, "住宅", 3e6, "损失"],
        ["L2", "JS", 7e5, "信用", None, "可疑"],
        ["L3", "XJ", 6e7, "商铺", 5e7, "损失"],
        ["L4", "福建", 8e6, "住宅", 9e6, "可疑"]]


def test_strat_by_hand():
    # by province, largest claim first; share = claim / 70.7m
    out = R["NPL_STRAT"](TAPE, "省份")
    assert out[0] == ["province", "count", "sum_claim", "share"]
    assert out[1] == ["Xinjiang", 1.0, 6e7, pytest.approx(6e7 / 70.7e6)]
    assert [r[0] for r in out[1:]] == ["Xinjiang", "Fujian", "Zhejiang", "Jiangsu"]
    # balance buckets in bucket order, empty ones included: <1m: 0.7m; 1m-5m: 2m; 5m-10m: 8m; >=50m: 60m
    out = R["NPL_STRAT"](TAPE, "balance")
    assert [r[:3] for r in out[1:]] == [["<1m", 1.0, 7e5], ["1m-5m", 1.0, 2e6], ["5m-10m", 1.0, 8e6],
                                        ["10m-50m", 0.0, 0.0], [">=50m", 1.0, 6e7]]
    # an extra column (五级分类), with a measure
    out = R["NPL_STRAT"](TAPE, "五级分类", "评估价值")
    assert out[1] == ["损失", 2.0, 5.3e7, pytest.approx(5.3e7 / 6.2e7)]
    # valued columns: expected recovery by region tier (L2 unsecured recovers 0)
    out = R["NPL_STRAT"](TAPE, "region_tier", "expected_recovery")
    assert sum(r[3] for r in out[1:]) == pytest.approx(1.0)
    assert {r[0] for r in out[1:]} == {"A", "B", "C"}


def test_strat_bad_inputs():
    assert R["NPL_STRAT"](TAPE, "colour").code == "#VALUE!"
    assert R["NPL_STRAT"](TAPE, "colour").message.startswith("by")
    assert R["NPL_STRAT"](TAPE, "省份", "五级分类").message.startswith("measure")
    bad = [row[:] for row in TAPE]
    bad[2][2] = "abc"
    result = R["NPL_STRAT"](bad, "省份")
    assert result.code == "#VALUE!" and "row 2 (Tape!C3), column claim" in result.message


def test_strat_measure_blank_cells_count_as_zero_text_is_named():
    tape = [["loan_id", "province", "claim", "collateral_type", "arrears"],
            ["L1", "ZJ", 100.0, "none", 5.0], ["L2", "JS", 200.0, "none", None],
            ["L3", "JS", 50.0, "none", 7.0]]
    # arrears by province: Jiangsu 0 + 7 = 7, Zhejiang 5; shares 7/12 and 5/12
    assert R["NPL_STRAT"](tape, "province", "arrears") == [
        ["province", "count", "sum_arrears", "share"], ["Jiangsu", 2.0, 7.0, pytest.approx(7 / 12)],
        ["Zhejiang", 1.0, 5.0, pytest.approx(5 / 12)]]
    tape[3][4] = "abc"
    result = R["NPL_STRAT"](tape, "province", "arrears")
    assert result.code == "#VALUE!"
    assert result.message == ("measure: column arrears holds text ('abc' in loan 3); "
                              "a numeric column is required")


# --- headless recalculation of a workbook using every function of this module family ------

def test_headless_recalc_of_a_workbook_using_each_function(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    from openpyxl.workbook.defined_name import DefinedName
    from openpyxl.worksheet.formula import ArrayFormula
    from openpyxl.worksheet.table import Table

    from npl_xl.recalc import evaluate_workbook

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Tape"
    for row in TAPE:
        sheet.append(row)
    sheet.add_table(Table(displayName="Tape", ref="A1:F5"))
    book.defined_names["LoanTape"] = DefinedName("LoanTape", attr_text="Tape!$A$1:$F$5")
    calc = book.create_sheet("Calc")
    inputs = {"F1": 0.5, "G1": 0.5, "H1": 0.5, "F2": 0.1, "G2": 0.05, "H2": 0.0,
              "F3": 10.0, "F4": 12.0, "G3": 1.03, "H3": 0.98, "G4": 1.0, "H4": 1.0,
              "I3": True, "I4": False, "J1": "stage", "K1": "A", "L1": "B", "M1": "C",
              "J2": "not_filed", "K2": 11.0, "L2": 1.5, "M2": 2.0}
    for cell, value in inputs.items():
        calc[cell] = value
    formulas = {  # cell or range -> (formula, expected from the registry / hand values)
        "A1": ('=NPL_JUDICIAL_MONTHS("浙江")', 12.16775),
        "A2": ('=NPL_JUDICIAL_MONTHS("福建","一拍","商铺","租赁,轮候查封")',
               R["NPL_JUDICIAL_MONTHS"]("福建", "一拍", "商铺", "租赁,轮候查封")),
        "A3:C7": ('=NPL_JUDICIAL_SCHEDULE("XJ","一拍")', R["NPL_JUDICIAL_SCHEDULE"]("XJ", "一拍")),
        "A8:D8": ("=NPL_AUCTION_VALUE(100,0.7,0.2,F1:H1,F2:H2)", [[67.2, 0.875, 1.75, 4.5]]),
        "A9:B9": ("=NPL_COMPS_VALUE(100,F3:F4,G3:H4,Z99,I3:I4,0.1)", [[10.447, 1044.7]]),
        "A10": ("=NPL_NET_RECOVERY(50,80,10,0.05,2)", 35.5),
        "A11:C11": ('=NPL_LOAN_RECOVERY(200,150,"住宅","浙江")',
                    [[150 * TIER_A_RES * 0.96, 12.16775, 0.10]]),
        "A12:D16": ('=NPL_STRAT(LoanTape,"省份")', R["NPL_STRAT"](TAPE, "省份")),
        "A17": ('=NPL_JUDICIAL_MONTHS("ZJ",Z99,Z99,Z99,J1:M2)', 12.16775 + 10),  # Z99 blank
        "A18": ('=NPL_AUCTION_VALUE(100,0.6)', "#NUM!"),
        "A19": ('=NPL_JUDICIAL_MONTHS("Atlantis")', "#N/A"),
    }
    for where, (formula, _) in formulas.items():
        if ":" in where:
            calc[where.split(":")[0]] = ArrayFormula(where, formula)
        else:
            calc[where] = formula
    path = tmp_path / "functions.xlsx"
    book.save(path)
    values = evaluate_workbook(path)
    from npl_xl.workbook.a1 import cell_address as address, parse_range
    for where, (formula, expected) in formulas.items():
        if ":" in where:
            row0, col0, row1, col1 = parse_range(where)
            got = [[values[f"Calc!{address(r, c)}"] for c in range(col0, col1 + 1)]
                   for r in range(row0, row1 + 1)]
        else:
            got = values[f"Calc!{where}"]
            expected, got = [[expected]], [[got]]
        for got_row, want_row in zip(got, expected):
            for g, w in zip(got_row, want_row):
                if isinstance(w, float):
                    assert g == pytest.approx(w, rel=1e-12), (where, formula)
                else:
                    assert str(g) == str(w), (where, formula, g)


def test_headless_omitted_argument_is_blank(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    from npl_xl.recalc import evaluate_workbook

    book = openpyxl.Workbook()
    book.active.title = "Calc"
    book.active["A1"] = "=NPL_NET_RECOVERY(100,80,,0.05)"  # prior_claims omitted = 0 anyway
    book.active["A2"] = '=NPL_JUDICIAL_MONTHS("ZJ",,"住宅")'  # stage omitted = not_filed
    book.active["A3"] = "=IF(TRUE,,3)"  # a native function still sees an omitted argument as 0
    book.save(tmp_path / "omitted.xlsx")
    values = evaluate_workbook(tmp_path / "omitted.xlsx")
    assert values["Calc!A1"] == pytest.approx(80.0)
    assert values["Calc!A2"] == pytest.approx(12.16775)
    assert values["Calc!A3"] == 0


def test_loan_recovery_assumptions_argument():
    # CostRates range with residential 10%: 150 x .730005 x 0.90
    costs = [["collateral_type", "cost_rate"], ["住宅", 0.10]]
    row = R["NPL_LOAN_RECOVERY"](200.0, 150.0, "住宅", "浙江", None, None, None, None, None, None, None, costs)
    assert row[0][0] == pytest.approx(150 * TIER_A_RES * 0.90)
    # the vectorised path with the same Assumptions agrees
    from npl_xl.inputs.assumptions import Assumptions
    tape = read_tape([["loan_id", "province", "claim", "collateral_type", "collateral_value"],
                      ["L1", "浙江", 200.0, "住宅", 150.0]])
    valued = value_tape(tape, Assumptions.from_tables({"CostRates": costs}))
    assert valued.expected_recovery[0] == pytest.approx(row[0][0], rel=1e-12)
