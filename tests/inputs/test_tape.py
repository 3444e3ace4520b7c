"""The loan tape reader: headers in English or Chinese, defaults, every problem at once with
its cell address."""

import math

import pytest

from npl_xl.errors import TableError
from npl_xl.inputs.tape import parse_origin, read_tape
from npl_xl.workbook.a1 import sheet_address

ENGLISH = [["loan_id", "province", "claim", "collateral_type", "collateral_value"],
           ["L1", "Zhejiang", 100.0, "residential", 150.0]]


def test_chinese_headers_any_order_extra_columns_kept_defaults_applied():
    rows = [["备注", "未偿本息", "贷款编号", "抵押物类型", "省份", "评估价值", "处置阶段", "法律瑕疵",
             "抵押顺位", "保证人回收", "预期回收时间"],
            ["note 1", 100.0, 1001.0, "住宅", "浙江省", 150.0, "一拍", "租赁、唯一住房", 2.0, 5.0, 9.0],
            [None, None, None, None, None, None, None, None, None, None, None],  # blank row skipped
            ["note 2", 50.0, "A-2", "信用", "ｊｓ", None, None, None, None, None, None]]
    tape = read_tape(rows)
    assert list(tape.loan_id) == ["1001", "A-2"]  # a numeric id arrives as a float
    assert list(tape.province) == ["Zhejiang", "Jiangsu"]
    assert list(tape.collateral_type) == ["residential", "none"]
    assert list(tape.stage) == ["auction_1", "not_filed"]
    assert list(tape.defects) == ["lease,sole_residence", ""]
    assert list(tape.lien_rank) == [2, 1]
    assert list(tape.collateral_value) == [150.0, 0.0]
    assert list(tape.guarantor_recovery) == [5.0, 0.0] and list(tape.prior_claims) == [0.0, 0.0]
    assert tape.expected_months[0] == 9.0 and math.isnan(tape.expected_months[1])
    assert math.isnan(tape.expected_recovery[0]) and math.isnan(tape.recovery_sd[1])
    assert list(tape["备注"]) == ["note 1", "note 2"]
    assert list(tape.columns[:3]) == ["loan_id", "borrower", "province"]


def test_every_problem_reported_at_once_with_cell_addresses():
    rows = [["loan_id", "province", "claim", "collateral_type", "collateral_value", "stage",
             "defects", "lien_rank", "expected_recovery", "recovery_sd"],
            ["a", "ZZ", "abc", "house", None, None, None, None, None, None],
            ["a", "JS", -1.0, "none", None, "appeal", "flood", 0.5, None, None],
            ["c", "JS", 10.0, "boat", 5.0, None, None, None, 11.0, 0.7],
            [None, "JS", 10.0, "住宅", True, None, None, None, None, None]]
    with pytest.raises(TableError) as info:
        read_tape(rows, origin="Tape!B3")
    problems = info.value.problems
    expected = [
        "row 1 (Tape!C4), column province: unknown province text 'ZZ'",
        "row 1 (Tape!D4), column claim: text 'abc' where a number is required",
        "row 2 (Tape!D5), column claim: must be > 0, got -1",
        "row 3 (Tape!E6), column collateral_type: unknown collateral type text 'boat'",
        "row 2 (Tape!G5), column stage: unknown stage text 'appeal'",
        "row 2 (Tape!H5), column defects: unknown defect 'flood'",
        "row 2 (Tape!I5), column lien_rank: must be >= 1, got 0.5",
        "row 3 (Tape!K6), column recovery_sd: must be in [0, 0.5], got 0.7",
        "row 4 (Tape!B7), column loan_id: is blank but required",
        "row 4 (Tape!F7), column collateral_value: TRUE where a number is required",
        "row 2 (Tape!B5), column loan_id: duplicate loan_id 'a' (first in row 1)",
        "row 1 (Tape!F4), column collateral_value: is blank but collateral_type is residential",
        "row 3 (Tape!J6), column expected_recovery: 11 exceeds the claim 10",
    ]
    for part in expected:
        assert any(p.startswith(part) for p in problems), (part, problems)
    assert info.value.excel_code == "#VALUE!"
    assert str(info.value).startswith("tape: ")


def test_missing_and_duplicate_columns():
    with pytest.raises(TableError) as info:
        read_tape([["loan_id", "贷款编号", "claim"], ["x", "y", 1.0]])
    text = str(info.value)
    assert "Tape!B1: column loan_id appears twice (also Tape!A1)" in text
    assert "column province (省份) is missing" in text
    assert "column collateral_type (抵押物类型) is missing" in text


def test_no_header():
    with pytest.raises(TableError, match="no header row"):
        read_tape([])


def test_addresses():
    # 0-based (row, col), row first, as everywhere (npl_xl.workbook.a1)
    assert parse_origin("Tape!A1") == ("Tape", 0, 0)
    assert parse_origin("'Loan Tape'!$B$3") == ("Loan Tape", 2, 1)
    assert parse_origin("AA10") == ("", 9, 26)
    assert sheet_address("Tape", 4, 27) == "Tape!AB5"
    assert sheet_address("Loan Tape", 0, 0) == "'Loan Tape'!A1"
    with pytest.raises(Exception, match="origin"):
        parse_origin("nowhere")


def test_english_minimal_tape():
    tape = read_tape(ENGLISH)
    assert tape.loc[0, "stage"] == "not_filed" and tape.loc[0, "defects"] == ""
