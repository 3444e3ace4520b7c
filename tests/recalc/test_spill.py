"""Dynamic arrays whose result changes size: the spill range follows, or #SPILL!.

The workbook is written as Excel 365 saves a spilled formula: ``<f t="array" ref="C1:C2">``
on the anchor, ``cm="1"`` pointing at the XLDAPR dynamic-array metadata
(``xl/metadata.xml``), and the other cells of the range holding plain cached values. The
inputs then change (as if edited elsewhere), so the saved ranges are stale; the expected
ranges and values are worked out in the comments from Microsoft's "Dynamic array formulas
and spilled array behavior" (a spill range that is not empty gives #SPILL!).
"""

from __future__ import annotations

import re
import zipfile

import openpyxl
from openpyxl.worksheet.formula import ArrayFormula

from recalc_fixtures import mark_dynamic_arrays

from npl_xl.errors import XlError
from npl_xl.recalc import recalc_workbook

def dynamic_book(tmp_path, cells: dict, arrays: dict) -> "Path":
    """Sheet S with ``cells`` and dynamic arrays ``arrays`` {'C1:C2': formula} (saved
    range), each anchor marked ``cm="1"`` as Excel marks a spilled formula."""
    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.title = "S"
    for where, value in cells.items():
        ws[where] = value
    for where, formula in arrays.items():
        ws[where.split(":")[0]] = ArrayFormula(where, formula)
    plain = tmp_path / "plain.xlsx"
    workbook.save(plain)
    with zipfile.ZipFile(plain) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    mark_dynamic_arrays(contents, "xl/worksheets/sheet1.xml",
                        [where.split(":")[0] for where in arrays])
    path = tmp_path / "dynamic.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return path


def test_spill_grows_shrinks_and_is_blocked(tmp_path):
    """A1:A3 = 3, 1, 2; A6:A8 = 7, 7, 7.

    C1 SORT(A1:A3), saved over C1:C2 (C2 caching a stale 9): the result 1, 2, 3 has 3
        rows, so it spills over C1:C3.
    E1 UNIQUE(A6:A8), saved over E1:E4 (stale 5, 6, 8 below): one value, 7: the range
        shrinks to E1 and E2:E4 are emptied.
    G1 SEQUENCE(3), saved as G1 alone, with "x" typed in G3: the spill range G1:G3 is
        not empty -> #SPILL! in G1, G2 stays empty, G3 keeps "x".
    I1 SUM(C1#) reads the new range: 1 + 2 + 3 = 6; I2 ROWS(C1#) = 3;
    I3 COUNT(E1:E4) = 1 (the emptied cells are no longer numbers).
    """
    cells = {"A1": 3, "A2": 1, "A3": 2, "A6": 7, "A7": 7, "A8": 7, "C2": 9,
             "E2": 5, "E3": 6, "E4": 8, "G3": "x",
             "I1": "=SUM(_xlfn.ANCHORARRAY(C1))", "I2": "=ROWS(_xlfn.ANCHORARRAY(C1))",
             "I3": "=COUNT(E1:E4)"}
    arrays = {"C1:C2": "=_xlfn._xlws.SORT(A1:A3)", "E1:E4": "=_xlfn.UNIQUE(A6:A8)",
              "G1": "=_xlfn.SEQUENCE(3)"}
    source = dynamic_book(tmp_path, cells, arrays)
    report = recalc_workbook(source, tmp_path / "out.xlsx")
    values = report.values
    assert [values[f"S!C{r}"] for r in (1, 2, 3)] == [1, 2, 3]
    assert values["S!E1"] == 7 and "S!E2" not in values
    assert isinstance(values["S!G1"], XlError) and values["S!G1"].code == "#SPILL!"
    assert "G3 in the spill range is not empty" in report.errors["S!G1"].message
    assert values["S!I1"] == 6 and values["S!I2"] == 3 and values["S!I3"] == 1

    with zipfile.ZipFile(tmp_path / "out.xlsx") as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert re.search(r'<c r="C1" [^>]*cm="1"[^>]*>\s*<f t="array" ref="C1:C3"', xml)
    assert re.search(r'<c r="E1" [^>]*>\s*<f t="array" ref="E1"', xml)
    assert re.search(r'<c r="G1" [^>]*t="e"[^>]*>\s*<f t="array" ref="G1"[^<]*</f>'
                     r'\s*<v>#SPILL!</v>', xml)
    cached = openpyxl.load_workbook(tmp_path / "out.xlsx", data_only=True)["S"]
    assert [cached[f"C{r}"].value for r in (1, 2, 3)] == [1, 2, 3]
    assert [cached[f"E{r}"].value for r in (1, 2, 3, 4)] == [7, None, None, None]
    assert cached["G2"].value is None and cached["G3"].value == "x"
    assert cached["I1"].value == 6 and cached["I3"].value == 1


def test_a_spill_that_keeps_its_size_is_evaluated_once_and_unchanged(tmp_path):
    """SEQUENCE(2, 2) saved over its own size B1:C2 = 1, 2 / 3, 4: no range change."""
    source = dynamic_book(tmp_path, {}, {"B1:C2": "=_xlfn.SEQUENCE(2,2)"})
    report = recalc_workbook(source, tmp_path / "out.xlsx")
    assert [report.values[k] for k in ("S!B1", "S!C1", "S!B2", "S!C2")] == [1, 2, 3, 4]
    with zipfile.ZipFile(tmp_path / "out.xlsx") as archive:
        assert b'ref="B1:C2"' in archive.read("xl/worksheets/sheet1.xml")


def test_sequence(tmp_path):
    """SEQUENCE(rows, [columns], [start], [step]) fills row by row (formulas 1.3.4 has no
    SEQUENCE). A1:C2 SEQUENCE(2, 3, 10, -2) = 10, 8, 6 / 4, 2, 0; E1:E2 SEQUENCE(2.7):
    sizes truncate, so 2 rows of 1, 2; G1 SEQUENCE(0) is Excel's #CALC! (written
    #VALUE!); H1 SUM(SEQUENCE(100)) = 100*101/2 = 5050."""
    source = dynamic_book(tmp_path, {"H1": "=SUM(_xlfn.SEQUENCE(100))"},
                          {"A1:C2": "=_xlfn.SEQUENCE(2,3,10,-2)", "E1:E2": "=_xlfn.SEQUENCE(2.7)",
                           "G1": "=_xlfn.SEQUENCE(0)"})
    values = recalc_workbook(source, tmp_path / "out.xlsx").values
    assert [values[f"S!{c}"] for c in ("A1", "B1", "C1", "A2", "B2", "C2")] == [10, 8, 6, 4, 2, 0]
    assert [values["S!E1"], values["S!E2"]] == [1, 2]
    assert values["S!G1"].code == "#VALUE!" and values["S!H1"] == 5050


def test_volatile_spill_cells_with_an_empty_formula_are_not_formulas(tmp_path):
    """Excel writes ``<f ca="1"/>`` (no text) into the cells a volatile dynamic array
    (OFFSET here) spills over; they are values of the array, not formulas that block it.
    A1:A3 = 1, 2, 3; C1 OFFSET(A1, 0, 0, 3, 1) saved over C1:C2 spills over C1:C3 =
    1, 2, 3 (it was #SPILL!, blocked by its own C2)."""
    source = dynamic_book(tmp_path, {"A1": 1, "A2": 2, "A3": 3, "C2": 2},
                          {"C1:C2": "=OFFSET(A1,0,0,3,1)"})
    edited = tmp_path / "volatile.xlsx"
    with zipfile.ZipFile(source) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    contents[sheet], count = re.subn(rb'(<c r="C2"[^>]*>)', rb'\1<f ca="1"/>', contents[sheet])
    assert count == 1
    with zipfile.ZipFile(edited, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    values = recalc_workbook(edited, tmp_path / "out.xlsx").values
    assert [values[f"S!C{r}"] for r in (1, 2, 3)] == [1, 2, 3]


def test_a_single_error_keeps_the_saved_spill_range(tmp_path):
    """A result that is one error value says nothing of its shape (formulas may give
    one error where Excel gives an array of them), so the saved range stays, filled with
    it: C1 (saved over C1:C2) = 1/A1 with A1 = 0 is #DIV/0! in C1 and C2, ref C1:C2."""
    source = dynamic_book(tmp_path, {"A1": 0, "C2": 5}, {"C1:C2": "=1/A1"})
    report = recalc_workbook(source, tmp_path / "out.xlsx")
    assert [report.values[f"S!C{r}"].code for r in (1, 2)] == ["#DIV/0!", "#DIV/0!"]
    with zipfile.ZipFile(tmp_path / "out.xlsx") as archive:
        assert b'ref="C1:C2"' in archive.read("xl/worksheets/sheet1.xml")
