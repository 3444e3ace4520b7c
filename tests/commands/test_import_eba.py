"""npl-xl import-eba on a small EBA-shaped workbook built here (EBA NPL data templates,
Commission Implementing Regulation (EU) 2023/2083, Annex I field names), and its round trip
into npl-xl validate and npl-xl run."""

from __future__ import annotations

import datetime as dt

import numpy as np
import openpyxl
import pytest
import xlsxwriter

from npl_xl.cli import main_cli
from npl_xl.macros import read_deal
from npl_xl.workbook.book import FileBook

SHEETS = {
    "Counterparty": [
        ["1.02 Counterparty Identifier", "1.03 Name of Counterparty", "1.05 Role of the Counterparty",
         "1.15 City", "Province", "1.06 Legal Type"],
        ["C1", "Hangzhou Widget Co", "Borrower", "Hangzhou", "浙江", "SME"],
        ["C2", "Suzhou Parts Ltd", "Borrower", "Suzhou", "Jiangsu", "SME"],
        ["G1", "Widget Holdings", "Protection Provider", "Shanghai", None, "Other NFC"]],
    "Loan": [
        ["3.00 Cut-off Date", "3.01 Loan Identifier", "3.09 Principal Balance", "3.10 Accrued Interest (on book)",
         "3.11 Other Balances", "3.12 Legal Balance", "3.24 Loan Legal Status",
         "3.26 Stage Reached in Legal Proceedings", "3.13 Days Past Due"],
        ["2023-06-30", "L1", 8e6, 1e6, 5e5, 9.5e6, "Legal proceedings", "Initial stage", 400],
        ["2023-06-30", "L2", 4e6, 5e5, 5e5, None, "Legal proceedings", "Proof of claim filed", 380],
        ["2023-06-30", "L3", 11e6, 1e6, 0.0, 12e6, "Legal proceedings",
         "Notice of intention to sell secured assets", 700]],
    "Property Collateral": [
        ["4.00 Protection Identifier", "4.01 Type of Immovable Property", "4.04 City of Property", "Province",
         "4.23 Latest External Valuation Amount", "4.24 Date of Latest External Valuation",
         "4.46 Higher Ranking Loan", "4.17 Type of Occupancy"],
        ["P1", "Residential", "Hangzhou", "浙江", 12e6, dt.datetime(2023, 1, 15), 0.0, "Owner occupied"],
        ["P2", "Office", "Suzhou", "江苏", 15e6, dt.datetime(2019, 5, 1), 1e6, "Tenanted"]],
    "Non-Property Collateral": [
        ["4.00 Protection Identifier", "4.02 Collateral Type", "4.27 Guarantee Amount"],
        ["GP1", "Financial Guarantee", 4e6]],
    "Borrower-Loan": [["2.00 Counterparty Identifier", "2.01 Loan Identifier"],
                      ["C1", "L1"], ["C1", "L2"], ["C2", "L3"]],
    "Loan-Protection": [["2.01 Loan Identifier", "2.03 Protection Identifier", "Lien Position"],
                        ["L1", "P1", 1], ["L2", "P1", 2], ["L3", "P2", 1], ["L1", "GP1", None],
                        ["L2", "GP1", None]],
    "Guarantor-Protection": [["2.00 Counterparty Identifier", "2.03 Protection Identifier"], ["G1", "GP1"]],
}


@pytest.fixture()
def eba_file(tmp_path):
    path = tmp_path / "eba_tape.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    date = wb.add_format({"num_format": "yyyy-mm-dd"})
    for name, rows in SHEETS.items():
        ws = wb.add_worksheet(name)
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if isinstance(value, dt.datetime):
                    ws.write_datetime(i, j, value, date)
                elif value is not None:
                    ws.write(i, j, value)
    wb.close()
    return path


def test_import_maps_tables_stages_types_and_keeps_extra_fields(eba_file, tmp_path, capsys):
    out = tmp_path / "deal.xlsx"
    assert main_cli(["import-eba", str(eba_file), "--out", str(out), "--guarantee-rate", "0.5"]) == 0
    assert "read 1 loan, 1 counterparty, 2 protection and 3 link table(s)" in capsys.readouterr().out
    wb = openpyxl.load_workbook(out)
    tables = {name: (ws.title, ref) for ws in wb for name, ref in ws.tables.items()}
    assert {"Tape", "Collateral", "Guarantees", "Tranches", "Settings"} <= set(tables)
    for name, table in (("LoanTape", "Tape"), ("CollateralTable", "Collateral"), ("GuaranteeTable", "Guarantees")):
        first, last = tables[table][1].split(":")  # the workbook name spans the new table
        letters = last.rstrip("0123456789")
        assert wb.defined_names[name].attr_text == f"{table}!$A$2:${letters}${last[len(letters):]}"

    def frame(table):
        sheet, ref = tables[table]
        rows = [[c.value for c in r] for r in wb[sheet][ref]]
        return [dict(zip(rows[0], r)) for r in rows[1:]]

    tape = {r["loan_id"]: r for r in frame("Tape")}
    assert tape["L1"]["borrower"] == "Hangzhou Widget Co" and tape["L1"]["province"] == "Zhejiang"
    assert tape["L1"]["claim"] == 9.5e6 and tape["L2"]["claim"] is None  # from parts when read
    assert [tape[k]["stage"] for k in ("L1", "L2", "L3")] == ["filed", "judgment", "auction_1"]
    assert tape["L3"]["province"] == "Jiangsu" and tape["L3"]["3.13 Days Past Due"] == 700  # extra kept
    items = {r["collateral_id"]: r for r in frame("Collateral")}
    assert items["P1"]["loan_ids"] == "L1,L2" and items["P1"]["lien_rank"] == "1;2"
    assert items["P1"]["collateral_type"] == "residential" and items["P2"]["collateral_type"] == "commercial"
    assert items["P2"]["prior_claims"] == 1e6 and items["P2"]["4.17 Type of Occupancy"] == "Tenanted"
    assert items["P2"]["appraisal_date"] == dt.datetime(2019, 5, 1)
    (guarantee,) = frame("Guarantees")
    assert guarantee["guarantor"] == "Widget Holdings" and guarantee["loan_ids"] == "L1,L2"
    assert guarantee["expected_recovery"] == 2e6 and guarantee["guarantee_amount"] == 4e6


def test_round_trip_into_validate_and_run(eba_file, tmp_path, capsys):
    out = tmp_path / "deal.xlsx"
    assert main_cli(["import-eba", str(eba_file), "--out", str(out), "--guarantee-rate", "0.5"]) == 0
    pool, _, _, tape = read_deal(FileBook(out))
    # L2: claim from parts 4m + 0.5m + 0.5m; P1 (rank 1 L1, rank 2 L2) and the guarantee shared
    assert tape.set_index("loan_id").claim.to_dict() == {"L1": 9.5e6, "L2": 5e6, "L3": 12e6}
    recovery = pool.set_index("loan_id")
    assert recovery.collateral_recovery["L2"] < recovery.collateral_recovery["L1"]  # second lien
    assert recovery.guarantee_recovery[["L1", "L2"]].sum() == pytest.approx(2e6)
    assert (recovery.expected_recovery <= recovery.claim).all()
    assert main_cli(["validate", str(out)]) == 0
    run = tmp_path / "deal.run.xlsx"
    assert main_cli(["run", str(out), "-o", str(run), "--n-sims", "200", "--quiet", "--no-png"]) == 0
    assert "Results" in openpyxl.load_workbook(run, read_only=True).sheetnames


def test_never_overwrites_and_a_missing_province_is_one_line(eba_file, tmp_path, capsys):
    out = tmp_path / "deal.xlsx"
    out.write_bytes(b"mine")
    assert main_cli(["import-eba", str(eba_file), "--out", str(out)]) == 2
    assert out.read_bytes() == b"mine"
    err = capsys.readouterr().err
    assert "exists; npl-xl never overwrites" in err and len(err.strip().splitlines()) == 1
    # a folder of CSV files without provinces: named, unless --province gives one
    folder = tmp_path / "csv"
    folder.mkdir()
    import csv

    for name in ("Loan", "Borrower-Loan"):
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([[c if c is not None else "" for c in r] for r in SHEETS[name]])
    assert main_cli(["import-eba", str(folder), "--out", str(tmp_path / "a.xlsx")]) == 2
    assert "loan L1: no province" in capsys.readouterr().err
    assert main_cli(["import-eba", str(folder), "--out", str(tmp_path / "b.xlsx"), "--province", "浙江"]) == 0
    pool, *_ = read_deal(FileBook(tmp_path / "b.xlsx"))
    assert list(pool.province) == ["Zhejiang"] * 3 and np.isclose(pool.claim.sum(), 26.5e6)
