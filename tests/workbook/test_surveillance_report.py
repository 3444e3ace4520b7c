"""Surveillance Report, npl-xl surveil, npl-xl collections import and Run Simulation from a
report date, headless on the committed workbooks (real files written and read back)."""

from __future__ import annotations

import subprocess
import sys

import openpyxl
import pytest

from npl_xl import macros
from npl_xl.workbook.book import FileBook
from workbook_helpers import SAMPLE, TEMPLATE, sha256, with_cells


def _settings_cell(path, key: str) -> str:
    ws = openpyxl.load_workbook(path)["Settings"]
    for row in ws.iter_rows(min_col=1, max_col=1):
        if row[0].value == key:
            return f"Settings!B{row[0].row}"
    raise AssertionError(f"no Settings row {key}")


def test_sample_deal_has_a_collection_history_and_the_report_is_consistent(tmp_path):
    book = FileBook(SAMPLE)
    collections = book.read_table("Collections")
    assert len(collections.rows) > 100  # the synthetic 24-month history
    issuance, after, spec = macros.surveillance_report(book, n_sims=400)
    avse = spec.block("SurvActualExpected").frame
    assert list(avse["month"]) == [6.0, 12.0, 18.0, 24.0]   # report date: month 24
    total = sum(r[2] for r in collections.rows[1:] if isinstance(r[2], (int, float)))
    assert avse["actual"].sum() == pytest.approx(total)
    tranches = spec.block("SurvTranches").frame
    assert list(tranches["name"]) == list(issuance.tranche_table["name"])
    assert tranches.loc[tranches["name"].str.startswith("Sub"), "report_rating"].iloc[0] == "NR"
    out = book.save(tmp_path / "out.xlsx")
    wb = openpyxl.load_workbook(out)
    assert "Surveillance" in wb.sheetnames
    tables = {t for ws in wb.worksheets for t in ws.tables}
    assert {"SurvActualExpected", "SurvTranches", "SurvShortfalls", "Collections"} <= tables


def test_surveil_command_writes_book_and_png_and_leaves_input(tmp_path):
    before = sha256(SAMPLE)
    out = tmp_path / "s.xlsx"
    done = subprocess.run([sys.executable, "-m", "npl_xl.cli", "surveil", str(SAMPLE), "-o",
                           str(out), "--n-sims", "400", "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "report date: month 24" in done.stdout and "Traceback" not in done.stderr
    assert out.is_file() and out.with_suffix(".png").stat().st_size > 10_000
    assert sha256(SAMPLE) == before


def test_template_without_collections_rows_reports_at_issuance():
    book = FileBook(TEMPLATE)
    _, _, spec = macros.surveillance_report(book, n_sims=200)
    assert spec.block("SurvActualExpected").frame.empty
    run = spec.block("SurvRun").frame
    assert run.loc[run["key"] == "report date (as_of_months)", "value"].iloc[0] == 0.0


def test_run_simulation_from_the_report_date(tmp_path):
    edited = with_cells(SAMPLE, tmp_path / "as_of.xlsx", {_settings_cell(SAMPLE, "as_of_months"): 12})
    result, spec = macros.run_simulation(FileBook(edited), n_sims=400)
    run = spec.block("ResultsRun").frame
    assert run["value"].iloc[0] == 12
    assert result.collection_curve["month"].iloc[0] == 18.0   # first payment date after month 12
    # the deal from month 12 has 48 months left
    assert result.settings.legal_final_months == 48.0


def test_collections_import_appends_in_a_copy(tmp_path):
    csv = tmp_path / "servicer.csv"
    ids = [r[0] for r in FileBook(SAMPLE).read_table("Tape").rows[1:4]]
    csv.write_text("贷款编号,回收月份,回收金额,已结清\n" + "".join(
        f"{i},25,{1000 * (k + 1)},否\n" for k, i in enumerate(ids)), encoding="utf-8")
    before = sha256(SAMPLE)
    n_before = len(FileBook(SAMPLE).read_table("Collections").rows) - 1
    out = tmp_path / "book.xlsx"
    done = subprocess.run([sys.executable, "-m", "npl_xl.cli", "collections", "import", str(csv),
                           "--book", str(SAMPLE), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "imported 3 rows (6,000.00)" in done.stdout
    rows = FileBook(out).read_table("Collections").rows
    assert len(rows) - 1 == n_before + 3
    # the workbook name follows the table: NPL_ACTUAL_VS_EXPECTED(LoanTape, CollectionsTable, ..)
    named = FileBook(out).read_name("CollectionsTable").rows
    assert named == rows
    assert rows[-1][:3] == [ids[2], 25.0, 3000.0]
    assert sha256(SAMPLE) == before
    # a loan that is not in the tape: one line, exit 2, nothing written
    csv.write_text("loan_id,month,amount\nNOPE,25,1\n", encoding="utf-8")
    bad = subprocess.run([sys.executable, "-m", "npl_xl.cli", "collections", "import", str(csv),
                          "--book", str(SAMPLE), "-o", str(tmp_path / "bad.xlsx")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "'NOPE' is not in the tape" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "bad.xlsx").exists()
