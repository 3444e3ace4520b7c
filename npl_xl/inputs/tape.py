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

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from npl_xl.inputs.cells import is_blank, rows_of_table
from npl_xl.inputs.codes import COLLATERAL_TYPES, DEFECTS, PROVINCES, STAGES, normalise, split_codes
from npl_xl.checks import Interval, outside_message
from npl_xl.errors import InputTypeError, TableError
from npl_xl.workbook.a1 import parse_sheet_address, sheet_address
from npl_xl.inputs.headers import HeaderMapping, closest_headers, map_headers

__all__ = ["read_tape", "inspect_tape", "read_rows", "read_collateral", "read_guarantees",
           "TableReading", "TAPE_COLUMNS", "COLLATERAL_COLUMNS", "GUARANTEE_COLUMNS",
           "CLAIM_PARTS", "column_name", "parse_origin", "parse_date",
           "apply_appraisal_haircut", "appraisal_age_years", "read_tables", "row_cell"]


@dataclass(frozen=True)
class _Column:
    name: str
    zh: str
    kind: str  # id, ids, text, code kinds, number, integer, ranks, date
    required: bool = False
    default: Any = None
    low: float = 0.0
    high: float = math.inf
    low_open: bool = False
    money: bool = False
    #: fields whose presence satisfies a required one (claim from principal, interest, fees)
    alternatives: tuple[str, ...] = ()

    @property
    def interval(self) -> Interval:
        """The values allowed (:mod:`npl_xl.checks`; an infinite high is no bound)."""
        return Interval(self.low, None if math.isinf(self.high) else self.high, self.low_open)


#: Claim parts: claim = principal + interest + fees when the claim is not given.
CLAIM_PARTS = ("principal", "interest", "fees")
#: Relative difference between a given claim and the sum of its parts that is a problem.
CLAIM_PARTS_TOLERANCE = 0.005

TAPE_COLUMNS = (
    _Column("loan_id", "贷款编号", "id", required=True),
    _Column("borrower", "借款人", "text"),
    _Column("province", "省份", "province", required=True),
    _Column("city", "城市", "text"),
    _Column("claim", "未偿本息", "number", required=True, low_open=True, money=True,
            alternatives=CLAIM_PARTS),
    _Column("collateral_type", "抵押物类型", "collateral", required=True),
    _Column("collateral_value", "评估价值", "number", money=True),
    _Column("lien_rank", "抵押顺位", "integer", default=1, low=1),
    _Column("prior_claims", "优先债权", "number", default=0.0, money=True),
    _Column("stage", "处置阶段", "stage", default="not_filed"),
    _Column("defects", "法律瑕疵", "defects", default=""),
    _Column("borrower_recovery", "借款人回收", "number", default=0.0, money=True),
    _Column("guarantor_recovery", "保证人回收", "number", default=0.0, money=True),
    _Column("other_recovery", "其他回收", "number", default=0.0, money=True),
    _Column("expected_recovery", "预期回收", "number", default=math.nan, money=True),
    _Column("expected_months", "预期回收时间", "number", default=math.nan, high=600),
    _Column("recovery_sd", "回收率标准差", "number", default=math.nan, high=0.5),
    _Column("principal", "未偿本金", "number", default=math.nan, money=True),
    _Column("interest", "未偿利息", "number", default=math.nan, money=True),
    _Column("fees", "其他费用", "number", default=math.nan, money=True),
    _Column("appraisal_date", "评估日期", "date", default=None),
    _Column("default_date", "违约日期", "date", default=None),
)

#: The Collateral table (name CollateralTable): one row per item, or several rows of one
#: collateral_id (one per lien rank); loan_ids lists the loans it secures.
COLLATERAL_COLUMNS = (
    _Column("collateral_id", "抵押物编号", "id", required=True),
    _Column("loan_ids", "担保贷款编号", "ids", required=True),
    _Column("collateral_type", "抵押物类型", "collateral", required=True),
    _Column("province", "省份", "province", required=True),
    _Column("collateral_value", "评估价值", "number", required=True, money=True),
    _Column("lien_rank", "抵押顺位", "ranks", default=None),
    _Column("prior_claims", "优先债权", "number", default=0.0, money=True),
    _Column("stage", "处置阶段", "stage", default="not_filed"),
    _Column("defects", "法律瑕疵", "defects", default=""),
    _Column("appraisal_date", "评估日期", "date", default=None),
)

#: The Guarantees table (name GuaranteeTable).
GUARANTEE_COLUMNS = (
    _Column("guarantor", "保证人", "text", required=True),
    _Column("loan_ids", "担保贷款编号", "ids", required=True),
    _Column("expected_recovery", "预计回收金额", "number", required=True, money=True),
)

_COLUMNS_OF = {"tape": TAPE_COLUMNS, "collateral": COLLATERAL_COLUMNS,
               "guarantees": GUARANTEE_COLUMNS}


def column_name(header: Any, kind: str = "tape") -> str | None:
    """The canonical column of a table kind for a header (English, Chinese or any alias of
    docs/TAPES.md, a money unit allowed), or None if it is an extra column."""
    if is_blank(header):
        return None
    mapping = map_headers(kind, [header], money_fields={c.name for c in _COLUMNS_OF[kind] if c.money})
    return next(iter(mapping.fields), None)

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


@dataclass
class TableReading:
    """A table as read: the canonical frame, how its headers mapped, and every problem.

    frame: one row per non-blank data row, the canonical columns of the kind (defaults
    filled) then the extra columns as given. rows: the data row number (1 = first row under
    the header) of each frame row. filled: field -> number of non-blank cells (0 when the
    column is absent). problems: messages naming row, cell and column.
    """

    kind: str
    frame: pd.DataFrame
    mapping: HeaderMapping
    problems: list[str]
    rows: list[int]
    filled: dict[str, int]
    sheet: str
    col0: int
    row0: int
    #: field -> [(frame row, cell as given)] of the cells that failed their check
    rejected: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    #: field -> bool array, True where the cell was blank (absent column: all True)
    blank: dict[str, np.ndarray] = field(default_factory=dict)

    def cell(self, k: int, name: str) -> str:
        """The address of frame row k's cell in column ``name`` ('' when the column is absent)."""
        j = self.mapping.fields.get(name)
        return "" if j is None else sheet_address(self.sheet, self.row0 + self.rows[k], self.col0 + j)

    def where(self, k: int, name: str) -> str:
        at = self.cell(k, name)
        return f"row {self.rows[k]}" + (f" ({at})" if at else "") + f", column {name}"


def _missing(kind: str, column: _Column, header: list[Any], mapping: HeaderMapping,
             sheet: str, col0: int, row0: int) -> str:
    text = f"column {column.name} ({column.zh}) is missing"
    if column.alternatives:
        text += f" (or give {', '.join(column.alternatives)})"
    ignored = [h for _, h in mapping.ignored]
    near = closest_headers(kind, column.name, ignored)
    if near:
        where = {h: sheet_address(sheet, row0, col0 + j) for j, h in mapping.ignored}
        text += "; closest headers: " + ", ".join(f"{h!r} ({where[h]})" for h in near)
        text += " (name it in the HeaderMap table if one of them is it)"
    else:
        text += "; no header resembles it (see docs/TAPES.md for the accepted names)"
    return text


def read_rows(kind: str, rows: Any, origin: str = "A1", header_map: dict[str, str] | None = None,
              money_unit: float = 1.0) -> TableReading:
    """Read one table of ``kind`` ("tape", "collateral", "guarantees") given as a list of
    rows, header row first, without raising: every problem is in the result.

    origin: the address of the table's top-left cell (its first header). header_map: extra
    header spellings (:func:`npl_xl.inputs.headers.parse_header_map`). money_unit: 元 per
    workbook currency unit (the Settings key money_unit); a money column whose header
    states its unit, (元) (万元) (亿元), is converted into it, other money columns are taken
    as already in it.
    """
    columns = _COLUMNS_OF[kind]
    if isinstance(rows, pd.DataFrame):
        rows = rows_of_table(rows)
    sheet, row0, col0 = parse_origin(origin)
    empty = TableReading(kind, pd.DataFrame(), HeaderMapping(), [], [], {}, sheet, col0, row0)
    if not rows or all(is_blank(c) for c in rows[0]):
        empty.problems.append(f"the {kind} table has no header row")
        return empty
    header = list(rows[0])
    width = len(header)
    mapping = map_headers(kind, header, header_map, {c.name for c in columns if c.money})
    empty.mapping = mapping
    problems = empty.problems
    for j, first, name in mapping.duplicates:
        problems.append(f"{sheet_address(sheet, row0, col0 + j)}: column {name} appears twice "
                        f"(also {sheet_address(sheet, row0, col0 + first)})")
    for column in columns:
        if column.required and column.name not in mapping.fields and not any(
                a in mapping.fields for a in column.alternatives):
            problems.append(_missing(kind, column, header, mapping, sheet, col0, row0))
    if problems:
        return empty

    body = [(i, list(r) + [None] * (width - len(r))) for i, r in enumerate(rows[1:], start=1)
            if not all(is_blank(c) for c in r)]
    reading = TableReading(kind, pd.DataFrame(), mapping, problems, [i for i, _ in body], {},
                           sheet, col0, row0)
    data: dict[str, list[Any]] = {}
    for column in columns:
        j = mapping.fields.get(column.name)
        if j is None:
            data[column.name] = [column.default] * len(body)
            reading.filled[column.name] = 0
            reading.blank[column.name] = np.ones(len(body), dtype=bool)
            continue
        parse = _PARSERS[column.kind]
        factor = mapping.units.get(column.name, money_unit) / money_unit if column.money else 1.0
        required = column.required and not any(a in mapping.fields for a in column.alternatives)
        values, filled = [], 0
        blank = np.zeros(len(body), dtype=bool)
        for k, (_, row) in enumerate(body):
            cell = row[j]
            if is_blank(cell):
                blank[k] = True
                if required:
                    problems.append(f"{reading.where(k, column.name)}: is blank but required")
                values.append(column.default)
                continue
            filled += 1
            try:
                value = parse(cell, column)
                values.append(value * factor if column.money and factor != 1.0 else value)
            except ValueError as exc:
                problems.append(f"{reading.where(k, column.name)}: {exc}")
                reading.rejected.setdefault(column.name, []).append((k, cell))
                values.append(column.default)
        data[column.name] = values
        reading.filled[column.name] = filled
        reading.blank[column.name] = blank
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(body)))
    for column in columns:
        if column.kind == "date":
            frame[column.name] = pd.to_datetime(frame[column.name])
    for j, title in mapping.ignored:
        frame[title if title not in frame.columns else f"{title}_extra"] = [row[j] for _, row in body]
    reading.frame = frame
    return reading


def inspect_tape(rows: Any, origin: str = "Tape!A1", header_map: dict[str, str] | None = None,
                 settings: Any = None) -> TableReading:
    """Read and check the loan tape without raising (Validate Tape and the data-quality
    report use it; :func:`read_tape` raises on its problems).

    Beyond each cell's own check: claim from principal + interest + fees when the claim is
    absent or blank; a given claim that differs from the sum of its given parts by more
    than 0.5 % is a problem naming both cells; duplicate loan_ids; a secured loan without a
    collateral_value; an expected_recovery override above the claim. settings: the
    DealSettings (money_unit, appraisal_haircut_per_year, cut_off_date), or None.
    """
    unit = float(getattr(settings, "money_unit", 1.0) or 1.0)
    reading = read_rows("tape", rows, origin, header_map, unit)
    if reading.frame.empty and reading.problems:
        return reading
    frame, problems, where = reading.frame, reading.problems, reading.where
    parts_given = [p for p in CLAIM_PARTS if p in reading.mapping.fields]
    claim = frame["claim"].to_numpy(dtype=float, na_value=np.nan)
    if parts_given:
        parts = frame[parts_given].to_numpy(dtype=float, na_value=np.nan)
        any_part = ~np.all(np.isnan(parts), axis=1)
        total = np.nansum(parts, axis=1)
        blank_claim = np.isnan(claim)
        for k in np.flatnonzero(blank_claim & ~any_part):
            at = where(k, "claim") if "claim" in reading.mapping.fields else where(k, parts_given[0])
            problems.append(f"{at}: the claim is blank and so are {', '.join(parts_given)}")
        fill = blank_claim & any_part
        for k in np.flatnonzero(fill & (total <= 0)):
            problems.append(f"{where(k, parts_given[0])}: the claim from {' + '.join(parts_given)} "
                            f"is {total[k]:g}; it must be > 0")
        bad = ~blank_claim & any_part & (np.abs(claim - total) > CLAIM_PARTS_TOLERANCE * np.abs(claim))
        for k in np.flatnonzero(bad):
            cells = ", ".join(reading.cell(k, p) for p in parts_given)
            problems.append(f"{where(k, 'claim')}: claim {claim[k]:,.2f} differs from "
                            f"{' + '.join(parts_given)} = {total[k]:,.2f} ({cells}) by "
                            f"{abs(claim[k] - total[k]) / abs(claim[k]):.2%}, more than "
                            f"{CLAIM_PARTS_TOLERANCE:.1%}")
        claim = np.where(fill, total, claim)
        frame["claim"] = claim
    seen: dict[str, int] = {}
    for k, loan_id in enumerate(frame["loan_id"]):
        if loan_id is None:
            continue
        if loan_id in seen:
            problems.append(f"{where(k, 'loan_id')}: duplicate loan_id {loan_id!r} "
                            f"(first in row {reading.rows[seen[loan_id]]})")
        else:
            seen[loan_id] = k
    value = frame["collateral_value"].to_numpy(dtype=float, na_value=np.nan)
    kinds = frame["collateral_type"].to_numpy(dtype=object)
    for k in np.flatnonzero(pd.isna(value) & (kinds != "none") & pd.notna(kinds)):
        problems.append(f"{where(k, 'collateral_value')}: is blank but collateral_type is "
                        f"{kinds[k]} (secured)")
    override = frame["expected_recovery"].to_numpy(dtype=float)
    for k in np.flatnonzero(override > claim):
        problems.append(f"{where(k, 'expected_recovery')}: {override[k]:g} exceeds the claim "
                        f"{claim[k]:g}")
    frame["collateral_value"] = np.where(pd.isna(value), 0.0, value)
    frame["lien_rank"] = pd.to_numeric(frame["lien_rank"]).fillna(1).astype(np.int64)
    problems.extend(apply_appraisal_haircut(frame, settings))
    return reading


def apply_appraisal_haircut(frame: pd.DataFrame, settings: Any) -> list[str]:
    """Age the appraisals in place: collateral_value x (1 - h) ** age, h the Settings key
    appraisal_haircut_per_year (decimal per year, default 0 = off), age the years from
    appraisal_date to the Settings' cut_off_date (0 for a later appraisal; a loan without
    an appraisal_date is not aged). The unaged value stays in ``appraised_value``. Returns
    the problems (a haircut without a cut_off_date)."""
    rate = float(getattr(settings, "appraisal_haircut_per_year", 0.0) or 0.0)
    if rate <= 0 or "appraisal_date" not in frame.columns:
        return []
    cut_off = getattr(settings, "cut_off_date", None)
    if cut_off is None:
        return ["Settings: appraisal_haircut_per_year is set but cut_off_date (封包日) is blank; "
                "the appraisals' age needs it"]
    age = appraisal_age_years(frame["appraisal_date"], cut_off)
    frame["appraised_value"] = frame["collateral_value"]
    frame["collateral_value"] = frame["collateral_value"] * (1.0 - rate) ** np.nan_to_num(age)
    return []


def appraisal_age_years(dates: pd.Series, as_of: Any) -> np.ndarray:
    """Years (365.25 days) from each date to ``as_of`` (an Excel serial, date or text),
    at least 0; NaN where the date is blank."""
    reference = pd.Timestamp(parse_date(as_of)) if not isinstance(as_of, pd.Timestamp) else as_of
    days = (reference - pd.to_datetime(dates)).dt.days.to_numpy(dtype=float, na_value=np.nan)
    return np.maximum(days / 365.25, 0.0, where=~np.isnan(days), out=np.full(len(days), np.nan))


def read_tape(rows: Any, origin: str = "Tape!A1", header_map: dict[str, str] | None = None,
              settings: Any = None) -> pd.DataFrame:
    """Read and validate the loan tape given as a list of rows, header row first.

    ``origin`` is the address of the table's top-left cell (its first header), so that
    problems name the right cells. Fully blank rows are skipped. Headers: any alias of
    docs/TAPES.md, or of ``header_map``; money units from the headers or settings'
    money_unit (see :func:`inspect_tape`). Returns a DataFrame with the canonical columns
    (module docstring) followed by the extra columns as given. Raises TableError listing
    every problem found.

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
    reading = inspect_tape(rows, origin, header_map, settings)
    if reading.problems:
        raise TableError(reading.problems, argument="tape")
    return reading.frame


def _read_links(kind: str, rows: Any, origin: str, header_map, settings, argument: str) -> pd.DataFrame:
    unit = float(getattr(settings, "money_unit", 1.0) or 1.0)
    reading = read_rows(kind, rows, origin, header_map, unit)
    if reading.problems:
        raise TableError(reading.problems, argument=argument)
    frame = reading.frame
    # where each row's loan_ids cell is (for problems found later); a small tuple, since
    # pandas deep-copies attrs on every column access
    frame.attrs["loan_ids_cells"] = (reading.sheet, reading.col0 + reading.mapping.fields["loan_ids"],
                                     reading.row0, np.asarray(reading.rows, dtype=np.int64))
    if kind == "collateral":
        problems = []
        for k, (ids, ranks) in enumerate(zip(frame["loan_ids"], frame["lien_rank"])):
            if ranks is not None and len(ranks) not in (1, len(ids)):
                problems.append(f"{reading.where(k, 'lien_rank')}: {len(ranks)} ranks for "
                                f"{len(ids)} loans; give one rank, or one per loan in loan_ids order")
        if problems:
            raise TableError(problems, argument=argument)
        frame["lien_rank"] = [tuple(r * len(i) if r is not None and len(r) == 1 else r or (1,) * len(i))
                              for i, r in zip(frame["loan_ids"], frame["lien_rank"])]
        problems.extend(apply_appraisal_haircut(frame, settings))
    return frame


def row_cell(frame: pd.DataFrame, k: int) -> str:
    """'row 2 (Collateral!B3), column loan_ids' for row k of a table read by
    :func:`read_collateral` or :func:`read_guarantees` ('row k+1' for a frame built otherwise)."""
    where = frame.attrs.get("loan_ids_cells")
    if where is None:
        return f"row {k + 1}, column loan_ids"
    sheet, col, row0, rows = where
    return f"row {rows[k]} ({sheet_address(sheet, row0 + int(rows[k]), col)}), column loan_ids"


def read_collateral(rows: Any, origin: str = "Collateral!A1", header_map=None,
                    settings: Any = None) -> pd.DataFrame:
    """The Collateral table: collateral_id, loan_ids (tuple of ids), collateral_type,
    province, collateral_value (currency), lien_rank (tuple, one per loan; default 1),
    prior_claims (currency), stage, defects, appraisal_date. Several rows may share a
    collateral_id (one per lien rank); :func:`npl_xl.model.shared.value_shared` merges them.
    Raises TableError listing every problem."""
    return _read_links("collateral", rows, origin, header_map, settings, "collateral")


def read_guarantees(rows: Any, origin: str = "Guarantees!A1", header_map=None,
                    settings: Any = None) -> pd.DataFrame:
    """The Guarantees table: guarantor, loan_ids (tuple of ids), expected_recovery
    (currency, the guarantor's expected undiscounted payment over all its loans).
    Raises TableError listing every problem."""
    return _read_links("guarantees", rows, origin, header_map, settings, "guarantees")

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


_ID_SPLIT = re.compile(r"[,;，；、\n]+")
_DATE_TEXT = re.compile(r"^\s*(\d{4})\s*(?:[-/.年])\s*(\d{1,2})\s*(?:[-/.月])\s*(\d{1,2})\s*日?\s*"
                        r"(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?\s*$")
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)


def _identifiers(cell: Any, column: _Column) -> tuple[str, ...]:
    if _is_number(cell):
        return (_identifier(cell, column),)
    parts = tuple(p.strip() for p in _ID_SPLIT.split(str(cell)) if p.strip())
    if not parts:
        raise ValueError("names no loan id")
    return parts


def _ranks(cell: Any, column: _Column) -> tuple[int, ...]:
    texts = [cell] if _is_number(cell) else [p for p in _ID_SPLIT.split(str(cell)) if p.strip()]
    out = []
    for text in texts:
        try:
            number = float(text)
        except (TypeError, ValueError):
            raise ValueError(f"{_show(cell)} where lien ranks 1, 2, ... are required") from None
        if number < 1 or number != int(number):
            raise ValueError(f"lien ranks are whole numbers >= 1, got {text!r}")
        out.append(int(number))
    return tuple(out)


def parse_date(cell: Any) -> dt.datetime:
    """A date from an Excel serial (1900 date system), a date/datetime, or text:
    2024-03-05, 2024/3/5, 2024.3.5, 2024年3月5日, 20240305. ValueError otherwise."""
    if isinstance(cell, dt.datetime):
        return cell
    if isinstance(cell, dt.date):
        return dt.datetime(cell.year, cell.month, cell.day)
    if _is_number(cell):
        if not 1 <= float(cell) < 2958466:
            raise ValueError(f"{float(cell):g} is not an Excel date serial")
        return _EXCEL_EPOCH + dt.timedelta(days=float(cell))
    if isinstance(cell, str):
        text = unicodedata.normalize("NFKC", cell).strip()
        match = _DATE_TEXT.match(text) or re.match(r"^(\d{4})(\d{2})(\d{2})$", text)
        if match:
            try:
                return dt.datetime(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                pass
    raise ValueError(f"{_show(cell)} is not a date (use an Excel date, 2024-03-05, 2024/3/5 "
                     "or 2024年3月5日)")


def _date(cell: Any, column: _Column) -> dt.datetime:
    return parse_date(cell)


_PARSERS = {
    "id": _identifier, "ids": _identifiers, "ranks": _ranks, "date": _date, "text": _text, "number": _number, "integer": _integer,
    "province": _coder(PROVINCES), "collateral": _coder(COLLATERAL_TYPES),
    "stage": _coder(STAGES), "defects": _defects,
}


def read_tables(tape: Any, collateral: Any = None, guarantees: Any = None, settings: Any = None,
                header_map: dict[str, dict[str, str]] | None = None, origins: dict[str, str] | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """(tape, collateral, guarantees) frames from ranges (lists of rows, header first) or
    frames already read (passed through). settings: a Settings range or DealSettings
    (money_unit, appraisal ageing). header_map: table kind -> {header key: field}."""
    from npl_xl.inputs.deal import parse_settings

    deal = parse_settings(settings) if settings is not None else None
    maps = header_map or {}
    where = origins or {}

    def read(reader, rows, kind, default_origin):
        if rows is None:
            return None
        if isinstance(rows, pd.DataFrame) and kind in rows.attrs.get("read_as", ()):
            return rows
        frame = reader(rows, where.get(kind, default_origin), maps.get(kind), deal)
        frame.attrs["read_as"] = (kind,)
        return frame

    return (read(read_tape, tape, "tape", "Tape!A1"),
            read(read_collateral, collateral, "collateral", "Collateral!A1"),
            read(read_guarantees, guarantees, "guarantees", "Guarantees!A1"))
