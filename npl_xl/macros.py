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

from xlsxwriter.utility import xl_rowcol_to_cell

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


def _header_map(book, kind: str = "tape") -> dict[str, str]:
    """The workbook's HeaderMap table (source header, field[, table]) for one table kind."""
    from npl_xl.inputs.headers import parse_header_map

    if not book.has_table("HeaderMap"):
        return {}
    table = book.read_table("HeaderMap")
    try:
        return parse_header_map(table.rows, kind)
    except NplError as exc:
        raise TableError([f"HeaderMap table ({table.origin}): {exc}"]) from None


def _settings_or_default(book):
    """The Settings table, or the defaults when it has problems (reported elsewhere)."""
    from npl_xl.inputs.deal import DealSettings

    try:
        return _settings(book) if book.has_table("Settings") else DealSettings()
    except NplError:
        return DealSettings()


def _tape(book, settings=None):
    from npl_xl.inputs.tape import read_tape

    table = book.read_table("Tape")
    return read_tape(table.rows, origin=table.origin, header_map=_header_map(book),
                     settings=settings if settings is not None else _settings_or_default(book))


def _links(book, settings=None):
    """(Collateral, Guarantees) frames read from the workbook's tables, None where absent."""
    from npl_xl.inputs.tape import read_collateral, read_guarantees

    settings = settings if settings is not None else _settings_or_default(book)
    out = []
    for name, kind, reader in (("Collateral", "collateral", read_collateral),
                               ("Guarantees", "guarantees", read_guarantees)):
        if not book.has_table(name):
            out.append(None)
            continue
        table = book.read_table(name)
        if all(c is None for row in table.rows[1:] for c in row):
            out.append(None)
            continue
        out.append(reader(table.rows, table.origin, _header_map(book, kind), settings))
    return tuple(out)


def _valued(book, tape=None, settings=None):
    """The valued tape with the workbook's Collateral and Guarantees tables."""
    from npl_xl.model.loans import value_tape

    settings = settings if settings is not None else _settings_or_default(book)
    collateral, guarantees = _links(book, settings)
    return value_tape(tape if tape is not None else _tape(book, settings), _assumptions(book),
                      collateral, guarantees)


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
    """(valued pool, tranches, settings, tape) read from the book (with its HeaderMap,
    Collateral and Guarantees tables when present); every problem of the tables is
    reported at once as one TableError."""
    problems: list[str] = []
    parsed = {}
    for key, reader in (("settings", _settings), ("tranches", _tranches),
                        ("tape", lambda b: _tape(b, parsed.get("settings"))),
                        ("links", lambda b: _links(b, parsed.get("settings")))):
        try:
            parsed[key] = reader(book)
        except TableError as exc:
            problems.extend(exc.problems)
    if problems:
        raise TableError(problems)
    from npl_xl.model.loans import value_tape

    pool = value_tape(parsed["tape"], _assumptions(book), *parsed["links"])
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
    from npl_xl.analysis.convergence import simulate_to_target

    book.set_status("npl-xl: reading Tape, Tranches, Settings…")
    pool, tranches, settings, _ = read_deal(book)
    if settings.as_of_months > 0 and book.has_table("Collections"):
        return run_from_report_date(book, pool, tranches, settings, progress, n_sims, seed)
    report = progress or book.progress
    book.set_status(f"npl-xl: simulating {len(pool):,} loans…")
    # target_stderr (Settings) set: as many paths as the target needs (analysis.convergence)
    result, convergence = simulate_to_target(pool, tranches, settings, n_sims, seed,
                                             progress=lambda *a: report(*_done_total(a)),
                                             scheduler=scheduler)
    info = _run_info(book, pool, result)
    if convergence.target is not None:
        info += convergence.run_info()
    spec = results_sheet(result, info)
    book.write_sheet(spec)
    if settings.audit:
        book.set_status("npl-xl: writing the waterfall audit…")
        book.write_sheet(audit_sheet(result, settings.audit_paths))
    book.set_status(None)
    return result, spec


def audit_sheet(result, paths_text=None, month_offset: float = 0.0) -> SheetSpec:
    """The Audit sheet of a run (Settings ``audit`` TRUE): one table per case, the base
    case then each path of ``paths_text`` ("0,17"), each the period-by-period waterfall of
    :func:`npl_xl.analysis.audit.audit_frames` (what ``npl-xl run --audit`` writes). Path
    indices that are not whole numbers in the run are an error naming Settings audit_paths.
    ``month_offset`` (months) is added to the month column (a run from the report date
    shows months after closing, as its Results do)."""
    from npl_xl.analysis.audit import audit_frames, parse_paths

    try:
        frames = audit_frames(result, parse_paths(paths_text))
    except InputTypeError as exc:
        raise InputTypeError(exc.detail, argument="Settings audit_paths") from None
    for frame in frames.values():
        frame["month"] = frame["month"] + month_offset
    blocks = [Block(f"Audit_{name}", f"{name}: the waterfall period by period 逐期现金流瀑布",
                    frame, formats={c: FMT_MONEY for c in frame.columns
                                    if c not in ("period", "month", "ccr") and
                                    not c.endswith(("_missed_payment", "_breached",
                                                    "event_of_default", "mezz_subordinated"))})
              for name, frame in frames.items()]
    return SheetSpec("Audit", "Waterfall audit 现金流瀑布审计", blocks,
                     notes=["Every step of the priority of payments (docs/MODEL.md), the reserve, "
                            "liquidity and deferred-fee accounts and the trigger states (1 = on), "
                            "per payment period: the base case (each loan's expected recovery "
                            "at its expected month) and the simulated paths of Settings "
                            "audit_paths. Currency; month = months after closing."])


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
        ("liquidity facility expected loss (written off)",
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


def inspect_book(book):
    """(problems, tape reading or None, quality report or None) of the workbook's Tape,
    Collateral, Guarantees, HeaderMap, Tranches and Settings tables: what Validate Tape
    shows and ``npl-xl validate`` prints."""
    from npl_xl.inputs.quality import quality_report
    from npl_xl.inputs.tape import inspect_tape

    problems: list[str] = []
    settings = None
    try:
        settings = _settings(book)
    except TableError as exc:
        problems.extend(exc.problems)
    try:
        _tranches(book)
    except TableError as exc:
        problems.extend(exc.problems)
    deal = settings if settings is not None else _settings_or_default(book)
    reading = report = None
    try:
        table = book.read_table("Tape")
        reading = inspect_tape(table.rows, table.origin, _header_map(book), deal)
        problems.extend(reading.problems)
        report = quality_report(reading, getattr(deal, "cut_off_date", None))
    except NplError as exc:
        problems.extend(getattr(exc, "problems", None) or [str(exc)])
    try:
        links = _links(book, deal)
        if reading is not None and not reading.problems and any(t is not None for t in links):
            from npl_xl.model.shared import collateral_links, guarantee_links

            if links[0] is not None:
                collateral_links(reading.frame, links[0])
            if links[1] is not None:
                guarantee_links(reading.frame, links[1])
    except NplError as exc:
        problems.extend(getattr(exc, "problems", None) or [str(exc)])
    return problems, reading, report


def validate_tape(book) -> list[str]:
    """Ribbon: Validate Tape. Check Tape (with HeaderMap, Collateral, Guarantees), Tranches
    and Settings; fill each bad cell in red and write on the Problems sheet every problem
    (sheet, cell, column, message, with a link to the cell), which header mapped to which
    field and which were ignored, and the data-quality report (share filled and defaulted
    per field, outliers, completeness score). Returns the problems (empty when all is well)."""
    from npl_xl.inputs.quality import MODEL_FIELDS

    problems, reading, report = inspect_book(book)
    frame = _problem_rows(problems)
    for sheet, group in frame[frame["cell"] != ""].groupby("sheet"):
        if sheet in book.sheet_names():
            book.mark_cells(sheet, list(group["cell"]))
    if problems:
        links = {(i, "cell"): f"'{s}'!{c}" for i, (s, c) in enumerate(zip(frame["sheet"], frame["cell"])) if c}
        blocks = [Block("ProblemList", f"{len(problems)} problem(s) 问题; bad cells are filled in red",
                        frame, links=links)]
        note = "Fix the cells listed below, then run Validate Tape again. 请修正下列单元格。"
    else:
        blocks = [Block("ProblemList", "No problems found 未发现问题",
                        pd.DataFrame({"check": ["loans read"], "result": [len(reading.frame)]}))]
        note = "Tape, Tranches and Settings read without problems."
    notes = [note]
    if report is not None:
        summary = pd.DataFrame({"measure": ["loans", "completeness score (mean share filled of "
                                            + ", ".join(MODEL_FIELDS) + ")", "outliers",
                                            "appraisal age measured at"],
                                "value": [report.n_loans, report.completeness, len(report.outliers),
                                          report.as_of]})
        blocks += [
            Block("QualitySummary", "Data quality 数据质量", summary),
            Block("HeaderMapping", "Headers: which field each maps to 表头映射", report.headers),
            Block("FieldQuality", "Share filled and defaulted per field 字段完整度", report.fields,
                  formats={"share_filled": FMT_RATE, "share_defaulted": FMT_RATE,
                           "share_missing": FMT_RATE}),
            Block("Outliers", "Outliers: LTV > 3, claim <= 0, appraisal older than 3 years 异常值",
                  report.outliers if len(report.outliers) else
                  pd.DataFrame({"check": ["none found"], "loan_id": [""], "cell": [""], "value": [""],
                                "detail": [""]})),
        ]
        notes.append(f"Completeness score {report.completeness:.1%}; {len(report.outliers)} outlier(s).")
    book.write_sheet(SheetSpec("Problems", "Validate Tape 数据校验", blocks, notes=notes))
    book.set_status(None)
    return problems


def stratify_pool(book) -> SheetSpec:
    """Ribbon: Stratify Pool. Count, claims and share of claims by province, collateral
    type, stage, region tier, difficulty grade and balance bucket (the NPL_STRAT tables),
    plus expected recovery by the same groups, on the Strat sheet."""
    from npl_xl.analysis.strat import stratify

    settings = _settings_or_default(book)
    tape = _tape(book, settings)
    links = _links(book, settings)
    assumptions = _assumptions(book)
    blocks = []
    for by in STRAT_BY:
        claims = stratify(tape, by, "claim", assumptions, *links)
        recovery = stratify(tape, by, "expected_recovery", assumptions, *links)
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
    from npl_xl.analysis.pricing import bid_collections, price_from_collections

    settings = _settings(book).with_overrides(n_sims=n_sims, seed=seed)
    pool = _valued(book, settings=settings)
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
            if bid.has_principal:  # the tape has a principal column (未偿本金)
                row[f"price_to_principal_p{int(c * 100)}"] = bid.price_to_principal
        rows.append(row)
    grid = pd.DataFrame(rows)
    formats = {c: (FMT_MONEY if c.startswith("price_") and "_to_" not in c else FMT_RATE)
               for c in grid.columns}
    spec = SheetSpec("Bid", "Price Bid 报价", [Block("BidGrid", "Price for the whole package: "
                     "P(IRR >= target) = confidence 目标收益率与置信度下的报价", grid, formats=formats)],
                     notes=[f"Settings target IRR {target:.2%}; price_to_claim = price / "
                            "claims, the claims being principal + interest + fees "
                            "(收购价格占债权本息比例; not 本金折扣率, which is on principal "
                            "only). Unstressed base case unless the Settings' "
                            "bid_with_stresses is TRUE."]
                     + (["price_to_principal = price / the loans' principal (未偿本金; "
                         "本金折扣率 = 1 - price_to_principal)."]
                        if np.isfinite(collections.total_principal) else []))
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


# --- surveillance ------------------------------------------------------------------------

OUTPUT_SHEETS["surveillance_report"] = "Surveillance"
OUTPUT_SHEETS["run_simulation (Settings audit TRUE)"] = "Audit"


def read_collections_table(book, settings, valued):
    """The book's Collections table as a frame (loan_id, month, amount, resolved, row);
    None when the book has no Collections table."""
    from npl_xl.inputs.collections import read_collections

    if not book.has_table("Collections"):
        return None
    table = book.read_table("Collections")
    try:
        return read_collections(table.rows, origin=table.origin,
                                closing_date=settings.closing_date,
                                loan_ids=list(valued["loan_id"].astype(str)))
    except TableError as exc:
        raise TableError([f"Collections table ({table.origin}): {p}" for p in exc.problems]) from None


def report_date(settings, collections) -> float:
    """The report date (months after closing): as_of_months, or when that is 0 and there
    are collections, the first payment date on or after the latest one."""
    import math

    if settings.as_of_months > 0 or collections is None or not len(collections):
        return float(settings.as_of_months)
    latest = float(collections["month"].max())
    return max(1, math.ceil(latest / settings.payment_months - 1e-9)) * settings.payment_months


def surveillance_report(book, progress=None, *, n_sims: int | None = None,
                        seed: int | None = None, as_of: float | None = None):
    """Ribbon: Surveillance Report (跟踪报告). Compare the Collections table with the
    issuance model, re-project the open loans and re-rate the tranches from the report date;
    write the Surveillance sheet. Returns (issuance DealResult, report-date DealResult or
    None, SheetSpec).

    The report date is ``as_of`` (months after closing), else Settings as_of_months, else
    (as_of_months 0) the first payment date on or after the latest collection."""
    from dataclasses import replace

    from npl_xl.analysis import surveillance as sv
    from npl_xl.engine import simulate_deal
    from npl_xl.engine.pool import pool_from_frame
    from npl_xl.workbook.surveillance_sheet import (group_table, rating_change,
                                                     shortfall_table, surveillance_sheet)

    book.set_status("npl-xl: reading Tape, Tranches, Settings, Collections…")
    valued, tranches, settings, _ = read_deal(book)
    frame = read_collections_table(book, settings, valued)
    if frame is None:
        raise TableError(["the workbook has no Collections table (贷款编号, 回收月份 or 回收日期, "
                          "回收金额, 已结清): add one, or import a servicer's report with "
                          "npl-xl collections import"])
    settings = replace(settings, as_of_months=float(as_of if as_of is not None
                                                      else report_date(settings, frame)))
    settings = settings.with_overrides(n_sims=n_sims, seed=seed)
    report = progress or book.progress
    book.set_status(f"npl-xl: issuance model, {len(valued):,} loans…")
    issuance = simulate_deal(pool_from_frame(valued), tranches, replace(settings, as_of_months=0.0),
                             progress=lambda *a: report(*_done_total(a)))
    avse = sv.actual_vs_expected(valued, frame, settings,
                                 issuance.collection_curve["expected_collections"].to_numpy())
    collected, resolved = sv.loan_status(valued, frame)
    expected_now = sv.expected_to_date(valued, settings, settings.as_of_months)
    status = np.where(resolved, "resolved", "open")
    book.set_status("npl-xl: re-projecting from the report date…")
    deal = sv.remaining_deal(valued, book.read_table("Tranches").rows, settings, frame)
    figures, after = sv.tranche_figures(deal, progress=lambda *a: report(*_done_total(a)))
    before = issuance.contract_table()
    change = pd.DataFrame({
        "name": before["name"], "issuance_balance": [t.balance for t in tranches],
        "issuance_EL": before["EL"], "issuance_rating": before["rating"],
        "outstanding": [deal.outstanding[t.name] for t in tranches],
        "report_EL": figures["EL"], "report_PD": figures["PD"], "report_WAL": figures["WAL"],
        "report_rating": figures["rating"], "report_el_stderr": figures["el_stderr"],
        "rating_change": [rating_change(a, b) for a, b in zip(before["rating"], figures["rating"])]})
    if after is not None:
        curve = after.collection_curve.copy()
        curve["month"] = curve["month"] + settings.as_of_months
        curve["cumulative_share_of_claims"] = (np.cumsum(curve["expected_collections"])
                                               / float(valued["claim"].sum()))
    else:
        curve = pd.DataFrame(columns=["period", "month", "expected_collections", "stderr",
                                      "cumulative_share_of_claims"])
    claims = float(valued["claim"].sum())
    total_actual = float(frame["amount"].sum())
    info = [("report date (as_of_months)", settings.as_of_months, "0.0"),
            ("n_sims (paths)", issuance.n_paths, "#,##0"), ("seed", settings.seed, "0"),
            ("loans", len(valued), "#,##0"),
            ("loans resolved", int(resolved.sum()), "#,##0"),
            ("initial claims", claims, FMT_MONEY),
            ("collected to date", total_actual, FMT_MONEY),
            ("collected / initial claims", total_actual / claims if claims else 0.0, FMT_RATE),
            ("expected to date (issuance model)", float(avse["expected"].sum()) if len(avse) else 0.0,
             FMT_MONEY),
            ("remaining expected recovery (open loans)", float(deal.pool.expected_recovery.sum()),
             FMT_MONEY),
            ("reserve at the report date", deal.reserve, FMT_MONEY)]
    spec = surveillance_sheet(
        avse, group_table(valued, expected_now, collected, "province"),
        group_table(valued, expected_now, collected, "collateral_type"),
        shortfall_table(valued, expected_now, collected, status), curve, change, info)
    book.write_sheet(spec)
    book.set_status(None)
    return issuance, after, spec


def run_from_report_date(book, valued, tranches, settings, progress=None, n_sims=None, seed=None):
    """Run Simulation on a book with Collections and as_of_months > 0: the deal from the
    report date (open loans' remaining recoveries, outstanding balances, the reserve then);
    the Results sheet's months stay months after closing. Returns (DealResult, SheetSpec)."""
    from npl_xl.analysis import surveillance as sv
    from npl_xl.engine import simulate_deal

    frame = read_collections_table(book, settings, valued)
    deal = sv.remaining_deal(valued, book.read_table("Tranches").rows, settings, frame)
    if deal.tranches is None:
        raise TableError([f"every tranche is repaid at the report date (as_of_months "
                          f"{settings.as_of_months:g}): nothing left to simulate"])
    report = progress or book.progress
    book.set_status(f"npl-xl: simulating from month {settings.as_of_months:g}…")
    result = simulate_deal(deal.pool, deal.tranches, deal.settings, n_sims=n_sims, seed=seed,
                           progress=lambda *a: report(*_done_total(a)))
    result.collection_curve["month"] = result.collection_curve["month"] + settings.as_of_months
    info = [("report date (as_of_months): figures from this date on", settings.as_of_months, "0.0"),
            ("loans resolved or fully collected by then", int((deal.valued["claim"] == 0).sum()), "#,##0")]
    spec = results_sheet(result, info + _run_info(book, deal.valued, result))
    book.write_sheet(spec)
    if settings.audit:  # the remaining deal's waterfall from the report date on
        book.write_sheet(audit_sheet(result, settings.audit_paths, settings.as_of_months))
    book.set_status(None)
    return result, spec


__all__ += ["surveillance_report", "read_collections_table", "report_date", "run_from_report_date"]


# --- structuring and sensitivity (issue 11) ------------------------------------------------

#: Output sheets of the structuring macros (Clear Results empties them too).
OUTPUT_SHEETS.update({"size_tranches": "Structuring", "sensitivity_analysis": "Sensitivity"})
__all__ += ["size_tranches", "sensitivity_analysis", "structuring_sheet", "SIZE_RATINGS"]

#: Rating levels the Size Tranches macro sizes the senior for (Moody's idealized scale).
SIZE_RATINGS = ("Aaa", "Aa2", "A2", "Baa2", "Ba2", "B2")
#: Prices of the Sensitivity sheet's price table, as multiples of the bid at discount_rate.
PRICE_MULTIPLES = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)


def _stage_progress(book, label: str, stage: int, stages: int):
    """A progress callback for one stage of a multi-run analysis (status bar / stderr)."""
    report = book.progress

    def progress(done, total):
        if total > 0:
            report(int(1000 * (stage + done / total) / stages), 1000)
    book.set_status(f"npl-xl: {label} ({stage + 1}/{stages})…")
    return progress


def size_tranches(book, progress=None, *, n_sims: int | None = None, seed: int | None = None):
    """Ribbon: Size Tranches. NPL_TRANCHE_SIZE for the first senior tranche at each of
    :data:`SIZE_RATINGS`, beside the Tranches table's own senior, and NPL_BREAKEVEN for every
    tranche, on the Structuring sheet with a chart of the senior size per rating.
    The pool's collections are simulated once (target_stderr honoured) and the waterfall
    re-run per candidate balance. Returns the SheetSpec."""
    from npl_xl.analysis.convergence import simulate_to_target

    book.set_status("npl-xl: reading Tape, Tranches, Settings…")
    pool, tranches, settings, _ = read_deal(book)
    settings = settings.with_overrides(n_sims=n_sims, seed=seed)
    result, convergence = simulate_to_target(pool, tranches, settings,
                                             progress=_stage_progress(book, "simulating", 0, 2))
    book.progress(500, 1000)
    book.set_status("npl-xl: sizing the senior (waterfall per candidate balance)…")
    info = _run_info(book, pool, result) + convergence.run_info()
    spec = structuring_sheet(pool, tranches, result, info,
                             progress=lambda k: book.progress(500 + min(499, 10 * k), 1000))
    book.progress(1000, 1000)
    book.write_sheet(spec)
    book.set_status(None)
    return spec


def structuring_sheet(pool, tranches, result, run_info, ratings=SIZE_RATINGS,
                      extra_blocks=(), progress=None) -> SheetSpec:
    """The Structuring sheet: the first senior's largest balance per rating (on the paths of
    ``result``, the DealResult of the deal as given), the senior as given, each tranche's
    break-evens and a chart of the senior size per rating. ``pool`` is the valued tape,
    ``run_info`` the run block's (key, value, format) rows; ``extra_blocks`` are appended
    (the sample deal's published figures)."""
    from npl_xl.analysis.breakeven import breakeven
    from npl_xl.analysis.sizing import size_from_collections, tranche_index

    settings = result.settings
    j = tranche_index(tranches, None)
    senior = tranches.items[j]
    expected = float(pool["expected_recovery"].sum())
    sized = size_from_collections(result.path_collections, tranches, ratings, None,
                                  settings, expected, progress=progress)
    sizes = sized.table[["target_rating", "balance", "share_of_expected_recovery", "EL", "WAL",
                         "el_stderr"]].copy()
    given = result.tranche_table.iloc[j]
    current = pd.DataFrame([{
        "tranche": senior.name, "balance": senior.balance,
        "share_of_expected_recovery": senior.balance / expected if expected else np.nan,
        "EL": given["EL"], "WAL": given["WAL"], "rating": given["rating"],
        "el_stderr": given["el_stderr"]}])
    breakevens = pd.DataFrame([dict(zip(("tranche", "recovery_haircut", "delay_months",
                                         "breakeven_collections"),
                                        (t.name, *breakeven(pool, tranches, t.name, settings))))
                               for t in tranches])
    info = list(run_info) + [("tranche sized", senior.name, None),
                             ("waterfall runs (all rating levels)", sized.evaluations, "#,##0")]
    blocks = [
        Block("StructRun", "Run 运行信息", pd.DataFrame({"key": [r[0] for r in info],
                                                     "value": [r[1] for r in info]}),
              row_formats=[r[2] for r in info]),
        Block("StructSizes", f"Largest {senior.name} balance per rating (NPL_TRANCHE_SIZE, "
              "others unchanged) 各评级下优先档最大规模", sizes,
              formats={"share_of_expected_recovery": FMT_RATE, "EL": "0.0000%",
                       "el_stderr": "0.0000%"}),
        Block("StructGiven", "The Tranches table's senior as given 交易结构中的优先档", current,
              formats={"share_of_expected_recovery": FMT_RATE, "EL": "0.0000%",
                       "el_stderr": "0.0000%"}),
        Block("StructBreakeven", "Break-evens (NPL_BREAKEVEN, deterministic) 盈亏平衡: "
              "recovery haircut and delay at which each tranche first misses", breakevens,
              formats={"recovery_haircut": FMT_RATE, "delay_months": FMT_MONTHS,
                       "breakeven_collections": FMT_MONEY}),
    ] + list(extra_blocks)
    spec = SheetSpec("Structuring", "Size Tranches 分层测算", blocks, notes=[
        "Senior size at each rating of Moody's idealized EL scale, on one simulation of the "
        "pool (common random numbers); share = balance / the pool's valued expected recovery. "
        "按评级测算优先档规模。See docs/MODEL.md on how this scale relates to domestic AAA."])
    spec.charts = [ChartSpec("Senior size as a share of expected recovery, by rating 各评级优先档规模占预期回收比例",
                             "column", "StructSizes", "target_rating",
                             (Series("share of expected recovery", "StructSizes",
                                     "share_of_expected_recovery"),),
                             x_title="rating", y_title="senior / expected recovery",
                             percent_axis=True, anchor=_chart_anchor(spec, 2))]
    return spec


def sensitivity_analysis(book, progress=None, *, n_sims: int | None = None,
                         seed: int | None = None):
    """Ribbon: Sensitivity. On the Sensitivity sheet: a tornado of the senior's EL and one
    of the package price (NPL_BID_PRICE at the Settings' discount_rate) over rho, recovery
    multiplier, sd multiplier, delay and timing sd (eleven scenarios each, common random
    numbers); the price over a recovery x delay stress grid (a heat map); and the price
    table (NPL_PRICE_TABLE) around the bid, with its price-IRR fan chart. Returns the
    SheetSpec."""
    from npl_xl.analysis.convergence import converged_settings
    from npl_xl.analysis.price_table import table_from_collections
    from npl_xl.analysis.pricing import bid_collections, price_from_collections
    from npl_xl.analysis.sensitivity import bid_tornado, stress_grid, tornado
    from npl_xl.engine.pool import as_pool

    book.set_status("npl-xl: reading Tape, Tranches, Settings…")
    frame, tranches, settings, _ = read_deal(book)
    pool = as_pool(frame)
    settings = settings.with_overrides(n_sims=n_sims, seed=seed)
    settings, convergence, _ = converged_settings(pool, tranches, settings)
    el = tornado(pool, tranches, settings, progress=_stage_progress(book, "EL tornado", 0, 4))
    price = bid_tornado(pool, settings, progress=_stage_progress(book, "price tornado", 1, 4))
    grid = stress_grid(pool, settings, progress=_stage_progress(book, "stress grid", 2, 4))
    _stage_progress(book, "price table", 3, 4)(0, 1)
    collections = bid_collections(pool, settings)
    target = float(settings.discount_rate)
    bid = price_from_collections(collections, target, 0.5)
    prices = table_from_collections(collections, [bid.price * m for m in PRICE_MULTIPLES])
    book.progress(1000, 1000)
    heat = grid.frame()
    delay_columns = [c for c in heat.columns if c != "recovery"]
    rows = [("workbook", Path(getattr(book, "path", "")).name or "(live Excel)", None),
            ("n_sims (paths)", int(settings.n_sims), "#,##0"), ("seed", settings.seed, "0"),
            ("target IRR of the prices (discount_rate)", target, FMT_RATE),
            ("bid at the target, median IRR (NPL_BID_PRICE)", bid.price, FMT_MONEY)]
    if convergence is not None:
        rows += convergence.run_info()
    tornado_formats = {c: "0.0000%" for c in ("base", "low_value", "high_value", "low_change",
                                              "high_change", "swing")}
    price_formats = {c: FMT_MONEY for c in ("base", "low_value", "high_value", "low_change",
                                            "high_change", "swing")}
    blocks = [
        Block("SensRun", "Run 运行信息", pd.DataFrame({"key": [r[0] for r in rows],
                                                   "value": [r[1] for r in rows]}),
              row_formats=[r[2] for r in rows]),
        Block("SensTornadoEL", "Tornado: senior EL under low and high shocks 优先档预期损失敏感性",
              el, formats=tornado_formats),
        Block("SensTornadoPrice", "Tornado: package price at the target IRR 收购报价敏感性",
              price, formats=price_formats),
        Block("SensStressGrid", "Stress grid: package price by recovery multiplier (rows) and "
              "delay in months (columns) 回收率与延迟压力矩阵", heat,
              formats={**{c: FMT_MONEY for c in delay_columns}, "recovery": "0.00"},
              color_scale=tuple(delay_columns)),
        Block("SensPriceTable", "Price table (NPL_PRICE_TABLE) 报价表: IRR range, multiple, "
              "probability of a loss", prices,
              formats={"price": FMT_MONEY, "price_to_claim": FMT_RATE, "mean_irr": FMT_RATE,
                       "irr_p10": FMT_RATE, "irr_p50": FMT_RATE, "irr_p90": FMT_RATE,
                       "moic": "0.00", "p_loss": FMT_RATE}),
    ]
    spec = SheetSpec("Sensitivity", "Sensitivity 敏感性分析", blocks, notes=[
        "Every scenario on the same random numbers (common random numbers): differences are "
        "the shocks', not Monte Carlo noise. 所有情景使用同一组随机数。"])
    spec.chart_band_rows = 18
    band = xl_rowcol_to_cell(spec.chart_band_row, 0)
    size = (520, 310)
    spec.charts = [
        ChartSpec("Tornado: change in senior EL 优先档预期损失变化", "bar", "SensTornadoEL",
                  "variable", (Series("low shock", "SensTornadoEL", "low_change"),
                               Series("high shock", "SensTornadoEL", "high_change")),
                  x_title="variable", y_title="change in EL", value_format="0.000%",
                  anchor=band, size=size),
        ChartSpec("Tornado: change in package price 报价变化", "bar", "SensTornadoPrice",
                  "variable", (Series("low shock", "SensTornadoPrice", "low_change"),
                               Series("high shock", "SensTornadoPrice", "high_change")),
                  x_title="variable", y_title="change in price", value_format=FMT_MONEY,
                  anchor=band, size=size, offset=(size[0] + 12, 0)),
        ChartSpec("Price-IRR fan: 10th, 50th, 90th percentile IRR 价格-收益率", "line",
                  "SensPriceTable", "price",
                  (Series("IRR p10", "SensPriceTable", "irr_p10"),
                   Series("IRR p50", "SensPriceTable", "irr_p50"),
                   Series("IRR p90", "SensPriceTable", "irr_p90")),
                  x_title="price", y_title="IRR (annual)", percent_axis=True,
                  anchor=band, size=size, offset=(2 * (size[0] + 12), 0)),
    ]
    book.write_sheet(spec)
    book.set_status(None)
    return spec
