"""Unit tests of the recalc pieces: structured references, translation, write-back, adapter."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from openpyxl.formula.translate import Translator

from npl_xl.errors import XlError
from npl_xl.recalc import functions as fx
from npl_xl.recalc.references import (Names, Ref, Table, rewrite_formula, templatize,
                                      translate_formula)
from npl_xl.workbook.a1 import MAX_ROWS, column_index, column_letter
from npl_xl.recalc.writeback import _sheet_with_values, cell_xml_value, drop_full_calc_on_load

# Tape on sheet 'Loan Tape' at B3:F8: header row 3, data rows 4-7, totals row 8
TAPE = Table("Tape", "Loan Tape", 2, 1, 7, 5,
             ("id", "claim", "mean rr", "Col#", "sd"), header_rows=1, totals_rows=1)
NAMES = Names(
    workbook={"LOANTAPE": "'Loan Tape'!$B$3:$F$8", "RATE": "Calc!$A$1", "TWICE": "RATE*2",
              "ODD": "FOO(RATE)",
              "SCOPED": "Calc!$B$1"},
    local={("Loan Tape", "SCOPED"): "'Loan Tape'!$Z$1"},
    tables={"TAPE": TAPE},
    sheets=("Loan Tape", "Calc"),
    spills={("Calc", 6, 2): (6, 2, 10, 3)},  # an array formula at C7 filling C7:D11
)


def rw(formula: str, sheet: str = "Calc", row: int = 0, col: int = 0) -> str:
    return rewrite_formula(formula, NAMES, sheet, row, col)


@pytest.mark.parametrize("formula, expected", [
    ("=SUM(Tape[claim])", "=SUM('Loan Tape'!$C$4:$C$7)"),
    ("=SUM(Tape[mean rr])", "=SUM('Loan Tape'!$D$4:$D$7)"),  # space in a column name
    ("=SUM(Tape[[claim]:[mean rr]])", "=SUM('Loan Tape'!$C$4:$D$7)"),
    ("=SUM(Tape[[mean rr]:[claim]])", "=SUM('Loan Tape'!$C$4:$D$7)"),
    ("=ROWS(Tape[#All])", "=ROWS('Loan Tape'!$B$3:$F$8)"),
    ("=COUNTA(Tape[#Headers])", "=COUNTA('Loan Tape'!$B$3:$F$3)"),
    ("=Tape[[#Totals],[sd]]", "='Loan Tape'!$F$8"),
    ("=Tape[[#Headers],[claim]:[sd]]", "='Loan Tape'!$C$3:$F$3"),
    ("=SUM(Tape[[#Data],[#Totals],[claim]])", "=SUM('Loan Tape'!$C$4:$C$8)"),
    ("=SUM(Tape[])", "=SUM('Loan Tape'!$B$4:$F$7)"),
    ("=SUM(Tape)", "=SUM('Loan Tape'!$B$4:$F$7)"),  # a table name alone is its data
    ("=Tape[Col'#]", "='Loan Tape'!$E$4:$E$7"),  # ' escapes a special character
    ("=VLOOKUP(1,LoanTape,2,FALSE)", "=VLOOKUP(1,'Loan Tape'!$B$3:$F$8,2,FALSE)"),
    ("=TWICE+1", "=(Calc!$A$1*2)+1"),  # a name defined by a formula, RATE*2
    ('="Tape[claim]"&"[x]"', '="Tape[claim]"&"[x]"'),  # string literals untouched
    ('="a""[b]"""&Tape[id]', "=\"a\"\"[b]\"\"\"&'Loan Tape'!$B$4:$B$7"),
    ("=SCOPED", "=Calc!$B$1"),
    ("=Calc!SCOPED+'Loan Tape'!SCOPED", "=Calc!$B$1+'Loan Tape'!$Z$1"),
    ("=NOSUCH+1", "=#NAME?+1"),
    ("=Tape[nosuch]", "=#REF!"),
    ("='Loan Tape'!C4*2", "='Loan Tape'!C4*2"),
    ("=SUM(_xlfn.ANCHORARRAY(C7))", "=SUM(Calc!$C$7:$D$11)"),  # spill reference C7#
    ("=SUM(_xlfn.ANCHORARRAY(Calc!$C$7))*2", "=SUM(Calc!$C$7:$D$11)*2"),
    ("=ANCHORARRAY(E1)", "=#REF!"),  # E1 holds no array formula
])
def test_rewrite_structured_references_and_names(formula, expected):
    assert rw(formula) == expected


def test_this_row_forms_resolve_to_the_formula_row():
    # row index 4 (0-based) = sheet row 5, a data row of Tape
    for formula in ("=Tape[[#This Row],[claim]]", "=Tape[@claim]", "=[@claim]",
                    "=[@[claim]]", "=Tape[@[claim]]"):
        assert rw(formula, "Loan Tape", 4, 5) == "='Loan Tape'!$C5", formula
    assert rw("=[@[mean rr]]*2", "Loan Tape", 5, 5) == "='Loan Tape'!$D6*2"
    assert rw("=SUM(Tape[@[claim]:[mean rr]])", "Loan Tape", 4, 5) == "=SUM('Loan Tape'!$C5:$D5)"
    assert rw("=SUM(Tape[@])", "Loan Tape", 4, 5) == "=SUM('Loan Tape'!$B5:$F5)"
    # outside the data rows Excel shows #VALUE!
    assert rw("=Tape[[#This Row],[claim]]", "Calc", 0, 0) == "=#VALUE!"
    # #This Row is a relative row, absolute column; a bare [@col] outside a table is #REF!
    assert rw("=[@claim]", "Calc", 0, 0) == "=#REF!"


def test_this_row_moves_with_filled_formulas():
    template = templatize("=[@claim]*2", NAMES, "Loan Tape", 3, 5, {"SUM"})
    (ref,) = template.refs
    assert ref.shifted(2, 0).a1(dollars=False) == "'Loan Tape'!C6"


def test_templates_share_text_across_a_filled_column():
    known = {"SUM", "IF"}
    first = templatize("=IF(A2>0,B2*$C$1,SUM(Tape[claim]))", NAMES, "Calc", 1, 3, known)
    other = templatize("=IF(A9>0,B9*$C$1,SUM(Tape[claim]))", NAMES, "Calc", 8, 3, known)
    assert first.text == other.text  # compiled once for the whole column
    assert [r.a1(dollars=False) for r in other.refs] == [
        "Calc!A9", "Calc!B9", "Calc!C1", "'Loan Tape'!C4:C7"]


def test_unsupported_functions_and_syntax_are_reported():
    template = templatize("=FOO(1)+_xlfn.BAR(2)+SUM(1)", NAMES, "Calc", 0, 0, {"SUM"})
    assert template.issue.code == "#NAME?"
    assert template.issue.message == "function FOO, BAR is not supported"
    # a function used inside a defined name is checked too
    assert templatize("=ODD+1", NAMES, "Calc", 0, 0, {"SUM"}).issue.message == (
        "function FOO is not supported")
    assert templatize("=_xlfn.XLOOKUP(1,A1:A2,B1:B2)", NAMES, "Calc", 0, 0,
                      {"XLOOKUP"}).issue is None
    assert "other workbooks" in templatize("=[1]Sheet1!A1", NAMES, "Calc", 0, 0,
                                           set()).issue.message
    assert "3-D" in templatize("=SUM(Calc:Other!A1)", NAMES, "Calc", 0, 0,
                               {"SUM"}).issue.message
    # an add-in function saved with its external-link prefix is called by name
    assert templatize("=[1]!NPL_X(1)", NAMES, "Calc", 0, 0, {"NPL_X"}).text == "=NPL_X(1)"


# ----------------------------------------------------------------------------- translation

_CASES = ["=A1+B$2*$C3-$D$4", "=SUM(A1:B3)", "=SUM($A$1:A1)", "=Sheet2!B2&\"A1\"",
          "='My Sheet'!$B2/C$7", "=IF(A2>0,SUM(Tape[claim]),B2)", "=SUM(A:A)+SUM(3:3)",
          "=SUM($A:B)", "=VLOOKUP(A2,$A$1:$C$9,2,FALSE)", "=LOG10(A1)"]


@pytest.mark.parametrize("formula", _CASES)
@pytest.mark.parametrize("rows, cols", [(1, 0), (0, 2), (5, 3)])
def test_translation_matches_openpyxl_translator(formula, rows, cols):
    origin = "E10"
    dest = f"{column_letter(column_index('E') + cols)}{10 + rows}"
    assert translate_formula(formula, rows, cols) == Translator(
        formula, origin=origin).translate_formula(dest)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.integers(0, 30), st.booleans(), st.booleans(),
       st.integers(0, 40), st.integers(0, 10))
def test_translation_property_against_openpyxl(row, col, abs_row, abs_col, down, right):
    ref = f"{'$' if abs_col else ''}{column_letter(col)}{'$' if abs_row else ''}{row + 1}"
    formula = f"={ref}*2+SUM({ref}:$B$1)"
    dest = f"{column_letter(30 + right)}{300 + down}"
    assert translate_formula(formula, down, right) == Translator(
        formula, origin="AE300").translate_formula(dest)


def test_translation_off_the_sheet_is_ref_error():
    assert translate_formula("=A1", -1, 0) == "=#REF!"
    assert Ref("S", 0, 0, MAX_ROWS - 1, 0, True, False, True, False).shifted(0, 1).col0 == 1


# ------------------------------------------------------------------------------ write-back

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_SHEET = (f'<worksheet xmlns="{_NS}"><sheetData>'
          '<row r="2" spans="1:2"><c r="A2"><f>1/0</f><v>0</v></c>'
          '<c r="B2" t="str"><f>X</f><v>old</v></c></row>'
          '<row r="5"><c r="C5"><f t="array" ref="C5:D7">NPL_X()</f><v>1</v></c></row>'
          '</sheetData></worksheet>').encode()


def test_cell_xml_values():
    assert cell_xml_value(XlError("#NUM!", "why")) == ("e", "#NUM!")
    assert cell_xml_value(True) == ("b", "1")
    assert cell_xml_value(False) == ("b", "0")
    assert cell_xml_value(3.0) == (None, "3")
    assert cell_xml_value(0.1 + 0.2) == (None, "0.30000000000000004")  # round-trips
    assert cell_xml_value(1e20) == (None, "1e+20")
    assert cell_xml_value(float("nan")) == ("e", "#NUM!")
    assert cell_xml_value("a<b") == ("str", "a<b")


def test_sheet_values_written_with_types_and_new_cells_in_order():
    values = {(1, 0): XlError("#DIV/0!"), (1, 1): "new text", (4, 2): True, (4, 3): 2.5,
              (5, 2): 0.25, (5, 3): 7.0, (6, 2): "x", (6, 3): False}
    root = etree.fromstring(_sheet_with_values(_SHEET, values))
    q = lambda tag: f"{{{_NS}}}{tag}"  # noqa: E731
    rows = root.find(q("sheetData")).findall(q("row"))
    assert [r.get("r") for r in rows] == ["2", "5", "6", "7"]  # rows 6, 7 created in order
    cells = {c.get("r"): c for r in rows for c in r.findall(q("c"))}
    assert [c.get("r") for c in rows[1]] == ["C5", "D5"]
    a2 = cells["A2"]
    assert a2.get("t") == "e" and a2.find(q("v")).text == "#DIV/0!"
    assert [child.tag for child in a2] == [q("f"), q("v")]  # <f> before <v>, one <v>
    assert cells["B2"].get("t") == "str" and cells["B2"].find(q("v")).text == "new text"
    assert cells["C5"].get("t") == "b" and cells["C5"].find(q("v")).text == "1"
    assert cells["C5"].find(q("f")).get("ref") == "C5:D7"
    assert cells["D5"].get("t") is None and cells["D5"].find(q("v")).text == "2.5"
    assert cells["D7"].get("t") == "b" and cells["D7"].find(q("v")).text == "0"
    assert rows[0].get("spans") == "1:2"


def test_full_calc_on_load_removed_and_nothing_else():
    xml = (b'<workbook><bookViews/><calcPr calcId="191029" fullCalcOnLoad="1" '
           b'iterate="0"/></workbook>')
    assert drop_full_calc_on_load(xml) == (b'<workbook><bookViews/><calcPr calcId="191029" '
                                           b'iterate="0"/></workbook>')
    assert drop_full_calc_on_load(b'<calcPr calcId="1"/>') == b'<calcPr calcId="1"/>'


# --------------------------------------------------------------------------------- adapter

def test_adapter_converts_both_ways():
    import numpy as np
    import schedula as sh

    raw = fx.to_raw(np.array([[1, sh.EMPTY], [fx.formulas_error("#N/A"), "t"]], dtype=object))
    assert raw[0] == [1.0, None]
    assert raw[1][0] == XlError("#N/A", "an argument is an error value")
    assert fx.to_raw(np.array(True)) is True
    log = fx.MessageLog()
    out = fx.from_raw([[1.0, XlError("#NUM!", "sd: too big")]], log)
    assert out.shape == (1, 2) and out[0, 0] == 1.0 and fx.is_error(out[0, 1])
    assert log.take() == [("#NUM!", "sd: too big")]
    assert fx.is_error(fx.from_raw(float("inf"), log))


# ------------------------------------------------------------------------- engine corners

def test_engine_corner_cases(tmp_path):
    import openpyxl

    from npl_xl.recalc import recalc_workbook

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "S"
    other = book.create_sheet("Data 2")
    for r in range(1, 6):
        other.cell(r, 1, float(r))
    sheet["A1"] = "=B1+1"
    sheet["B1"] = "=A1+1"  # circular with A1
    sheet["C1"] = "=SUM('Data 2'!A1:XFD1048576)"  # clipped to the used area: 1+...+5
    sheet["C2"] = "=ROW()*100+COLUMN()"  # own cell C2: 2*100+3
    sheet["C3"] = "=ROWS('Data 2'!A1:A10)+COLUMNS(E1:H1)"  # 10 + 4
    sheet["C4"] = "=SUM('Data 2'!A:A)"  # whole column: 15
    sheet["C5"] = '=INDIRECT("A1")'
    sheet["C6"] = "=SUM(S!#REF!)"
    sheet["C7"] = "=_xlfn.XLOOKUP(3,'Data 2'!A1:A5,'Data 2'!A1:A5)"
    sheet["C8"] = "=C7&\"\""  # text of a number
    sheet["C9"] = "=NPL_BETA_INV(0.5,0.5,0.1)"  # symmetric Beta: median 0.5
    path = book.save(tmp_path / "corners.xlsx") or tmp_path / "corners.xlsx"
    report = recalc_workbook(path, tmp_path / "out.xlsx")
    values = report.values
    assert values["S!C1"] == 15.0
    assert values["S!C2"] == 203.0
    assert values["S!C3"] == 14.0
    assert values["S!C4"] == 15.0
    assert values["S!C7"] == 3.0
    assert values["S!C8"] == "3"
    assert values["S!C9"] == pytest.approx(0.5, abs=1e-12)
    assert report.errors["S!A1"].describe() == "could not be computed (#VALUE!: circular reference, or depends on one)"
    assert not report.errors["S!B1"].computed
    assert report.errors["S!C5"].code == "#VALUE!"  # INDIRECT("A1"): A1 is circular
    assert report.errors["S!C6"].code == "#REF!"
    assert set(report.errors) == {"S!A1", "S!B1", "S!C5", "S!C6"}


def test_default_output_path_keeps_the_suffix(tmp_path):
    from npl_xl.recalc import default_output_path

    assert default_output_path(tmp_path / "a.b.xlsx") == tmp_path / "a.b.recalc.xlsx"
    assert default_output_path(tmp_path / "m.xlsm") == tmp_path / "m.recalc.xlsm"
    assert default_output_path(tmp_path / "t.xltx") == tmp_path / "t.recalc.xltx"


_COLUMN_FORMULAS = [
    "=A{r}*2+B{r}", '=IF(A{r}>B{r},"a","b")', "=IFERROR(1/A{r},-1)", "=ISNA(B{r})",
    '=A{r}&"|"&B{r}', "=ROUND(A{r}/3,2)", "=ABS(A{r})-$A$1", "=ISBLANK(B{r})",
    "=MOD(A{r},3)", "=-A{r}%", "=A{r}=B{r}", "=IF(ISNUMBER(B{r}),B{r},0)+SQRT(ABS(A{r}))",
    "=LEN(B{r})", "=NOT(A{r}>0)",
]
_CELL_VALUES = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False), st.booleans(),
                         st.sampled_from(["x", "", "#N/A", "#DIV/0!"]), st.integers(-5, 5))


@settings(max_examples=12, deadline=None)
@given(st.lists(st.tuples(_CELL_VALUES, _CELL_VALUES), min_size=3, max_size=12))
def test_columnar_evaluation_equals_cell_by_cell(tmp_path_factory, rows):
    """Filled-down formulas computed in one call equal the same cells computed one by one."""
    import openpyxl

    from npl_xl.recalc.engine import evaluate_package
    from npl_xl.recalc.xlsx import read_package

    book = openpyxl.Workbook()
    sheet = book.active
    for r, (a, b) in enumerate(rows, start=1):
        for c, value in ((1, a), (2, b)):
            if isinstance(value, str) and value.startswith("#"):
                sheet.cell(r, c).value = value
                sheet.cell(r, c).data_type = "e"
            else:
                sheet.cell(r, c).value = value
        for j, formula in enumerate(_COLUMN_FORMULAS):
            sheet.cell(r, 3 + j).value = formula.format(r=r)
        sheet.cell(r, 3 + len(_COLUMN_FORMULAS)).value = (  # a running total: reads itself
            f"=A{r}" if r == 1 else f"=IFERROR(A{r}+{column_letter(2 + len(_COLUMN_FORMULAS))}{r - 1},0)")
    path = tmp_path_factory.mktemp("columnar") / "columns.xlsx"
    book.save(path)
    package = read_package(path)
    fast = evaluate_package(package, vectorize=True).values
    slow = evaluate_package(read_package(path), vectorize=False).values
    assert fast.keys() == slow.keys()
    for key in slow:
        a, b = fast[key], slow[key]
        if isinstance(b, XlError):
            assert isinstance(a, XlError) and a.code == b.code, key
        elif isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-15, abs=0), key
        else:
            assert a == b and type(a) is type(b), key


def test_iso_date_cells_become_serial_numbers():
    from npl_xl.recalc.xlsx import _iso_date_serial

    assert _iso_date_serial("2024-03-01") == 45352.0  # Excel: DATE(2024,3,1) = 45352
    assert _iso_date_serial("1900-03-01T12:00:00") == 61.5
    assert _iso_date_serial("not a date") == "not a date"
