"""`npl-xl recalc` computes what Excel computes: the minimal cases of issue 17.

Each workbook is built here with openpyxl (formulas as Excel would store them), recomputed
by the real engine, and compared with values derived by hand in the comments from Excel's
documented semantics.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from npl_xl.errors import XlError
from npl_xl.recalc import evaluate_workbook, recalc_workbook


def book(tmp_path, cells: dict, name: str = "case.xlsx", sheet: str = "S", setup=None):
    """A one-sheet workbook holding ``cells`` ({'A1': value or formula}); its path."""
    import openpyxl

    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.title = sheet
    for where, value in cells.items():
        ws[where] = value
    if setup is not None:
        setup(workbook)
    path = tmp_path / name
    workbook.save(path)
    return path


def values_of(path) -> dict:
    return {k.split("!", 1)[1]: v for k, v in evaluate_workbook(path).items()}


def code(value) -> str | None:
    return value.code if isinstance(value, XlError) else None


# ------------------------------------------------------------------- 1. no false cycles

def test_loan_schedule_balance_and_interest_are_not_circular(tmp_path):
    """A2 = 1000; A3:A12 `=A2-B3` (balance), B3:B12 `=A2*0.1` (interest on it).

    B_r = 0.1 A_{r-1} and A_r = A_{r-1} - B_r = 0.9 A_{r-1}, so A_r = 1000 * 0.9^(r-2):
    A3 = 900, B3 = 100, A4 = 810, B4 = 90, ..., A12 = 1000 * 0.9^10 = 348.67844010.
    The interest column reads no cell of its own column (it used to be grouped into one
    unit, which then read the balance column that reads it back: a false cycle).
    """
    cells = {"A2": 1000}
    for r in range(3, 13):
        cells[f"A{r}"] = f"=A{r - 1}-B{r}"
        cells[f"B{r}"] = f"=A{r - 1}*0.1"
    values = values_of(book(tmp_path, cells))
    for r in range(3, 13):
        assert values[f"A{r}"] == pytest.approx(1000 * 0.9 ** (r - 2), rel=1e-12)
        assert values[f"B{r}"] == pytest.approx(100 * 0.9 ** (r - 3), rel=1e-12)
    assert values["A12"] == pytest.approx(348.67844010, rel=1e-9)


def test_filled_down_absolute_times_difference_and_countdown(tmp_path):
    """`=$E$3*($B2-$C7)` filled down beside a chain, and `=B3-1` with `=DEC2BIN(D3)`.

    E3 = 2, B2:B6 = 10, 20, 30, 40, 50; C7:C11 `=C6+1` from C6 = 0 gives C7..C11 = 1..5;
    F2:F6 `=$E$3*($B2-$C7)` = 2*(10-1), 2*(20-2), ... = 18, 36, 54, 72, 90.
    D3 = 9; D4:D8 `=D3-1` = 8..4; G4:G8 `=DEC2BIN(D4)` = 1000, 111, 110, 101, 100.
    """
    cells = {"E3": 2, "C6": 0, "D3": 9}
    for i, r in enumerate(range(2, 7)):
        cells[f"B{r}"] = 10 * (i + 1)
        cells[f"F{r}"] = f"=$E$3*($B{r}-$C{r + 5})"
    for r in range(7, 12):
        cells[f"C{r}"] = f"=C{r - 1}+1"
    for r in range(4, 9):
        cells[f"D{r}"] = f"=D{r - 1}-1"
        cells[f"G{r}"] = f"=DEC2BIN(D{r})"
    values = values_of(book(tmp_path, cells))
    assert [values[f"F{r}"] for r in range(2, 7)] == [18.0, 36.0, 54.0, 72.0, 90.0]
    assert [values[f"G{r}"] for r in range(4, 9)] == ["1000", "111", "110", "101", "100"]


def test_real_cycle_stays_an_error(tmp_path):
    values = values_of(book(tmp_path, {"A1": "=B1+1", "B1": "=A1+1", "C1": "=A1*2"}))
    assert {code(values[c]) for c in ("A1", "B1", "C1")} == {"#VALUE!"}


# -------------------------------------------------------------- 2. control characters

def test_control_characters_are_written_as_excel_escapes(tmp_path):
    """`=CHAR(1)` is U+0001, which XML 1.0 cannot hold: Excel writes `_x0001_`.

    Also a literal `_x0041_` in text keeps its meaning by escaping its `_` (`_x005F_`).
    Read back by our reader, the texts are the original characters.
    """
    from npl_xl.recalc.writeback import encode_text

    assert encode_text("a\x01b\x1fc\td\ne") == "a_x0001_b_x001F_c\td\ne"
    assert encode_text("_x0041_") == "_x005F_x0041_"
    source = book(tmp_path, {"A1": "=CHAR(1)", "A2": '="x"&CHAR(31)&"y"', "A3": '="_x0041_"'})
    report = recalc_workbook(source, tmp_path / "out.xlsx")
    with zipfile.ZipFile(tmp_path / "out.xlsx") as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<v>_x0001_</v>" in xml and "<v>x_x001F_y</v>" in xml and "_x005F_x0041_" in xml
    again = evaluate_workbook(tmp_path / "out.xlsx")  # the formulas again, from the copy
    assert report.values["S!A1"] == again["S!A1"] == "\x01"
    assert again["S!A2"] == "x\x1fy" and again["S!A3"] == "_x0041_"


def test_unexpected_failure_is_one_line_and_status_3(tmp_path):
    """A bug (here: a writer that raises) is one stderr line naming where, exit status 3."""
    source = book(tmp_path, {"A1": "=1+1"})
    script = (
        "import sys\n"
        "import npl_xl.recalc.writeback as w\n"
        "def broken(cell, value, q): raise RuntimeError('disk on fire')\n"
        "w._set_value = broken\n"
        "from npl_xl.cli import main_cli\n"
        f"sys.exit(main_cli(['recalc', {str(source)!r}, '-o', {str(tmp_path / 'o.xlsx')!r}]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("npl-xl recalc: unexpected failure writing A1 of "
                               "xl/worksheets/sheet1.xml: RuntimeError: disk on fire")
    assert not (tmp_path / "o.xlsx").exists()


def _iterative(count: int, delta: float):
    def setup(workbook):
        workbook.calculation.iterate = True
        workbook.calculation.iterateCount = count
        workbook.calculation.iterateDelta = delta
    return setup


def test_cycle_iterates_when_the_workbook_enables_iteration(tmp_path):
    """A1 `=B1/2+1`, B1 `=A1`: the fixed point is A1 = B1 = 2.

    Rounds in cell order from blank: A1 = 0/2+1 = 1, B1 = 1; A1 = 1.5, B1 = 1.5; after k
    rounds A1 = 2 - 2^(1-k) and the last change is 2^(1-k). With iterateDelta 0.001 the
    first change <= 0.001 is 2^-10 (k = 11): A1 = 2 - 2^-10 = 1.9990234375. With
    iterateCount 1 only one round runs: A1 = B1 = 1. C1 `=A1*10` reads the cycle.
    """
    cells = {"A1": "=B1/2+1", "B1": "=A1", "C1": "=A1*10"}
    values = values_of(book(tmp_path, cells, setup=_iterative(100, 0.001)))
    assert values["A1"] == values["B1"] == 2 - 2 ** -10
    assert values["C1"] == 10 * (2 - 2 ** -10)
    once = values_of(book(tmp_path, cells, "once.xlsx", setup=_iterative(1, 0.001)))
    assert once["A1"] == once["B1"] == 1.0
    # iterateCount set but iteration not enabled (as in files Excel saves): still errors
    def count_only(workbook):
        workbook.calculation.iterateCount = 1
    off = values_of(book(tmp_path, cells, "off.xlsx", setup=count_only))
    assert code(off["A1"]) == code(off["C1"]) == "#VALUE!"


def test_named_whole_column_by_implicit_intersection_is_not_circular(tmp_path):
    """A loan tracker's style: names for whole columns, `=Pmt_Nbr*2` meaning this row.

    Pmt_Nbr = S!$A:$A, Balance = S!$C:$C. Row 2: A2 = 1, C2 = 500. Rows 3-6:
    A `=A2+1` (2..5), B `=Pmt_Nbr*2` (this row's A: 4, 6, 8, 10), C `=C2-Pmt_Nbr`
    (500-2 = 498, 498-3 = 495, 491, 486). D7 `=SUM(Pmt_Nbr)` is the whole column:
    1+2+3+4+5 = 15 (an aggregate takes the whole range). Each row reads its own cells
    only; read as the whole column, every row would depend on every other (a cycle).
    """
    def names(workbook):
        from openpyxl.workbook.defined_name import DefinedName

        workbook.defined_names["Pmt_Nbr"] = DefinedName("Pmt_Nbr", attr_text="S!$A:$A")
        workbook.defined_names["Balance"] = DefinedName("Balance", attr_text="S!$C:$C")

    cells = {"A2": 1, "C2": 500, "D7": "=SUM(Pmt_Nbr)", "D8": "=ROWS(Balance)"}
    for r in range(3, 7):
        cells[f"A{r}"] = f"=A{r - 1}+1"
        cells[f"B{r}"] = "=Pmt_Nbr*2"
        cells[f"C{r}"] = f"=C{r - 1}-Pmt_Nbr"
    values = values_of(book(tmp_path, cells, setup=names))
    assert [values[f"B{r}"] for r in range(3, 7)] == [4.0, 6.0, 8.0, 10.0]
    assert [values[f"C{r}"] for r in range(3, 7)] == [498.0, 495.0, 491.0, 486.0]
    assert values["D7"] == 15.0
    assert values["D8"] == 1_048_576.0  # ROWS of a whole column, without reading it


def test_range_operators_and_whole_columns(tmp_path):
    """Intersection (space), range (:) operators; implicit intersection of A1 ranges.

    B2:E5 holds 1..16 row by row (B2=1, C2=2, ..., E5=16). B2:E5 C3:D4 is C3:D4 =
    6+7+10+11 = 34; B2:C2:E3 is B2:E3 = 1+...+8 = 36; disjoint ranges give #NULL!.
    `=B2:B5*2` typed in row 4 is B4*2 = 18 (B4 = 9); in row 7 it meets no cell: #VALUE!.
    ROW(B2:E5 C3:D4) is the first row of C3:D4: 3. ROWS(C:C) = 1,048,576 and
    COLUMNS(2:2) = 16,384. SUM(B:B) = 1+5+9+13 = 28 with the formula beside, in G.
    """
    cells = {}
    for i, r in enumerate(range(2, 6)):
        for j, c in enumerate("BCDE"):
            cells[f"{c}{r}"] = 4 * i + j + 1
    cells.update({"G1": "=SUM(B2:E5 C3:D4)", "G2": "=SUM(B2:C2:E3)", "G3": "=SUM(B2:C3 D4:E5)",
                  "G4": "=B2:B5*2", "G7": "=B2:B5*2", "G8": "=ROW(B2:E5 C3:D4)",
                  "G9": "=ROWS(C:C)", "G10": "=COLUMNS(2:2)", "G11": "=SUM(B:B)"})
    values = values_of(book(tmp_path, cells))
    assert values["G1"] == 34.0 and values["G2"] == 36.0 and code(values["G3"]) == "#NULL!"
    assert values["G4"] == 18.0 and code(values["G7"]) == "#VALUE!"
    assert values["G8"] == 3.0
    assert values["G9"] == 1_048_576.0 and values["G10"] == 16_384.0
    assert values["G11"] == 28.0


# --------------------------------------------------- 3. dynamic references and friends

def test_indirect_offset_isformula_cell(tmp_path):
    """INDIRECT/OFFSET follow references known only when evaluated.

    A1:A5 = 10, 20, 30, 40, 50; C1 `=A5+1` = 51 (a formula INDIRECT reaches, computed
    on demand first). B1 `=INDIRECT("A"&ROW()+1)` = A2 = 20; B2 SUM(A1:A5) = 150;
    B3 OFFSET(A1,2,0) = A3 = 30; B4 SUM(OFFSET(A1,1,0,3,1)) = A2+A3+A4 = 90;
    B5 INDIRECT("C1")*2 = 102; ISFORMULA(C1) TRUE, ISFORMULA(A1) FALSE;
    B8 CELL("address",C1) = "$C$1"; B9 INDIRECT("B9") reads itself: circular;
    B10 INDIRECT("R1C1",FALSE) = A1 = 10; B11 ROWS(OFFSET(A1,0,0,4,2)) = 4;
    B12 a missing sheet #REF!; B13 OFFSET above row 1 #REF!;
    B14 INDIRECT("Tape[amount]") over a table = SUM 1+2 = 3 (through SUM).
    """
    def table(workbook):
        from openpyxl.worksheet.table import Table

        ws = workbook["S"]
        ws["E1"], ws["F1"] = "id", "amount"
        ws["E2"], ws["F2"], ws["E3"], ws["F3"] = "a", 1, "b", 2
        ws.add_table(Table(displayName="Tape", ref="E1:F3"))

    cells = {f"A{r}": 10 * r for r in range(1, 6)}
    cells.update({
        "B1": '=INDIRECT("A"&ROW()+1)', "B2": '=SUM(INDIRECT("A1:A5"))',
        "B3": "=OFFSET(A1,2,0)", "B4": "=SUM(OFFSET(A1,1,0,3,1))", "B5": '=INDIRECT("C1")*2',
        "C1": "=A5+1", "B6": "=ISFORMULA(C1)", "B7": "=ISFORMULA(A1)",
        "B8": '=CELL("address",C1)', "B9": '=INDIRECT("B9")', "B10": '=INDIRECT("R1C1",FALSE)',
        "B11": "=ROWS(OFFSET(A1,0,0,4,2))", "B12": '=INDIRECT("nosuch!A1")',
        "B13": "=OFFSET(A1,-1,0)", "B14": '=SUM(INDIRECT("Tape[amount]"))',
    })
    values = values_of(book(tmp_path, cells, setup=table))
    assert [values[f"B{r}"] for r in range(1, 9)] == [20.0, 150.0, 30.0, 90.0, 102.0, True,
                                                      False, "$C$1"]
    assert code(values["B9"]) == "#VALUE!" and "circular" in values["B9"].message
    assert values["B10"] == 10.0 and values["B11"] == 4.0
    assert code(values["B12"]) == code(values["B13"]) == "#REF!"
    assert values["B14"] == 3.0


# ------------------------------------------------ 5. time value of money: a full schedule

def _edate(start: "datetime.date", months: int) -> "datetime.date":
    """EDATE by hand: same day-of-month ``months`` later, clamped to the month's end."""
    import calendar
    import datetime

    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return datetime.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def test_amortisation_schedule_of_360_months(tmp_path):
    """A 30-year monthly loan: 250,000 at 6 % a year, first payment a month after
    2024-01-31 (EDATE clamps to month ends: 2024-02-29, 2024-03-31, ...).

    Expected values independently: numpy-financial's pmt/ipmt/ppmt (the same annuity
    formulas Excel documents for PMT/IPMT/PPMT), the balance recurrence in Python
    floats, EDATE by calendar arithmetic, and XIRR as the root of
    sum(cf_i / (1+r)^((d_i-d_0)/365)) = 0 found by scipy's brentq to 1e-14.
    """
    import datetime

    import numpy_financial as npf
    from scipy.optimize import brentq

    n, principal, annual = 360, 250_000.0, 0.06
    start = datetime.date(2024, 1, 31)
    cells = {"H1": principal, "H2": annual, "H3": n, "H4": start,
             "H5": "=PMT(H2/12,H3,-H1)", "A1": 0, "B1": "=H4", "G1": "=H1", "J1": "=-H1"}
    for r in range(2, n + 2):
        cells[f"A{r}"] = f"=A{r - 1}+1"
        cells[f"B{r}"] = f"=EDATE($H$4,A{r})"
        cells[f"C{r}"] = f"=G{r - 1}"  # opening = previous closing
        cells[f"D{r}"] = "=$H$5"
        cells[f"E{r}"] = f"=C{r}*$H$2/12"  # interest
        cells[f"F{r}"] = f"=D{r}-E{r}"  # principal repaid
        cells[f"G{r}"] = f"=C{r}-F{r}"  # closing
        cells[f"H{r + 5}"] = f"=IPMT($H$2/12,A{r},$H$3,-$H$1)"
        cells[f"I{r + 5}"] = f"=PPMT($H$2/12,A{r},$H$3,-$H$1)"
        cells[f"J{r}"] = f"=D{r}"
    cells["K1"] = f"=XIRR(J1:J{n + 1},B1:B{n + 1})"
    cells["K2"] = f"=SUM(E2:E{n + 1})"
    values = values_of(book(tmp_path, cells))

    rate = annual / 12
    payment = float(npf.pmt(rate, n, -principal))
    assert values["H5"] == pytest.approx(payment, rel=1e-12)
    assert payment == pytest.approx(1498.876, abs=1e-3)  # the textbook figure
    balance, serial0 = principal, (start - datetime.date(1899, 12, 30)).days
    assert values["B1"] == serial0
    days, interest_total = [0], 0.0
    for k in range(1, n + 1):
        r = k + 1
        interest = balance * annual / 12
        interest_total += interest
        closing = balance - (payment - interest)
        date = _edate(start, k)
        days.append((date - start).days)
        assert values[f"B{r}"] == (date - datetime.date(1899, 12, 30)).days
        assert values[f"E{r}"] == pytest.approx(interest, rel=1e-9, abs=1e-9)
        assert values[f"G{r}"] == pytest.approx(closing, rel=1e-9, abs=1e-6)
        assert values[f"H{r + 5}"] == pytest.approx(float(npf.ipmt(rate, k, n, -principal)),
                                                  rel=1e-9)
        assert values[f"I{r + 5}"] == pytest.approx(float(npf.ppmt(rate, k, n, -principal)),
                                                  rel=1e-9)
        balance = closing
    assert abs(values[f"G{n + 1}"]) < 1e-6  # paid off
    assert values["K2"] == pytest.approx(interest_total, rel=1e-12)
    flows = [-principal] + [payment] * n
    xirr = brentq(lambda x: sum(cf / (1 + x) ** (d / 365) for cf, d in zip(flows, days)),
                  0.01, 0.2, xtol=1e-15, rtol=1e-15)
    # near the effective annual rate (1.005)^12 - 1 = 6.1678 %, a little lower since the
    # 30 years hold 8 leap days counted as 366/365 of a year
    assert 0.0616 < xirr < 0.06168
    assert values["K1"] == pytest.approx(xirr, rel=1e-9)


def test_time_value_functions_match_excels_documented_examples(tmp_path):
    """The examples of Microsoft's function reference pages (support.microsoft.com,
    "PMT function", "NPER function", ...), with the values printed there.

    PMT(8%/12,10,10000) = -1,037.03 and with type 1 (read from a cell) -1,030.16;
    NPER(12%/12,-100,-1000,10000,1) = 59.6738657, without type 60.0821228, without fv
    -9.57859404; NPER at rate 0: -(pv+fv)/pmt = -(300+0)/-100 = 3; a payment below the
    interest (10 on 1000 at 10 %) never repays: #NUM!. FV(6%/12,10,-200,-500,1) =
    2,581.40; PV(8%/12,240,500,,0) = -59,777.15; IPMT(10%/12,1,36,8000) = -66.67,
    IPMT(10%,3,3,8000) = -292.45; PPMT(10%/12,1,24,2000) = -75.62,
    PPMT(8%,10,10,200000) = -27,598.05; NPV(10%,-10000,3000,4200,6800) = 1,188.44;
    IRR(-70000,12000,15000,18000,21000,26000) = 8.66 %, of the first five flows -2.12 %,
    of the first three with guess -10 %: -44.35 %; XIRR and XNPV (9 %) of -10000, 2750,
    4250, 3250, 2750 on 2008-01-01, 03-01, 10-30, 2009-02-15, 04-01: 0.373362535 and
    2,086.65. IPMT of period 0 or beyond nper: #NUM!.
    """
    import datetime

    flows = [-70000, 12000, 15000, 18000, 21000, 26000]
    dated = [(-10000, datetime.date(2008, 1, 1)), (2750, datetime.date(2008, 3, 1)),
             (4250, datetime.date(2008, 10, 30)), (3250, datetime.date(2009, 2, 15)),
             (2750, datetime.date(2009, 4, 1))]
    cells = {"Z1": 1}
    for i, v in enumerate(flows):
        cells[f"A{i + 1}"] = v
    for i, (v, d) in enumerate(dated):
        cells[f"B{i + 1}"], cells[f"C{i + 1}"] = v, d
    formulas = {
        "D1": ("=PMT(0.08/12,10,10000)", -1037.03, 0.005),
        "D2": ("=PMT(0.08/12,10,10000,0,Z1)", -1030.16, 0.005),
        "D3": ("=NPER(0.12/12,-100,-1000,10000,1)", 59.6738657, 1e-7),
        "D4": ("=NPER(0.12/12,-100,-1000,10000)", 60.0821228, 1e-7),
        "D5": ("=NPER(0.12/12,-100,-1000)", -9.57859404, 1e-8),
        "D6": ("=NPER(0,-100,300)", 3.0, 1e-12),
        "D8": ("=FV(0.06/12,10,-200,-500,1)", 2581.40, 0.005),
        "D9": ("=PV(0.08/12,240,500,,0)", -59777.15, 0.005),
        "D10": ("=IPMT(0.1/12,1,36,8000)", -66.67, 0.005),
        "D11": ("=IPMT(0.1,3,3,8000)", -292.45, 0.005),
        "D12": ("=PPMT(0.1/12,1,24,2000)", -75.62, 0.005),
        "D13": ("=PPMT(0.08,10,10,200000)", -27598.05, 0.005),
        "D14": ("=NPV(0.1,-10000,3000,4200,6800)", 1188.44, 0.005),
        "D15": ("=IRR(A1:A6)", 0.0866, 0.00005),
        "D16": ("=IRR(A1:A5)", -0.0212, 0.00005),
        "D17": ("=IRR(A1:A3,-0.1)", -0.4435, 0.00005),
        # Excel's iteration stops within 0.000001 % (its page): the exact root is
        # 0.3733625335, 1.5e-9 from the printed 0.373362535
        "D18": ("=XIRR(B1:B5,C1:C5)", 0.373362535, 2e-9),
        "D19": ("=XNPV(0.09,B1:B5,C1:C5)", 2086.65, 0.005),
    }
    cells.update({k: f for k, (f, _, _) in formulas.items()})
    cells.update({"D7": "=NPER(0.1,-10,1000)", "D20": "=IPMT(0.1,0,3,8000)",
                  "D21": "=IPMT(0.1,4,3,8000)"})
    values = values_of(book(tmp_path, cells))
    for cell, (formula, expected, tolerance) in formulas.items():
        assert values[cell] == pytest.approx(expected, abs=tolerance), (cell, formula)
    assert {code(values[c]) for c in ("D7", "D20", "D21")} == {"#NUM!"}


def test_formulas_functions_that_disagreed_with_excel(tmp_path):
    """Each case as Excel's function reference defines it.

    DEC2BIN(10, C1) with places 6 read from a cell: "001010"; DEC2HEX(-25, 4): a
    negative number ignores places and is 10 hex digits of two's complement:
    2^40 - 25 = FFFFFFFFE7. VDB(2400,300,10,0,1,1.5,FALSE): the first year of 150 %
    declining balance, 2400*1.5/10 = 360. COUNTIF(A1:A8,"<>23") over 23, 5, "x", blank,
    23, 7, 8, 9 counts every cell but the two 23s: 6. XLOOKUP with if_not_found
    omitted: #N/A. A text literal keeps its line break: LEN("a<LF>b") = 3.
    """
    cells = {"A1": 23, "A2": 5, "A3": "x", "A5": 23, "A6": 7, "A7": 8, "A8": 9, "C1": 6,
             "B1": "=DEC2BIN(10,C1)", "B2": "=DEC2HEX(-25,4)",
             "B3": "=VDB(2400,300,10,0,1,1.5,FALSE)", "B4": '=COUNTIF(A1:A8,"<>23")',
             "B5": "=_xlfn.XLOOKUP(99,A1:A8,A1:A8)", "B6": '="a\nb"', "B7": '=LEN("a\nb")'}
    values = values_of(book(tmp_path, cells))
    assert values["B1"] == "001010" and values["B2"] == "FFFFFFFFE7"
    assert values["B3"] == 360.0 and values["B4"] == 6.0
    assert code(values["B5"]) == "#N/A"
    assert values["B6"] == "a\nb" and values["B7"] == 3.0


def test_numpy_warnings_do_not_reach_the_terminal(tmp_path):
    """=10^400 overflows inside numpy: the cell is an error, stderr stays empty."""
    source = book(tmp_path, {"A1": "=10^400", "A2": "=SQRT(-1)", "A3": "=1+1"})
    done = subprocess.run([sys.executable, "-W", "default", "-m", "npl_xl.cli", "recalc",
                           str(source), "-o", str(tmp_path / "o.xlsx"), "--allow-errors"],
                          capture_output=True, text=True)
    assert done.returncode == 0
    assert "Warning" not in done.stderr and "Traceback" not in done.stderr


def test_names_whose_ranges_spell_other_names_are_not_a_cycle(tmp_path):
    """Names b = S!$D$2:$E$3 and d = S!$B$4:$C$5: the column letters D and B of their
    ranges are not the names d and b (the reader took them for names and refused the
    workbook as 'b refers to itself through d'). D2:E3 = 1, 2, 3, 4 and B4:C5 = 5..8:
    SUM(b) = 10, SUM(d) = 26."""
    from openpyxl.workbook.defined_name import DefinedName

    def names(workbook):
        workbook.defined_names["b"] = DefinedName("b", attr_text="S!$D$2:$E$3")
        workbook.defined_names["d"] = DefinedName("d", attr_text="S!$B$4:$C$5")

    cells = {"D2": 1, "E2": 2, "D3": 3, "E3": 4, "B4": 5, "C4": 6, "B5": 7, "C5": 8,
             "A1": "=SUM(b)", "A2": "=SUM(d)"}
    values = values_of(book(tmp_path, cells, setup=names))
    assert values["A1"] == 10.0 and values["A2"] == 26.0


def test_union_operator(tmp_path):
    """(A1:A3,C1:C3) is one reference of two areas. A1:C3 = 1..9 row by row, so A1:A3 =
    1, 4, 7 and C1:C3 = 3, 6, 9: SUM = 12 + 18 = 30; MAX + 1 = 10; AREAS = 2;
    INDEX(union, 2, 1, 2) is row 2 of the second area, C2 = 6; COUNT((A1,B2,C3)) = 3
    (three single cells); COLUMNS of a two-area reference is #REF! in Excel."""
    cells = {f"{c}{r + 1}": 3 * r + j + 1 for r in range(3) for j, c in enumerate("ABC")}
    cells.update({"F1": "=SUM((A1:A3,C1:C3))", "F2": "=MAX((A1:A3,C1:C3))+1",
                  "F3": "=AREAS((A1:A3,C1:C3))", "F4": "=INDEX((A1:A3,C1:C3),2,1,2)",
                  "F5": "=COUNT((A1,B2,C3))", "F6": "=COLUMNS((A1:A3,C1:C3))"})
    values = values_of(book(tmp_path, cells))
    assert [values[f"F{r}"] for r in range(1, 6)] == [30, 10, 2, 6, 3]
    assert code(values["F6"]) == "#REF!"


def test_isformula_of_a_range_is_an_array(tmp_path):
    """ISFORMULA(A1:D1) over 1, =2, blank, ="x": one answer per cell, False, True, False,
    True, laid over the array formula F1:J1 (the fifth cell, beyond the result, #N/A);
    ISFORMULA(B1) alone is True."""
    from openpyxl.worksheet.formula import ArrayFormula

    def array(workbook):
        workbook.active["F1"] = ArrayFormula("F1:J1", "=_xlfn.ISFORMULA(A1:D1)")

    values = values_of(book(tmp_path, {"A1": 1, "B1": "=2", "D1": '="x"',
                                       "F2": "=_xlfn.ISFORMULA(B1)"}, setup=array))
    assert [values[c] for c in ("F1", "G1", "H1", "I1")] == [False, True, False, True]
    assert code(values["J1"]) == "#N/A" and values["F2"] is True
