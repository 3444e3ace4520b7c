"""LET, LAMBDA, MAP, REDUCE, SCAN, BYROW, BYCOL, MAKEARRAY as Excel stores them in files.

Each workbook is built here with openpyxl in Excel's file syntax (``_xlfn.LAMBDA``,
``_xlpm.x`` parameters, ``_xleta.SUM`` for a built-in passed as a LAMBDA, dynamic arrays as
array formulas over their spill range), recomputed by the real engine, and compared with
values worked out by hand in the comments from Microsoft's documentation of each function.
The cases mirror cells of an Excel-saved test workbook (formulas' test/test_files/test.xlsx,
sheet LOGICAL) whose cached values Excel computed; those values are the ones below.
"""

from __future__ import annotations

import openpyxl
import pytest
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.formula import ArrayFormula

from npl_xl.errors import XlError
from npl_xl.recalc import evaluate_workbook, recalc_workbook

L = "_xlfn.LAMBDA"


def book(tmp_path, cells: dict, arrays: dict = (), names: dict = ()) -> "Path":
    """One sheet S: ``cells`` {'A1': value or formula}, ``arrays`` {'A1:B2': formula},
    ``names`` {name: definition}."""
    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.title = "S"
    for where, value in cells.items():
        ws[where] = value
    for where, formula in dict(arrays).items():
        ws[where.split(":")[0]] = ArrayFormula(where, formula)
    for name, definition in dict(names).items():
        workbook.defined_names[name] = DefinedName(name, attr_text=definition)
    path = tmp_path / "lambdas.xlsx"
    workbook.save(path)
    return path


def values_of(path) -> dict:
    return {k.split("!", 1)[1]: v for k, v in evaluate_workbook(path).items()}


def code(value):
    return value.code if isinstance(value, XlError) else value


def test_let_lambda_called_in_place_and_through_a_defined_name(tmp_path):
    """LET binds names in order; a LAMBDA called with arguments; a named LAMBDA.

    C1 LET(x, 1, y, A2, z, A3, 232 + x + y) with A2 = 2.3: 232 + 1 + 2.3 = 235.3
       (z, bound to text, is never used).
    C2 LAMBDA(x, y, z, SUM(y) + SUM(x + 1, (y + x + A4 + A5)))(1, 2, 3), A4 = 1, A5 = 0:
       SUM(2) + SUM(2, 2 + 1 + 1 + 0) = 2 + 6 = 8.
    C3 MYLAMBDA(2, 1, 2) with MYLAMBDA = LAMBDA(x, y, z, SUM(x*2, y*3, -z, S!$A$6)),
       A6 = 3: 4 + 3 - 2 + 3 = 8.
    C4 LAMBDA(A4 + A5)(): a LAMBDA of no parameters, called: 1.
    C5 LET(f, LAMBDA(x, x * 10), f(3) + 1) = 31 (a LAMBDA held in a LET name).
    C6 a LAMBDA never called is Excel's #CALC! (written #VALUE!, the reason says so).
    C7 LAMBDA(x, x)(1, 2): two arguments for one parameter -> #VALUE!.
    C8 LET(x, 2, LET(x, x + 1, x * 10)) = 30 (the inner x shadows the outer).
    """
    cells = {"A2": 2.3, "A3": "#N/A", "A4": 1, "A5": 0, "A6": 3,
             "C1": "=_xlfn.LET(_xlpm.x,1,_xlpm.y,A2,_xlpm.z,A3,232+_xlpm.x+_xlpm.y)",
             "C3": "=MYLAMBDA(2,1,2)",
             "C5": f"=_xlfn.LET(_xlpm.f,{L}(_xlpm.x,_xlpm.x*10),_xlpm.f(3)+1)",
             "C6": f"={L}(_xlpm.x,_xlpm.x)",
             "C7": f"={L}(_xlpm.x,_xlpm.x)(1,2)",
             "C8": "=_xlfn.LET(_xlpm.x,2,_xlfn.LET(_xlpm.x,_xlpm.x+1,_xlpm.x*10))"}
    arrays = {"C2": f"={L}(_xlpm.x,_xlpm.y,_xlpm.z,SUM(_xlpm.y)+SUM(_xlpm.x+1,"
                    "(_xlpm.y+_xlpm.x+A4+A5)))(1,2,3)",
              "C4": f"={L}(A4+A5)()"}
    names = {"MYLAMBDA": f"{L}(_xlpm.x,_xlpm.y,_xlpm.z,SUM(_xlpm.x*2,_xlpm.y*3,-_xlpm.z,"
                         "S!$A$6))"}
    values = values_of(book(tmp_path, cells, arrays, names))
    assert values["C1"] == pytest.approx(235.3, rel=1e-15)
    assert values["C2"] == 8.0 and values["C3"] == 8.0 and values["C4"] == 1.0
    assert values["C5"] == 31.0 and values["C8"] == 30.0
    assert code(values["C6"]) == "#VALUE!" and "#CALC!" in values["C6"].message
    assert code(values["C7"]) == "#VALUE!" and "takes 1 arguments" in values["C7"].message


def test_map_reduce_scan(tmp_path):
    """MAP element by element; REDUCE and SCAN carry an accumulator, row by row.

    A1:C2 = 1, 2, 3 / blank, blank, blank.
    E1:G2 MAP(A1:C2, LAMBDA(a, a^2)) = 1, 4, 9 / 0, 0, 0 (a blank squares to 0).
    H1 MAP({1,2;3,3}, LAMBDA(a,a+1), LAMBDA(b,b+3)): only one LAMBDA, after the arrays:
       #VALUE!.
    A4:C5 = 0, 1, 2.3 / 1, 2, 3.
    E4 REDUCE(, A4:C5, LAMBDA(a, b, a + b^2)): an omitted start is 0;
       0 + 0 + 1 + 5.29 + 1 + 4 + 9 = 20.29.
    F4:H4 REDUCE(A1:C1, {1,2,3}, ...): an array accumulator; {1,2,3} + 1 + 4 + 9 = 15, 16, 17.
    E6 REDUCE("ciao", {1,2,3}, ...) = #VALUE! (text + 1); E7 REDUCE(TRUE, ...) = 1 + 14 = 15.
    E9:G10 SCAN(2, A4:C5, LAMBDA(a, b, a + b^2)) = 2, 3, 8.29 / 9.29, 13.29, 22.29.
    H9:H10 SCAN(A1:C1, A4:A5, LAMBDA(a, b, SUM(a) + b^2)): 6 + 0 = 6, then 6 + 1 = 7.
    I9:I10 SCAN(blank, {1;3}, ...) = 1, 10.
    """
    cells = {"A1": 1, "B1": 2, "C1": 3, "A4": 0, "B4": 1, "C4": 2.3, "A5": 1, "B5": 2,
             "C5": 3}
    acc = f"{L}(_xlpm.a,_xlpm.b,_xlpm.a+_xlpm.b^2)"
    arrays = {"E1:G2": f"=_xlfn.MAP(A1:C2,{L}(_xlpm.a,_xlpm.a^2))",
              "H1": f"=_xlfn.MAP({{1,2;3,3}},{L}(_xlpm.a,_xlpm.a+1),{L}(_xlpm.b,_xlpm.b+3))",
              "E4": f"=_xlfn.REDUCE(,A4:C5,{acc})",
              "F4:H4": f"=_xlfn.REDUCE(A1:C1,{{1,2,3}},{acc})",
              "E6": f'=_xlfn.REDUCE("ciao",{{1,2,3}},{acc})',
              "E7": f"=_xlfn.REDUCE(TRUE,{{1,2,3}},{acc})",
              "E9:G10": f"=_xlfn.SCAN(2,A4:C5,{acc})",
              "H9:H10": f"=_xlfn.SCAN(A1:C1,A4:A5,{L}(_xlpm.a,_xlpm.b,SUM(_xlpm.a)+_xlpm.b^2))",
              "I9:I10": f"=_xlfn.SCAN(Z99,{{1;3}},{acc})"}
    values = values_of(book(tmp_path, cells, arrays))
    assert [values[c] for c in ("E1", "F1", "G1", "E2", "F2", "G2")] == [1, 4, 9, 0, 0, 0]
    assert code(values["H1"]) == "#VALUE!"
    assert values["E4"] == pytest.approx(20.29, rel=1e-14)
    assert [values[c] for c in ("F4", "G4", "H4")] == [15, 16, 17]
    assert code(values["E6"]) == "#VALUE!" and values["E7"] == 15
    scan = [values[c] for c in ("E9", "F9", "G9", "E10", "F10", "G10")]
    assert scan == pytest.approx([2, 3, 8.29, 9.29, 13.29, 22.29], rel=1e-14)
    assert [values["H9"], values["H10"]] == [6, 7]
    assert [values["I9"], values["I10"]] == [1, 10]


def test_byrow_bycol_with_lambdas_and_eta_reduced_builtins(tmp_path):
    """BYROW/BYCOL call the LAMBDA on each row/column (a reference: SUM skips its text).

    A1:D2 = 0, 1, 2.3, "0" / 1, 2, 3, TRUE; A3 = #DIV/0! (=1/0).
    F1:F2 BYROW(A1:D2, LAMBDA(x, SUM(x))) = 0+1+2.3 = 3.3 / 1+2+3 = 6 (text and TRUE in a
       reference are skipped by SUM).
    G1:G2 BYROW(A1:D2, _xleta.SUM): the same, SUM passed by name: 3.3, 6.
    H1:H2 BYROW(A1:C2, _xleta.MAX) = 2.3, 3.
    F4:I4 BYCOL(A1:D3, LAMBDA(x, SUM(x))): A gets the #DIV/0! of A3, then 1+2 = 3,
       2.3+3 = 5.3, and D (text, TRUE, blank) 0.
    F5 BYROW(A1:B2, LAMBDA(x, x*2)): each row gives two values where one is needed:
       Excel's #CALC! (written #VALUE!).
    """
    cells = {"A1": 0, "B1": 1, "C1": 2.3, "D1": "0", "A2": 1, "B2": 2, "C2": 3, "D2": True,
             "A3": "=1/0"}
    arrays = {"F1:F2": f"=_xlfn.BYROW(A1:D2,{L}(_xlpm.x,SUM(_xlpm.x)))",
              "G1:G2": "=_xlfn.BYROW(A1:D2,_xleta.SUM)",
              "H1:H2": "=_xlfn.BYROW(A1:C2,_xleta.MAX)",
              "F4:I4": f"=_xlfn.BYCOL(A1:D3,{L}(_xlpm.x,SUM(_xlpm.x)))",
              "F5": f"=_xlfn.BYROW(A1:B2,{L}(_xlpm.x,_xlpm.x*2))"}
    values = values_of(book(tmp_path, cells, arrays))
    assert values["F1"] == pytest.approx(3.3) and values["F2"] == 6
    assert values["G1"] == pytest.approx(3.3) and values["G2"] == 6
    assert values["H1"] == 2.3 and values["H2"] == 3
    assert code(values["F4"]) == "#DIV/0!"
    assert values["G4"] == 3 and values["H4"] == pytest.approx(5.3) and values["I4"] == 0
    assert code(values["F5"]) == "#VALUE!" and "#CALC!" in values["F5"].message


def test_makearray_sizes(tmp_path):
    """MAKEARRAY(rows, cols, LAMBDA(r, c, ...)) with 1-based r and c.

    A1:B3 MAKEARRAY(3, 2, LAMBDA(r, c, r*10 + c)) = 11, 12 / 21, 22 / 31, 32.
    Sizes must be whole numbers of at least 1: 0, 2.3, "1" (text), a blank -> #VALUE!;
    TRUE counts as 1 (D1: MAKEARRAY(TRUE, 1, LAMBDA(x, y, x + 1 + y)) = 3); an error
    size is that error (D6: #N/A).
    """
    cells = {"F1": 0, "F2": 2.3, "F3": True, "F6": "=NA()"}
    body = f"{L}(_xlpm.x,_xlpm.y,_xlpm.x+1+_xlpm.y)"
    arrays = {"A1:B3": f"=_xlfn.MAKEARRAY(3,2,{L}(_xlpm.r,_xlpm.c,_xlpm.r*10+_xlpm.c))",
              "D1": f"=_xlfn.MAKEARRAY(F3,1,{body})",
              "D2": f"=_xlfn.MAKEARRAY(F1,1,{body})",
              "D3": f"=_xlfn.MAKEARRAY(F2,1,{body})",
              "D4": f'=_xlfn.MAKEARRAY(2,"1",{body})',
              "D5": f"=_xlfn.MAKEARRAY(F5,1,{body})",
              "D6": f"=_xlfn.MAKEARRAY(F6,1,{body})"}
    values = values_of(book(tmp_path, cells, arrays))
    assert [values[c] for c in ("A1", "B1", "A2", "B2", "A3", "B3")] == [11, 12, 21, 22, 31, 32]
    assert values["D1"] == 3
    assert [code(values[c]) for c in ("D2", "D3", "D4", "D5")] == ["#VALUE!"] * 4
    assert code(values["D6"]) == "#N/A"


def test_lambda_results_are_written_as_cached_values(tmp_path):
    """`npl-xl recalc` writes them: SUM(MAP(A1:A3, LAMBDA(v, v*2))) = 2*(1+2+3) = 12, and a
    formula reading a LAMBDA cell: B2 = B1 + 1 = 13."""
    path = book(tmp_path, {"A1": 1, "A2": 2, "A3": 3,
                           "B1": f"=SUM(_xlfn.MAP(A1:A3,{L}(_xlpm.v,_xlpm.v*2)))",
                           "B2": "=B1+1"})
    report = recalc_workbook(path, tmp_path / "out.xlsx")
    assert report.ok
    cached = openpyxl.load_workbook(tmp_path / "out.xlsx", data_only=True)["S"]
    assert cached["B1"].value == 12 and cached["B2"].value == 13


def test_groupby_with_a_builtin_passed_by_name(tmp_path):
    """GROUPBY(A1:A3, B1:B3, _xleta.SUM) with keys a, b, a and values 1, 2, 3: groups in
    ascending key order with a grand total: a 1 + 3 = 4, b 2, Total 6 (Microsoft's
    GROUPBY: row_total_depth 1 by default). formulas evaluates GROUPBY itself; the
    ``_xleta.SUM`` name used to be refused as an undefined name (#NAME?)."""
    cells = {"A1": "a", "A2": "b", "A3": "a", "B1": 1, "B2": 2, "B3": 3}
    values = values_of(book(tmp_path, cells, {"D1:E3": "=_xlfn.GROUPBY(A1:A3,B1:B3,_xleta.SUM)"}))
    assert [values[c] for c in ("D1", "E1", "D2", "E2", "D3", "E3")] == \
        ["a", 4, "b", 2, "Total", 6]
