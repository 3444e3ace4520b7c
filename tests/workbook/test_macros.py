"""The ribbon's macros run headless against the template through FileBook, and FileBook's
zip-level grafting keeps every other part of the user's package byte for byte."""

from __future__ import annotations

import importlib
import zipfile

import openpyxl
import pytest
from lxml import etree

from workbook_helpers import (SAMPLE, SOFFICE, TEMPLATE, convert_to_pdf, resave_with_libreoffice,
                              sha256, with_cells, zip_parts)

from npl_xl import macros
from npl_xl.workbook.book import BAD_CELL_RGB, FileBook
from npl_xl.errors import NplError, TableError
from npl_xl.workbook.graft import Package

RIBBON_MACROS = ("validate_tape", "stratify_pool", "fit_recoveries", "run_simulation",
                 "price_bid", "clear_results", "size_tranches", "sensitivity_analysis")
SIMULATING = ("run_simulation", "price_bid", "size_tranches", "sensitivity_analysis")


def test_every_ribbon_target_exists_with_a_book_argument():
    import inspect

    ribbon = importlib.import_module("npl_xl_udfs.ribbon")
    for name in RIBBON_MACROS:
        assert name in ribbon.MACROS
        params = list(inspect.signature(getattr(macros, name)).parameters.values())
        assert params[0].name == "book"
        assert all(p.default is not inspect.Parameter.empty for p in params[1:]), name


def test_xlwings_book_imports():
    from npl_xl_udfs.book import XlwingsBook  # live Excel only; checked by import here

    assert callable(XlwingsBook.write_sheet)


@pytest.mark.parametrize("name", [m for m in RIBBON_MACROS if m not in SIMULATING])
def test_macro_runs_headless_on_the_template(name, tmp_path):
    book = FileBook(TEMPLATE)
    getattr(macros, name)(book)
    out = book.save(tmp_path / "out.xlsx")
    wb = openpyxl.load_workbook(out)
    if name != "clear_results":
        assert macros.OUTPUT_SHEETS[name] in wb.sheetnames


@pytest.mark.parametrize("name", ["run_simulation", "price_bid"])
def test_simulating_macro_runs_headless_on_the_template(name, tmp_path):
    book = FileBook(TEMPLATE)
    getattr(macros, name)(book, n_sims=500)
    wb = openpyxl.load_workbook(book.save(tmp_path / "out.xlsx"))
    sheet = wb[macros.OUTPUT_SHEETS[name]]
    if name == "run_simulation":
        assert {"ResultsTranches", "ResultsCollections", "ResultsLossDist", "ResultsIrrDist"} <= set(sheet.tables)
        assert len(sheet._charts) == 3


def test_stratify_pool_sums_to_the_tape(tmp_path):
    spec = macros.stratify_pool(FileBook(TEMPLATE))
    by_province = spec.block("Strat_province").frame
    # the template's six example loans: 12m + 3.5m + 25m + 8m + 5m + 6m = 59.5m of claims
    assert by_province["sum_claim"].sum() == pytest.approx(59_500_000)
    assert by_province["share"].sum() == pytest.approx(1.0)
    assert by_province.set_index("province").loc["Zhejiang", "count"] == 2  # "Zhejiang" and "浙江"


def test_fit_recoveries_matches_npl_beta_fit():
    from npl_xl.sheet.registry import load_all

    book = FileBook(TEMPLATE)
    spec = macros.fit_recoveries(book)
    mle = spec.block("FitParams").frame.iloc[0]
    data = book.read_name("HistRecoveries").rows
    expected = load_all()["NPL_BETA_FIT"](data)[0]
    assert [mle[k] for k in ("alpha", "beta", "p_zero", "p_one")] == pytest.approx(expected[:4])
    assert mle["p_zero"] == pytest.approx(3 / 50) and mle["p_one"] == pytest.approx(1 / 50)


def test_validate_tape_marks_bad_cells_and_lists_them(tmp_path):
    bad = with_cells(TEMPLATE, tmp_path / "bad.xlsx",
                     {"Tape!E3": "abc", "Tape!C4": "Atlantis", "Tape!A5": None})
    book = FileBook(bad)
    problems = macros.validate_tape(book)
    text = "\n".join(problems)
    for cell in ("Tape!E3", "Tape!C4", "Tape!A5"):
        assert cell in text
    out = book.save(tmp_path / "checked.xlsx")
    wb = openpyxl.load_workbook(out)
    tape = wb["Tape"]
    for ref in ("E3", "C4", "A5"):
        assert tape[ref].fill.fgColor.rgb == BAD_CELL_RGB, ref
    assert tape["E4"].fill.fgColor.rgb != BAD_CELL_RGB
    assert tape["E3"].number_format == "#,##0"  # the mark keeps the cell's format
    listed = [[c.value for c in r] for r in wb["Problems"][wb["Problems"].tables["ProblemList"].ref]]
    assert {row[1] for row in listed[1:]} == {"E3", "C4", "A5"}
    assert wb["Problems"]["B" + str(int(wb["Problems"].tables["ProblemList"].ref.split(":")[0][1:]) + 1)].hyperlink


def test_validate_tape_reports_tranche_and_settings_problems_with_their_table(tmp_path):
    bad = with_cells(TEMPLATE, tmp_path / "bad.xlsx", {"Tranches!B3": "bogus", "Settings!B5": 1.5})
    problems = macros.validate_tape(FileBook(bad))
    assert any(p.startswith("Tranches table (Tranches!A2)") and "bogus" in p for p in problems)
    assert any(p.startswith("Settings table (Settings!A2)") and "rho" in p for p in problems)


def test_fit_recoveries_names_a_bad_cell(tmp_path):
    bad = with_cells(TEMPLATE, tmp_path / "bad.xlsx", {"History!A7": "n/a"})
    with pytest.raises(NplError, match="History!A7"):
        macros.fit_recoveries(FileBook(bad))


def test_validate_tape_on_a_clean_tape_reports_none(tmp_path):
    assert macros.validate_tape(FileBook(TEMPLATE)) == []


def test_save_never_overwrites_the_input(tmp_path):
    copy = tmp_path / "deal.xlsx"
    copy.write_bytes(TEMPLATE.read_bytes())
    book = FileBook(copy)
    macros.clear_results(book)
    with pytest.raises(NplError, match="overwrite"):
        book.save(copy)
    assert sha256(copy) == sha256(TEMPLATE)


def test_grafting_keeps_every_other_part_byte_for_byte(tmp_path):
    """A macro-enabled workbook with a VBA project and both ribbon parts: after two macro
    runs (the second replacing the first's sheets), every part the graft does not own is
    byte-identical, and the replaced sheet leaves no orphan parts behind."""
    xlsm = tmp_path / "deal.xlsm"
    package = Package.read(TEMPLATE)
    package.add_part("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0 fake VBA project",
                     "application/vnd.ms-office.vbaProject")
    package.add_relationship(package.workbook_part,
                             "http://schemas.microsoft.com/office/2006/relationships/vbaProject",
                             "xl/vbaProject.bin")
    for part, rel in (("customUI/customUI.xml", "http://schemas.microsoft.com/office/2006/relationships/ui/extensibility"),
                      ("customUI/customUI14.xml", "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility")):
        package.parts[part] = b'<customUI xmlns="http://schemas.microsoft.com/office/2009/07/customui"/>'
        package.add_relationship("", rel, part)
    xlsm.write_bytes(package.to_bytes())
    before = zip_parts(xlsm)

    book = FileBook(xlsm)
    macros.stratify_pool(book)
    macros.fit_recoveries(book)
    first = book.save(tmp_path / "first.xlsm")
    book = FileBook(first)
    macros.fit_recoveries(book)  # replaces Fit in place
    second = book.save(tmp_path / "second.xlsm")
    after = zip_parts(second)

    owned = {"[Content_Types].xml", "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/styles.xml"}
    new_parts = set(after) - set(before)
    assert not (set(before) - set(after)), "a part of the original disappeared"
    for name, data in before.items():
        if name not in owned:
            assert after[name] == data, name
    # Strat and Fit: 2 sheets (+rels), 1 chart each with its drawing (+rels), 2+6 tables
    assert sum(n.startswith("xl/charts/") for n in new_parts) == 2
    assert sum(n.startswith("xl/drawings/drawing") for n in new_parts) == 2
    assert sum(n.startswith("xl/tables/") for n in new_parts) == 2 + len(macros.STRAT_BY)
    # both ribbon relationships survive
    rels = etree.fromstring(after["_rels/.rels"])
    assert {r.get("Target") for r in rels} >= {"customUI/customUI.xml", "customUI/customUI14.xml"}
    wb = openpyxl.load_workbook(second, keep_vba=True)
    assert wb.sheetnames[-2:] == ["Strat", "Fit"]
    ids = [t.id for ws in wb for t in ws.tables.values()]
    assert len(ids) == len(set(ids))  # table ids stay unique across the workbook


def test_bad_tables_are_reported_together(tmp_path):
    bad = with_cells(TEMPLATE, tmp_path / "bad.xlsx", {"Tape!E3": -5, "Tape!C4": "Atlantis"})
    with pytest.raises(TableError) as info:
        macros.stratify_pool(FileBook(bad))
    assert "Tape!E3" in str(info.value) and "Tape!C4" in str(info.value)


def test_scratch_parts_are_well_formed_xml(tmp_path):
    book = FileBook(TEMPLATE)
    macros.fit_recoveries(book)
    out = book.save(tmp_path / "out.xlsx")
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        for name in archive.namelist():
            if name.endswith((".xml", ".rels")):
                etree.fromstring(archive.read(name))


def test_sample_deal_results_through_filebook(tmp_path):
    book = FileBook(SAMPLE)
    result, spec = macros.run_simulation(book, n_sims=1000, seed=1)
    table = spec.block("ResultsTranches").frame
    assert list(table.columns[:7]) == ["name", "EL", "PD", "WAL", "mean_irr", "rating", "el_stderr"]
    assert spec.block("ResultsTranches").frame.shape[0] == 2
    # discount_rate is what the Results' pool PV is discounted at (its help text says so)
    info = dict(spec.block("ResultsRun").frame.itertuples(index=False))
    rate = result.settings.discount_rate
    assert "Results" in _setting_doc("discount_rate") and "Price Bid" in _setting_doc("discount_rate")
    assert info["discount_rate (annual, for the PV below)"] == rate
    pv = result.path_collections @ (1 + rate) ** (-result.period_months / 12)
    assert info["PV of simulated collections at discount_rate"] == pytest.approx(pv.mean())
    assert 0 < info["PV standard error"] < 0.01 * pv.mean()


def _setting_doc(name: str) -> str:
    from npl_xl.inputs.deal import SETTINGS

    return next(k.doc for k in SETTINGS if k.name == name)


@pytest.mark.libreoffice
@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) not installed")
def test_macros_on_a_workbook_saved_by_another_writer(tmp_path):
    """A package written by LibreOffice (its own styles, shared strings, part names): the
    macros read it and the grafted output opens in LibreOffice again."""
    resaved = resave_with_libreoffice(TEMPLATE, tmp_path / "lo")
    book = FileBook(resaved)
    assert book.has_table("Tape") and book.read_name("HistRecoveries") is not None
    macros.stratify_pool(book)
    macros.fit_recoveries(book)
    assert macros.validate_tape(book) == []
    out = book.save(tmp_path / "out.xlsx")
    wb = openpyxl.load_workbook(out)
    assert {"Strat", "Fit", "Problems"} <= set(wb.sheetnames)
    assert convert_to_pdf(out, tmp_path / "pdf").stat().st_size > 20_000


def test_price_bid_simulates_once_and_matches_npl_bid_price(monkeypatch):
    from npl_xl.analysis import pricing
    from npl_xl.model.loans import value_tape

    calls = []
    simulate = pricing.simulate_collections
    monkeypatch.setattr(pricing, "simulate_collections",
                        lambda *a, **k: calls.append(1) or simulate(*a, **k))
    book = FileBook(TEMPLATE)
    grid = macros.price_bid(book, n_sims=400, seed=2).block("BidGrid").frame
    assert len(calls) == 1  # one simulation for the 5 targets x 3 confidences
    pool = value_tape(macros._tape(book), macros._assumptions(book))
    settings = macros._settings(book)
    assert len(grid) == len(set(macros.BID_TARGETS) | {settings.discount_rate})
    for row in grid.itertuples(index=False):
        row = row._asdict()
        for c in macros.BID_CONFIDENCES:
            bid = pricing.bid_price(pool, row["target_irr"], c, settings, n_sims=400, seed=2)
            assert row[f"price_p{int(c * 100)}"] == bid.price
            assert row[f"price_to_claim_p{int(c * 100)}"] == bid.price_to_claim


def test_results_run_block_counts_the_loans_whose_sd_was_capped(tmp_path):
    # recovery_sd overrides of 0.40 and 0.42 for the first two loans, whose valued means are
    # mu = 0.7845 and 0.7534: below the Beta's limit sqrt(mu (1 - mu)) = 0.4112 and 0.4311
    # (the tape accepts them) but above the pool's cap 0.9 x that = 0.3701 and 0.3880
    wb = openpyxl.load_workbook(TEMPLATE)  # the override cells are blank: not in the XML
    wb["Tape"]["Q3"], wb["Tape"]["Q4"] = 0.40, 0.42
    wb.save(tmp_path / "wide.xlsx")
    book = FileBook(tmp_path / "wide.xlsx")
    result, spec = macros.run_simulation(book, n_sims=200)
    info = dict(spec.block("ResultsRun").frame.itertuples(index=False))
    pool = macros.read_deal(book)[0]
    mu = pool["expected_recovery"] / pool["claim"]
    capped = (pool["recovery_sd"] > 0.9 * (mu * (1 - mu)) ** 0.5) & (mu > 0) & (mu < 1)
    assert list(pool["recovery_sd"][:2]) == [0.40, 0.42] and capped.sum() >= 2
    assert info["loans with sd capped"] == capped.sum() == result.n_sd_capped


def test_an_assumptions_sheet_sd_cap_factor_reaches_the_engine(tmp_path):
    # The first loan's recovery_sd override 0.40 at mu = 0.7845 (see the test above):
    # sqrt(mu (1 - mu)) = 0.4112, so the packaged cap 0.9 x 0.4112 = 0.3701 binds, while the
    # Assumptions sheet's sd_cap_factor 0.95 (Parameters table, cell B105) lets 0.3906 through.
    # The engine must use the sheet's factor: its Beta, hence the simulated figures, change.
    from npl_xl.engine import Pool, simulate_deal

    wb = openpyxl.load_workbook(TEMPLATE)  # the override cell is blank: not in the XML
    wb["Tape"]["Q3"] = 0.40
    wb.save(base := tmp_path / "base.xlsx")
    wide = with_cells(base, tmp_path / "wide.xlsx", {"Assumptions!B105": 0.95})
    runs = {}
    for name, path in (("base", base), ("wide", wide)):
        book = FileBook(path)
        runs[name] = macros.run_simulation(book, n_sims=400, seed=3)[0]
    assert runs["wide"].tranche_table["EL"].tolist() != runs["base"].tranche_table["EL"].tolist()
    frame, tranches, settings, _ = macros.read_deal(FileBook(wide))
    assert frame.attrs["sd_cap_factor"] == 0.95
    mu = frame["expected_recovery"] / frame["claim"]
    explicit = Pool.from_arrays(frame["claim"], frame["expected_recovery"],
                                frame["expected_months"], frame["recovery_sd"],
                                frame["region_id"], sd_cap_factor=0.95)
    beta_sd = (explicit.mean[0] * (1 - explicit.mean[0]) / (explicit.alpha[0] + explicit.beta[0] + 1)) ** 0.5
    assert beta_sd == pytest.approx(min(0.40, 0.95 * (mu[0] * (1 - mu[0])) ** 0.5))
    same = simulate_deal(explicit, tranches, settings, n_sims=400, seed=3)
    assert same.tranche_table["EL"].tolist() == runs["wide"].tranche_table["EL"].tolist()
