"""What the macros write: sheets made of titled blocks (Excel tables) and charts.

A :class:`SheetSpec` is a front-end-neutral description of an output sheet: blocks of
values, each a DataFrame written as an Excel table (one header row) under a one-line
title, stacked down column A, and :class:`~npl_xl.workbook.charts.ChartSpec` charts placed to the
right of the blocks. :class:`~npl_xl.workbook.book.FileBook` writes it into a copy of the workbook
file, :class:`~npl_xl.workbook.book.XlwingsBook` into live Excel.

:func:`results_sheet` builds the Results sheet of a simulation: the tranche table, the
pool's expected collection curve with standard errors, each tranche's loss and IRR
distributions (histogram and quantiles), and three charts of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from xlsxwriter.utility import xl_rowcol_to_cell

from npl_xl.workbook.charts import ChartSpec, Series

__all__ = ["Block", "SheetSpec", "results_sheet", "note_sheet", "loss_histogram",
           "irr_histogram", "quantile_table", "FMT_MONEY", "FMT_RATE", "FMT_MONTHS"]

FMT_MONEY = "#,##0"
FMT_RATE = "0.00%"
FMT_MONTHS = "0.0"
FMT_YEARS = "0.00"
FMT_COUNT = "#,##0"

#: Number format of a result column, by column name (columns not listed: General).
COLUMN_FORMATS = {
    "EL": FMT_RATE, "PD": FMT_RATE, "WAL": FMT_YEARS, "mean_irr": FMT_RATE,
    "el_stderr": FMT_RATE, "pd_stderr": FMT_RATE, "wal_stderr": FMT_YEARS,
    "irr_stderr": FMT_RATE, "balance": FMT_MONEY, "issue_price": FMT_MONEY,
    "coupon": FMT_RATE, "expected_pv": FMT_MONEY,
    "yield_at_coupon_basis": FMT_RATE, "yield_stderr": FMT_RATE,
    "period": "0", "month": FMT_MONTHS, "expected_collections": FMT_MONEY, "stderr": FMT_MONEY,
    "cumulative_share_of_claims": FMT_RATE, "cumulative_share_of_collections": FMT_RATE,
    "loss_from": "0%", "loss_to": "0%", "irr_from": FMT_RATE, "irr_to": FMT_RATE,
    "count": FMT_COUNT, "sum": FMT_MONEY, "share": FMT_RATE,
}


@dataclass
class Block:
    """A titled table of values on an output sheet.

    name : the block's key (charts refer to it); also the Excel table's name when
        ``table`` is true, so it must be a valid, workbook-unique table name.
    frame : the values; its column labels become the table's header row.
    formats : number format per column (default from :data:`COLUMN_FORMATS`).
    row_formats : number format per row, overriding the column's (key/value blocks).
    """

    name: str
    title: str
    frame: pd.DataFrame
    formats: dict = field(default_factory=dict)
    row_formats: list | None = None
    table: bool = True
    links: dict = field(default_factory=dict)  #: (row, column) -> internal link target "Tape!C5"
    #: columns shaded together by one red-yellow-green colour scale (a heat map: low red)
    color_scale: tuple = ()

    def format_of(self, column: str) -> str | None:
        return self.formats.get(column, COLUMN_FORMATS.get(str(column)))


@dataclass
class SheetSpec:
    """An output sheet: blocks stacked down from ``A1`` under a title, charts to the right."""

    name: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    charts: list[ChartSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    chart_band_rows: int = 0  #: rows kept free for charts between the notes and the blocks

    @property
    def chart_band_row(self) -> int:
        """0-based first row of the chart band (after the title, notes and a blank row)."""
        return 1 + len(self.notes) + 1

    def layout(self) -> dict[str, tuple[int, int]]:
        """0-based (row, col) of each block's header row; the title sits one row above.

        Row 0 holds the sheet title, then one row per note, a blank row and the chart band;
        each block takes a title row, a header row, its data rows and a blank row.
        """
        row = self.chart_band_row + self.chart_band_rows
        anchors = {}
        for block in self.blocks:
            anchors[block.name] = (row + 1, 0)
            row += 2 + len(block.frame) + 1
        return anchors

    def chart_column(self) -> int:
        """0-based column where charts start: two columns right of the widest block."""
        return max((len(b.frame.columns) for b in self.blocks), default=1) + 1

    def locate(self, block: str, column: str) -> tuple[int, int, int]:
        """(first data row, column, last data row), 0-based, of a block column's cells."""
        header_row, first_col = self.layout()[block]
        frame = self.block(block).frame
        col = first_col + list(map(str, frame.columns)).index(column)
        return header_row + 1, col, header_row + len(frame)

    def block(self, name: str) -> Block:
        return next(b for b in self.blocks if b.name == name)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {b.name: b.frame for b in self.blocks}


def note_sheet(name: str, title: str, note: str) -> SheetSpec:
    """An output sheet holding only a title and a note (what Clear Results leaves)."""
    return SheetSpec(name, title, notes=[note])


# --- distributions --------------------------------------------------------------------

#: NPL_TRANCHE_EL's columns, first in the Results tranche table.
CONTRACT_TRANCHE_COLUMNS = ("name", "EL", "PD", "WAL", "mean_irr", "rating", "el_stderr")

_LOSS_EDGES = np.linspace(0.0, 1.0, 21)
_QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.99, 0.999)


def loss_histogram(losses: dict[str, np.ndarray]) -> pd.DataFrame:
    """Share of paths by loss bucket for each tranche: a bucket for exactly no loss, then
    (0, 5%], (5%, 10%], ..., (95%, 100%]. Losses are decimals of the original balance."""
    rows = {"bucket": ["0"] + [f"{lo:.0%}–{hi:.0%}" for lo, hi in zip(_LOSS_EDGES[:-1], _LOSS_EDGES[1:])],
            "loss_from": np.r_[0.0, _LOSS_EDGES[:-1]], "loss_to": np.r_[0.0, _LOSS_EDGES[1:]]}
    for name, loss in losses.items():
        loss = np.asarray(loss, dtype=float)
        zero = loss <= 1e-12
        positive = loss[~zero]
        # (lo, hi] buckets: searchsorted with side="left" puts hi itself in the bucket ending at hi
        index = np.clip(np.searchsorted(_LOSS_EDGES, positive, side="left") - 1, 0, 19)
        counts = np.r_[zero.sum(), np.bincount(index, minlength=20)]
        rows[name] = counts / max(1, loss.size)
    return pd.DataFrame(rows)


def irr_histogram(irrs: dict[str, np.ndarray], n_bins: int = 20) -> pd.DataFrame:
    """Share of paths by IRR bucket for each tranche, over a common range: n_bins equal
    buckets from the lowest 0.5% quantile to the highest 99.5% quantile of the tranches'
    defined IRRs (paths outside go to the end buckets). Paths whose IRR is undefined (no
    cash back at all) are left out, so a column sums to that tranche's share of defined
    IRRs. IRRs are annual decimals."""
    finite = {k: np.asarray(v, dtype=float)[np.isfinite(v)] for k, v in irrs.items()}
    pooled = [v for v in finite.values() if v.size]
    if not pooled:
        lo, hi = 0.0, 0.0
    else:
        lo = min(np.quantile(v, 0.005) for v in pooled)
        hi = max(np.quantile(v, 0.995) for v in pooled)
    if hi - lo < 1e-6:
        lo, hi = lo - 0.005, hi + 0.005
    edges = np.linspace(lo, hi, n_bins + 1)
    rows = {"bucket": [f"{(a + b) / 2:.1%}" for a, b in zip(edges[:-1], edges[1:])],
            "irr_from": edges[:-1], "irr_to": edges[1:]}
    for name, values in irrs.items():
        values = np.asarray(values, dtype=float)
        defined = values[np.isfinite(values)]
        index = np.clip(np.searchsorted(edges, defined, side="right") - 1, 0, n_bins - 1)
        rows[name] = np.bincount(index, minlength=n_bins) / max(1, values.size)
    return pd.DataFrame(rows)


def quantile_table(samples: dict[str, np.ndarray]) -> pd.DataFrame:
    """Mean, quantiles and maximum of each tranche's sample (undefined values ignored),
    plus the share of paths where the value is undefined."""
    stats = ["mean"] + [f"p{q * 100:g}" for q in _QUANTILES] + ["max", "share_undefined"]
    rows = {"statistic": stats}
    for name, values in samples.items():
        values = np.asarray(values, dtype=float)
        finite = values[np.isfinite(values)]
        if finite.size:
            col = [finite.mean(), *np.quantile(finite, _QUANTILES), finite.max()]
        else:
            col = [np.nan] * (len(stats) - 1)
        rows[name] = col + [1.0 - finite.size / max(1, values.size)]
    return pd.DataFrame(rows)


# --- the Results sheet ----------------------------------------------------------------

def _unique_names(names) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in map(str, names):
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append(name if k == 0 else f"{name}_{k + 1}")
    return out


def results_sheet(result, run_info: list[tuple[str, object, str | None]],
                  sheet_name: str = "Results") -> SheetSpec:
    """The Results sheet of a simulation.

    result : the engine's DealResult (``tranche_table``, ``collection_curve``,
        ``tranche_loss`` and ``tranche_irr`` per tranche name).
    run_info : (key, value, number format) rows describing the run.
    """
    tranches = result.tranche_table
    first = [c for c in CONTRACT_TRANCHE_COLUMNS if c in tranches.columns]
    tranches = tranches[first + [c for c in tranches.columns if c not in first]].copy()
    # a subordinated tranche is not rated: its series and columns say so
    labels = [f"{n} (NR)" if r == "NR" else n for n, r in zip(tranches["name"], tranches["rating"])]
    names = _unique_names(labels)
    losses = dict(zip(names, (result.tranche_loss[n] for n in tranches["name"])))
    irrs = dict(zip(names, (result.tranche_irr[n] for n in tranches["name"])))
    curve = result.collection_curve.copy()

    info = pd.DataFrame({"key": [r[0] for r in run_info], "value": [r[1] for r in run_info]})
    loss_hist = loss_histogram(losses)
    irr_hist = irr_histogram(irrs)
    share_formats = {n: FMT_RATE for n in names}
    blocks = [
        Block("ResultsRun", "Run 运行信息", info, row_formats=[r[2] for r in run_info]),
        Block("ResultsTranches", "Tranches 各档证券: expected loss, default probability, "
              "WAL (years), mean IRR (effective annual 年化实际收益率), rating (NR = not rated: "
              "subordinated 次级不评级), Monte Carlo standard error; yield_at_coupon_basis = "
              "the IRR restated at the coupon's compounding (per payment period)", tranches),
        Block("ResultsCollections", "Expected pool collections by payment date 资产池预期回收 "
              "(standard error = Monte Carlo error of the mean)", curve),
        Block("ResultsLossDist", "Loss distribution 损失分布: share of paths by loss "
              "(decimal of original balance)", loss_hist, formats=share_formats),
        Block("ResultsLossQuantiles", "Loss quantiles 损失分位数", quantile_table(losses),
              formats=share_formats),
        Block("ResultsIrrDist", "IRR (effective annual) distribution 年化收益率分布: share of "
              "paths by IRR bucket",
              irr_hist, formats=share_formats),
        Block("ResultsIrrQuantiles", "IRR (effective annual) quantiles 年化收益率分位数",
              quantile_table(irrs),
              formats=share_formats),
    ]
    spec = SheetSpec(sheet_name, "npl-xl simulation results 模拟结果", blocks,
                     notes=["Written by Run Simulation; Clear Results empties this sheet. "
                            "由“运行模拟”生成，“清除结果”清空本表。"])
    # the three charts side by side in a band above the tables
    spec.chart_band_rows = 18
    band = xl_rowcol_to_cell(spec.chart_band_row, 0)
    size = (520, 310)
    placed = {"anchor": band, "size": size}
    has_stderr = "stderr" in curve.columns
    spec.charts = [
        ChartSpec("Expected collections per payment date (±1 s.e.) 预期回收", "column",
                  "ResultsCollections", "month",
                  (Series("expected collections", "ResultsCollections", "expected_collections",
                          "stderr" if has_stderr else None),),
                  x_title="month", y_title="collections", value_format=FMT_MONEY, **placed),
        ChartSpec("Loss distribution by tranche 各档损失分布", "column", "ResultsLossDist", "bucket",
                  tuple(Series(n, "ResultsLossDist", n) for n in names),
                  x_title="loss (share of balance)", y_title="share of paths",
                  percent_axis=True, offset=(size[0] + 12, 0), **placed),
        ChartSpec("IRR (effective annual) by tranche 各档年化收益率分布", "column",
                  "ResultsIrrDist", "bucket",
                  tuple(Series(n, "ResultsIrrDist", n) for n in names),
                  x_title="IRR (effective annual)", y_title="share of paths",
                  percent_axis=True, offset=(2 * (size[0] + 12), 0), **placed),
    ]
    return spec
