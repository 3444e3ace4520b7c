"""The Collections table: cash collected per loan after closing, read and checked.

The workbook's ``Collections`` table (name ``CollectionsTable``) has one row per receipt:

============  =========  ==================================================================
column        中文        meaning
============  =========  ==================================================================
loan_id       贷款编号    the loan (must be a loan of the tape)
month         回收月份    months after closing at which the cash arrived (>= 0)
date          回收日期    or the date (Excel serial, ISO text, 2024年3月5日, 2024/3/5), with the
                         Settings key closing_date; months = days x 12 / 365.25
amount        回收金额    cash collected, currency (>= 0)
resolved      已结清      TRUE once the loan's workout is finished (default FALSE); a loan is
                         resolved when any of its rows says so
============  =========  ==================================================================

Every problem is reported at once, each naming the data row, the sheet cell and the column.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from npl_xl.errors import InputTypeError, TableError
from npl_xl.inputs.codes import normalise
from npl_xl.inputs.headers import aliases, fields_of
from npl_xl.inputs.cells import is_blank, to_bool
from npl_xl.workbook.a1 import parse_sheet_address, sheet_address

__all__ = ["COLLECTION_COLUMNS", "read_collections", "excel_serial", "months_between",
           "collection_column"]

#: canonical column -> accepted headers (English, Chinese, servicer-report variants), from
#: the project's alias table (npl_xl/inputs/data/header_aliases.csv, docs/TAPES.md)
COLLECTION_COLUMNS: dict[str, tuple[str, ...]] = {
    field: tuple(a.alias for a in aliases("collections") if a.field == field)
    for field in fields_of("collections")}
_LOOKUP = {normalise(alias): column for column, aliases in COLLECTION_COLUMNS.items()
           for alias in aliases}



def collection_column(header: Any) -> str | None:
    """Canonical column of a Collections header (case-, width- and space-insensitive)."""
    return _LOOKUP.get(normalise(header)) if isinstance(header, str) else None


def excel_serial(value: Any) -> float | None:
    """A date cell as an Excel serial day number (float), or None if it is not a date:
    the tape's date rules (:func:`npl_xl.inputs.tape.parse_date`: an Excel serial, a
    date, 2024-03-05, 2024/3/5, 2024年3月5日, 20240305)."""
    from npl_xl.inputs.tape import parse_date

    if isinstance(value, bool) or value is None:
        return None
    try:
        day = parse_date(value)
    except ValueError:
        return None
    return (day - dt.datetime(1899, 12, 30)).total_seconds() / 86400.0


def months_between(closing_serial: float, serial: float) -> float:
    """Months from the closing date to a date, both Excel serials: days x 12 / 365.25."""
    return (serial - closing_serial) * 12.0 / 365.25


@dataclass(frozen=True)
class _Cell:
    row: int       # 1-based data row
    address: str   # Sheet!A1


def read_collections(rows: list[list[Any]] | None, origin: str = "Collections!A1",
                     closing_date: float | None = None,
                     loan_ids: list[str] | None = None) -> pd.DataFrame:
    """Read the Collections table (header row first) into canonical columns.

    Parameters
    ----------
    rows : list of rows, or None / empty for no collections
        The table with its header row, as the registry's ``table`` kind passes it.
    origin : str
        Sheet and top-left cell of the table, for the cell addresses in messages.
    closing_date : float, optional
        Excel serial of the closing date (Settings ``closing_date``); needed when the table
        gives dates instead of months.
    loan_ids : list of str, optional
        The tape's loan ids: a collection of an unknown loan is a problem.

    Returns
    -------
    DataFrame with columns loan_id (str), month (months after closing, float), amount
    (currency, float), resolved (bool), row (1-based data row, for messages).

    Raises
    ------
    TableError, InputTypeError
        Every problem at once, each naming its row, cell and column.
    """
    empty = pd.DataFrame({"loan_id": pd.Series([], dtype=object), "month": np.zeros(0),
                          "amount": np.zeros(0), "resolved": np.zeros(0, dtype=bool),
                          "row": np.zeros(0, dtype=np.int64)})
    if rows is None:
        return empty
    table = [list(r) if isinstance(r, (list, tuple)) else [r] for r in rows]
    table = [r for r in table if any(not is_blank(c) for c in r)]
    if not table:
        return empty
    sheet, row0, col0 = parse_sheet_address(origin)
    header = table[0]
    columns: dict[str, int] = {}
    ignored = []
    for j, title in enumerate(header):
        column = collection_column(title)
        if column is None:
            if not is_blank(title):
                ignored.append(str(title))
        elif column not in columns:
            columns[column] = j
    problems: list[str] = []
    if "loan_id" not in columns:
        problems.append("the header row has no loan_id (贷款编号) column")
    if "amount" not in columns:
        problems.append("the header row has no amount (回收金额) column")
    if "month" not in columns and "date" not in columns:
        problems.append("the header row has neither a month (回收月份) nor a date (回收日期) column")
    if "month" not in columns and "date" in columns and closing_date is None:
        problems.append("dates need the Settings key closing_date (the deal's closing date)")
    if problems:
        raise TableError(problems, argument="collections")
    known = set(loan_ids) if loan_ids is not None else None
    out_ids, out_months, out_amounts, out_resolved, out_rows = [], [], [], [], []
    for i, row in enumerate(table[1:], start=1):
        def cell(column):
            j = columns.get(column)
            return row[j] if j is not None and j < len(row) else None

        def where(column):
            return (f"row {i} ({sheet_address(sheet, row0 + i, col0 + columns[column])}), "
                    f"column {column}")

        loan = cell("loan_id")
        if is_blank(loan):
            problems.append(f"{where('loan_id')}: blank loan id")
            continue
        loan = str(int(loan)) if isinstance(loan, float) and loan.is_integer() else str(loan).strip()
        if known is not None and loan not in known:
            problems.append(f"{where('loan_id')}: loan {loan!r} is not in the tape")
        month = cell("month") if "month" in columns else None
        if not is_blank(month):
            if isinstance(month, bool) or not isinstance(month, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(float(month)) or float(month) < 0:
                problems.append(f"{where('month')}: {month!r} is not a number of months >= 0")
                continue
            month = float(month)
        elif "date" in columns and not is_blank(cell("date")):
            serial = excel_serial(cell("date"))
            if serial is None:
                problems.append(f"{where('date')}: {cell('date')!r} is not a date")
                continue
            if closing_date is None:
                continue
            month = months_between(closing_date, serial)
            if month < 0:
                problems.append(f"{where('date')}: the date is before the closing date")
                continue
        else:
            problems.append(f"{where('month' if 'month' in columns else 'date')}: blank")
            continue
        amount = cell("amount")
        if isinstance(amount, bool) or not isinstance(amount, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(amount)) or float(amount) < 0:
            problems.append(f"{where('amount')}: {amount!r} is not an amount >= 0")
            continue
        resolved = False
        if "resolved" in columns and not is_blank(cell("resolved")):
            try:
                resolved = to_bool(cell("resolved"), "resolved")
            except InputTypeError:
                problems.append(f"{where('resolved')}: {cell('resolved')!r} is not TRUE or FALSE")
                continue
        out_ids.append(loan)
        out_months.append(month)
        out_amounts.append(float(amount))
        out_resolved.append(resolved)
        out_rows.append(i)
    if problems:
        raise TableError(problems, argument="collections")
    return pd.DataFrame({"loan_id": pd.Series(out_ids, dtype=object),
                         "month": np.array(out_months, dtype=float),
                         "amount": np.array(out_amounts, dtype=float),
                         "resolved": np.array(out_resolved, dtype=bool),
                         "row": np.array(out_rows, dtype=np.int64)})
