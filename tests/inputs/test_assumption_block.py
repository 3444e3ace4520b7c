"""The Assumptions sheet as one argument: NPL functions and Run Simulation read the same tables.

The template's Assumptions sheet stacks titled tables separated by blank rows; the workbook
name ``AssumptionTables`` covers them all. Every function with an ``assumptions`` argument
accepts that block (or one table), so an edit on the sheet reaches the cells as it reaches
``npl-xl run``.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from npl_xl.inputs.assumptions import Assumptions, from_block
from npl_xl.engine import pool_from_frame, simulate_deal
from npl_xl.errors import XlError
from npl_xl.model.loans import value_tape
from npl_xl.sheet.registry import load_all
from npl_xl.inputs.tape import read_tape

R = load_all()
TEMPLATE = Path(__file__).resolve().parents[2] / "workbooks" / "npl_template.xlsx"


def sheet_block(path=TEMPLATE):
    book = openpyxl.load_workbook(path)
    target = book.defined_names["AssumptionTables"].attr_text  # =Assumptions!$A$3:$K$106
    sheet, ref = target.lstrip("=").split("!")
    return [[cell.value for cell in row] for row in book[sheet][ref.replace("$", "")]]


def with_cell(rows, header_start, key, column, value):
    """A copy of the block with one cell changed: in the table whose header row begins with
    ``header_start``, the row whose first cell is ``key``, the column headed ``column``."""
    rows = [list(r) for r in rows]
    header = next(i for i, r in enumerate(rows) if r[:len(header_start)] == header_start)
    line = next(i for i in range(header + 1, len(rows)) if rows[i][0] == key)
    rows[line][rows[header].index(column)] = value
    return rows


def with_stage_months(rows, stage, tier, months):
    return with_cell(rows, ["stage", "A", "B", "C"], stage, tier, months)


def test_the_sheet_block_is_the_packaged_tables():
    rows = sheet_block()
    parsed, default = from_block(rows), Assumptions.default()
    assert set(parsed.tables) == set(default.tables)
    for name, frame in default.tables.items():
        assert parsed.tables[name].equals(frame), name


def test_an_edit_on_the_sheet_reaches_the_timeline():
    rows = sheet_block()
    base = R["NPL_JUDICIAL_MONTHS"]("浙江", None, None, None, rows)
    assert base == pytest.approx(R["NPL_JUDICIAL_MONTHS"]("浙江"))
    first_instance = from_block(rows).tables["StageDurations"].loc["filed", "A"]
    edited = with_stage_months(rows, "filed", "A", first_instance + 6.0)
    # filing is a stage every case at not_filed passes: six more months, six more expected
    assert R["NPL_JUDICIAL_MONTHS"]("浙江", None, None, None, edited) == pytest.approx(base + 6.0)


def test_a_block_without_tables_is_named():
    result = R["NPL_JUDICIAL_MONTHS"]("浙江", None, None, None, [["a note"], [None], ["another"]])
    assert isinstance(result, XlError) and result.code == "#VALUE!"
    assert result.message.startswith("assumptions:")


TAPE = [["loan_id", "province", "claim", "collateral_type", "collateral_value", "stage"],
        ["L1", "浙江", 2e6, "住宅", 3e6, "filed"], ["L2", "JS", 7e5, "none", None, "judgment"],
        ["L3", "山东", 6e6, "工业", 5e6, "not_filed"], ["L4", "福建", 8e6, "住宅", 9e6, "auction_1"]]
TRANCHES = [["name", "kind", "balance", "coupon"], ["Senior", "senior", 4e6, 0.035],
            ["Sub", "subordinated", 2e6, 0.0]]


def test_tranche_el_with_the_sheet_matches_the_engine_on_the_same_tables():
    rows = sheet_block()
    edited = with_stage_months(rows, "filed", "A", 30.0)  # Zhejiang courts much slower
    cell = R["NPL_TRANCHE_EL"](TAPE, TRANCHES, None, 400.0, 3.0, edited)
    default_cell = R["NPL_TRANCHE_EL"](TAPE, TRANCHES, None, 400.0, 3.0)
    pool = pool_from_frame(value_tape(read_tape(TAPE), from_block(edited)))
    engine = simulate_deal(pool, TRANCHES, None, n_sims=400, seed=3).contract_table()
    assert cell[0] == ["name", "EL", "PD", "WAL", "mean_irr", "rating", "el_stderr"]
    assert cell[1:] == [[pytest.approx(v) if isinstance(v, float) else v for v in row]
                        for row in engine.to_numpy().tolist()]
    assert cell != default_cell  # the edit changed the figures


def test_strat_reads_the_sheet():
    rows = sheet_block()
    plain = R["NPL_STRAT"](TAPE, "province", "expected_recovery")
    assert R["NPL_STRAT"](TAPE, "province", "expected_recovery", rows) == plain
    costly = with_cell(rows, ["collateral_type", "cost_rate"], "residential", "cost_rate", 0.5)
    edited = {r[0]: r[2] for r in R["NPL_STRAT"](TAPE, "province", "expected_recovery", costly)[1:]}
    before = {r[0]: r[2] for r in plain[1:]}
    # half the proceeds go in costs: the residential loans (Zhejiang, Fujian) recover less,
    # the unsecured Jiangsu loan and the industrial Shandong loan do not change
    assert edited["Zhejiang"] < before["Zhejiang"] and edited["Fujian"] < before["Fujian"]
    assert edited["Jiangsu"] == before["Jiangsu"] and edited["Shandong"] == before["Shandong"]
