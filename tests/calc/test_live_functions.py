"""The worksheet functions live in LibreOffice Calc, against ``npl-xl recalc``.

Each workbook is recalculated headless by ``npl-xl recalc`` (the formulas engine with the
registry) and opened in a real headless Calc with the npl-xl extension; every formula cell
that calls an NPL function must show, cell by cell, the same value: numbers to 1e-12
relative, text equal, errors as the same error values. The two paths share only the
registry: the formula parsing, the reference and range handling, array spilling and error
propagation are Calc's own in one and the formulas library's in the other.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest

from npl_xl.errors import XlError
from npl_xl.recalc import recalc_workbook
from npl_xl.workbook.a1 import cell_address, parse_range

from recalc_fixtures import ERROR_CELLS, NPL, build_feature_workbook

pytestmark = pytest.mark.libreoffice

WORKBOOKS = Path(__file__).resolve().parents[2] / "workbooks"


def same(expected, got) -> bool:
    """recalc's value against Calc's (a float, a str, or {"error": code})."""
    if isinstance(expected, XlError):
        return got == {"error": expected.code}
    if isinstance(expected, bool):
        return got == (1.0 if expected else 0.0)
    if isinstance(expected, (int, float)):
        return isinstance(got, float) and math.isclose(got, expected, rel_tol=1e-12,
                                                       abs_tol=1e-300)
    return got == expected


def compare(live_calc, doc, report) -> tuple[int, list[str], set[str]]:
    """(NPL cells compared, mismatches, functions met) of a book recalc also computed."""
    addresses = list(report.values)
    cells = live_calc.call("cells", doc=doc, addresses=addresses)
    compared, wrong, met = 0, [], set()
    for address, (formula, got) in zip(addresses, cells):
        if "NPL_" not in formula.upper():
            continue
        compared += 1
        met.update(re.findall(r"(NPL_[A-Z_]+)\(", formula.upper()))
        expected = report.values[address]
        if not same(expected, got):
            wrong.append(f"{address} {formula}: recalc {expected!r}, Calc {got!r}")
    return compared, wrong, met


def _range_cells(where: str) -> list[str]:
    r0, c0, r1, c1 = parse_range(where)
    return [cell_address(r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]


def values(live_calc, doc, addresses):
    return [v for _, v in live_calc.call("cells", doc=doc, addresses=list(addresses))]


@pytest.fixture(scope="module")
def feature(tmp_path_factory):
    root = tmp_path_factory.mktemp("feature")
    book = build_feature_workbook(root / "feature.xlsx")
    return book, recalc_workbook(book, root / "feature.recalc.xlsx")


#: every function the registry declares, met by the cell-by-cell comparisons below
MET: set[str] = set()


def test_feature_workbook_cell_by_cell(live_calc, closing, feature):
    book, report = feature
    doc = live_calc.load(book)
    closing(doc)
    compared, wrong, met = compare(live_calc, doc, report)
    MET.update(met)
    assert not wrong, "\n".join(wrong)
    npl_cells = sum(len(_range_cells(where)) for where, formula, _ in NPL if "NPL_" in formula)
    assert compared == npl_cells  # every NPL cell of the book was compared (none lost)


def test_errors_are_calc_error_values(live_calc, closing, feature):
    """ISERROR and IFERROR see NPL errors; #NUM! propagates through native arithmetic."""
    book, _ = feature
    doc = live_calc.load(book)
    closing(doc)
    live_calc.call("formula", doc=doc, sheet="Calc", where="D30", formula="=ERROR.TYPE(C14)")
    live_calc.call("formula", doc=doc, sheet="Calc", where="D31",
                   formula="=IFERROR(NPL_BETA_INV(0.5;2;0.1);-1)")
    got = values(live_calc, doc, [f"Calc!{c}" for c in
                                  ("C14", "C15", "C16", "C17", "C19", "C21", "D30", "D31")])
    assert got == [{"error": "#NUM!"},  # mean 1.4 is impossible
                   "bad",  # IFERROR(C14,"bad")
                   1.0,  # ISERROR(C14) is TRUE
                   {"error": "#NUM!"},  # C14+1
                   {"error": "#VALUE!"},  # a range where one cell goes
                   1.0,  # ISNA over an unknown method
                   6.0,  # ERROR.TYPE of #NUM! is 6 in Excel and Calc
                   -1.0]  # mean 2 impossible: IFERROR's fallback
    assert {"Calc!C14", "Calc!C17", "Calc!C19"} <= ERROR_CELLS


def test_array_results_fill_their_ranges(live_calc, closing, feature):
    from npl_xl.model.beta import beta_draws

    book, report = feature
    doc = live_calc.load(book)
    closing(doc)
    fit = values(live_calc, doc, [f"Calc!{a}" for a in _range_cells("C5:H5")])
    assert all(isinstance(v, float) for v in fit) and fit[-1] == 3.0  # n: three interior rates
    draws = values(live_calc, doc, [f"Calc!{a}" for a in _range_cells("C7:C11")])
    assert draws == pytest.approx(list(beta_draws(0.4, 0.2, 5, 7)), rel=1e-12)
    # a range larger than the result, as in Excel: a one-row result repeats down the rows,
    # the columns beyond its width show #N/A
    live_calc.call("formula", doc=doc, sheet="Calc", where="J1:L2",
                   formula="=NPL_BETA_PARAMS(0.4;0.2)", array=True)
    got = values(live_calc, doc, ["Calc!J1", "Calc!K1", "Calc!L1", "Calc!J2", "Calc!K2"])
    # k = 0.4*0.6/0.2**2 - 1 = 5: alpha = 0.4*5 = 2, beta = 0.6*5 = 3
    assert got[:2] == pytest.approx([2.0, 3.0], rel=1e-12)
    assert got[2] == {"error": "#N/A"}
    assert got[3:] == pytest.approx([2.0, 3.0], rel=1e-12)


@pytest.mark.parametrize("name", ["npl_template.xlsx", "sample_deal.xlsx"])
def test_committed_workbooks_cell_by_cell(live_calc, closing, tmp_path, name):
    source = tmp_path / name
    shutil.copy(WORKBOOKS / name, source)
    report = recalc_workbook(source, tmp_path / ("recalc_" + name))
    doc = live_calc.load(source)
    closing(doc)
    compared, wrong, met = compare(live_calc, doc, report)
    MET.update(met)
    assert compared > 20 and not wrong, "\n".join(wrong[:20])


def test_shared_npl_formulas_as_excel_writes_them(live_calc, closing, feature, tmp_path):
    """A filled-down NPL formula stored once, as Excel saves it (<f t="shared" ...> and
    empty followers), computes in Calc cell by cell as in npl-xl recalc."""
    from recalc_fixtures import edit_parts, sheet_part

    book, _ = feature
    part = sheet_part(book, "Calc")

    def edit(contents):
        rows = "".join(
            f'<row r="{r}"><c r="J{r}"><v>{r}</v></c><c r="K{r}">'
            + ('<f t="shared" ref="K30:K34" si="0">NPL_BETA_INV(J30/100,0.4,0.2)</f>'
               if r == 30 else '<f t="shared" si="0"/>') + "</c></row>"
            for r in range(30, 35))
        contents[part] = contents[part].decode().replace("</sheetData>",
                                                         rows + "</sheetData>").encode()

    source = edit_parts(book, tmp_path / "shared.xlsx", edit)
    report = recalc_workbook(source, tmp_path / "shared.recalc.xlsx")
    doc = live_calc.load(source)
    closing(doc)
    compared, wrong, _ = compare(live_calc, doc, report)
    assert not wrong, "\n".join(wrong)
    got = values(live_calc, doc, [f"Calc!K{r}" for r in range(30, 35)])
    from npl_xl.model.beta import beta_inv

    assert got == pytest.approx([beta_inv(r / 100, 0.4, 0.2) for r in range(30, 35)], rel=1e-12)


#: Calls of the functions the three workbooks do not use, on a sheet added to the sample
#: deal (its names LoanTape, TrancheTable, DealSettings): (top-left, rows, cols, formula).
OTHERS = [
    ("B2", 10, 3, '=NPL_JUDICIAL_SCHEDULE("XJ","一拍")'),
    ("F2", 1, 2, "=NPL_COMPS_VALUE(100,Comps!A1:A2,Comps!B1:C2,,Comps!D1:D2,0.1)"),
    ("F4", 1, 4, "=NPL_AUCTION_VALUE(100)"),
    ("F6", 1, 1, "=NPL_NET_RECOVERY(100,80,10,,5)"),
    ("F7", 1, 1, "=NPL_RATING(0.001,2.5)"),
    ("F8", 1, 1, "=NPL_RATING(-0.01,2.5)"),
    ("B14", 12, 2, '=NPL_RIGHTS_SPLIT(Comps!E1:E12,"senior",10,10)'),
    ("F14", 14, 12, "=NPL_WATERFALL(Comps!E1:E12,TrancheTable,DealSettings)"),
    ("B30", 1, 3, "=NPL_BID_PRICE(LoanTape,0.12,0.5,DealSettings,200,7)"),
    # surveillance at month 24 of the sample deal's collection history; Comps!G1:H3 holds
    # the report's settings
    ("B40", 5, 7, "=NPL_ACTUAL_VS_EXPECTED(LoanTape,CollectionsTable,Comps!G1:H3)"),
    ("J40", 1200, 5, "=NPL_REPROJECT(LoanTape,CollectionsTable,Comps!G1:H3)"),
    # structuring and analysis, few paths
    ("B50", 2, 5, '=NPL_TRANCHE_SIZE(LoanTape,TrancheTable,"A2",,DealSettings,200,3)'),
    ("B53", 1, 3, "=NPL_BREAKEVEN(LoanTape,TrancheTable,,DealSettings)"),
    ("B55", 3, 3, '=NPL_SENSITIVITY(LoanTape,TrancheTable,"recovery",Comps!I1:I2,"EL",,DealSettings,200,3)'),
    ("B60", 3, 8, "=NPL_PRICE_TABLE(LoanTape,Comps!J1:J2,DealSettings,200,3)"),
]


@pytest.fixture(scope="module")
def others(tmp_path_factory):
    import openpyxl
    from openpyxl.worksheet.formula import ArrayFormula

    root = tmp_path_factory.mktemp("others")
    book = openpyxl.load_workbook(WORKBOOKS / "sample_deal.xlsx")
    comps = book.create_sheet("Comps")
    for r, row in enumerate([[10.0, 1.03, 0.98, 3.0, 40.0], [12.0, 1.0, 1.0, 1.0, 80.0]], 1):
        for c, value in enumerate(row, 1):
            comps.cell(r, c, value)
    for r in range(3, 13):
        comps.cell(r, 5, 10.0 * r)
    for r, (key, value) in enumerate([("as_of_months", 24), ("n_sims", 200), ("seed", 3)], 1):
        comps.cell(r, 7, key)
        comps.cell(r, 8, value)
    for r, (shock, price) in enumerate([(0.9, 2.5e9), (1.1, 3.5e9)], 1):
        comps.cell(r, 9, shock)
        comps.cell(r, 10, price)
    sheet = book.create_sheet("Others")
    for where, rows, cols, formula in OTHERS:
        if rows * cols > 1:
            from npl_xl.workbook.a1 import cell_address, parse_address

            r0, c0 = parse_address(where)
            sheet[where] = ArrayFormula(f"{where}:{cell_address(r0 + rows - 1, c0 + cols - 1)}",
                                        formula)
        else:
            sheet[where] = formula
    path = root / "others.xlsx"
    book.save(path)
    return path, recalc_workbook(path, root / "others.recalc.xlsx")


def test_the_other_functions_cell_by_cell(live_calc, closing, others):
    path, report = others
    doc = live_calc.load(path)
    closing(doc)
    compared, wrong, met = compare(live_calc, doc, report)
    MET.update(met)
    assert not wrong, "\n".join(wrong[:20])
    assert compared >= sum(r * c for _, r, c, _ in OTHERS)


def test_function_wizard_shows_english_help_and_the_chinese_line(live_calc):
    from npl_xl.sheet.registry import load_all

    function = load_all()["NPL_LOAN_RECOVERY"]
    entry = live_calc.call("function_description", name=function.name)
    assert entry is not None, "Calc's function list has no NPL_LOAN_RECOVERY"
    assert entry["description"].startswith(function.doc[:60])
    if function.zh:
        assert function.zh in entry["description"]
    assert entry["arguments"] == [a.name for a in function.args]  # the contract's names
    assert entry["argument_help"][0].startswith(function.args[0].doc[:40])


def test_every_registry_function_was_compared_live():
    """Run last in this module: the cell-by-cell comparisons above met every function."""
    from npl_xl.sheet.registry import load_all

    if not MET:
        pytest.skip("the comparisons did not run")
    missing = sorted(set(load_all()) - MET)
    assert not missing, f"no workbook compared these in Calc: {missing}"
