"""Tapes as they come from data rooms: header aliases, money units, claim parts, dates,
HeaderMap, unmapped required fields, and the data-quality report."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from npl_xl.errors import InputTypeError, TableError
from npl_xl.inputs.deal import parse_settings
from npl_xl.inputs.headers import aliases, map_headers, money_unit_factor, parse_header_map, split_unit
from npl_xl.inputs.quality import quality_report
from npl_xl.inputs.tape import inspect_tape, parse_date, read_tape
from npl_xl.model.loans import value_tape

CANONICAL = [
    ["loan_id", "borrower", "province", "claim", "collateral_type", "collateral_value", "stage", "defects"],
    ["L1", "A", "Zhejiang", 12_000_000.0, "commercial", 15_000_000.0, "judgment", ""],
    ["L2", "A", "Zhejiang", 3_500_000.0, "residential", 4_200_000.0, "auction_1", "lease"],
    ["L3", "B", "Jiangsu", 25_000_000.0, "industrial", 30_000_000.0, "enforcement", "waiting_seizure"],
    ["L4", "C", "Liaoning", 6_000_000.0, "residential", 5_000_000.0, "appraisal", "sole_residence"],
    ["L5", "D", "Fujian", 5_000_000.0, "none", None, "not_filed", "debtor_missing"],
]


def disclosure_style(rows):
    """The same loans as a disclosure-style tape: Chinese headers, money in 万元 (full-width
    brackets for some, half-width for others), the claim split 80 % principal, 20 % interest."""
    out = [["借款合同编号", "借款人名称", "所属地区", "未偿本金余额（万元）", "未偿利息(万元)", "抵押物类型",
            "抵押物评估价值（万元）", "处置阶段", "法律瑕疵", "客户经理"]]
    zh_province = {"Zhejiang": "浙江省", "Jiangsu": "江苏", "Liaoning": "辽宁省", "Fujian": "福建"}
    zh_type = {"commercial": "商业用房", "residential": "居住用房", "industrial": "工业厂房", "none": "信用"}
    zh_stage = {"judgment": "判决", "auction_1": "一拍", "enforcement": "执行", "appraisal": "评估",
                "not_filed": "未诉"}
    zh_defect = {"": None, "lease": "租赁", "waiting_seizure": "轮候查封", "sole_residence": "唯一住房",
                 "debtor_missing": "失联"}
    for loan_id, borrower, province, claim, ctype, value, stage, defects in rows[1:]:
        out.append([loan_id, borrower, zh_province[province], claim * 0.8 / 1e4, claim * 0.2 / 1e4,
                    zh_type[ctype], None if value is None else value / 1e4, zh_stage[stage],
                    zh_defect[defects], "张三"])
    return out


def test_disclosure_headers_in_wan_yuan_with_split_claim_value_like_the_canonical_tape():
    canonical = value_tape(read_tape(CANONICAL))
    raw = disclosure_style(CANONICAL)
    reading = inspect_tape(raw)
    assert reading.problems == []
    assert [f for _, _, f, _ in reading.mapping.matched] == [
        "loan_id", "borrower", "province", "principal", "interest", "collateral_type",
        "collateral_value", "stage", "defects"]
    assert reading.mapping.ignored == [(9, "客户经理")]  # kept as an extra column
    assert reading.mapping.units == {"principal": 1e4, "interest": 1e4, "collateral_value": 1e4}
    valued = value_tape(read_tape(raw))
    assert list(valued["客户经理"]) == ["张三"] * 5
    for column in ("claim", "collateral_value", "expected_recovery", "expected_months", "recovery_sd"):
        np.testing.assert_allclose(valued[column].to_numpy(float), canonical[column].to_numpy(float),
                                   rtol=1e-12, err_msg=column)
    assert list(valued["difficulty"]) == list(canonical["difficulty"])


def test_eba_names_and_codes_map_with_or_without_their_index():
    header = ["3.01 Loan Identifier", "Counterparty Identifier", "省份", "3.09", "Accrued Interest (on book)",
              "3.11 Other Balances", "Type of Immovable Property", "Latest External Valuation Amount (亿元)"]
    mapping = map_headers("tape", header, money_fields={"principal", "interest", "fees", "collateral_value"})
    assert list(mapping.fields) == ["loan_id", "borrower", "province", "principal", "interest", "fees",
                                    "collateral_type", "collateral_value"]
    assert mapping.units == {"collateral_value": 1e8}


def test_units_in_brackets_and_settings_money_unit():
    assert split_unit("未偿本金余额（万元）") == ("未偿本金余额", 1e4, "万元")
    assert split_unit("本金 [亿元]") == ("本金", 1e8, "亿元")
    assert split_unit("利息(含罚息、判决加倍利息)") == ("利息(含罚息、判决加倍利息)", None, None)
    assert money_unit_factor("万元") == 1e4 and money_unit_factor(1000) == 1000.0
    with pytest.raises(InputTypeError, match="money_unit"):
        money_unit_factor("美元")
    # workbook currency 万元: a header in 元 is divided by 10,000, a header without a unit is kept
    rows = [["loan_id", "province", "claim(元)", "collateral_type", "collateral_value"],
            ["L1", "浙江", 1_500_000.0, "住宅", 200.0]]
    tape = read_tape(rows, settings=parse_settings({"money_unit": "万元"}))
    assert tape.claim[0] == 150.0 and tape.collateral_value[0] == 200.0


def test_claim_from_parts_and_the_half_percent_consistency_problem():
    rows = [["loan_id", "province", "claim", "principal", "interest", "fees", "collateral_type"],
            ["L1", "浙江", None, 100.0, 20.0, 5.0, "none"],      # claim = 125
            ["L2", "浙江", 100.4, 90.0, 10.0, None, "none"],     # 0.4 % off: accepted
            ["L3", "浙江", 101.0, 90.0, 10.0, None, "none"]]     # 1 % off: a problem
    reading = inspect_tape(rows)
    assert reading.frame.claim.tolist() == [125.0, 100.4, 101.0]
    assert len(reading.problems) == 1
    assert reading.problems[0].startswith("row 3 (Tape!C4), column claim: claim 101.00 differs from "
                                          "principal + interest + fees = 100.00 (Tape!D4, Tape!E4, Tape!F4)")
    with pytest.raises(TableError):
        read_tape(rows)


@pytest.mark.parametrize("cell", [45356, 45356.0, "2024-03-05", "2024/3/5", "2024年3月5日", "２０２４年３月５日",
                                  "2024.03.05", "20240305", dt.date(2024, 3, 5), dt.datetime(2024, 3, 5)])
def test_dates_in_every_spelling(cell):
    # Excel serial 45356 = 2024-03-05 (1900 date system: serial 1 = 1900-01-01, with Excel's
    # phantom 1900-02-29, so day 0 is 1899-12-30)
    assert parse_date(cell) == dt.datetime(2024, 3, 5)


def test_bad_date_names_the_cell():
    rows = [["loan_id", "province", "claim", "collateral_type", "评估日期"],
            ["L1", "浙江", 10.0, "none", "2024年13月5日"]]
    with pytest.raises(TableError, match=r"Tape!E2\), column appraisal_date: text '2024年13月5日' is not a date"):
        read_tape(rows)


def test_unmapped_required_field_names_the_closest_headers():
    rows = [["贷款号", "地区", "本息合计金额", "类型"], ["L1", "浙江", 10.0, "none"]]
    with pytest.raises(TableError) as info:
        read_tape(rows)
    problems = info.value.problems
    assert any(p.startswith("column loan_id (贷款编号) is missing; closest headers: '贷款号' (Tape!A1)")
               for p in problems), problems
    assert any("column claim" in p and "'本息合计金额' (Tape!C1)" in p for p in problems), problems
    # and the HeaderMap table fixes it
    header_map = parse_header_map([["source header", "field"], ["贷款号", "loan_id"],
                                   ["本息合计金额", "未偿本息"], ["类型", "collateral_type"]])
    tape = read_tape(rows, header_map=header_map)
    assert tape.loan_id[0] == "L1" and tape.claim[0] == 10.0


def test_header_map_rejects_an_unknown_field():
    with pytest.raises(InputTypeError, match="row 2: field 'balance' is not a tape field"):
        parse_header_map([["source header", "field"], ["余额", "balance"]])


def test_alias_table_is_unambiguous_and_covers_every_field():
    from npl_xl.inputs.tape import COLLATERAL_COLUMNS, GUARANTEE_COLUMNS, TAPE_COLUMNS

    for kind, columns in (("tape", TAPE_COLUMNS), ("collateral", COLLATERAL_COLUMNS),
                          ("guarantees", GUARANTEE_COLUMNS)):
        fields = {a.field for a in aliases(kind)}
        assert fields == {c.name for c in columns}, kind
        for column in columns:  # the canonical and Chinese names are aliases
            names = {a.alias for a in aliases(kind) if a.field == column.name}
            assert {column.name, column.zh} <= names, column.name
    assert {a.source for a in aliases()} == {"canonical", "zh", "disclosure", "eba_its", "eba_v1", "variant"}


def test_appraisal_haircut_ages_old_appraisals():
    rows = [["loan_id", "province", "claim", "collateral_type", "collateral_value", "appraisal_date"],
            ["L1", "浙江", 100.0, "住宅", 200.0, "2021-03-05"],
            ["L2", "浙江", 100.0, "住宅", 200.0, None]]
    settings = parse_settings({"appraisal_haircut_per_year": 0.05, "cut_off_date": "2024-03-05"})
    tape = read_tape(rows, settings=settings)
    # 2021-03-05 to 2024-03-05 is 1,096 days = 3.0007 years of 365.25 days: 200 x 0.95^3.0007
    assert tape.collateral_value[0] == pytest.approx(200 * 0.95 ** (1096 / 365.25), rel=1e-12)
    assert tape.collateral_value[1] == 200.0 and tape.appraised_value[0] == 200.0
    assert read_tape(rows).collateral_value[0] == 200.0  # default 0: off
    with pytest.raises(TableError, match="cut_off_date"):
        read_tape(rows, settings=parse_settings({"appraisal_haircut_per_year": 0.05}))


def test_quality_report_shares_outliers_and_completeness():
    rows = [["loan_id", "province", "claim", "collateral_type", "collateral_value", "stage", "评估日期", "备注"],
            ["L1", "浙江", 100.0, "住宅", 20.0, "一拍", "2020-01-01", "x"],   # LTV 5; 4+ years old
            ["L2", "浙江", 100.0, "住宅", 200.0, None, "2023-06-30", None],
            ["L3", "浙江", -5.0, "信用", None, None, None, None],              # claim <= 0
            ["L4", "浙江", 100.0, "住宅", 150.0, "判决", None, None]]
    reading = inspect_tape(rows)
    report = quality_report(reading, "2024-03-05")
    fields = report.fields.set_index("field")
    assert fields.loc["stage", "share_filled"] == 0.5 and fields.loc["stage", "share_defaulted"] == 0.5
    assert fields.loc["collateral_value", "share_filled"] == 1.0  # 3 of 3 secured loans
    # L3's claim is filled (with a bad value: a problem and an outlier, not a blank)
    assert fields.loc["claim", "share_filled"] == 1.0 and fields.loc["claim", "share_missing"] == 0.0
    assert fields.loc["lien_rank", "share_filled"] == 0.0 and fields.loc["lien_rank", "share_defaulted"] == 1.0
    checks = report.outliers.set_index("loan_id")["check"].to_dict()
    assert report.outliers[["check", "loan_id", "cell"]].values.tolist() == [
        ["LTV > 3", "L1", "Tape!E2"], ["claim <= 0", "L3", "Tape!C4"],
        ["appraisal older than 3 years", "L1", "Tape!G2"]], checks
    # completeness: mean share filled over the model's ten fields
    # loan_id 1, province 1, claim 1, collateral_type 1, collateral_value 1, lien_rank 0,
    # prior_claims 0, stage .5, defects 0, appraisal_date .5 -> 6 / 10
    assert report.completeness == pytest.approx(0.6)
    assert report.headers["field"].tolist()[-1] == "(ignored: kept as an extra column)"
