"""``npl-xl run --audit``: the waterfall audit as CSV and as a workbook; bad options are one
line and a non-zero exit."""

from __future__ import annotations

import shutil

import numpy as np
import openpyxl
import pandas as pd

from workbook_helpers import TEMPLATE

from npl_xl.cli import main_cli


def test_audit_csv_has_every_case_period_and_conserves_cash(tmp_path, capsys):
    source = tmp_path / "deal.xlsx"
    shutil.copyfile(TEMPLATE, source)
    audit = tmp_path / "audit.csv"
    code = main_cli(["run", str(source), "--n-sims", "200", "--quiet", "--no-png",
                     "--audit", str(audit), "--audit-paths", "0,3"])
    assert code == 0 and "waterfall audit" in capsys.readouterr().out
    table = pd.read_csv(audit)
    assert list(table["case"].unique()) == ["base_case", "path_0", "path_3"]
    periods = table.groupby("case")["period"].count()
    assert (periods == periods.iloc[0]).all()
    tranche_cash = sum(table[c] for c in table.columns
                       if c.endswith("_interest") and c != "liquidity_interest"
                       or c.endswith("_principal"))
    paid = (table["taxes"] + table["fixed_expenses"] + table["servicer_fee"]
            + table["liquidity_repayment"] + table["liquidity_interest"]
            - table["liquidity_draw"] + table["deferred_fee_paid"]
            + table["excess_servicing_fee"] + table["residual"] + tranche_cash)
    for _, case in table.assign(paid=paid).groupby("case"):
        reserve = case["reserve_balance"].to_numpy()
        change = np.diff(np.concatenate([[0.0], reserve]))  # the template funds no reserve
        np.testing.assert_allclose(case["paid"] + change, case["collections"], atol=1e-4)


def test_audit_workbook_has_one_sheet_per_case(tmp_path):
    source = tmp_path / "deal.xlsx"
    shutil.copyfile(TEMPLATE, source)
    audit = tmp_path / "audit.xlsx"
    assert main_cli(["run", str(source), "--n-sims", "100", "--quiet", "--no-png",
                     "--audit", str(audit), "--audit-paths", "5"]) == 0
    book = openpyxl.load_workbook(audit, read_only=True)
    assert book.sheetnames == ["base_case", "path_5"]
    header = next(book["path_5"].iter_rows(max_row=1, values_only=True))
    assert header[:3] == ("period", "month", "collections")
    assert "ccr_breached" in header and "event_of_default" in header


def test_bad_audit_options_are_one_line(tmp_path, capsys):
    source = tmp_path / "deal.xlsx"
    shutil.copyfile(TEMPLATE, source)
    for extra, word in ((["--audit", str(tmp_path / "a.txt")], "--audit"),
                        (["--audit-paths", "1"], "--audit-paths"),
                        (["--audit", str(tmp_path / "a.csv"), "--audit-paths", "999"], "999")):
        code = main_cli(["run", str(source), "--n-sims", "100", "--quiet", "--no-png", *extra])
        err = capsys.readouterr().err
        assert code != 0 and word in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a.csv").exists()
