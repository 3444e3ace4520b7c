"""A1 cell addresses, in one convention for the whole package.

Rows and columns are **0-based integers, row first**: ``(0, 0)`` is ``A1``, ``(12, 4)`` is
``E13``. Addresses are text, ``$`` allowed on input and never written. The sheet XML's own
numbers (``<row r="13">``) are 1-based: convert at the XML, with ``+ 1`` / ``- 1`` written
where it happens.

Examples
--------
>>> from npl_xl.workbook.a1 import cell_address, parse_address, parse_range, sheet_address
>>> cell_address(12, 4)
'E13'
>>> parse_address("$AA$10")
(9, 26)
>>> parse_range("B3:A1")
(0, 0, 2, 1)
>>> sheet_address("Loan Tape", 2, 1)
"'Loan Tape'!B3"
"""

from __future__ import annotations

import re

__all__ = ["MAX_ROWS", "MAX_COLS", "column_letter", "column_index", "cell_address",
           "parse_address", "parse_range", "quote_sheet", "sheet_address",
           "parse_sheet_address"]

#: Excel's sheet size: rows and columns.
MAX_ROWS = 1_048_576
MAX_COLS = 16_384

_ADDRESS = re.compile(r"\$?([A-Za-z]{1,3})\$?(\d+)")
_SHEET_ADDRESS = re.compile(r"^(?:(?P<sheet>'(?:[^']|'')+'|[^!]+)!)?(?P<cell>\$?[A-Za-z]{1,3}\$?\d+)$")


def column_letter(col: int) -> str:
    """0-based column index -> letters (0 -> A, 26 -> AA)."""
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def column_index(letters: str) -> int:
    """Letters -> 0-based column index (A -> 0, AA -> 26)."""
    col = 0
    for ch in letters.upper():
        col = col * 26 + ord(ch) - 64
    return col - 1


def cell_address(row: int, col: int) -> str:
    """0-based (row, col) -> ``A1``."""
    return f"{column_letter(col)}{row + 1}"


def parse_address(address: str) -> tuple[int, int]:
    """``A1`` (``$`` allowed) -> 0-based (row, col); ValueError for anything else."""
    m = _ADDRESS.fullmatch(address.strip())
    if not m:
        raise ValueError(f"not a cell address: {address!r}")
    return int(m.group(2)) - 1, column_index(m.group(1))


def parse_range(text: str) -> tuple[int, int, int, int]:
    """``A1:B3`` or ``A1`` -> 0-based (row0, col0, row1, col1), corners in either order."""
    first, _, last = text.partition(":")
    r0, c0 = parse_address(first)
    r1, c1 = parse_address(last) if last else (r0, c0)
    return min(r0, r1), min(c0, c1), max(r0, r1), max(c0, c1)


def quote_sheet(sheet: str) -> str:
    """A sheet name as it must appear before ``!`` (quoted unless a plain identifier that
    does not look like a cell address)."""
    if re.fullmatch(r"[^\W\d]\w*", sheet) and not re.fullmatch(r"[A-Za-z]{1,3}\d+", sheet):
        return sheet
    return "'" + sheet.replace("'", "''") + "'"


def sheet_address(sheet: str, row: int, col: int) -> str:
    """``Sheet!A1`` of 0-based (row, col), the sheet quoted when needed; no sheet: ``A1``."""
    return f"{quote_sheet(sheet)}!{cell_address(row, col)}" if sheet else cell_address(row, col)


def parse_sheet_address(text: str) -> tuple[str, int, int]:
    """``'Loan Tape'!$B$3`` -> ("Loan Tape", 2, 1): the sheet ("" when absent) and 0-based
    (row, col); ValueError for anything else."""
    m = _SHEET_ADDRESS.match(text.strip())
    if not m:
        raise ValueError(f"not a cell address such as Tape!A1: {text!r}")
    sheet = m["sheet"] or ""
    if sheet.startswith("'"):
        sheet = sheet[1:-1].replace("''", "'")
    row, col = parse_address(m["cell"])
    return sheet.strip(), row, col
