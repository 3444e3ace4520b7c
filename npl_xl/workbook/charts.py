"""Chart specifications, drawn twice: as native Excel charts and as a PNG.

A :class:`ChartSpec` names the data it plots by *block* and *column* of a
:class:`~npl_xl.workbook.results.SheetSpec`, never by cell address, so the same spec becomes

- a native Excel chart whose series point at the written cells
  (:func:`add_native_chart`, through xlsxwriter, used by :class:`~npl_xl.workbook.book.FileBook`;
  :class:`~npl_xl.workbook.book.XlwingsBook` resolves the same addresses through xlwings), and
- a matplotlib figure (:func:`render_png`, Agg backend, no display needed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Series", "ChartSpec", "add_native_chart", "render_png"]

#: Excel chart type for each spec kind (xlsxwriter names).
_NATIVE_TYPES = {"column": {"type": "column"}, "line": {"type": "line"},
                 "bar": {"type": "bar"}}  # bar: horizontal bars (tornado charts)


@dataclass(frozen=True)
class Series:
    """One plotted series: values from column ``values`` of block ``block``.

    ``errors`` optionally names a column of the same block holding a standard error,
    drawn as ±1 error bars.
    """

    name: str
    block: str
    values: str
    errors: str | None = None


@dataclass(frozen=True)
class ChartSpec:
    """A chart of one or more series against the categories of a block column.

    kind : "column" (clustered bars, histograms), "line", or "bar" (horizontal bars drawn
        over each other on one line per category: a tornado of low and high changes).
    anchor : top-left cell of the chart on the sheet (e.g. "J2").
    size : (width, height) in pixels.
    percent_axis : format the value axis as percentages (else ``value_format`` if given).
    """

    title: str
    kind: str
    block: str
    categories: str
    series: tuple[Series, ...]
    x_title: str = ""
    y_title: str = ""
    anchor: str = "A1"
    size: tuple[int, int] = (640, 300)
    offset: tuple[int, int] = (0, 0)  #: (x, y) pixels from the anchor cell's top-left
    percent_axis: bool = False
    value_format: str | None = None  #: Excel number format of the value axis, e.g. "#,##0"

    def __post_init__(self):
        if self.kind not in _NATIVE_TYPES:
            raise ValueError(f"chart kind must be one of {sorted(_NATIVE_TYPES)}, got {self.kind!r}")


def add_native_chart(workbook, worksheet, spec: ChartSpec, locate) -> None:
    """Insert ``spec`` as a native chart into an xlsxwriter ``worksheet``.

    ``locate(block, column)`` returns ``(first_row, col, last_row)`` (0-based) of a block
    column's data cells on this sheet.
    """
    chart = workbook.add_chart(dict(_NATIVE_TYPES[spec.kind]))
    sheet = worksheet.get_name()
    cat_first, cat_col, cat_last = locate(spec.block, spec.categories)
    for series in spec.series:
        first, col, last = locate(series.block, series.values)
        options = {
            "name": series.name,
            "categories": [sheet, cat_first, cat_col, cat_last, cat_col],
            "values": [sheet, first, col, last, col],
        }
        if spec.kind == "line":
            options["marker"] = {"type": "none"}
        if spec.kind == "bar":
            options["overlap"] = 100
        if series.errors:
            e_first, e_col, e_last = locate(series.block, series.errors)
            ref = f"='{sheet}'!{_a1(e_first, e_col, True)}:{_a1(e_last, e_col, True)}"
            options["y_error_bars"] = {"type": "custom", "plus_values": ref, "minus_values": ref}
        chart.add_series(options)
    chart.set_title({"name": spec.title, "name_font": {"size": 12}})
    chart.set_x_axis({"name": spec.x_title, "num_font": {"rotation": -45} if spec.kind == "column" else {}})
    y_axis = {"name": spec.y_title, "major_gridlines": {"visible": True}}
    if spec.kind == "bar":  # categories down the left (first on top), labels clear of bars
        chart.set_x_axis({"name": spec.x_title, "label_position": "low", "reverse": True})
    if spec.percent_axis:
        y_axis["num_format"] = "0%"
    elif spec.value_format:
        y_axis["num_format"] = spec.value_format
    chart.set_y_axis(y_axis)
    chart.set_legend({"position": "bottom"} if len(spec.series) > 1 else {"none": True})
    chart.set_size({"width": spec.size[0], "height": spec.size[1]})
    worksheet.insert_chart(spec.anchor, chart, {"x_offset": spec.offset[0], "y_offset": spec.offset[1]})


def _a1(row: int, col: int, absolute: bool = False) -> str:
    from xlsxwriter.utility import xl_rowcol_to_cell

    return xl_rowcol_to_cell(row, col, row_abs=absolute, col_abs=absolute)


_CJK = re.compile(r"[\u2e80-\u9fff\uff00-\uffef\u3000-\u303f]+")
#: Fonts with CJK glyphs, by family name and by file-name fragment.
_CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
                 "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC")
_CJK_FILES = ("notosanscjk", "sourcehansans", "wqy", "msyh", "simhei", "pingfang")


def _cjk_font() -> str | None:
    """A font family with CJK glyphs known to matplotlib (registering a system font file
    if needed), or None."""
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in _CJK_FAMILIES:
        if family in known:
            return family
    for path in font_manager.findSystemFonts():
        if any(fragment in path.lower().replace("-", "").replace("_", "") for fragment in _CJK_FILES):
            try:
                font_manager.fontManager.addfont(path)
                return font_manager.FontProperties(fname=path).get_name()
            except (OSError, RuntimeError, ValueError):
                continue
    return None


def _latin(text: str) -> str:
    """``text`` without CJK characters (when no CJK font is available)."""
    return " ".join(_CJK.sub(" ", text).split())


def render_png(specs, frames: dict, path, title: str = "") -> None:
    """Draw every chart of ``specs`` into one PNG at ``path`` (one panel per chart).

    ``frames`` maps block names to the DataFrames the charts read. Chinese text is drawn
    with a CJK system font when one is installed, and left out otherwise.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    family = _cjk_font()
    label = (lambda text: text) if family else _latin
    style = {"font.sans-serif": [family, "DejaVu Sans"]} if family else {}
    with matplotlib.rc_context(style):
        _draw(list(specs), frames, path, title, label)


def _draw(specs, frames, path, title, label) -> None:
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import PercentFormatter

    fig, axes = plt.subplots(len(specs), 1, figsize=(9, 3.4 * len(specs)), squeeze=False)
    for ax, spec in zip(axes[:, 0], specs):
        frame = frames[spec.block]
        labels = [(f"{v:,.0f}" if abs(v) >= 1e5 else f"{v:g}") if isinstance(v, float) else str(v)
                  for v in frame[spec.categories]]
        x = np.arange(len(labels))
        width = 0.8 / max(1, len(spec.series))
        for k, series in enumerate(spec.series):
            y = frames[series.block][series.values].to_numpy(dtype=float)
            err = (frames[series.block][series.errors].to_numpy(dtype=float)
                   if series.errors else None)
            if spec.kind == "bar":
                ax.barh(x, y, 0.6, label=label(series.name))
            elif spec.kind == "column":
                ax.bar(x + (k - (len(spec.series) - 1) / 2) * width, y, width, yerr=err,
                       label=label(series.name), capsize=2)
            else:
                ax.errorbar(x, y, yerr=err, label=label(series.name), capsize=2)
        step = max(1, len(labels) // 20)
        if spec.kind == "bar":
            ax.set_yticks(x, labels, fontsize=8)
            ax.invert_yaxis()  # the first category (the largest swing) on top, as in Excel
            ax.axvline(0.0, color="black", linewidth=0.8)
            ax.set_title(label(spec.title), fontsize=11)
            ax.set_xlabel(spec.y_title)
            if spec.percent_axis:
                ax.xaxis.set_major_formatter(PercentFormatter(1.0))
            ax.grid(axis="x", alpha=0.3)
            if len(spec.series) > 1:
                ax.legend(fontsize=8)
            continue
        ax.set_xticks(x[::step], labels[::step], rotation=45 if spec.kind == "column" else 0,
                      ha="right" if spec.kind == "column" else "center", fontsize=8)
        ax.set_title(label(spec.title), fontsize=11)
        ax.set_xlabel(spec.x_title)
        ax.set_ylabel(spec.y_title)
        if spec.percent_axis:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(axis="y", alpha=0.3)
        if len(spec.series) > 1:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(label(title), fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
