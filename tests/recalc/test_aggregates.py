"""SUBTOTAL, AGGREGATE and the database functions, against hand computations.

Definitions: Microsoft's "SUBTOTAL function", "AGGREGATE function", "DSUM function"
(and DAVERAGE, DCOUNT, DCOUNTA, DGET, DMAX, DMIN, DPRODUCT, DSTDEV(P), DVAR(P)).
Workbooks are built with openpyxl and recomputed by the real engine.
"""

from __future__ import annotations

import math

import openpyxl
import pytest

from npl_xl.errors import XlError
from npl_xl.recalc import evaluate_workbook


def values_of(tmp_path, cells: dict) -> dict:
    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.title = "S"
    for where, value in cells.items():
        ws[where] = value
    path = tmp_path / "aggregates.xlsx"
    workbook.save(path)
    return {k.split("!", 1)[1]: v for k, v in evaluate_workbook(path).items()}


def code(value):
    return value.code if isinstance(value, XlError) else value


def test_subtotal_skips_nested_subtotals(tmp_path):
    """A1:A3 = 1, 2, 3; A4 = SUBTOTAL(9, A1:A3) = 6; A5:A6 = 10, 20; A7 = SUBTOTAL(9,
    A5:A6) = 30. A8 = SUBTOTAL(9, A1:A7) skips the subtotal cells A4 and A7:
    1+2+3+10+20 = 36 (SUM(A1:A7) would be 72). A9 SUBTOTAL(1, A1:A7) = 36/5 = 7.2;
    A10 SUBTOTAL(2, A1:A7) = 5 numbers; A11 SUBTOTAL(4, A1:A7) = 20; A12 SUBTOTAL(109,
    A1:A7) = 36 (no row is hidden); A13 SUBTOTAL(7, A1:A3) = sample sd of 1, 2, 3 = 1;
    A14 SUBTOTAL(12, A1:A3): no function 12 -> #VALUE!.
    """
    cells = {"A1": 1, "A2": 2, "A3": 3, "A4": "=SUBTOTAL(9,A1:A3)", "A5": 10, "A6": 20,
             "A7": "=SUBTOTAL(9,A5:A6)", "A8": "=SUBTOTAL(9,A1:A7)", "A9": "=SUBTOTAL(1,A1:A7)",
             "A10": "=SUBTOTAL(2,A1:A7)", "A11": "=SUBTOTAL(4,A1:A7)",
             "A12": "=SUBTOTAL(109,A1:A7)", "A13": "=SUBTOTAL(7,A1:A3)",
             "A14": "=SUBTOTAL(12,A1:A3)"}
    values = values_of(tmp_path, cells)
    assert values["A4"] == 6 and values["A7"] == 30 and values["A8"] == 36
    assert values["A9"] == pytest.approx(7.2) and values["A10"] == 5 and values["A11"] == 20
    assert values["A12"] == 36 and values["A13"] == pytest.approx(1.0)
    assert code(values["A14"]) == "#VALUE!"


def test_aggregate_options(tmp_path):
    """B1:B5 = 4, #DIV/0! (=1/0), 6, SUBTOTAL(9, B1) = 4, 10.

    B6 AGGREGATE(9, 6, B1:B5): errors ignored, nested subtotal counted: 4+6+4+10 = 24.
    B7 AGGREGATE(9, 7, B1:B5): the same (7 = hidden rows and errors): 24.
    B8 AGGREGATE(9, 3, B1:B5): errors and nested subtotals ignored: 4+6+10 = 20.
    B9 AGGREGATE(9, 4, B1:B5): nothing ignored: the #DIV/0!.
    B10 AGGREGATE(14, 6, B1:B5, 2): 2nd largest of 4, 6, 4, 10 = 6.
    B11 AGGREGATE(12, 6, B1:B5): median of 4, 4, 6, 10 = 5.
    B12 AGGREGATE(15, 2, B1:B5, 1): smallest of 4, 6, 10 (nested skipped) = 4.
    """
    cells = {"B1": 4, "B2": "=1/0", "B3": 6, "B4": "=SUBTOTAL(9,B1)", "B5": 10,
             "B6": "=AGGREGATE(9,6,B1:B5)", "B7": "=AGGREGATE(9,7,B1:B5)",
             "B8": "=AGGREGATE(9,3,B1:B5)", "B9": "=AGGREGATE(9,4,B1:B5)",
             "B10": "=AGGREGATE(14,6,B1:B5,2)", "B11": "=AGGREGATE(12,6,B1:B5)",
             "B12": "=AGGREGATE(15,2,B1:B5,1)"}
    values = values_of(tmp_path, cells)
    assert values["B6"] == 24 and values["B7"] == 24 and values["B8"] == 20
    assert code(values["B9"]) == "#DIV/0!"
    assert values["B10"] == 6 and values["B11"] == 5 and values["B12"] == 4


def test_database_functions(tmp_path):
    """A database of loans (A1:C7) and criteria ranges.

    | region | status   | balance |
    | North  | default  | 100     |
    | South  | current  | 200     |
    | North  | current  | 300     |
    | Nordic | default  | 400     |
    | South  | default  | (text "n/a") |
    | North  | default  | 600     |

    Criteria E1:E2 region = "North": text without an operator matches text beginning
    with it; "North" matches the three North rows (Nordic does not begin with "North"). DSUM = 100 + 300 + 600 = 1000; DAVERAGE =
    1000/3; DCOUNT(balance) = 3; DMAX 600, DMIN 100; DPRODUCT = 100*300*600 = 18e6.
    Criteria G1:H3 (two rows, ORed; columns ANDed): region "South" AND status "default",
    OR balance ">350": records 5 (South, default, "n/a") and 4, 6 (400, 600):
    DCOUNTA(balance) = 3 (the text counts), DCOUNT(balance) = 2 (numbers 400, 600),
    DSUM = 1000, DSTDEV = sd(400, 600) = 141.42135623730951, DVARP = 10000.
    Criteria J1:J2 region "Nor" (begins with): North x3 and Nordic: DSUM = 1400;
    field as a column number (3) gives the same.
    DGET with "=Nordic" (exact; typed as the formula ="=Nordic"): 400; with "North":
    three records -> #NUM!; with "West": none -> #VALUE!. DCOUNT without a field counts the matching records
    (3 for North). A field that is not a header: #VALUE!.
    """
    rows = [("region", "status", "balance"), ("North", "default", 100),
            ("South", "current", 200), ("North", "current", 300), ("Nordic", "default", 400),
            ("South", "default", "n/a"), ("North", "default", 600)]
    cells = {}
    for r, row in enumerate(rows, start=1):
        for c, value in zip("ABC", row):
            cells[f"{c}{r}"] = value
    cells.update({"E1": "region", "E2": "North",
                  "G1": "region", "H1": "status", "I1": "balance",
                  "G2": "South", "H2": "default", "I3": ">350",
                  "J1": "region", "J2": "Nor", "K1": "region", "K2": '="=Nordic"',
                  "L1": "region", "L2": "West"})
    formulas = {
        "N1": '=DSUM(A1:C7,"balance",E1:E2)', "N2": '=DAVERAGE(A1:C7,"balance",E1:E2)',
        "N3": '=DCOUNT(A1:C7,"balance",E1:E2)', "N4": '=DMAX(A1:C7,"balance",E1:E2)',
        "N5": '=DMIN(A1:C7,"balance",E1:E2)', "N6": '=DPRODUCT(A1:C7,"balance",E1:E2)',
        "N7": '=DCOUNTA(A1:C7,"balance",G1:I3)', "N8": '=DCOUNT(A1:C7,"balance",G1:I3)',
        "N9": '=DSUM(A1:C7,"Balance",G1:I3)', "N10": '=DSTDEV(A1:C7,"balance",G1:I3)',
        "N11": '=DVARP(A1:C7,"balance",G1:I3)', "N12": '=DSUM(A1:C7,"balance",J1:J2)',
        "N13": "=DSUM(A1:C7,3,J1:J2)", "N14": '=DGET(A1:C7,"balance",K1:K2)',
        "N15": '=DGET(A1:C7,"balance",E1:E2)', "N16": '=DGET(A1:C7,"balance",L1:L2)',
        "N17": "=DCOUNT(A1:C7,,E1:E2)", "N18": '=DSUM(A1:C7,"amount",E1:E2)',
    }
    values = values_of(tmp_path, {**cells, **formulas})
    assert values["N1"] == 1000 and values["N2"] == pytest.approx(1000 / 3)
    assert values["N3"] == 3 and values["N4"] == 600 and values["N5"] == 100
    assert values["N6"] == 18e6
    assert values["N7"] == 3 and values["N8"] == 2 and values["N9"] == 1000
    assert values["N10"] == pytest.approx(math.sqrt(20000)) and values["N11"] == 10000
    assert values["N12"] == 1400 and values["N13"] == 1400
    assert values["N14"] == 400 and code(values["N15"]) == "#NUM!"
    assert code(values["N16"]) == "#VALUE!" and values["N17"] == 3
    assert code(values["N18"]) == "#VALUE!"


def test_index_zero_lookup_2d_and_not_equal_criteria(tmp_path):
    """Functions formulas 1.3.4 computes unlike Excel, as Microsoft documents them.

    A1:C3 = 1..9 row by row. INDEX(A1:C3, 0, 2) is column 2 (2, 5, 8): SUM = 15;
    INDEX(A1:C3, 2, 0) row 2 (4, 5, 6): SUM = 15; INDEX(A1:C3, 0, 0) all: 45;
    ROWS(INDEX(A1:C3, 0, 2)) = 3 (still a reference); INDEX(A1:C3, 4, 0) #REF!;
    INDEX(A1:C3, -1, 0) #VALUE!.
    LOOKUP(5, A1:C2): wider than tall, so the first row 1, 2, 3 is searched: the largest
    value <= 5 is 3, and the last row's value below it is 6. LOOKUP(8, A1:C3): square,
    so the first column 1, 4, 7: 7, and the last column's 9. LOOKUP(5, A1:B3, C1:C3):
    the 2-D lookup vector, taller than wide, is searched down its first column (1, 4, 7:
    4, the second row), and the result vector gives C2 = 6.
    A5:A10 = 23, 5, "x", blank, 23, 7: COUNTIFS("<>23") counts 5, "x", blank, 7 = 4;
    with also "<>5": 3; COUNTIFS("<>") non-blank: 5; COUNTIFS("=") blank: 1;
    SUMIFS(A5:A10, A5:A10, "<>23") = 5 + 7 = 12.
    """
    cells = {}
    for i in range(3):
        for j, c in enumerate("ABC"):
            cells[f"{c}{i + 1}"] = 3 * i + j + 1
    cells.update({"A5": 23, "A6": 5, "A7": "x", "A9": 23, "A10": 7})
    formulas = {"E1": "=SUM(INDEX(A1:C3,0,2))", "E2": "=SUM(INDEX(A1:C3,2,0))",
                "E3": "=SUM(INDEX(A1:C3,0,0))", "E4": "=ROWS(INDEX(A1:C3,0,2))",
                "E5": "=SUM(INDEX(A1:C3,4,0))", "E6": "=LOOKUP(5,A1:C2)",
                "E7": "=LOOKUP(8,A1:C3)", "E8": '=COUNTIFS(A5:A10,"<>23")',
                "E9": '=COUNTIFS(A5:A10,"<>23",A5:A10,"<>5")', "E10": '=COUNTIFS(A5:A10,"<>")',
                "E11": '=COUNTIFS(A5:A10,"=")', "E12": '=SUMIFS(A5:A10,A5:A10,"<>23")',
                "E13": "=SUM(INDEX(A1:C3,-1,0))", "E14": "=LOOKUP(5,A1:B3,C1:C3)"}
    values = values_of(tmp_path, {**cells, **formulas})
    assert [values[f"E{r}"] for r in (1, 2, 3, 4)] == [15, 15, 45, 3]
    assert code(values["E5"]) == "#REF!" and code(values["E13"]) == "#VALUE!"
    assert values["E6"] == 6 and values["E7"] == 9 and values["E14"] == 6
    assert [values[f"E{r}"] for r in (8, 9, 10, 11, 12)] == [4, 3, 5, 1, 12]


def test_yearfrac_all_bases(tmp_path):
    """YEARFRAC as Excel computes it (Microsoft's YEARFRAC; the day-count rules as in
    D. A. Wheeler's analysis of Excel's YEARFRAC).

    29 Feb 2004 -> 28 Feb 2005: basis 0 (US 30/360): both are the last day of February,
    so both count as day 30: 360/360 = 1. Basis 1: within a year that contains 29 Feb
    2004, so 365 days / 366 = 0.99726775956284153. Basis 2: 365/360; basis 3: 365/365
    = 1; basis 4 (European 30/360): (2005-2004)*360 + 0*30 + (28-29) = 359 -> 359/360.
    1 Jan 2023 -> 1 Jul 2024 (basis 1, over a year): 547 days / the average length of
    2023 and 2024, (365 + 366)/2: 547/365.5 = 1.4965800273597811.
    31 Jan 2001 -> 31 Mar 2001 basis 0: both 31 -> 30: 60/360; serial 1 -> 200 basis 0:
    1 Jan 1900 -> 18 Jul 1900 (Excel's fictitious 29 Feb 1900 counted): (18+210 -
    (1+30))/360 = 197/360. Basis 5 and -1: #NUM!; basis "x": #VALUE!; a date of -1 #NUM!;
    a blank basis cell is basis 0: 197/360 again. Serial 345 -> 1987 (10 Dec 1900 -> 9 Jun
    1905) basis 1: 1642 days over the average of 1900..1905, whose year lengths are the
    Gregorian ones (1900 has 365 days here, though Excel's calendar has a 29 Feb 1900):
    2191/6, so 1642*6/2191 = 4.496576905522592 (Excel's own value in formulas' test.xlsx).
    A numeric text basis is read as a number: basis "3" from 2.9 to 345: 343/365.
    """
    cells = {"H1": "x"}
    rows = [("DATE(2004,2,29)", "DATE(2005,2,28)", b) for b in range(5)] + [
        ("DATE(2023,1,1)", "DATE(2024,7,1)", 1), ("DATE(2001,1,31)", "DATE(2001,3,31)", 0),
        ("1", "200", 0), ("1", "200", 5), ("1", "200", -1), ("1", "200", "H1"),
        ("-1", "200", 0), ("1", "200", "Z99"), ("345", "1987", 1), ("2.9", "345", '"3"')]
    for r, (start, end, basis) in enumerate(rows, start=1):
        cells[f"A{r}"] = f"=YEARFRAC({start},{end},{basis})"
    values = values_of(tmp_path, cells)
    expected = [1.0, 365 / 366, 365 / 360, 1.0, 359 / 360, 547 / 365.5, 60 / 360, 197 / 360]
    for r, value in enumerate(expected, start=1):
        assert values[f"A{r}"] == pytest.approx(value, rel=1e-15), r
    assert values["A2"] == pytest.approx(0.99726775956284153, rel=1e-15)
    assert [code(values[f"A{r}"]) for r in (9, 10, 11, 12)] == \
        ["#NUM!", "#NUM!", "#VALUE!", "#NUM!"]
    assert values["A13"] == pytest.approx(197 / 360, rel=1e-15)
    assert values["A14"] == pytest.approx(1642 * 6 / 2191, rel=1e-15)
    assert values["A14"] == pytest.approx(4.496576905522592, rel=1e-15)
    assert values["A15"] == pytest.approx(343 / 365, rel=1e-15)


def test_text_with_a_format_from_a_cell_picks_its_section(tmp_path):
    """TEXT(value, format) with the format in a cell, sections positive;negative;zero;text
    (Microsoft, "Review guidelines for customizing a number format"). Format B1 =
    ##.00;-  ##.0;"ZERO";->@<-@: 1 -> "1.00" (first section); -1 -> "-  1.0" (the second
    section, for the absolute value: it writes its own sign); 0 -> "ZERO"; the text "X"
    -> "->X<-X" (the fourth, @ = the text). B2 = 0;(0): -5 -> "(5)". With @ in a number
    section (B3 = ;-  ##.0;"ZERO"@;"X") the format is invalid: #VALUE!. Text with no
    text section comes back as it is: TEXT("abc", "0.00") = "abc"; a blank is 0:
    TEXT(Z99, "0.00") = "0.00". Time text (Excel's cached values in pycel's text.xlsx):
    "23:99" is 23 h 99 min = 1479/1440 = 1.027083 days -> "1.02708" with #.#####;
    "0:59:99" is 3639 s = .042118 -> ".04212"; "24:99" is no time Excel takes: the text.
    Over a range, one text per cell: TEXT(D1:G1, "#.00") over 1.9, -1, "abc", TRUE is
    "1.90", "-1.00", "abc", "TRUE". Elapsed time (not wrapped at 24 h): 1.5 days with
    [h]:mm:ss is 36 h -> "36:00:00"; -1 day with [h] is "-24", with [h]:m #VALUE! (Excel
    signs the bracket part alone); 3601 s = 0.0416782407... days with [m]:ss.00 is
    60 min 1 s -> "60:01.00"."""
    cells = {"B1": '##.00;-  ##.0;"ZERO";->@<-@', "B2": "0;(0)", "B3": ';-  ##.0;"ZERO"@;"X"',
             "A4": "X", "C1": "=TEXT(1,B1)", "C2": "=TEXT(-1,B1)", "C3": "=TEXT(0,B1)",
             "C4": "=TEXT(A4,B1)", "C5": "=TEXT(-5,B2)", "C6": "=TEXT(A4,B3)",
             "C7": '=TEXT("abc","0.00")', "C8": '=TEXT(Z99,"0.00")',
             "C9": '=TEXT("23:99","#.#####")', "C10": '=TEXT("0:59:99","#.#####")',
             "C11": '=TEXT("24:99","#.#####")', "C12": '=TEXT(1.5,"[h]:mm:ss")',
             "C13": '=TEXT(-1,"[h]")', "C14": '=TEXT(-1,"[h]:m")',
             "C15": '=TEXT(3601/86400,"[m]:ss.00")', "D1": 1.9, "E1": -1, "F1": "abc", "G1": True}
    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.title = "S"
    for where, value in cells.items():
        ws[where] = value
    from openpyxl.worksheet.formula import ArrayFormula

    ws["D3"] = ArrayFormula("D3:G3", '=TEXT(D1:G1,"#.00")')
    workbook.save(tmp_path / "text.xlsx")
    values = {k.split("!", 1)[1]: v for k, v in evaluate_workbook(tmp_path / "text.xlsx").items()}
    assert [values[c] for c in ("D3", "E3", "F3", "G3")] == ["1.90", "-1.00", "abc", "TRUE"]
    assert [values[f"C{r}"] for r in range(1, 6)] == ["1.00", "-  1.0", "ZERO", "->X<-X", "(5)"]
    assert code(values["C6"]) == "#VALUE!" and values["C7"] == "abc" and values["C8"] == "0.00"
    assert [values["C9"], values["C10"], values["C11"]] == ["1.02708", ".04212", "24:99"]
    assert [values["C12"], values["C13"], values["C15"]] == ["36:00:00", "-24", "60:01.00"]
    assert code(values["C14"]) == "#VALUE!"
