"""The ribbon macros on real workbook files (FileBook) for three Settings/tape features:
price_to_principal in Price Bid, tax_base = interest in Run Simulation, and the Audit sheet
that Run Simulation writes when Settings audit is TRUE (the ribbon's way to the audit trail
of ``npl-xl run --audit``)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import openpyxl
import pytest

from workbook_helpers import TEMPLATE, with_cells

from npl_xl import macros
from npl_xl.analysis import pricing
from npl_xl.analysis.audit import audit_frames, base_case_collections
from npl_xl.errors import NplError
from npl_xl.workbook.book import FileBook

#: The template's six loans' claims (Tape!E3:E8), currency: 59.5m in all.
CLAIMS = [12_000_000, 3_500_000, 25_000_000, 8_000_000, 5_000_000, 6_000_000]
#: Settings value cells of the template (workbooks/build_workbooks.py writes SETTINGS in order).
TAX_BASE, AUDIT, AUDIT_PATHS = "Settings!B13", "Settings!B42", "Settings!B43"


def _with_principal(tmp_path, extra=None, name="principal.xlsx"):
    """The template with a principal (未偿本金) and an interest column: the borrower_recovery
    and other_recovery columns renamed and refilled, principal 80 % and interest 20 % of each
    claim (so claim = principal + interest, as the tape checks)."""
    cells = {"Tape!L2": "interest", "Tape!N2": "principal"}
    for row, claim in zip(range(3, 9), CLAIMS):
        cells[f"Tape!L{row}"] = 0.2 * claim
        cells[f"Tape!N{row}"] = 0.8 * claim
    cells.update(extra or {})
    return with_cells(TEMPLATE, tmp_path / name, cells)


def _labels():
    wb = openpyxl.load_workbook(TEMPLATE)
    ws = wb["Settings"]
    return {ref: ws[ref.split("!")[1].replace("B", "A")].value
            for ref in (TAX_BASE, AUDIT, AUDIT_PATHS)}


def test_settings_cells_are_the_keys_the_tests_set():
    assert _labels() == {TAX_BASE: "tax_base", AUDIT: "audit", AUDIT_PATHS: "audit_paths"}


def test_price_bid_adds_price_to_principal_by_hand(tmp_path):
    book = FileBook(_with_principal(tmp_path))
    grid = macros.price_bid(book, n_sims=400, seed=2).block("BidGrid").frame
    # principal = 0.8 x 59.5m = 47.6m, claims 59.5m: price_to_principal = price / 47.6m,
    # so price_to_principal / price_to_claim = 59.5 / 47.6 = 1.25
    for c in macros.BID_CONFIDENCES:
        price = grid[f"price_p{int(c * 100)}"]
        np.testing.assert_allclose(grid[f"price_to_principal_p{int(c * 100)}"],
                                   price / 47_600_000.0, rtol=1e-12)
        np.testing.assert_allclose(grid[f"price_to_principal_p{int(c * 100)}"],
                                   1.25 * grid[f"price_to_claim_p{int(c * 100)}"], rtol=1e-12)
    # the same numbers as NPL_BID_PRICE's fourth column
    pool = macros._valued(book, settings=macros._settings(book))
    row = grid.iloc[0]
    bid = pricing.bid_price(pool, row["target_irr"], 0.5, macros._settings(book), 400, 2)
    assert bid.as_row() == [row["price_p50"], row["price_to_claim_p50"], bid.irr_at_price_mean,
                            row["price_to_principal_p50"]]
    # the template itself has no principal column: no such column, the grid as before
    plain = macros.price_bid(FileBook(TEMPLATE), n_sims=400, seed=2).block("BidGrid").frame
    assert not any("principal" in c for c in plain.columns)


def test_run_simulation_taxes_interest_only_with_a_principal_column(tmp_path):
    base = macros.run_simulation(FileBook(_with_principal(tmp_path)), n_sims=400)[0]
    book = FileBook(_with_principal(tmp_path, {TAX_BASE: "interest"}, "interest.xlsx"))
    interest = macros.run_simulation(book, n_sims=400)[0]
    # the same draws, less tax: the subordinated tranche (last row) loses less
    assert np.array_equal(base.path_collections, interest.path_collections)
    assert interest.tranche_table.EL.iloc[-1] < base.tranche_table.EL.iloc[-1]
    assert np.all(interest.extras["taxable"] <= interest.path_collections + 1e-6)
    # the template has no principal column: one clear message naming the key and column
    no_principal = with_cells(TEMPLATE, tmp_path / "none.xlsx", {TAX_BASE: "interest"})
    with pytest.raises(NplError) as info:
        macros.run_simulation(FileBook(no_principal), n_sims=40)
    assert "tax_base" in str(info.value) and "principal" in str(info.value)


def _audit_book(tmp_path):
    return with_cells(TEMPLATE, tmp_path / "audit.xlsx", {AUDIT: True, AUDIT_PATHS: "0,3"})


def _sheet_tables(path, sheet):
    """{table name: rows (lists) with the header row first} of a saved workbook's sheet."""
    ws = openpyxl.load_workbook(path, data_only=True)[sheet]
    out = {}
    for name, ref in ws.tables.items():
        out[name] = [[c.value for c in row] for row in ws[ref]]
    return out


def test_run_simulation_writes_the_audit_sheet_when_settings_audit_is_true(tmp_path):
    book = FileBook(_audit_book(tmp_path))
    result, _ = macros.run_simulation(book, n_sims=200)
    saved = book.save(tmp_path / "out.xlsx")
    tables = _sheet_tables(saved, "Audit")
    assert list(tables) == ["Audit_base_case", "Audit_path_0", "Audit_path_3"]
    frames = audit_frames(result, [0, 3])
    for case, frame in frames.items():
        rows = tables[f"Audit_{case}"]
        assert rows[0] == list(frame.columns)
        assert len(rows) - 1 == len(frame)
        for column in ("collections", "taxes", "residual"):
            k = rows[0].index(column)
            np.testing.assert_allclose([r[k] for r in rows[1:]], frame[column], rtol=1e-12)
    # the base case's collections are each loan's expected recovery on its payment date, and
    # path 3's those the simulation ran through the waterfall
    k = tables["Audit_base_case"][0].index("collections")
    np.testing.assert_allclose([r[k] for r in tables["Audit_base_case"][1:]],
                               base_case_collections(result.extras["pool"], result.settings))
    np.testing.assert_allclose([r[k] for r in tables["Audit_path_3"][1:]],
                               result.path_collections[3], rtol=1e-12)
    # Clear Results empties it with the other output sheets
    assert "Audit" in macros.clear_results(FileBook(saved))


def test_audit_is_off_by_default_and_a_bad_path_names_the_settings_key(tmp_path):
    book = FileBook(TEMPLATE)
    macros.run_simulation(book, n_sims=40)
    assert "Audit" not in openpyxl.load_workbook(book.save(tmp_path / "o.xlsx")).sheetnames
    bad = with_cells(TEMPLATE, tmp_path / "bad.xlsx", {AUDIT: True, AUDIT_PATHS: "0,999"})
    with pytest.raises(NplError, match="audit_paths"):
        macros.run_simulation(FileBook(bad), n_sims=40)
    # one path typed in the cell is a number, and is taken as that path
    one = with_cells(TEMPLATE, tmp_path / "one.xlsx", {AUDIT: True, AUDIT_PATHS: 7})
    book = FileBook(one)
    macros.run_simulation(book, n_sims=40)
    assert set(_sheet_tables(book.save(tmp_path / "one.out.xlsx"), "Audit")) == {
        "Audit_base_case", "Audit_path_7"}


def test_npl_xl_run_writes_the_same_audit_sheet_as_the_ribbon(tmp_path):
    # the command runs the ribbon's macro, so Settings audit TRUE gives it the Audit sheet too
    source = _audit_book(tmp_path)
    out = tmp_path / "cli.xlsx"
    run = subprocess.run([sys.executable, "-m", "npl_xl.cli", "run", str(source), "-o", str(out),
                          "--n-sims", "200", "--no-png", "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    book = FileBook(source)
    macros.run_simulation(book, n_sims=200)
    ribbon = book.save(tmp_path / "ribbon.xlsx")
    assert _sheet_tables(out, "Audit") == _sheet_tables(ribbon, "Audit")


def test_audit_from_the_report_date_shows_months_after_closing(tmp_path):
    # the sample deal from month 12 (its Collections table): the remaining deal's waterfall,
    # first payment date month 18 after closing, as in its Results; legal final 60
    from workbook_helpers import SAMPLE

    ws = openpyxl.load_workbook(SAMPLE)["Settings"]
    cell = {row[0].value: f"Settings!B{row[0].row}" for row in ws.iter_rows(min_col=1, max_col=1)}
    edited = with_cells(SAMPLE, tmp_path / "as_of.xlsx",
                        {cell["as_of_months"]: 12, cell["audit"]: True})
    book = FileBook(edited)
    result, _ = macros.run_simulation(book, n_sims=200)
    rows = _sheet_tables(book.save(tmp_path / "out.xlsx"), "Audit")["Audit_base_case"]
    months = [r[rows[0].index("month")] for r in rows[1:]]
    assert months[0] == 18.0 and months[-1] == 60.0
    assert months == list(result.collection_curve["month"])
