"""The loan tape: the workbook's ``Tape`` table read and validated into canonical columns.

Headers may be English or Chinese (the contract's Workbook section), in any order, any
case and width; columns the contract does not name are kept as they are. Every problem in
the table is collected and reported at once, as one :class:`~npl_xl.errors.TableError`
whose lines name the data row, the sheet cell and the column::

    row 12 (Tape!E13), column claim: text 'abc' where a number is required

Canonical columns after reading (units: currency unless said):

============================  ==============================================================
loan_id (str)                 unique, required
borrower, city                text, kept as given
province                      canonical English name, required
claim                         > 0, required
collateral_type               residential/commercial/industrial/land/other/none, required
collateral_value              >= 0, required unless collateral_type is none (then 0)
lien_rank (int)               >= 1, default 1
prior_claims                  >= 0, default 0
stage                         canonical stage, default not_filed
defects                       canonical codes joined by ",", default ""
borrower_recovery,            >= 0, default 0
guarantor_recovery,
other_recovery
expected_recovery             override, 0..claim, NaN when blank
expected_months               override, months >= 0, NaN when blank
recovery_sd                   override, decimal in [0, 0.5), NaN when blank
============================  ==============================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from npl_xl.inputs.cells import is_blank, rows_of_table
from npl_xl.inputs.codes import COLLATERAL_TYPES, DEFECTS, PROVINCES, STAGES, normalise, split_codes
from npl_xl.checks import Interval, outside_message
from npl_xl.errors import InputTypeError, TableError
from npl_xl.workbook.a1 import parse_sheet_address, sheet_address

__all__ = ["read_tape", "TAPE_COLUMNS", "column_name", "parse_origin"]


@dataclass(frozen=True)
class _Column:
    name: str
    zh: str
    kind: str  # id, text, code, number, integer
    required: bool = False
    default: Any = None
    low: float = 0.0
    high: float = math.inf
    low_open: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def interval(self) -> Interval:
        """The values allowed (:mod:`npl_xl.checks`; an infinite high is no bound)."""
        return Interval(self.low, None if math.isinf(self.high) else self.high, self.low_open)


TAPE_COLUMNS = (
    _Column("loan_id", "贷款编号", "id", required=True, aliases=("借款合同号", "合同编号", "id")),
    _Column("borrower", "借款人", "text", aliases=("借款人名称",)),
    _Column("province", "省份", "province", required=True, aliases=("省",)),
    _Column("city", "城市", "text", aliases=("市",)),
    _Column("claim", "未偿本息", "number", required=True, low_open=True,
            aliases=("本息费合计", "未偿本息余额", "债权金额")),
    _Column("collateral_type", "抵押物类型", "collateral", required=True, aliases=("担保方式",)),
    _Column("collateral_value", "评估价值", "number", aliases=("评估值", "抵押物评估价值")),
    _Column("lien_rank", "抵押顺位", "integer", default=1, low=1),
    _Column("prior_claims", "优先债权", "number", default=0.0),
    _Column("stage", "处置阶段", "stage", default="not_filed", aliases=("诉讼阶段",)),
    _Column("defects", "法律瑕疵", "defects", default=""),
    _Column("borrower_recovery", "借款人回收", "number", default=0.0),
    _Column("guarantor_recovery", "保证人回收", "number", default=0.0),
    _Column("other_recovery", "其他回收", "number", default=0.0),
    _Column("expected_recovery", "预期回收", "number", default=math.nan),
    _Column("expected_months", "预期回收时间", "number", default=math.nan, high=600),
    _Column("recovery_sd", "回收率标准差", "number", default=math.nan, high=0.5),
)
_BY_KEY = {normalise(spelling): c for c in TAPE_COLUMNS for spelling in (c.name, c.zh, *c.aliases)}


def column_name(header: Any) -> str | None:
    """The canonical tape column for a header (English or Chinese), or None if extra."""
    column = _BY_KEY.get(normalise(header)) if not is_blank(header) else None
    return column.name if column else None


def parse_origin(origin: str) -> tuple[str, int, int]:
    """'Tape!B3' -> ('Tape', row 2, column 1): the sheet and 0-based (row, col) of the
    tape's top-left cell (:func:`npl_xl.workbook.a1.parse_sheet_address`)."""
    try:
        return parse_sheet_address(origin)
    except ValueError:
        raise InputTypeError(f"{origin!r} is not a cell address such as Tape!A1",
                             argument="origin") from None


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return f"text {value!r}" if isinstance(value, str) else repr(value)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))


def read_tape(rows: list[list[Any]], origin: str = "Tape!A1") -> pd.DataFrame:
    """Read and validate the loan tape given as a list of rows, header row first.

    ``origin`` is the address of the table's top-left cell (its first header), so that
    problems name the right cells. Fully blank rows are skipped. Returns a DataFrame with
    the canonical columns (module docstring) followed by the extra columns as given.
    Raises TableError listing every problem found.

    Examples
    --------
    Chinese codes and headers are read into the canonical English ones:

    >>> from npl_xl import read_tape
    >>> tape = [["loan_id", "claim", "province", "collateral_type", "collateral_value",
    ...          "stage", "guarantor_recovery"],
    ...         ["L1", 1_000_000, "浙江", "住宅", 900_000, "auction_1", None],
    ...         ["L2", 400_000, "Jiangsu", "none", None, "judgment", 100_000]]
    >>> read_tape(tape)[["loan_id", "province", "collateral_type", "lien_rank"]]
      loan_id  province collateral_type  lien_rank
    0      L1  Zhejiang     residential          1
    1      L2   Jiangsu            none          1
    """
    if isinstance(rows, pd.DataFrame):
        rows = rows_of_table(rows)
    sheet, row0, col0 = parse_origin(origin)
    if not rows or all(is_blank(c) for c in rows[0]):
        raise TableError(["the tape has no header row"], argument="tape")
    header = list(rows[0])
    width = len(header)
    problems: list[str] = []
    position: dict[str, int] = {}
    extras: list[tuple[int, str]] = []
    for j, title in enumerate(header):
        name = column_name(title)
        if name is None:
            if not is_blank(title):
                extras.append((j, str(title).strip()))
            continue
        if name in position:
            problems.append(f"{sheet_address(sheet, row0, col0 + j)}: column {name} appears twice "
                            f"(also {sheet_address(sheet, row0, col0 + position[name])})")
            continue
        position[name] = j
    for column in TAPE_COLUMNS:
        if column.required and column.name not in position:
            problems.append(f"column {column.name} ({column.zh}) is missing")
    if problems:
        raise TableError(problems, argument="tape")

    body = [(i, list(r) + [None] * (width - len(r))) for i, r in enumerate(rows[1:], start=1)
            if not all(is_blank(c) for c in r)]
    numbers = [i for i, _ in body]
    data: dict[str, list[Any]] = {}

    def where(k: int, name: str) -> str:
        i = numbers[k]
        return f"row {i} ({sheet_address(sheet, row0 + i, col0 + position[name])}), column {name}"

    for column in TAPE_COLUMNS:
        if column.name not in position:
            data[column.name] = [column.default] * len(body)
            continue
        j = position[column.name]
        parse = _PARSERS[column.kind]
        values = []
        for k, (_, row) in enumerate(body):
            cell = row[j]
            if is_blank(cell):
                if column.required:
                    problems.append(f"{where(k, column.name)}: is blank but required")
                values.append(column.default)
                continue
            try:
                values.append(parse(cell, column))
            except ValueError as exc:
                problems.append(f"{where(k, column.name)}: {exc}")
                values.append(column.default)
        data[column.name] = values

    frame = pd.DataFrame(data, index=pd.RangeIndex(len(body)))
    # --- checks across columns
    seen: dict[str, int] = {}
    for k, loan_id in enumerate(frame["loan_id"]):
        if loan_id is None:
            continue
        if loan_id in seen:
            problems.append(f"{where(k, 'loan_id')}: duplicate loan_id {loan_id!r} "
                            f"(first in row {numbers[seen[loan_id]]})")
        else:
            seen[loan_id] = k
    value = frame["collateral_value"].to_numpy(dtype=float, na_value=np.nan)
    kinds = frame["collateral_type"].to_numpy(dtype=object)
    claim = frame["claim"].to_numpy(dtype=float, na_value=np.nan)
    for k in np.flatnonzero(pd.isna(value) & (kinds != "none") & pd.notna(kinds)):
        at = where(k, "collateral_value") if "collateral_value" in position else \
            f"row {numbers[k]}, column collateral_value"
        problems.append(f"{at}: is blank but collateral_type is {kinds[k]} (secured)")
    override = frame["expected_recovery"].to_numpy(dtype=float)
    for k in np.flatnonzero(override > claim):
        problems.append(f"{where(k, 'expected_recovery')}: {override[k]:g} exceeds the claim "
                        f"{claim[k]:g}")
    if problems:
        raise TableError(problems, argument="tape")
    frame["collateral_value"] = np.where(pd.isna(value), 0.0, value)
    frame["lien_rank"] = frame["lien_rank"].astype(np.int64)
    for j, title in extras:
        frame[title if title not in frame.columns else f"{title}_extra"] = [row[j] for _, row in body]
    return frame


# ---------------------------------------------------------------- cell parsers

def _number(cell: Any, column: _Column) -> float:
    if not _is_number(cell):
        raise ValueError(f"{_show(cell)} where a number is required")
    number = float(cell)
    if number not in column.interval:
        raise ValueError(outside_message(number, column.interval))
    return number


def _integer(cell: Any, column: _Column) -> int:
    number = _number(cell, column)
    if number != int(number):
        raise ValueError(f"must be a whole number, got {number:g}")
    return int(number)


def _identifier(cell: Any, column: _Column) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _text(cell: Any, column: _Column) -> Any:
    return cell.strip() if isinstance(cell, str) else cell


def _coder(code_set) -> Callable[[Any, _Column], str]:
    def parse(cell: Any, column: _Column) -> str:
        code = code_set.find(cell) if isinstance(cell, str) else None
        if code is None:
            raise ValueError(f"unknown {code_set.kind} {_show(cell)}; {code_set.accepted()}")
        return code
    return parse


def _defects(cell: Any, column: _Column) -> str:
    if not isinstance(cell, str):
        raise ValueError(f"{_show(cell)} where defect codes are required")
    found = []
    for part in split_codes(cell):
        code = DEFECTS.find(part)
        if code is None:
            raise ValueError(f"unknown defect {part.strip()!r}; {DEFECTS.accepted()}")
        if code not in found:
            found.append(code)
    return ",".join(found)


_PARSERS = {
    "id": _identifier, "text": _text, "number": _number, "integer": _integer,
    "province": _coder(PROVINCES), "collateral": _coder(COLLATERAL_TYPES),
    "stage": _coder(STAGES), "defects": _defects,
}
