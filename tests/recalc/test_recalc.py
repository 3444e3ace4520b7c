"""`npl-xl recalc` end to end on a workbook built here (the issue's acceptance criteria)."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from npl_xl.model import beta
from npl_xl.cli import main_cli
from npl_xl.recalc import evaluate_workbook, recalc_workbook
from npl_xl.workbook.a1 import cell_address, parse_range

from recalc_fixtures import (ERROR_CELLS, NATIVE, NPL, build_feature_workbook,
                             libreoffice_convert, make_macro_workbook, parts, sha256,
                             sheet_part, soffice)


@pytest.fixture(scope="module")
def feature_book(tmp_path_factory) -> Path:
    return build_feature_workbook(tmp_path_factory.mktemp("recalc") / "features.xlsx")


@pytest.fixture(scope="module")
def recalculated(feature_book, tmp_path_factory):
    """Run the command once (in process, through the real CLI entry point)."""
    out = tmp_path_factory.mktemp("out") / "features_out.xlsx"
    before = sha256(feature_book)
    code = main_cli(["recalc", str(feature_book), "-o", str(out)])
    return {"code": code, "out": out, "hash_before": before}


def _cells(where: str) -> list[str]:
    row0, col0, row1, col1 = parse_range(where)
    return [cell_address(r, c) for r in range(row0, row1 + 1) for c in range(col0, col1 + 1)]


def _expected_c12() -> float:
    # beta parameter of NPL_BETA_PARAMS(C2, 0.05), from C2's independent value
    c2 = dict((w, e) for w, _, e in NPL)["C2"]
    k = c2 * (1 - c2) / 0.05 ** 2 - 1
    return (1 - c2) * k


def test_values_match_independent_expectations(recalculated):
    book = openpyxl.load_workbook(recalculated["out"], data_only=True)
    calc = book["Calc"]
    for cell, formula, expected in NATIVE:
        got = calc[cell].value
        if isinstance(expected, float):
            assert got == pytest.approx(expected, rel=1e-12), (cell, formula)
        else:
            assert got == expected, (cell, formula)
    for where, formula, expected in NPL:
        cells = _cells(where)
        got = [calc[c].value for c in cells]
        if where == "C7:C11":
            expected = beta.beta_draws(0.4, 0.2, 5, 7).tolist()
            assert all(0 < g < 1 for g in got)
        elif where == "C12":
            expected = _expected_c12()
        elif where == "C20":
            expected = float(beta.beta_draws(0.4, 0.2, 5, 7).sum())
        if isinstance(expected, list):
            expected = [x for row in expected for x in row] if isinstance(expected[0], list) \
                else expected
            assert got == pytest.approx(expected, rel=1e-9), (where, formula)
        elif isinstance(expected, float):
            assert got[0] == pytest.approx(expected, rel=1e-9), (where, formula)
        else:
            assert got[0] == expected, (where, formula)
    # the calculated column ([@claim]*Tape[[#This Row],[mean rr]]) and a scoped name elsewhere
    tape = book["Tape"]
    assert [tape[f"F{r}"].value for r in range(2, 7)] == pytest.approx([20, 60, 120, 200, 300])
    assert [tape[f"G{r}"].value for r in range(2, 7)] == [False, False, True, True, True]
    assert book["Other"]["B2"].value == 0.2  # workbook-scoped LOCALRATE, not Calc's


def test_exit_code_error_list_and_input_untouched(recalculated, feature_book, capsys):
    assert recalculated["code"] == 1
    assert sha256(feature_book) == recalculated["hash_before"]
    out = recalculated["out"]
    code = main_cli(["recalc", str(feature_book), "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.err.strip().splitlines()
    listed = {line.split(": ", 1)[0] for line in lines}
    assert listed == ERROR_CELLS
    assert "Calc!C14: #NUM! — mean: must be strictly between 0 and 1, got 1.4" in lines
    assert any(line.startswith("Calc!C17: #NUM! — from Calc!C14: mean:") for line in lines)
    assert "Calc!C18: could not be computed (#NAME?: function FOO is not supported)" in lines
    assert any(line.startswith("Calc!C19: #VALUE! — mean: must be a single cell") for line in lines)
    assert re.search(r"\d+ formula cells computed, 6 in error .* s ->", captured.out)
    assert main_cli(["recalc", str(feature_book), "-o", str(out), "--allow-errors"]) == 0
    nested = out.parent / "new folder" / "out.xlsx"  # the output folder is created
    assert main_cli(["recalc", str(feature_book), "-o", str(nested), "--allow-errors"]) == 0
    assert nested.is_file()
    assert sha256(feature_book) == recalculated["hash_before"]


def test_errors_are_error_values_in_the_file(recalculated):
    book = openpyxl.load_workbook(recalculated["out"], data_only=True)
    calc = book["Calc"]
    for address in ERROR_CELLS:
        cell = calc[address.split("!")[1]]
        assert cell.data_type == "e", address
    sheet = parts(recalculated["out"])[sheet_part(recalculated["out"], "Calc")].decode()
    assert re.search(r'<c r="C14"[^>]*t="e"[^>]*>.*?<v>#NUM!</v>', sheet)
    assert re.search(r'<c r="A17"[^>]*t="b"[^>]*>.*?<v>1</v>', sheet)
    assert re.search(r'<c r="A3"[^>]*t="str"[^>]*>.*?<v>big</v>', sheet)
    # formulas are still there, array formulas keep their ref
    formulas = openpyxl.load_workbook(recalculated["out"])["Calc"]
    assert formulas["A1"].value == "=SUM(Tape[claim])"
    assert formulas["C7"].value.ref == "C7:C11"


def test_report_api_and_in_memory_evaluation(feature_book, tmp_path):
    report = recalc_workbook(feature_book, tmp_path / "api.xlsx")
    assert set(report.errors) == ERROR_CELLS
    assert report.errors["Calc!C14"].message == "mean: must be strictly between 0 and 1, got 1.4"
    assert not report.errors["Calc!C18"].computed
    assert report.values["Calc!C3"] == pytest.approx(11 / 16)
    assert report.values["Calc!C14"].code == "#NUM!"
    assert report.cells_computed == len(report.values) - 1  # all but FOO(1)
    values = evaluate_workbook(feature_book)
    assert values.keys() == report.values.keys()
    assert values["Calc!A2"] == 700.0


def test_unusable_input_exits_2_without_traceback(tmp_path, feature_book, capsys):
    missing = tmp_path / "missing.xlsx"
    assert main_cli(["recalc", str(missing)]) == 2
    assert "no such file" in capsys.readouterr().err
    text = tmp_path / "notes.xlsx"
    text.write_text("not a workbook")
    assert main_cli(["recalc", str(text)]) == 2
    assert "not an .xlsx/.xlsm workbook" in capsys.readouterr().err
    before = sha256(feature_book)
    assert main_cli(["recalc", str(feature_book), "-o", str(feature_book)]) == 2
    assert "must not be the input" in capsys.readouterr().err
    assert sha256(feature_book) == before


def test_default_output_beside_input_and_subprocess(tmp_path):
    book = build_feature_workbook(tmp_path / "book.xlsx")
    done = subprocess.run([sys.executable, "-m", "npl_xl.cli", "recalc", str(book),
                           "--allow-errors"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "book.recalc.xlsx").exists()


def test_xlsm_with_vba_and_customui14_is_preserved(tmp_path, feature_book):
    xlsm = make_macro_workbook(feature_book, tmp_path / "macro.xlsm")
    report = recalc_workbook(xlsm)
    assert report.path_out == tmp_path / "macro.recalc.xlsm"
    before, after = parts(xlsm), parts(report.path_out)
    assert list(before) == list(after)  # same parts, same order
    changed = {name for name in before if before[name] != after[name]}
    formula_sheets = {sheet_part(xlsm, s) for s in ("Tape", "Calc", "Other")}
    assert changed == formula_sheets | {"xl/workbook.xml"}
    assert b'fullCalcOnLoad="1"' in before["xl/workbook.xml"]
    assert after["xl/workbook.xml"] == before["xl/workbook.xml"].replace(
        b' fullCalcOnLoad="1"', b"")
    assert after["xl/vbaProject.bin"] == before["xl/vbaProject.bin"]
    assert b"customUI14.xml" in after["_rels/.rels"]
    reopened = openpyxl.load_workbook(report.path_out, keep_vba=True, data_only=True)
    assert reopened["Calc"]["A1"].value == 1500


def test_dynamic_array_with_cm_and_metadata(tmp_path, feature_book):
    """An Excel-365 spill as Excel saves it: t="array" ref + cm="1" + xl/metadata.xml."""
    from recalc_fixtures import DYNAMIC_ARRAY_METADATA as metadata
    from recalc_fixtures import mark_dynamic_arrays

    calc = sheet_part(feature_book, "Calc")

    def edit(contents):
        mark_dynamic_arrays(contents, calc, ["C7"])

    from recalc_fixtures import edit_parts

    source = edit_parts(feature_book, tmp_path / "dynamic.xlsx", edit)
    report = recalc_workbook(source, tmp_path / "dynamic_out.xlsx")
    assert [report.values[f"Calc!C{r}"] for r in range(7, 12)] == pytest.approx(
        beta.beta_draws(0.4, 0.2, 5, 7))
    after = parts(report.path_out)
    assert after["xl/metadata.xml"] == metadata
    assert re.search(rb'<c r="C7" [^>]*cm="1"', after[calc])


def test_shared_formulas_as_excel_writes_them(tmp_path, feature_book):
    """Filled-down formulas stored once: <f t="shared" ref=.. si=..> and empty children."""
    calc, tape = sheet_part(feature_book, "Calc"), sheet_part(feature_book, "Tape")

    def edit(contents):
        xml = contents[calc].decode()
        rows = "".join(
            f'<row r="{r}"><c r="J{r}"><v>{r}</v></c><c r="K{r}">'
            + (f'<f t="shared" ref="K30:K34" si="0">J30*$B$20+SUM($J$30:J30)</f>' if r == 30
               else '<f t="shared" si="0"/>') + "</c></row>"
            for r in range(30, 35))
        xml = xml.replace("</sheetData>", rows + "</sheetData>")
        contents[calc] = xml.encode()
        # the Tape's calculated column G as Excel stores it: one shared formula, with a
        # cell typed with the same text before it (the template cache must not leak rows)
        tape_xml = contents[tape].decode()
        for r in range(2, 7):
            formula = (f'<f t="shared" ref="G3:G6" si="7">Tape[[#This Row],[claim]]*2</f>'
                       if r == 3 else '<f t="shared" si="7"/>' if r > 3
                       else "<f>Tape[[#This Row],[claim]]*2</f>")
            tape_xml = re.sub(rf'<c r="G{r}"([^>]*)><f>[^<]*</f>', rf'<c r="G{r}"\1>{formula}',
                              tape_xml)
        contents[tape] = tape_xml.encode()

    from recalc_fixtures import edit_parts

    source = edit_parts(feature_book, tmp_path / "shared.xlsx", edit)
    values = evaluate_workbook(source)
    from npl_xl.recalc.engine import evaluate_package
    from npl_xl.recalc.xlsx import read_package

    formulas = evaluate_package(read_package(source)).formulas
    assert formulas[("Calc", 32, 10)] == "J33*$B$20+SUM($J$30:J33)"  # K33 as Excel shows it
    # K_r = r*0.05 + (30 + ... + r)
    for r in range(30, 35):
        assert values[f"Calc!K{r}"] == pytest.approx(r * 0.05 + sum(range(30, r + 1)))
    assert [values[f"Tape!G{r}"] for r in range(2, 7)] == [200.0, 400.0, 600.0, 800.0, 1000.0]
    assert formulas[("Tape", 5, 6)] == "Tape[[#This Row],[claim]]*2"


@pytest.mark.libreoffice
@pytest.mark.skipif(soffice() is None, reason="LibreOffice (soffice) is not on PATH")
def test_libreoffice_opens_output_and_agrees_on_native_formulas(recalculated, tmp_path):
    out = recalculated["out"]
    # 1. LibreOffice recalculates everything itself (OOXMLRecalcMode=0): native formulas
    #    must agree with ours; NPL functions are unknown to it.
    recomputed = libreoffice_convert(out, tmp_path / "lo_recalc", tmp_path / "profile1",
                                     recalc_on_load=True)
    ours = openpyxl.load_workbook(out, data_only=True)["Calc"]
    theirs = openpyxl.load_workbook(recomputed, data_only=True)["Calc"]
    for cell, formula, _ in NATIVE:
        if cell in ("A11", "A12"):
            # LibreOffice 7.4 gives COUNTA(Tape[#Headers]) = 1 and ROWS(Tape[#All]) = #NAME?;
            # in Excel #Headers is the whole header row (7 texts) and #All the 6 rows of
            # the table. Ours follows Excel; these two are checked against hand counts above.
            continue
        assert theirs[cell].value == ours[cell].value or (
            isinstance(ours[cell].value, float)
            and theirs[cell].value == pytest.approx(ours[cell].value, rel=1e-12)), (cell, formula)
    assert theirs["C2"].value in ("#NAME?", "#NAME")  # no add-in in LibreOffice
    # 2. Default behaviour: LibreOffice opens the file and shows our cached values.
    kept = libreoffice_convert(out, tmp_path / "lo_keep", tmp_path / "profile2",
                               recalc_on_load=False)
    shown = openpyxl.load_workbook(kept, data_only=True)["Calc"]
    assert shown["C2"].value == pytest.approx(ours["C2"].value, rel=1e-12)
    assert shown["C3"].value == pytest.approx(11 / 16, rel=1e-12)
    assert shown["A2"].value == 700


def test_package_saved_by_excel(tmp_path):
    """A package Excel itself saved (xlwings' quickstart.xlsm: mc:Ignorable, x14ac, VBA),
    with formulas as Excel writes them, stale cached values included."""
    import xlwings

    source = Path(xlwings.__file__).parent / "quickstart.xlsm"
    sheet_data = (
        '<sheetData><row r="1" spans="1:3" x14ac:dyDescent="0.3"><c r="A1"><v>2</v></c>'
        '<c r="B1"><f>A1*10</f><v>999</v></c>'
        '<c r="C1" t="str"><f>IF(B1&gt;5,"big","small")</f><v>stale</v></c></row>'
        '<row r="2" spans="1:3" x14ac:dyDescent="0.3"><c r="A2"><v>3</v></c>'
        '<c r="B2"><f t="shared" ref="B2:B3" si="0">A2*10+B1</f><v>0</v></c>'
        '<c r="C2"><f t="array" ref="C2:D2">NPL_BETA_PARAMS(0.4,0.2)</f><v>0</v></c>'
        '<c r="D2"><v>0</v></c></row>'
        '<row r="3" spans="1:3" x14ac:dyDescent="0.3"><c r="A3"><v>4</v></c>'
        '<c r="B3"><f t="shared" si="0"/><v>0</v></c></row></sheetData>')

    def edit(contents):
        contents["xl/worksheets/sheet1.xml"] = contents["xl/worksheets/sheet1.xml"].replace(
            b"<sheetData/>", sheet_data.encode())

    from recalc_fixtures import edit_parts

    book = edit_parts(source, tmp_path / "excel_saved.xlsm", edit)
    report = recalc_workbook(book)
    assert report.ok, report.error_lines()
    values = openpyxl.load_workbook(report.path_out, data_only=True, keep_vba=True)
    sheet = values.worksheets[0]
    # B1 = 20; B2 = 30 + 20; B3 = 40 + 50; C1 text; C2:D2 = alpha 2, beta 3
    assert [sheet[c].value for c in ("B1", "B2", "B3", "C1")] == [20, 50, 90, "big"]
    assert [sheet["C2"].value, sheet["D2"].value] == pytest.approx([2.0, 3.0], rel=1e-12)
    xml = parts(report.path_out)["xl/worksheets/sheet1.xml"]
    assert b'mc:Ignorable="x14ac xr xr2 xr3"' in xml and b'x14ac:dyDescent="0.3"' in xml
    assert parts(report.path_out)["xl/vbaProject.bin"] == parts(book)["xl/vbaProject.bin"]
