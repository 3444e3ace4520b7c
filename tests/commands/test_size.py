"""``npl-xl size`` and ``npl-xl sensitivity`` on the sample deal: the Structuring and
Sensitivity sheets, their native charts and heat map, the PNG; Run Simulation's run block
under target_stderr."""

from __future__ import annotations

import zipfile

import openpyxl
import pytest

from workbook_helpers import SAMPLE

from npl_xl.cli import main_cli


@pytest.fixture(scope="module")
def sized(tmp_path_factory):
    out = tmp_path_factory.mktemp("size") / "deal.size.xlsx"
    assert main_cli(["size", str(SAMPLE), "-o", str(out), "--n-sims", "2000", "--quiet"]) == 0
    return out


def test_structuring_sheet(sized, capsys):
    wb = openpyxl.load_workbook(sized, data_only=True)
    sheet = wb["Structuring"]
    assert {"StructRun", "StructSizes", "StructGiven", "StructBreakeven"} <= set(sheet.tables)
    ref = sheet.tables["StructSizes"].ref
    rows = [[c.value for c in r] for r in sheet[ref]]
    assert rows[0][:5] == ["target_rating", "balance", "share_of_expected_recovery", "EL", "WAL"]
    assert [r[0] for r in rows[1:]] == ["Aaa", "Aa2", "A2", "Baa2", "Ba2", "B2"]
    balances = [r[1] for r in rows[1:]]
    assert balances == sorted(balances) and balances[0] > 0
    assert len(sheet._charts) == 1
    assert sized.with_suffix(".png").stat().st_size > 10_000
    # the sample deal's published senior (16农盈1: 20.62亿 of 40.65亿 expected recovery) is the
    # Tranches table's senior, shown beside the sizes
    given = [[c.value for c in r] for r in sheet[sheet.tables["StructGiven"].ref]]
    assert given[1][1] == pytest.approx(2.062e9)
    assert given[1][2] == pytest.approx(2.062e9 / 4.0655e9, rel=1e-3)


def test_sensitivity_sheet(tmp_path):
    out = tmp_path / "deal.sensitivity.xlsx"
    assert main_cli(["sensitivity", str(SAMPLE), "-o", str(out), "--n-sims", "1000",
                     "--quiet"]) == 0
    wb = openpyxl.load_workbook(out)
    sheet = wb["Sensitivity"]
    assert {"SensTornadoEL", "SensTornadoPrice", "SensStressGrid", "SensPriceTable"} <= set(sheet.tables)
    assert len(sheet._charts) == 3
    # the stress grid is shaded by a three-colour scale over its delay columns
    rules = [r for rng in sheet.conditional_formatting for r in rng.rules]
    assert any(r.type == "colorScale" for r in rules)
    with zipfile.ZipFile(out) as z:
        charts = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/charts/chart")]
    assert any('<c:barDir val="bar"/>' in c for c in charts)  # tornado: horizontal bars
    assert out.with_suffix(".png").exists()


def test_run_block_states_the_paths_of_target_stderr(monkeypatch):
    from npl_xl import macros
    from npl_xl.workbook.book import FileBook

    first, _ = macros.run_simulation(FileBook(SAMPLE), n_sims=500)
    target = first.tranche_table["el_stderr"].iloc[0] / 2  # needs about 4x the paths
    read = macros._settings  # the workbook's Settings plus target_stderr
    monkeypatch.setattr(macros, "_settings", lambda book: read(book).with_overrides(target_stderr=target))
    result, spec = macros.run_simulation(FileBook(SAMPLE), n_sims=500)
    run = dict(zip(*[spec.block("ResultsRun").frame[c] for c in ("key", "value")]))
    assert run["paths used to reach the target"] == result.n_paths > 500
    assert run["n_sims (paths)"] == result.n_paths
    assert run["target met"] == "yes" and run["el_stderr achieved"] <= target
    again, _ = macros.run_simulation(FileBook(SAMPLE), n_sims=500)
    assert again.n_paths == result.n_paths and again.tranche_table.equals(result.tranche_table)


def test_ctrl_c_stops_cleanly_without_an_output(tmp_path, monkeypatch, capsys):
    from npl_xl import macros

    def interrupted(book, **_):
        book.progress(1, 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(macros, "size_tranches", interrupted)
    out = tmp_path / "deal.size.xlsx"
    assert main_cli(["size", str(SAMPLE), "-o", str(out)]) == 130
    assert not out.exists() and not list(tmp_path.iterdir())
    err = capsys.readouterr().err
    assert err.strip().endswith("npl-xl size: interrupted") and "Traceback" not in err
