"""The third book adapter: the macros' :class:`~npl_xl.workbook.book.Book` over the open Calc
document.

It lives in the worker (the project's interpreter) and reaches the document through the
component inside soffice: each operation is one request on the pipe (``request(op,
*args)``), answered with UNO calls there (``CalcDocument.op_<op>`` in the extension's
``npl_calc.py``). A :class:`~npl_xl.workbook.results.SheetSpec` is sent as a *plan* of plain
values (:func:`sheet_plan`): cells, number formats, tables (Calc database ranges), links
and charts with their 0-based cell positions, computed here by the spec's own
:meth:`~npl_xl.workbook.results.SheetSpec.layout` and ``locate``, so the Calc sheet has the
layout of the one FileBook and XlwingsBook write.

xlsx tables arrive in Calc as database ranges of the same name, which is what
:meth:`read_table` reads.
"""

from __future__ import annotations

import math
import time

from npl_xl.errors import InputTypeError
from npl_xl.workbook.book import RangeValues
from npl_xl.workbook.results import SheetSpec

__all__ = ["CalcBook", "sheet_plan", "plain_value"]


def plain_value(value):
    """A DataFrame cell as a plain value for the pipe (NaN -> None, numpy -> Python)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (AttributeError, ValueError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def sheet_plan(spec: SheetSpec) -> dict:
    """The spec as plain values, positions 0-based (row, column) as ``SheetSpec.layout``."""
    layout = spec.layout()
    blocks = []
    for block in spec.blocks:
        row, col = layout[block.name]
        columns = [str(c) for c in block.frame.columns]
        blocks.append({
            "name": block.name, "title": block.title, "row": row, "col": col,
            "columns": columns,
            "rows": [[plain_value(v) for v in r] for r in block.frame.itertuples(index=False)],
            "formats": {j: block.format_of(c) for j, c in enumerate(columns) if block.format_of(c)},
            "row_formats": list(block.row_formats) if block.row_formats else None,
            "table": bool(block.table),
            "links": [(i, columns.index(c), _calc_target(t), str(block.frame.iloc[i][c]))
                      for (i, c), t in block.links.items()],
        })
    charts = []
    for chart in spec.charts:
        charts.append({
            "title": chart.title, "kind": chart.kind, "anchor": chart.anchor,
            "offset": list(chart.offset), "size": list(chart.size),
            "x_title": chart.x_title, "y_title": chart.y_title,
            "categories": spec.locate(chart.block, chart.categories),
            "series": [(s.name, *spec.locate(s.block, s.values)) for s in chart.series],
        })
    return {"name": spec.name, "title": spec.title, "notes": list(spec.notes),
            "blocks": blocks, "charts": charts}


def _calc_target(target: str) -> str:
    """Excel's internal link ``'Tape'!C5`` in Calc's spelling ``Tape.C5``."""
    sheet, _, cell = target.rpartition("!")
    return f"{sheet}.{cell}" if sheet else cell


class CalcBook:
    """The open Calc document, as the macros see a book (see :mod:`npl_xl.workbook.book`).

    Parameters
    ----------
    request : callable
        ``request(op, *args)`` asks the component to do ``op`` on the document and returns
        its answer (plain values).
    """

    PROGRESS_EVERY = 0.25  #: seconds between status-bar updates of :meth:`progress`

    def __init__(self, request):
        self._request = request
        self._tables: dict[str, dict | None] = {}
        self._last_progress = 0.0
        self.written: list[str] = []
        self.path = None

    def sheet_names(self) -> list[str]:
        return list(self._request("sheet_names"))

    def _table(self, name: str) -> dict | None:
        key = name.lower()
        if key not in self._tables:
            self._tables[key] = self._request("table", name)
        return self._tables[key]

    def has_table(self, name: str) -> bool:
        return self._table(name) is not None

    def read_table(self, name: str) -> RangeValues:
        found = self._table(name)
        if found is None:
            raise InputTypeError(f"the workbook has no table (database range) named {name!r}",
                                 argument=name)
        return RangeValues(found["name"], found["sheet"], found["top_left"], found["rows"])

    def read_name(self, name: str) -> RangeValues | None:
        found = self._request("name", name)
        if found is None:
            return None
        if "error" in found:
            raise InputTypeError(f"the name {name} must refer to one range of cells, "
                                 f"it refers to {found['error']}", argument=name)
        return RangeValues(found["name"], found["sheet"], found["top_left"], found["rows"])

    def write_sheet(self, spec: SheetSpec) -> None:
        self._request("write_sheet", sheet_plan(spec))
        self._tables.clear()
        self.written.append(spec.name)

    def mark_cells(self, sheet: str, cells: list[str]) -> None:
        self._request("mark", sheet, list(cells))

    def set_status(self, text: str | None) -> None:
        self._request("status", text)

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last_progress < self.PROGRESS_EVERY:
            return
        self._last_progress = now
        self._request("progress", int(done), int(total))
