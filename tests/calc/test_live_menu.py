"""The NPL menu in LibreOffice Calc: the ribbon's macros through the third book adapter.

Each command is dispatched as the menu does (org.nplxl.calc:<command> on the document's
frame), runs npl_xl.macros in the extension's worker against the open document, and the
document is read back. The reference is the same macro on the same file through FileBook
(what ``npl-xl run`` does): same seed, so the same numbers.
"""

from __future__ import annotations

import math
import shutil
import zipfile
from pathlib import Path

import pytest

from npl_xl import macros
from npl_xl.recalc import recalc_workbook
from npl_xl.workbook.book import FileBook
from npl_xl.workbook.a1 import cell_address
from npl_xl_calc import names, spec

from recalc_fixtures import build_feature_workbook

pytestmark = pytest.mark.libreoffice

WORKBOOKS = Path(__file__).resolve().parents[2] / "workbooks"
SKIP_ROWS = {"workbook", "run_at_utc"}  # where the file came from, and when: differ by design


def _outcome(lines, command):
    done = [l for l in lines if l.startswith(f"command\t{command}\t")]
    assert done, f"{command} left no outcome in the log: {lines}"
    return done[-1].split("\t")


def _same(expected, got) -> bool:
    if isinstance(expected, bool):
        return got == (1.0 if expected else 0.0)
    if isinstance(expected, (int, float)):
        if isinstance(expected, float) and math.isnan(expected):
            return got in (None, "")
        return isinstance(got, float) and math.isclose(got, float(expected), rel_tol=1e-12,
                                                       abs_tol=1e-9)
    return got == (expected if expected is not None else None)


def test_run_simulation_from_the_menu_writes_results_and_charts(live_calc, closing, tmp_path):
    source = tmp_path / "sample_deal.xlsx"
    shutil.copy(WORKBOOKS / "sample_deal.xlsx", source)
    doc = live_calc.load(source, recalc=False)
    closing(doc)
    lines = live_calc.dispatch(doc, "run_simulation")
    outcome = _outcome(lines, "run_simulation")
    assert outcome[2] == "done", outcome
    assert any(l.startswith("status\tnpl-xl: simulating") for l in lines)  # the status bar

    _, reference = macros.run_simulation(FileBook(source))  # headless, the same file and seed
    cells = live_calc.call("used", doc=doc, sheet="Results")
    assert cells["A1"][1] == reference.title
    checked = 0
    for block in reference.blocks:
        header_row, col0 = reference.layout()[block.name]
        columns = [str(c) for c in block.frame.columns]
        for j, column in enumerate(columns):
            assert cells[cell_address(header_row, col0 + j)][1] == column
        for i, row in enumerate(block.frame.itertuples(index=False)):
            if row and str(row[0]) in SKIP_ROWS:
                continue
            for j, value in enumerate(row):
                got = cells.get(cell_address(header_row + 1 + i, col0 + j), [None, None])[1]
                value = value.item() if hasattr(value, "item") else value
                assert _same(value, got), (block.name, i, columns[j], value, got)
                checked += 1
    assert checked > 100
    charts = live_calc.call("charts", doc=doc, sheet="Results")
    assert [c[1] for c in charts] == [c.title for c in reference.charts]
    assert [c[2] for c in charts] == [len(c.series) for c in reference.charts]
    assert set(live_calc.call("database_ranges", doc=doc)) >= {b.name for b in reference.blocks
                                                               if b.table}


def test_validate_stratify_fit_price_and_clear_from_the_menu(live_calc, closing, tmp_path):
    source = tmp_path / "sample_deal.xlsx"
    shutil.copy(WORKBOOKS / "sample_deal.xlsx", source)
    doc = live_calc.load(source, recalc=False)
    closing(doc)
    for command, sheet in (("validate_tape", "Problems"), ("stratify_pool", "Strat"),
                           ("fit_recoveries", "Fit")):
        assert _outcome(live_calc.dispatch(doc, command), command)[2] == "done"
        assert sheet in live_calc.call("sheets", doc=doc)
    strat = macros.stratify_pool(FileBook(source))
    first = strat.blocks[0]
    header_row, col0 = strat.layout()[first.name]
    got = live_calc.call("cells", doc=doc, addresses=[
        f"Strat!{cell_address(header_row + 1 + i, col0 + 2)}" for i in range(len(first.frame))])
    assert [v for _, v in got] == pytest.approx(list(first.frame.iloc[:, 2]), rel=1e-12)
    assert len(live_calc.call("charts", doc=doc, sheet="Strat")) == len(strat.charts)
    assert _outcome(live_calc.dispatch(doc, "price_bid"), "price_bid")[2] == "done"
    bid = macros.price_bid(FileBook(source))  # same tape, settings and seed
    grid = bid.blocks[0]
    header_row, col0 = bid.layout()[grid.name]
    addresses = [f"Bid!{cell_address(header_row + 1 + i, col0 + j)}"
                 for i in range(len(grid.frame)) for j in range(len(grid.frame.columns))]
    got = [v for _, v in live_calc.call("cells", doc=doc, addresses=addresses)]
    assert got == pytest.approx([float(v) for v in grid.frame.to_numpy().ravel()], rel=1e-12)
    assert _outcome(live_calc.dispatch(doc, "clear_results"), "clear_results")[2] == "done"
    assert live_calc.call("cells", doc=doc, addresses=["Strat!A1"])[0][1] == "Strat 结果"
    assert live_calc.call("charts", doc=doc, sheet="Strat") == []


def test_menu_failure_names_the_cell(live_calc, closing, tmp_path):
    """Fit Recoveries on a book without history: the message says what to define."""
    book = build_feature_workbook(tmp_path / "feature.xlsx")
    doc = live_calc.load(book, recalc=False)
    closing(doc)
    lines = live_calc.dispatch(doc, "fit_recoveries")
    outcome = _outcome(lines, "fit_recoveries")
    assert outcome[2] == "failed" and "HistRecoveries" in outcome[4]
    assert any(l.startswith("message\t") and "HistRecoveries" in l for l in lines)


def test_explain_error_shows_the_reason(live_calc, closing, tmp_path):
    book = build_feature_workbook(tmp_path / "feature.xlsx")
    doc = live_calc.load(book)
    closing(doc)

    def explain(cell):
        live_calc.call("select", doc=doc, sheet="Calc", where=cell)
        lines = live_calc.dispatch(doc, spec.EXPLAIN_ERROR)
        return [l.split("\t", 1)[1] for l in lines if l.startswith("message\t")][-1]

    assert explain("C14") == ("Calc!C14: #NUM! mean: must be strictly between 0 and 1, "
                              "got 1.4")
    assert "must be a single cell" in explain("C19")
    assert "comes from its arguments" in explain("C17")  # =C14+1: the error is C14's
    assert explain("C1") == "Calc!C1 holds no error value."
    # the re-entry left the document as it was: still the same value, not modified
    assert live_calc.call("cells", doc=doc, addresses=["Calc!C14"])[0][1] == {"error": "#NUM!"}


def test_saving_as_xlsx_keeps_the_short_names(live_calc, closing, tmp_path):
    book = build_feature_workbook(tmp_path / "feature.xlsx")
    first = recalc_workbook(book, tmp_path / "first.recalc.xlsx")
    doc = live_calc.load(book)
    closing(doc)
    saved = tmp_path / "saved_by_calc.xlsx"
    live_calc.call("save_as", doc=doc, path=str(saved))
    with zipfile.ZipFile(saved) as archive:
        sheets = b"".join(archive.read(n) for n in archive.namelist()
                          if n.startswith("xl/worksheets/sheet"))
    prefix = names.long_prefix(spec.SERVICE).encode()
    assert prefix not in sheets.upper()
    assert b"NPL_BETA_PARAMS(0.4,0.2)" in sheets  # as Excel writes it
    # what Excel-like readers make of it: npl-xl recalc computes the same values again
    again = recalc_workbook(saved, tmp_path / "saved.recalc.xlsx")
    for address, value in first.values.items():
        if address.startswith("Calc!C") and address in again.values:
            assert str(again.values[address]) == str(value) or again.values[address] == \
                pytest.approx(value, rel=1e-12), address
    # and Calc itself opens its own xlsx again with live NPL formulas
    reopened = live_calc.load(saved)
    closing(reopened)
    got = live_calc.call("cells", doc=reopened, addresses=["Calc!C1", "Calc!C14"])
    assert got[0][1] == pytest.approx(2.0, rel=1e-12) and got[1][1] == {"error": "#NUM!"}


def test_a_1199_row_table_argument(live_calc, closing, tmp_path):
    from npl_xl.sheet.registry import load_all

    source = tmp_path / "sample_deal.xlsx"
    shutil.copy(WORKBOOKS / "sample_deal.xlsx", source)
    doc = live_calc.load(source, recalc=False)
    closing(doc)
    # LoanTape: the workbook's name for the Tape table with its header row, as the
    # template's formulas use it (a bare table name means the header row too in Calc, the
    # data rows only in Excel)
    live_calc.call("formula", doc=doc, sheet="Summary", where="AA1", formula="=ROWS(LoanTape)")
    live_calc.call("formula", doc=doc, sheet="Summary", where="AB1:AE40",
                   formula='=NPL_STRAT(LoanTape;"province";"claim")', array=True)
    rows = FileBook(source).read_table("Tape").rows  # header + 1,199 loans
    assert len(rows) == 1200
    expected = load_all()["NPL_STRAT"](rows, "province", "claim")
    got = live_calc.call("cells", doc=doc, addresses=["Summary!AA1"] + [
        f"Summary!{cell_address(i, 27 + j)}" for i in range(len(expected))
        for j in range(len(expected[0]))])
    assert got[0][1] == 1200.0  # the header and 1,199 loans
    flat = [v for _, v in got[1:]]
    want = [c for row in expected for c in row]
    assert [w if isinstance(w, str) else pytest.approx(w, rel=1e-12) for w in want] == flat


def test_1000_scalar_cells_recalculate(live_calc, closing):
    """1,000 NPL_BETA_INV cells, each against the registry; the time is reported, not
    asserted (benchmarks/calc_bench.py measures it)."""
    from npl_xl.model.beta import beta_inv

    doc = live_calc.call("new")
    closing(doc)
    n = 1000
    live_calc.call("fill", doc=doc, sheet="Sheet1", where=f"A1:A{n}",
                   formulas=[[f"=NPL_BETA_INV({(i + 1) / (n + 1)!r};0.4;0.2)"] for i in range(n)])
    seconds = live_calc.call("time_recalc", doc=doc, repeat=2)
    got = [v for _, v in live_calc.call("cells", doc=doc,
                                        addresses=[f"Sheet1!A{i + 1}" for i in range(n)])]
    assert got == pytest.approx([beta_inv((i + 1) / (n + 1), 0.4, 0.2) for i in range(n)],
                                rel=1e-12)
    print(f"1,000 NPL_BETA_INV cells recalculated in {min(seconds):.3f} s")
