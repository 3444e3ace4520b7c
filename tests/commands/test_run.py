"""``npl-xl run``: the sample deal gets a Results sheet with its tables and native charts,
the input is never touched, bad input gives the cells and a non-zero exit."""

from __future__ import annotations

import posixpath
import shutil
import zipfile

import openpyxl
import pytest
from lxml import etree

from workbook_helpers import (SAMPLE, SOFFICE, TEMPLATE, convert_to_pdf, resave_with_libreoffice,
                              sha256, with_cells)

from npl_xl.cli import main_cli
from npl_xl.commands.run import default_output
from npl_xl.workbook.graft import Package



RESULT_TABLES = {"ResultsRun", "ResultsTranches", "ResultsCollections", "ResultsLossDist",
                 "ResultsLossQuantiles", "ResultsIrrDist", "ResultsIrrQuantiles"}


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """One run of the sample deal (1,000 paths), shared by the tests below."""
    folder = tmp_path_factory.mktemp("run")
    source = folder / "sample_deal.xlsx"
    shutil.copyfile(SAMPLE, source)
    before = sha256(source)
    out = folder / "results" / "out.xlsx"  # a folder that does not exist yet, as in the README
    code = main_cli(["run", str(source), "-o", str(out), "--n-sims", "1000", "--seed", "3", "--quiet"])
    return {"code": code, "source": source, "before": before, "out": out, "folder": folder}


def test_run_exits_zero_and_leaves_the_input_untouched(sample_run, capsys):
    assert sample_run["code"] == 0
    assert sha256(sample_run["source"]) == sample_run["before"]
    assert sha256(sample_run["source"]) == sha256(SAMPLE)


def test_results_sheet_holds_the_tables(sample_run):
    wb = openpyxl.load_workbook(sample_run["out"])
    results = wb["Results"]
    assert RESULT_TABLES <= set(results.tables)
    ref = results.tables["ResultsTranches"].ref
    rows = [[c.value for c in r] for r in results[ref]]
    assert rows[0][:7] == ["name", "EL", "PD", "WAL", "mean_irr", "rating", "el_stderr"]
    assert [r[0] for r in rows[1:]] == ["Senior 优先档", "Subordinated 次级档"]
    senior = dict(zip(rows[0], rows[1]))
    assert 0 <= senior["EL"] < 0.05 and senior["el_stderr"] >= 0
    # the loss histogram of each tranche sums to one over its buckets
    ref = results.tables["ResultsLossDist"].ref
    loss = [[c.value for c in r] for r in results[ref]]
    for j in (3, 4):
        assert sum(r[j] for r in loss[1:]) == pytest.approx(1.0)
    # the user's sheets are still there, in order, with their tables
    assert wb.sheetnames[:8] == ["README", "Tape", "Tranches", "Settings", "Assumptions", "History",
                                 "Collections", "Summary"]
    assert "Tape" in wb["Tape"].tables


def test_results_charts_are_native_and_referenced_from_the_results_drawing(sample_run):
    package = Package.read(sample_run["out"])
    sheet_part = package.sheet_part("Results")
    drawings = [package.target(sheet_part, r) for r in package.relationships(sheet_part)
                if r.get("Type").endswith("/drawing")]
    assert len(drawings) == 1
    charts = [package.target(drawings[0], r) for r in package.relationships(drawings[0])
              if r.get("Type").endswith("/chart")]
    assert len(charts) == 3
    for chart in charts:
        assert chart in package.parts and package.content_type(chart).endswith("drawingml.chart+xml")
        xml = package.parts[chart].decode()
        assert "Results!$" in xml  # series point at the Results sheet's cells
    sheet = etree.fromstring(package.parts[sheet_part])
    assert sheet.find("{http://schemas.openxmlformats.org/spreadsheetml/2006/main}drawing") is not None


def test_png_is_written_beside_the_output(sample_run):
    png = sample_run["out"].with_suffix(".png")
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000


def test_tranche_table_is_printed(tmp_path, capsys):
    source = tmp_path / "deal.xlsx"
    shutil.copyfile(TEMPLATE, source)
    assert main_cli(["run", str(source), "--n-sims", "300", "--quiet", "--no-png"]) == 0
    out = capsys.readouterr().out
    assert "Senior" in out and "Subordinated" in out
    # the contract's columns in the contract's order, units in the headers
    header = next(line for line in out.splitlines() if line.startswith("name"))
    titles = ["name", "EL (bp)", "PD (%)", "WAL (years)", "mean IRR (% p.a.)", "rating", "EL s.e. (bp)"]
    positions = [header.index(title) for title in titles]
    assert positions == sorted(positions)
    assert "e-0" not in out  # no scientific notation
    assert default_output(source).is_file()  # IN.run.xlsx beside the input
    assert not default_output(source).with_suffix(".png").exists()


def test_bad_tape_cells_give_nonzero_exit_and_addresses(tmp_path, capsys):
    bad = with_cells(TEMPLATE, tmp_path / "bad.xlsx", {"Tape!E3": "abc", "Tape!C4": "Atlantis"})
    before = sha256(bad)
    code = main_cli(["run", str(bad), "--n-sims", "100", "--quiet"])
    err = capsys.readouterr().err
    assert code != 0
    assert "Tape!E3" in err and "Tape!C4" in err
    assert "Traceback" not in err
    assert not default_output(bad).exists()
    assert sha256(bad) == before


def test_output_equal_to_input_is_refused(tmp_path, capsys):
    source = tmp_path / "deal.xlsx"
    shutil.copyfile(TEMPLATE, source)
    code = main_cli(["run", str(source), "-o", str(source), "--n-sims", "100", "--quiet"])
    assert code != 0 and "overwrite" in capsys.readouterr().err
    assert sha256(source) == sha256(TEMPLATE)


def test_missing_file_is_a_message(tmp_path, capsys):
    assert main_cli(["run", str(tmp_path / "nope.xlsx")]) != 0
    assert "nope.xlsx" in capsys.readouterr().err


def test_same_seed_same_results(sample_run, tmp_path):
    again = tmp_path / "again.xlsx"
    assert main_cli(["run", str(sample_run["source"]), "-o", str(again), "--n-sims", "1000",
                     "--seed", "3", "--quiet", "--no-png"]) == 0

    def tranche_rows(path):
        ws = openpyxl.load_workbook(path)["Results"]
        return [[c.value for c in r] for r in ws[ws.tables["ResultsTranches"].ref]]

    assert tranche_rows(again) == tranche_rows(sample_run["out"])


@pytest.mark.libreoffice
@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) not installed")
def test_libreoffice_opens_the_run_output(sample_run, tmp_path):
    pdf = convert_to_pdf(sample_run["out"], tmp_path)
    assert pdf.stat().st_size > 50_000
    with zipfile.ZipFile(sample_run["out"]) as archive:
        assert archive.testzip() is None
    # what LibreOffice understood: saved again, the Results sheet keeps its charts and tables
    resaved = openpyxl.load_workbook(resave_with_libreoffice(sample_run["out"], tmp_path / "again"))
    assert len(resaved["Results"]._charts) == 3
    assert RESULT_TABLES <= set(resaved["Results"].tables)


def test_the_table_reads_like_a_report_with_chinese_names_aligned(tmp_path, capsys):
    import json
    import re

    from wcwidth import wcswidth

    source = with_cells(TEMPLATE, tmp_path / "deal.xlsx", {"Tranches!A3": "优先A档", "Tranches!A4": "次级档"})
    assert main_cli(["run", str(source), "--n-sims", "400", "--seed", "2", "--quiet", "--no-png"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("name"))
    table = lines[start:start + 4]  # header, rule, two tranches
    assert "优先A档" in table[2] and "次级档" in table[3]
    # every row ends its numeric columns at the same display column (wcwidth, not len)
    ends = {wcswidth(line[:m.end()]) for line in table[2:] for m in [re.search(r"[\d.]+\s+\S+\s+[\d.]+$", line)]}
    assert len(ends) == 1, table
    assert len({wcswidth(line) for line in table[1:]}) == 1
    # money with thousands separators
    assert re.search(r"claims \d{1,3}(,\d{3})+", out)

    assert main_cli(["run", str(source), "-o", str(tmp_path / "j.xlsx"), "--n-sims", "400",
                     "--seed", "2", "--quiet", "--no-png", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)  # stdout is JSON and nothing else
    assert [t["name"] for t in document["tranches"]] == ["优先A档", "次级档"]
    assert list(document["tranches"][0])[:7] == ["name", "EL", "PD", "WAL", "mean_irr", "rating", "el_stderr"]
    # the same figures as the text table, which shows EL in bp and PD in percent
    sub = document["tranches"][-1]
    assert f"{sub['EL'] * 1e4:,.2f}" in table[3] and f"{sub['PD'] * 100:,.2f}" in table[3]
    assert document["n_paths"] == 400 and document["output"].endswith("j.xlsx")
