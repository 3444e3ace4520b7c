"""Cell values as every layer reads them: blanks, booleans, and how a value is shown.

The rules a tape cell, a Settings value, an assumption cell and a worksheet argument share
(:mod:`npl_xl.sheet.convert` builds the argument kinds on them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from npl_xl.errors import InputTypeError

__all__ = ["is_blank", "to_bool", "describe", "rows_of_table", "TRUE_WORDS", "FALSE_WORDS"]

TRUE_WORDS = {"TRUE", "T", "YES", "Y", "是", "真"}
FALSE_WORDS = {"FALSE", "F", "NO", "N", "否", "假"}


def is_blank(value: Any) -> bool:
    """A blank cell: None, or text of spaces only."""
    return value is None or (isinstance(value, str) and value.strip() == "")


def describe(value: Any) -> str:
    """A cell value as a message shows it: TRUE, text 'abc', 1.5."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return f"text {value!r}"
    return repr(value)


def to_bool(value: Any, name: str) -> bool:
    """TRUE/FALSE, 1/0, or the text TRUE/FALSE/YES/NO/是/否/真/假 (any case) as a bool;
    anything else is an InputTypeError naming ``name``."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().upper() in TRUE_WORDS:
        return True
    if isinstance(value, str) and value.strip().upper() in FALSE_WORDS:
        return False
    raise InputTypeError(f"{describe(value)} where TRUE or FALSE is required", argument=name)


def rows_of_table(table: Any) -> list[list[Any]]:
    """A table given as a pandas DataFrame (columns = header, NaN = blank) or as a list of
    rows (header first) as a list of rows, header first, blanks as None."""
    if hasattr(table, "columns") and hasattr(table, "to_numpy"):
        body = table.astype(object).where(table.notna(), None).to_numpy().tolist()
        return [list(map(str, table.columns))] + body
    return [list(row) for row in table]
