"""Excel-shaped values into core values, one rule per argument kind.

Excel-shaped means what both front ends hand over: ``None`` (or ``""``) for a blank cell,
``float`` for numbers (Excel has no integers), ``str``, ``bool``, an error literal such as
``"#N/A"`` or an :class:`~npl_xl.errors.XlError`, and for a range a list of rows (a single
cell may arrive either as a scalar or as ``[[x]]``).

Kinds
-----
number    one finite number
integer   one whole number (floats such as 10000.0 are fine)
bool      TRUE/FALSE, 1/0, or the text TRUE/FALSE/是/否
text      one piece of text (codes, method names)
codes     text with comma-separated codes, or a range of such texts -> list of str
vector    a single row or column of numbers -> 1-D float array
matrix    a rectangular range of numbers -> 2-D float array
table     a range with a header row, passed on as a list of rows (None for blanks)
any       passed on unchanged
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from npl_xl.errors import DomainError, InputTypeError, XlError, is_error_literal
from npl_xl.inputs.cells import describe as _describe, is_blank, to_bool
from npl_xl.inputs.codes import split_codes

KINDS = ("number", "integer", "bool", "text", "codes", "vector", "matrix", "table", "any")

def first_error(value: Any) -> XlError | None:
    """The first Excel error in a scalar or range, or None."""
    if isinstance(value, XlError):
        return value
    if is_error_literal(value):
        return XlError(value, "an argument is an error value")
    if isinstance(value, (list, tuple)):
        for item in value:
            found = first_error(item)
            if found is not None:
                return found
    return None


def rows_of(value: Any) -> list[list[Any]]:
    """Any Excel-shaped value as a list of rows."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return [[value]]
    if len(value) == 0:
        return []
    if not isinstance(value[0], (list, tuple)):
        return [list(value)]  # a bare 1-D list: one row
    return [list(row) for row in value]


def _single(value: Any, name: str) -> Any:
    """Unwrap a 1x1 range; refuse a larger one."""
    if isinstance(value, (list, tuple, np.ndarray)):
        rows = rows_of(value)
        if len(rows) == 1 and len(rows[0]) == 1:
            return rows[0][0]
        width = max((len(r) for r in rows), default=0)
        raise InputTypeError(f"must be a single cell, got a {len(rows)}x{width} range",
                             argument=name)
    return value


def to_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputTypeError(f"{_describe(value)} where a number is required", argument=name)
    number = float(value)
    if not math.isfinite(number):
        raise DomainError("is not a finite number", argument=name)
    return number


def _numbers(rows: list[list[Any]], name: str, skip_blanks: bool) -> list[list[float | None]]:
    out = []
    for i, row in enumerate(rows, start=1):
        converted = []
        for j, cell in enumerate(row, start=1):
            if is_blank(cell):
                if not skip_blanks:
                    raise InputTypeError(f"row {i}, column {j} of the range is blank",
                                         argument=name)
                converted.append(None)
                continue
            try:
                converted.append(to_number(cell, name))
            except InputTypeError:
                raise InputTypeError(
                    f"row {i}, column {j} of the range holds {_describe(cell)}, not a number",
                    argument=name) from None
        out.append(converted)
    return out


def convert(value: Any, spec) -> Any:
    """Convert one raw argument according to its :class:`~npl_xl.sheet.registry.Arg` spec."""
    name, kind = spec.name, spec.kind
    if kind == "any":
        return spec.default if is_blank(value) and not spec.required else value
    if kind in ("number", "integer", "bool", "text"):
        value = _single(value, name)
    if is_blank(value) or (isinstance(value, (list, tuple)) and _all_blank(value)):
        if spec.required:
            raise InputTypeError("is required but the cell is blank", argument=name)
        return spec.default
    if kind == "number":
        return to_number(value, name)
    if kind == "integer":
        number = to_number(value, name)
        if number != int(number):
            raise DomainError(f"must be a whole number, got {number:g}", argument=name)
        return int(number)
    if kind == "bool":
        return to_bool(value, name)
    if kind == "text":
        if not isinstance(value, str):
            raise InputTypeError(f"{_describe(value)} where text is required", argument=name)
        return value.strip()
    if kind == "codes":
        codes = []
        for row in rows_of(value):
            for cell in row:
                if is_blank(cell):
                    continue
                if not isinstance(cell, str):
                    raise InputTypeError(f"{_describe(cell)} where a code is required",
                                         argument=name)
                codes.extend(split_codes(cell))
        return codes
    if kind == "vector":
        rows = rows_of(value)
        if len(rows) > 1 and max(len(r) for r in rows) > 1:
            raise InputTypeError(
                f"must be a single row or column, got a {len(rows)}x{len(rows[0])} range",
                argument=name)
        flat = [c for row in _numbers(rows, name, spec.blanks == "skip") for c in row]
        return np.array([c for c in flat if c is not None], dtype=float)
    if kind == "matrix":
        rows = _numbers(rows_of(value), name, skip_blanks=False)
        if len({len(r) for r in rows}) > 1:
            raise InputTypeError("rows of the range differ in length", argument=name)
        return np.array(rows, dtype=float)
    if kind == "table":
        return [[None if is_blank(c) else c for c in row] for row in rows_of(value)]
    raise ValueError(f"unknown kind {kind!r}")


def _all_blank(value) -> bool:
    return all(is_blank(c) for row in rows_of(value) for c in row)


def canonical(value: Any) -> Any:
    """A picklable, order-preserving form of raw arguments, for cache keys."""
    if isinstance(value, np.ndarray):
        return ("nd", value.shape, canonical(value.tolist()))
    if isinstance(value, (list, tuple)):
        return tuple(canonical(v) for v in value)
    if isinstance(value, XlError):
        return ("err", value.code)
    if isinstance(value, (np.floating, np.integer)):
        return float(value)
    if isinstance(value, (str, float, int, bool)) or value is None:
        return value
    return ("repr", repr(value))
