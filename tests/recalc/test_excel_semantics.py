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
