"""The committed workbooks: the contract's tables and names, validations, formats, frozen
headers, NPL formulas with computed values, the sample deal's published shape, and
LibreOffice opening them."""

from __future__ import annotations

import subprocess
import sys

import openpyxl
import pytest

from workbook_helpers import ROOT, SAMPLE, SOFFICE, TEMPLATE, convert_to_pdf, zip_parts

from npl_xl.inputs.assumptions import TABLE_NAMES
from npl_xl.model.loans import value_tape
from npl_xl.inputs.tape import read_tape

BOOKS = [TEMPLATE, SAMPLE]


def _tables(wb):
    return {name: (ws.title, ref) for ws in wb for name, ref in ws.tables.items()}


@pytest.fixture(scope="module", params=BOOKS, ids=lambda p: p.name)
def book(request):
    return openpyxl.load_workbook(request.param)


def test_contract_tables_and_names(book):
    tables = _tables(book)
    for name in ("Tape", "Tranches", "Settings", *TABLE_NAMES):
        assert name in tables, name
    names = book.defined_names
    # each workbook name spans exactly its table, header row included
    for name, table in (("LoanTape", "Tape"), ("TrancheTable", "Tranches"), ("DealSettings", "Settings")):
        sheet, ref = tables[table]
        assert names[name].attr_text == f"{sheet}!$" + "$".join(_split(ref)), name
    first, last = tables["Settings"][1].split(":")
    assert first.startswith("A") and last.startswith("B")  # two columns: key, value
    assert [book["Settings"][first].value, book["Settings"][first].offset(column=1).value] == ["key", "value"]
    assert {"README", "Results", "Assumptions"} <= set(book.sheetnames)


def _split(ref):
    """'A2:R8' -> ['A', '2:', 'R', '8'] joined with '$' gives 'A$2:$R$8'."""
    first, last = ref.split(":")
    col0 = first.rstrip("0123456789")
    col1 = last.rstrip("0123456789")
    return [col0, first[len(col0):] + ":", col1, last[len(col1):]]


def test_validations_cover_every_code_column(book):
    def lists_on(ws):
        return {str(dv.sqref).split(":")[0].rstrip("0123456789"): dv.formula1
                for dv in ws.data_validations.dataValidation if dv.type == "list"}

    tape = book["Tape"]
    headers = {c.value: c.column_letter for c in tape[2]}
    tape_lists = lists_on(tape)
    assert tape_lists[headers["province"]] == "ProvinceList"
    assert tape_lists[headers["collateral_type"]] == "CollateralList"
    assert tape_lists[headers["stage"]] == "StageList"
    assert lists_on(book["Tranches"])["B"] == "KindList"
    assert "BoolList" in lists_on(book["Settings"]).values()  # cap_at_expected TRUE/FALSE
    assert all(dv.errorStyle == "warning" for ws in book for dv in ws.data_validations.dataValidation
               if dv.type == "list")  # other accepted spellings (浙江省, ZJ) can still be typed
    lists = book["Lists"]
    provinces = [c.value for c in lists["A"][2:] if c.value]
    assert "Zhejiang" in provinces and "浙江省" in provinces


def test_frozen_headers_and_number_formats(book):
    assert book["Tape"].freeze_panes == "B3"
    assert book["Tranches"].freeze_panes == "A3"
    assert book["Settings"].freeze_panes == "A3"
    tape = book["Tape"]
    headers = {c.value: c.column_letter for c in tape[2]}
    assert tape[f"{headers['claim']}3"].number_format == "#,##0"
    assert book["Tranches"]["D3"].number_format == "0.00%"  # coupon
    assert tape[1][0].value == "贷款编号"  # Chinese names in the row above the table


def test_npl_formulas_have_computed_values():
    computed = openpyxl.load_workbook(TEMPLATE, data_only=True)
    formulas = openpyxl.load_workbook(TEMPLATE)
    summary = formulas["Summary"]
    arrays = [c for row in summary.iter_rows() for c in row
              if isinstance(c.value, openpyxl.worksheet.formula.ArrayFormula)]
    texts = {a.value.text for a in arrays}
    assert any("NPL_STRAT(LoanTape" in t for t in texts)
    for cell in arrays:
        top, bottom = cell.value.ref.split(":")
        for row in computed["Summary"][top:bottom]:
            for value in row:
                assert value.value is not None and not str(value.value).startswith("#"), value.coordinate
    # the Tape's calculated column (NPL_JUDICIAL_MONTHS) carries numbers
    tape = computed["Tape"]
    col = [c.column_letter for c in tape[2] if c.value == "judicial_months"][0]
    months = [tape[f"{col}{r}"].value for r in range(3, 9)]  # the six example loans
    assert all(isinstance(m, float) and 3 < m < 60 for m in months), months
    assert "NPL_JUDICIAL_MONTHS" in formulas["Tape"][f"{col}3"].value


def _tape_frame(path):
    wb = openpyxl.load_workbook(path, data_only=True)
    ws = wb["Tape"]
    ref = ws.tables["Tape"].ref
    rows = [[c.value for c in row] for row in ws[ref]]
    return read_tape(rows, origin="Tape!" + ref.split(":")[0])


def test_sample_deal_has_the_published_pool_shape():
    tape = _tape_frame(SAMPLE)
    claims = tape["claim"].sum()
    share = lambda mask: tape.loc[mask, "claim"].sum() / claims  # noqa: E731
    assert len(tape) == 1199 and tape["borrower"].nunique() == 204
    assert claims == pytest.approx(107.27e8, abs=1.0)  # whole CNY
    assert share(tape["province"].isin(["Jiangsu", "Zhejiang"])) == pytest.approx(0.7982, abs=0.001)
    assert set(tape["province"]) == {"Jiangsu", "Zhejiang", "Shandong"}
    assert share(tape["collateral_type"] != "none") == pytest.approx(0.7792, abs=0.001)
    assert share(tape["stage"] != "not_filed") == pytest.approx(0.85, abs=0.001)
    # calibration through the loan-by-loan valuation (published: 37.90%, 79.71%)
    valued = value_tape(tape)
    recovery = valued["expected_recovery"]
    assert recovery.sum() / claims == pytest.approx(0.379, abs=0.001)
    within = recovery[valued["expected_months"] <= 36].sum() / recovery.sum()
    assert within == pytest.approx(0.797, abs=0.005)


def test_sample_deal_tranches_as_issued():
    wb = openpyxl.load_workbook(SAMPLE)
    ws = wb["Tranches"]
    rows = [[c.value for c in r] for r in ws[ws.tables["Tranches"].ref]]
    assert rows[0] == ["name", "kind", "balance", "coupon", "issue_price"]
    senior, sub = rows[1], rows[2]
    assert senior[1:4] == ["senior", 2_062_000_000, 0.0348]
    assert sub[1] == "subordinated" and sub[2] == 1_002_000_000
    assert sub[4] == pytest.approx(1.08 * sub[2])  # issued at 108


def _inside(cell: str, ref: str) -> bool:
    from npl_xl.workbook.a1 import parse_address, parse_range

    (r, c), (r0, c0, r1, c1) = parse_address(cell), parse_range(ref)
    return r0 <= r <= r1 and c0 <= c <= c1


def _without_cached_values(path) -> dict[str, bytes]:
    """The package's parts with the cached values of formula cells removed: those values
    come from the Monte Carlo engine and the recalculation, whose internals may change."""
    from lxml import etree

    q = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    parts = zip_parts(path)
    for name, data in parts.items():
        if name.startswith("xl/worksheets/sheet"):
            root = etree.fromstring(data)
            spans = [f.get("ref") for f in root.iter(q + "f") if f.get("ref")]
            for cell in root.iter(q + "c"):
                if cell.find(q + "f") is not None or any(_inside(cell.get("r"), ref) for ref in spans):
                    for v in cell.findall(q + "v"):
                        cell.remove(v)
                    cell.attrib.pop("t", None)
            parts[name] = etree.tostring(root)
    return parts


def test_generator_reproduces_the_committed_workbooks(tmp_path):
    """Same script, same workbook: the committed files are the generator's output (every
    part, formula cells' cached values aside) — rerun the generator after changing it."""
    subprocess.run([sys.executable, str(ROOT / "workbooks" / "build_workbooks.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True, cwd=ROOT)
    for path in BOOKS + [ROOT / "workbooks" / "sample_mortgage.xlsx"]:
        fresh, committed = _without_cached_values(tmp_path / path.name), _without_cached_values(path)
        assert fresh.keys() == committed.keys()
        stale = [name for name in fresh if fresh[name] != committed[name]]
        assert not stale, f"{path.name} is stale in {stale}: rerun workbooks/build_workbooks.py"


@pytest.mark.libreoffice
@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) not installed")
@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.name)
def test_libreoffice_opens_the_workbook(path, tmp_path):
    pdf = convert_to_pdf(path, tmp_path)
    assert pdf.stat().st_size > 20_000


def _settings_table(book) -> dict:
    sheet, ref = _tables(book)["Settings"]
    rows = list(book[sheet][ref])
    return {key.value: value.value for key, value in rows[1:]}


def test_every_settings_default_in_the_template_is_the_one_in_settings():
    # The template's Settings table must show every key of npl_xl.inputs.deal.SETTINGS with
    # that key's default, in SETTINGS order: a default changed in one place and not the
    # other fails here (rebuild with `python workbooks/build_workbooks.py`).
    from npl_xl.inputs.deal import SETTINGS

    table = _settings_table(openpyxl.load_workbook(TEMPLATE))
    assert list(table) == [k.name for k in SETTINGS]
    for key in SETTINGS:
        shown = table[key.name]
        assert type(shown) is (bool if key.kind == "bool" else type(shown)), key.name
        assert shown == key.default, f"Settings {key.name}: template {shown!r}, SETTINGS {key.default!r}"


def test_the_sample_deal_differs_from_the_defaults_only_where_it_says():
    from npl_xl.inputs.deal import SETTINGS

    sys.path.insert(0, str(ROOT / "workbooks"))
    try:
        import build_workbooks
    finally:
        sys.path.pop(0)
    table = _settings_table(openpyxl.load_workbook(SAMPLE))
    for key in SETTINGS:
        expected = build_workbooks.SAMPLE_SETTINGS.get(key.name, key.default)
        assert table[key.name] == expected, key.name
    assert set(build_workbooks.SETTINGS_FORMATS) <= {k.name for k in SETTINGS}
