"""The ribbon's macros, written once against a book (:mod:`npl_xl.workbook.book`), plus ``npl-xl run``.

Each macro takes a book: :class:`~npl_xl.workbook.book.XlwingsBook` when a ribbon button calls it
in Excel (udfs/ribbon.py), :class:`~npl_xl.workbook.book.FileBook` headless (``npl-xl run`` and the
tests). A macro reads the workbook's tables, computes with the core, and writes its own
output sheet; it never edits the user's input cells, except that Validate Tape fills bad
cells in red. Expected failures raise :class:`~npl_xl.errors.NplError` with messages that
name the sheet and cell; the caller shows them (message box, or stderr and exit status 2).

Output sheets: Results (Run Simulation), Problems (Validate Tape), Strat (Stratify Pool),
Fit (Fit Recoveries), Bid (Price Bid). Clear Results empties all of them that exist.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from npl_xl.workbook.charts import ChartSpec, Series
from npl_xl.errors import InputTypeError, NplError, TableError
from npl_xl.workbook.results import (FMT_MONEY, FMT_MONTHS, FMT_RATE, Block, SheetSpec, note_sheet,
    results_sheet)

__all__ = ["run_simulation", "fit_recoveries", "validate_tape", "stratify_pool", "price_bid",
           "clear_results", "OUTPUT_SHEETS", "add_arguments", "main"]

#: Output sheet of each macro; Clear Results empties every one of them that exists.
OUTPUT_SHEETS = {"run_simulation": "Results", "validate_tape": "Problems",
                 "stratify_pool": "Strat", "fit_recoveries": "Fit", "price_bid": "Bid"}

#: Stratifications written by Stratify Pool.
STRAT_BY = ("province", "collateral_type", "stage", "region_tier", "difficulty", "balance")

#: Target IRRs (annual decimals) of the bid grid written by Price Bid, beside the settings'.
BID_TARGETS = (0.08, 0.10, 0.12, 0.15, 0.20)
BID_CONFIDENCES = (0.5, 0.75, 0.9)


# --- reading the deal ----------------------------------------------------------------

def _assumptions(book):
    """The workbook's Assumptions tables over the packaged defaults (None when it has none)."""
    from npl_xl.inputs.assumptions import TABLE_NAMES, Assumptions

    tables = {name: book.read_table(name).rows for name in TABLE_NAMES if book.has_table(name)}
    return Assumptions.from_tables(tables) if tables else None


def _tape(book):
    from npl_xl.inputs.tape import read_tape

    table = book.read_table("Tape")
    return read_tape(table.rows, origin=table.origin)


def _deal_table(book, name: str, parse):
    """Parse the Tranches or Settings table; a problem names the table's sheet and cell."""
    table = book.read_table(name)
    try:
        return parse(table.rows)
    except TableError as exc:
        raise TableError([f"{name} table ({table.origin}): {p}" for p in exc.problems]) from None
    except NplError as exc:
        raise TableError([f"{name} table ({table.origin}): {exc}"]) from None


def _tranches(book):
    from npl_xl.inputs.deal import parse_tranches

    return _deal_table(book, "Tranches", parse_tranches)


def _settings(book):
    from npl_xl.inputs.deal import parse_settings

    return _deal_table(book, "Settings", parse_settings)


def read_deal(book):
    """(valued pool, tranches, settings, tape) read from the book; every problem of the
    three tables is reported at once as one TableError."""
    from npl_xl.model.loans import value_tape

    problems: list[str] = []
    parsed = {}
    for key, reader in (("tape", _tape), ("tranches", _tranches), ("settings", _settings)):
        try:
            parsed[key] = reader(book)
        except TableError as exc:
            problems.extend(exc.problems)
    if problems:
        raise TableError(problems)
    pool = value_tape(parsed["tape"], _assumptions(book))
    return pool, parsed["tranches"], parsed["settings"], parsed["tape"]


# --- the macros ------------------------------------------------------------------------

def run_simulation(book, progress=None, *, n_sims: int | None = None, seed: int | None = None,
                   scheduler: str | None = None):
    """Ribbon: Run Simulation. Simulate the deal and write the Results sheet.

    n_sims and seed override the Settings table (the command line's --n-sims, --seed);
    scheduler overrides its scheduler key (--scheduler: where the paths are simulated).
    ``progress(done, total)`` is called as paths complete (default: the book's progress).
    Returns (DealResult, SheetSpec).
    """
    from npl_xl.engine import simulate_deal

    book.set_status("npl-xl: reading Tape, Tranches, Settings…")
    pool, tranches, settings, _ = read_deal(book)
    report = progress or book.progress
    book.set_status(f"npl-xl: simulating {len(pool):,} loans…")
    result = simulate_deal(pool, tranches, settings, n_sims=n_sims, seed=seed,
                           progress=lambda *a: report(*_done_total(a)), scheduler=scheduler)
    spec = results_sheet(result, _run_info(book, pool, result))
    book.write_sheet(spec)
    book.set_status(None)
    return result, spec


def _done_total(args) -> tuple[int, int]:
    """The engine's progress arguments as (done, total): (done, total) or a fraction."""
    if len(args) >= 2:
        return int(args[0]), int(args[1])
    return int(round(float(args[0]) * 1000)), 1000


def _run_info(book, pool, result) -> list[tuple[str, object, str | None]]:
    claims = float(pool["claim"].sum())
    expected = float(pool["expected_recovery"].sum())
    months = pool["expected_months"].to_numpy(float)
    within_36 = float(pool["expected_recovery"].to_numpy(float)[months <= 36].sum())
    curve = result.collection_curve
    simulated = float(curve["expected_collections"].sum())
    source = getattr(book, "path", None)
    return [
        ("workbook", Path(source).name if source else "(live Excel)", None),
        ("run_at_utc", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"), None),
        ("n_sims (paths)", result.n_paths, "#,##0"),
        ("seed", result.settings.seed, "0"),
        ("loans", len(pool), "#,##0"),
        ("loans with sd capped", result.n_sd_capped, "#,##0"),
        ("claims", claims, FMT_MONEY),
        ("expected_recovery (valued)", expected, FMT_MONEY),
        ("expected_recovery / claims", expected / claims if claims else 0.0, FMT_RATE),
        ("share of expected recovery within 36 months", within_36 / expected if expected else 0.0, FMT_RATE),
        ("expected collections (simulated, by legal final)", simulated, FMT_MONEY),
        ("simulated collections / claims", simulated / claims if claims else 0.0, FMT_RATE),
        ("discount_rate (annual, for the PV below)", result.settings.discount_rate, FMT_RATE),
        ("PV of simulated collections at discount_rate", result.pool_pv_mean, FMT_MONEY),
        ("PV standard error", result.pool_pv_stderr, FMT_MONEY),
        ("liquidity provider's expected loss (advances written off at the legal final)",
         getattr(result, "liquidity_loss_mean", 0.0), FMT_MONEY),
        ("liquidity loss standard error", getattr(result, "liquidity_loss_stderr", 0.0), FMT_MONEY),
    ]


_CELL_IN_PROBLEM = re.compile(r"\(?'?([^'!()\s]+)'?!(\$?[A-Z]{1,3}\$?\d+)\)?")


def _problem_rows(problems: list[str]) -> pd.DataFrame:
    rows = []
    for text in problems:
        m = _CELL_IN_PROBLEM.search(text)
        column = re.search(r"column (\w+)", text)
        rows.append({"sheet": m.group(1) if m else "", "cell": m.group(2).replace("$", "") if m else "",
                     "column": column.group(1) if column else "", "problem": text})
    return pd.DataFrame(rows, columns=["sheet", "cell", "column", "problem"])


def validate_tape(book) -> list[str]:
    """Ribbon: Validate Tape. Check Tape, Tranches and Settings; fill each bad cell in red
    and list every problem (sheet, cell, column, message, with a link to the cell) on the
    Problems sheet. Returns the problems (empty when all is well)."""
    problems: list[str] = []
    n_loans = None
    try:
        n_loans = len(_tape(book))
    except TableError as exc:
        problems.extend(exc.problems)
    for reader in (_tranches, _settings):
        try:
            reader(book)
        except TableError as exc:
            problems.extend(exc.problems)
    frame = _problem_rows(problems)
    for sheet, group in frame[frame["cell"] != ""].groupby("sheet"):
        if sheet in book.sheet_names():
            book.mark_cells(sheet, list(group["cell"]))
    if problems:
        links = {(i, "cell"): f"'{s}'!{c}" for i, (s, c) in enumerate(zip(frame["sheet"], frame["cell"])) if c}
        block = Block("ProblemList", f"{len(problems)} problem(s) 问题; bad cells are filled in red",
                      frame, links=links)
        note = "Fix the cells listed below, then run Validate Tape again. 请修正下列单元格。"
    else:
        block = Block("ProblemList", "No problems found 未发现问题",
                      pd.DataFrame({"check": ["loans read"], "result": [n_loans]}))
        note = "Tape, Tranches and Settings read without problems."
    book.write_sheet(SheetSpec("Problems", "Validate Tape 数据校验", [block], notes=[note]))
    book.set_status(None)
    return problems


def stratify_pool(book) -> SheetSpec:
    """Ribbon: Stratify Pool. Count, claims and share of claims by province, collateral
    type, stage, region tier, difficulty grade and balance bucket (the NPL_STRAT tables),
    plus expected recovery by the same groups, on the Strat sheet."""
    from npl_xl.analysis.strat import stratify

    tape = _tape(book)
    assumptions = _assumptions(book)
    blocks = []
    for by in STRAT_BY:
        claims = stratify(tape, by, "claim", assumptions)
        recovery = stratify(tape, by, "expected_recovery", assumptions)
        merged = claims.merge(recovery.drop(columns=["count"]).rename(
            columns={"share": "share_of_recovery"}), on=claims.columns[0], how="left")
        sum_claim = merged.columns[2]
        merged["recovery_rate"] = merged["sum_expected_recovery"] / merged[sum_claim]
        blocks.append(Block(f"Strat_{by}", f"By {by}", merged,
                            formats={sum_claim: FMT_MONEY, "sum_expected_recovery": FMT_MONEY,
                                     "share_of_recovery": FMT_RATE, "recovery_rate": FMT_RATE}))
    spec = SheetSpec("Strat", "Pool stratification 资产池分层",
                     blocks, notes=["Claims, expected recovery (loan-by-loan valuation) and their "
                                    "shares by group. 按组统计本息余额与预期回收。"])
    first = blocks[0]
    spec.charts = [ChartSpec("Claims and expected recovery by province 按省份", "column", first.name,
                             "province", (Series("claims", first.name, first.frame.columns[2]),
                                          Series("expected recovery", first.name, "sum_expected_recovery")),
                             anchor=_chart_anchor(spec, 2))]
    book.write_sheet(spec)
    return spec


def _chart_anchor(spec: SheetSpec, row: int) -> str:
    from xlsxwriter.utility import xl_rowcol_to_cell

    return xl_rowcol_to_cell(row, spec.chart_column())


def fit_recoveries(book) -> SheetSpec:
    """Ribbon: Fit Recoveries. Fit a zero/one-inflated Beta (NPL_BETA_FIT, MLE and method of
    moments) to the historical recovery rates in the workbook name HistRecoveries, or else
    the first column of the table History; write the parameters, and a histogram of the data
    against the fitted shares, on the Fit sheet."""
    from npl_xl.model.beta import beta_dist, fit_beta
    from npl_xl.workbook.a1 import cell_address, parse_address

    data = book.read_name("HistRecoveries")
    if data is None and book.has_table("History"):
        table = book.read_table("History")
        data = type(table)(table.name, table.sheet, table.top_left, [r[:1] for r in table.rows[1:]])
    if data is None:
        raise InputTypeError("no historical recovery rates: define the workbook name "
                             "HistRecoveries or a table History", argument="HistRecoveries")
    values = []
    for k, row in enumerate(data.rows):
        cell = row[0] if row else None
        if cell is None or cell == "":
            continue
        if not isinstance(cell, (int, float)) or isinstance(cell, bool):
            row, col = parse_address(data.top_left)
            raise InputTypeError(f"{data.sheet}!{cell_address(row + k, col)} holds {cell!r}, "
                                 "not a recovery rate", argument="HistRecoveries")
        values.append(float(cell))
    rates = np.array(values)
    fits = {m: fit_beta(rates, m) for m in ("MLE", "MOM")}
    params = pd.DataFrame([{"method": m, **dict(zip(
        ["alpha", "beta", "p_zero", "p_one", "loglik", "n"], f.as_row()))} for m, f in fits.items()])
    params["mean"] = params["alpha"] / (params["alpha"] + params["beta"])
    a, b = params.loc[0, "alpha"], params.loc[0, "beta"]
    params["sd"] = np.sqrt(params["alpha"] * params["beta"] / (
        (params["alpha"] + params["beta"]) ** 2 * (params["alpha"] + params["beta"] + 1)))
    edges = np.linspace(0, 1, 11)
    mle = fits["MLE"]
    interior = (rates > 1e-6) & (rates < 1 - 1e-6)
    mean, sd = a / (a + b), float(params.loc[0, "sd"])
    cdf = np.array([beta_dist(x, mean, sd, True) for x in edges])
    share_interior = 1 - mle.p_zero - mle.p_one
    hist = pd.DataFrame({
        "bucket": [f"{lo:.0%}–{hi:.0%}" for lo, hi in zip(edges[:-1], edges[1:])],
        "observed_share": np.histogram(rates[interior], edges)[0] / max(1, rates.size),
        "fitted_share": np.diff(cdf) * share_interior,
    })
    blocks = [Block("FitParams", "NPL_BETA_FIT on HistRecoveries (MLE and MOM) Beta 拟合",
                    params, formats={"p_zero": FMT_RATE, "p_one": FMT_RATE, "mean": FMT_RATE,
                                     "sd": FMT_RATE, "alpha": "0.0000", "beta": "0.0000",
                                     "loglik": "0.00", "n": "0"}),
              Block("FitHistogram", "Interior recovery rates: observed vs fitted (MLE) share of "
                    "all observations", hist, formats={"observed_share": FMT_RATE, "fitted_share": FMT_RATE})]
    spec = SheetSpec("Fit", "Fit Recoveries 回收率拟合", blocks,
                     notes=[f"{rates.size} observations from {data.sheet}!{data.top_left}; zeros "
                            f"{mle.p_zero:.1%}, full recoveries {mle.p_one:.1%}."])
    spec.charts = [ChartSpec("Recovery rates: observed vs fitted Beta 回收率分布", "column", "FitHistogram",
                             "bucket", (Series("observed", "FitHistogram", "observed_share"),
                                        Series("fitted (MLE)", "FitHistogram", "fitted_share")),
                             x_title="recovery rate", y_title="share", percent_axis=True,
                             anchor=_chart_anchor(spec, 2))]
    book.write_sheet(spec)
    return spec


def price_bid(book, *, n_sims: int | None = None, seed: int | None = None) -> SheetSpec:
    """Ribbon: Price Bid. NPL_BID_PRICE for the package: the price at which P(IRR >= target)
    = confidence, for the Settings' discount_rate as the target IRR and a grid of targets
    and confidences, on the Bid sheet. The package's collections are simulated once and
    priced at every grid point (pricing.bid_collections and price_from_collections, the
    two halves of pricing.bid_price behind NPL_BID_PRICE: the same numbers)."""
    from npl_xl.model.loans import value_tape
    from npl_xl.analysis.pricing import bid_collections, price_from_collections

    pool = value_tape(_tape(book), _assumptions(book))
    settings = _settings(book).with_overrides(n_sims=n_sims, seed=seed)
    target = float(settings.discount_rate)
    collections = bid_collections(pool, settings)
    rows = []
    for t in sorted(set(BID_TARGETS) | {target}):
        row = {"target_irr": t}
        for c in BID_CONFIDENCES:
            bid = price_from_collections(collections, t, c)
            row[f"price_p{int(c * 100)}"] = bid.price
            row[f"price_stderr_p{int(c * 100)}"] = bid.price_stderr
            row[f"price_to_claim_p{int(c * 100)}"] = bid.price_to_claim
        rows.append(row)
    grid = pd.DataFrame(rows)
    formats = {c: (FMT_MONEY if c.startswith("price_") and "claim" not in c else FMT_RATE)
               for c in grid.columns}
    spec = SheetSpec("Bid", "Price Bid 报价", [Block("BidGrid", "Price for the whole package: "
                     "P(IRR >= target) = confidence 目标收益率与置信度下的报价", grid, formats=formats)],
                     notes=[f"Settings target IRR {target:.2%}; price_to_claim = price / "
                            "claims, the claims being principal + interest + fees "
                            "(收购价格占债权本息比例; not 本金折扣率, which is on principal "
                            "only). Unstressed base case unless the Settings' "
                            "bid_with_stresses is TRUE."])
    book.write_sheet(spec)
    return spec


def clear_results(book) -> list[str]:
    """Ribbon: Clear Results. Empty every macro output sheet that exists (Results, Problems,
    Strat, Fit, Bid), leaving a one-line note. Returns the sheets cleared."""
    cleared = []
    present = {s.lower() for s in book.sheet_names()}
    for macro, sheet in OUTPUT_SHEETS.items():
        if sheet.lower() in present:
            book.write_sheet(note_sheet(sheet, f"{sheet} 结果", f"Cleared. Run {macro} again to "
                                        "fill this sheet. 已清除。"))
            cleared.append(sheet)
    return cleared
