"""The assumption tables behind collateral values, judicial timelines and loan valuation.

Every number a valuation uses without the analyst typing it — stage durations per region
tier, the auction ladder, defect delays and haircuts, cost rates, the sd per difficulty
grade — lives in a table, shipped as UTF-8 CSV in ``npl_xl/inputs/data`` with a ``source``
column citing docs/SOURCES.md ([S] statute, [M] market data, [P] practitioner, [A] npl-xl
assumption),
and editable in the workbook's ``Assumptions`` sheet. The sheet wins when present.

The ``Assumptions`` sheet holds one Excel table per block, each with a header row; column
order is free, headers are matched case- and width-insensitively, extra columns (``name_zh``,
``note``, ``source``) are kept for the reader and ignored by the code:

=================  ==========================================================================
table              columns (key columns first)
=================  ==========================================================================
ProvinceTiers      province (any spelling; or code / name_en), tier (A/B/C), region_id
StageDurations     stage, A, B, C   — months per region tier; rows: the ten contract stages,
                   ``commercial_addon`` and ``unsecured_enforcement``
Defects            defect, stage, delay_A, delay_B, delay_C (months), value_factor,
                   deduction_rate (decimal of proceeds), grade (D1–D5)
AuctionLadder      collateral_type, tier, start_ratio, cut, p_sell_1, premium_1, p_sell_2,
                   premium_2, p_sell_3, premium_3
CostRates          collateral_type, cost_rate (decimal of proceeds)
DifficultySD       grade, sd (decimal recovery-rate sd)
Parameters         key, value (sd_cap_factor, blank_province_tier)
=================  ==========================================================================

A workbook table may list only some rows (say, the provinces it re-tiers): rows it does
not list keep the packaged values. :meth:`Assumptions.to_tables` gives the full tables for
the template builder; :meth:`Assumptions.from_tables` reads them back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from npl_xl.inputs import codes
from npl_xl.inputs.cells import describe, is_blank, rows_of_table
from npl_xl.inputs.codes import (COLLATERAL_CODES, COLLATERAL_TYPES, DATA_DIR, DEFECT_CODES,
    DEFECTS, PROVINCES, SECURED_TYPES, STAGE_CODES, STAGES, TIERS, normalise)
from npl_xl.checks import Interval, outside_message
from npl_xl.errors import InputTypeError, TableError

__all__ = ["Assumptions", "TABLE_NAMES", "GRADES", "TIER_CODES"]

TIER_CODES = ("A", "B", "C")
GRADES = ("D1", "D2", "D3", "D4", "D5")
#: Extra rows of StageDurations besides the contract stages.
STAGE_EXTRA_ROWS = ("commercial_addon", "unsecured_enforcement")
#: Fields of one auction-ladder segment, in array order.
LADDER_FIELDS = ("start_ratio", "cut", "p_sell_1", "premium_1", "p_sell_2", "premium_2",
                 "p_sell_3", "premium_3")


# ------------------------------------------------------------------ cell parsers

def _number(low: float, high: float, *, low_open: bool = False) -> Callable[[Any], Any]:
    interval = Interval(low, high, low_open=low_open)

    def parse(value):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{describe(value)} where a number is required")
        if value not in interval:
            raise ValueError(outside_message(value, interval))
        return float(value)
    return parse


def _code(code_set: codes.CodeSet, allowed: tuple[str, ...] | None = None):
    def parse(value):
        code = code_set.find(value) if not is_blank(value) else None
        if code is None or (allowed is not None and code not in allowed):
            choices = ", ".join(allowed) if allowed else code_set.accepted()
            raise ValueError(f"unknown {code_set.kind} {describe(value)} ({choices})")
        return code
    return parse


def _choice(options: tuple[str, ...], kind: str):
    lookup = {normalise(o): o for o in options}

    def parse(value):
        code = lookup.get(normalise(value)) if isinstance(value, str) else None
        if code is None:
            raise ValueError(f"unknown {kind} {describe(value)} (one of {', '.join(options)})")
        return code
    return parse


def _integer(low: int):
    as_number = _number(low, 1e9)

    def parse(value):
        number = as_number(value)
        if number != int(number):
            raise ValueError(f"{number:g} is not a whole number")
        return int(number)
    return parse


_DELAY = _number(0, 240)
_MONTHS = _number(0, 240)
_RATE = _number(0, 1)


@dataclass(frozen=True)
class _TableSpec:
    """How one assumption table is read: key columns, value columns, their parsers."""

    name: str
    file: str
    keys: tuple[tuple[str, Callable[[Any], Any]], ...]
    values: tuple[tuple[str, Callable[[Any], Any]], ...]
    key_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


_STAGE_ROWS = STAGE_CODES + STAGE_EXTRA_ROWS
_EXTRA_ROW = _choice(_STAGE_ROWS, "stage row")


def _stage_row(value):
    """A StageDurations row key: a stage in any spelling, or one of the extra rows."""
    code = STAGES.find(value) if isinstance(value, str) else None
    return code if code is not None else _EXTRA_ROW(value)

_SPECS = (
    _TableSpec("ProvinceTiers", "provinces.csv",
               keys=(("province", _code(PROVINCES)),),
               values=(("tier", _code(TIERS)), ("region_id", _integer(0))),
               key_aliases={"province": ("name_en", "code", "name_zh", "省份")}),
    _TableSpec("StageDurations", "stage_durations.csv",
               keys=(("stage", _stage_row),),
               values=tuple((t, _MONTHS) for t in TIER_CODES)),
    _TableSpec("Defects", "defects.csv",
               keys=(("defect", _code(DEFECTS)),),
               values=(("stage", _code(STAGES)), ("delay_A", _DELAY), ("delay_B", _DELAY),
                       ("delay_C", _DELAY), ("value_factor", _RATE),
                       ("deduction_rate", _number(0, 0.99)), ("grade", _choice(GRADES, "grade")))),
    _TableSpec("AuctionLadder", "auction_ladder.csv",
               keys=(("collateral_type", _code(COLLATERAL_TYPES, SECURED_TYPES)),
                     ("tier", _code(TIERS))),
               values=(("start_ratio", _number(0.70, 1.5)), ("cut", _number(0, 0.20)),
                       ("p_sell_1", _RATE), ("premium_1", _number(0, 2)),
                       ("p_sell_2", _RATE), ("premium_2", _number(0, 2)),
                       ("p_sell_3", _RATE), ("premium_3", _number(0, 2)))),
    _TableSpec("CostRates", "cost_rates.csv",
               keys=(("collateral_type", _code(COLLATERAL_TYPES)),),
               values=(("cost_rate", _number(0, 0.99)),)),
    _TableSpec("DifficultySD", "difficulty_sd.csv",
               keys=(("grade", _choice(GRADES, "grade")),),
               values=(("sd", _number(0, 0.5)),)),
    _TableSpec("Parameters", "parameters.csv",
               keys=(("key", _choice(("sd_cap_factor", "blank_province_tier"), "parameter")),),
               values=(("value", lambda v: v),)),
)
_SPEC_BY_NAME = {s.name: s for s in _SPECS}
#: The Assumptions sheet's table names, in the order the template writes them.
TABLE_NAMES = tuple(s.name for s in _SPECS)
_PARAMETER_PARSERS = {"sd_cap_factor": _number(0, 1, low_open=True), "blank_province_tier": _code(TIERS)}


def _parse_table(spec: _TableSpec, table: Any, base: pd.DataFrame | None) -> pd.DataFrame:
    """Validate one table and merge it over ``base`` (rows it lists replace base rows).

    Returns a DataFrame indexed by the canonical key(s), with every column of the table
    (key and value columns canonical, other columns as given)."""
    rows = [r for r in rows_of_table(table) if not all(is_blank(c) for c in r)]
    where = f"Assumptions table {spec.name}"
    if not rows:
        raise TableError([f"{where} is empty (a header row is required)"], argument=spec.name)
    header = ["" if is_blank(h) else str(h).strip() for h in rows[0]]
    column_of: dict[str, int] = {}
    for j, name in enumerate(header):
        column_of.setdefault(normalise(name), j)
    problems: list[str] = []
    positions: dict[str, int] = {}
    for name, _ in spec.keys + spec.values:
        candidates = (name, *spec.key_aliases.get(name, ()))
        found = next((column_of[normalise(c)] for c in candidates if normalise(c) in column_of), None)
        if found is None:
            if base is None or name in dict(spec.keys):
                problems.append(f"{where}: column {name} is missing")
            continue
        positions[name] = found
    if problems:
        raise TableError(problems, argument=spec.name)
    records: dict[tuple, dict[str, Any]] = {}
    for i, row in enumerate(rows[1:], start=1):
        row = row + [None] * (len(header) - len(row))
        record: dict[str, Any] = {}
        for name, parse in spec.keys + spec.values:
            if name not in positions:
                continue
            value = row[positions[name]]
            try:
                if name == "value" and spec.name == "Parameters":
                    value = _PARAMETER_PARSERS[record["key"]](value)
                else:
                    value = parse(value)
            except (ValueError, KeyError) as exc:
                label = f"{name} ({record['key']})" if spec.name == "Parameters" and "key" in record else name
                problems.append(f"{where} row {i}, column {label}: {exc}")
                continue
            record[name] = value
        used = set(positions.values())
        for j, name in enumerate(header):
            if name and j not in used:
                record.setdefault(name, row[j])
        key = tuple(record.get(k) for k, _ in spec.keys)
        if None not in key and key in records:
            problems.append(f"{where} row {i}: {', '.join(map(str, key))} appears twice")
        records[key] = record
    if problems:
        raise TableError(problems, argument=spec.name)
    key_names = [k for k, _ in spec.keys]
    frame = pd.DataFrame(list(records.values()))
    frame = frame.set_index(key_names) if len(frame) else frame
    if base is not None:
        merged = base.copy()
        for key, record in zip(frame.index, frame.to_dict("records")):
            for column, value in record.items():
                if column not in merged.columns:
                    merged[column] = None
                merged.loc[key, column] = value
        frame = merged
    return frame


def _check_complete(name: str, frame: pd.DataFrame) -> None:
    """Every key the code needs is present (only checked for the packaged tables)."""
    needed = {
        "ProvinceTiers": PROVINCES.codes,
        "StageDurations": _STAGE_ROWS,
        "Defects": DEFECT_CODES,
        "AuctionLadder": [(c, t) for c in SECURED_TYPES for t in TIER_CODES],
        "CostRates": COLLATERAL_CODES,
        "DifficultySD": GRADES,
        "Parameters": ("sd_cap_factor", "blank_province_tier"),
    }[name]
    missing = [k for k in needed if k not in frame.index]
    if missing:
        raise TableError([f"Assumptions table {name}: rows missing: {missing}"], argument=name)


@lru_cache(maxsize=1)
def _packaged_frames() -> dict[str, pd.DataFrame]:
    frames = {}
    for spec in _SPECS:
        csv = pd.read_csv(DATA_DIR / spec.file, encoding="utf-8", dtype=object, keep_default_na=False)
        rows = [list(csv.columns)] + [[_csv_cell(v) for v in row] for row in csv.to_numpy().tolist()]
        frame = _parse_table(spec, rows, None)
        _check_complete(spec.name, frame)
        frames[spec.name] = frame
    return frames


def _csv_cell(text: str) -> Any:
    """A CSV cell as Excel would hold it: blank -> None, numeric text -> float."""
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


@dataclass(frozen=True, eq=False)
class Assumptions:
    """The assumption tables, one DataFrame each, indexed by their canonical keys.

    Use :meth:`default` for the packaged tables and :meth:`from_tables` for a workbook's.
    Arrays for the vectorised valuation are derived once per object (``*_array``).

    Examples
    --------
    The packaged tables, and a workbook's Parameters table over them (tables it does not
    give keep the packaged values):

    >>> from npl_xl import Assumptions
    >>> Assumptions.default().sd_cap_factor
    0.9
    >>> tighter = Assumptions.from_tables({"Parameters": [["key", "value"],
    ...                                                   ["sd_cap_factor", 0.8]]})
    >>> tighter.sd_cap_factor, tighter.tier_of("Zhejiang")   # tier 0 = A
    (0.8, 0)
    """

    tables: Mapping[str, pd.DataFrame]

    def __post_init__(self):
        object.__setattr__(self, "tables", MappingProxyType(dict(self.tables)))

    # ------------------------------------------------------------ construction
    @classmethod
    def default(cls) -> "Assumptions":
        """The packaged defaults (npl_xl/data/*.csv)."""
        return _default_assumptions()

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], base: "Assumptions | None" = None) -> "Assumptions":
        """Assumptions from workbook tables: ``{table_name: rows with a header row}``
        (or DataFrames). Table names are those of :data:`TABLE_NAMES` (case-insensitive);
        tables not given, and rows a given table does not list, keep ``base`` (default:
        the packaged tables). Problems in all tables are reported together (TableError)."""
        base = base or cls.default()
        by_key = {normalise(n): n for n in TABLE_NAMES}
        frames = dict(base.tables)
        problems: list[str] = []
        for given_name, table in tables.items():
            name = by_key.get(normalise(given_name))
            if name is None:
                problems.append(f"unknown assumption table {given_name!r} (expected one of "
                                f"{', '.join(TABLE_NAMES)})")
                continue
            try:
                frames[name] = _parse_table(_SPEC_BY_NAME[name], table, base.tables[name])
            except TableError as exc:
                problems.extend(exc.problems)
        if problems:
            raise TableError(problems, argument="assumptions")
        return cls(frames)

    @classmethod
    def from_range(cls, rows: list[list[Any]], base: "Assumptions | None" = None,
                   argument: str = "assumptions") -> "Assumptions":
        """Assumptions with one table replaced by a worksheet range (header row first),
        the table recognised by its header: StageDurations (stage, A, B, C), Defects
        (defect, ...), AuctionLadder (collateral_type, tier, ...), ProvinceTiers
        (province, tier), CostRates (collateral_type, cost_rate) or DifficultySD."""
        rows = [r for r in rows if not all(is_blank(c) for c in r)]
        header = {normalise(h) for h in rows[0] if not is_blank(h)} if rows else set()
        for name in ("AuctionLadder", "Defects", "ProvinceTiers", "CostRates", "DifficultySD",
                     "Parameters", "StageDurations"):  # most specific key columns first
            spec = _SPEC_BY_NAME[name]
            keys = [k for k, _ in spec.keys]
            if all(normalise(k) in header or any(normalise(a) in header for a in
                   spec.key_aliases.get(k, ())) for k in keys):
                return cls.from_tables({spec.name: rows}, base)
        raise InputTypeError(
            "is not one of the Assumptions tables: its header row must start a StageDurations "
            "(stage, A, B, C), Defects (defect, stage, delay_A, ...), AuctionLadder "
            "(collateral_type, tier, start_ratio, ...), ProvinceTiers (province, tier), "
            "CostRates (collateral_type, cost_rate) or DifficultySD (grade, sd) table",
            argument=argument)

    def to_tables(self) -> dict[str, pd.DataFrame]:
        """Every table as a DataFrame with a plain header (key columns first), for writing
        to the Assumptions sheet."""
        return {name: frame.reset_index() for name, frame in self.tables.items()}

    # ------------------------------------------------------------ lookups
    def tier_of(self, province: str | None) -> int:
        """Tier index (0 = A, 1 = B, 2 = C) of a canonical province; blank -> the
        blank_province_tier parameter."""
        if province is None:
            return TIER_CODES.index(self.parameter("blank_province_tier"))
        return int(self.tier_index[province])

    def parameter(self, key: str) -> Any:
        return self.tables["Parameters"].loc[key, "value"]

    @cached_property
    def tier_index(self) -> pd.Series:
        """Canonical province -> tier index (0/1/2)."""
        return self.tables["ProvinceTiers"]["tier"].map(TIER_CODES.index).astype(int)

    @cached_property
    def region_ids(self) -> pd.Series:
        """Canonical province -> region_id (small int, the simulation's regional factor)."""
        return self.tables["ProvinceTiers"]["region_id"].astype(int)

    @cached_property
    def durations_array(self) -> np.ndarray:
        """(3 tiers, 10 stages) expected months spent in each stage, residential, no defect."""
        frame = self.tables["StageDurations"]
        return frame.loc[list(STAGE_CODES), list(TIER_CODES)].to_numpy(float).T.copy()

    @cached_property
    def commercial_addon_array(self) -> np.ndarray:
        """(3,) months added to the enforcement stage for non-residential collateral."""
        return self.tables["StageDurations"].loc["commercial_addon", list(TIER_CODES)].to_numpy(float)

    @cached_property
    def unsecured_enforcement_array(self) -> np.ndarray:
        """(3,) months of enforcement against other assets for an unsecured claim."""
        return self.tables["StageDurations"].loc["unsecured_enforcement", list(TIER_CODES)].to_numpy(float)

    @cached_property
    def defect_stage_array(self) -> np.ndarray:
        """(7,) index of the stage each defect's delay is added to."""
        stages = self.tables["Defects"].loc[list(DEFECT_CODES), "stage"]
        return np.array([STAGE_CODES.index(s) for s in stages], dtype=np.int64)

    @cached_property
    def defect_delay_array(self) -> np.ndarray:
        """(7 defects, 3 tiers) months of delay."""
        return self.tables["Defects"].loc[list(DEFECT_CODES),
                                          ["delay_A", "delay_B", "delay_C"]].to_numpy(float)

    @cached_property
    def defect_value_factor_array(self) -> np.ndarray:
        """(7,) multiplier on the collateral's net recovery."""
        return self.tables["Defects"].loc[list(DEFECT_CODES), "value_factor"].to_numpy(float)

    @cached_property
    def defect_deduction_array(self) -> np.ndarray:
        """(7,) deduction from the auction proceeds, decimal of the proceeds."""
        return self.tables["Defects"].loc[list(DEFECT_CODES), "deduction_rate"].to_numpy(float)

    @cached_property
    def defect_grade_array(self) -> np.ndarray:
        """(7,) difficulty grade index (0 = D1 ... 4 = D5) each defect implies."""
        grades = self.tables["Defects"].loc[list(DEFECT_CODES), "grade"]
        return np.array([GRADES.index(g) for g in grades], dtype=np.int64)

    @cached_property
    def ladder_array(self) -> np.ndarray:
        """(5 secured types, 3 tiers, 8 fields of LADDER_FIELDS)."""
        frame = self.tables["AuctionLadder"]
        out = np.empty((len(SECURED_TYPES), 3, len(LADDER_FIELDS)))
        for i, ctype in enumerate(SECURED_TYPES):
            for t, tier in enumerate(TIER_CODES):
                out[i, t] = frame.loc[(ctype, tier), list(LADDER_FIELDS)].to_numpy(float)
        return out

    @cached_property
    def cost_rate_array(self) -> np.ndarray:
        """(6 collateral types incl. none,) disposal cost, decimal of proceeds."""
        return self.tables["CostRates"].loc[list(COLLATERAL_CODES), "cost_rate"].to_numpy(float)

    @cached_property
    def grade_sd_array(self) -> np.ndarray:
        """(5,) recovery-rate sd of grades D1..D5, decimal."""
        return self.tables["DifficultySD"].loc[list(GRADES), "sd"].to_numpy(float)

    @cached_property
    def sd_cap_factor(self) -> float:
        return float(self.parameter("sd_cap_factor"))


@lru_cache(maxsize=1)
def _default_assumptions() -> Assumptions:
    return Assumptions(_packaged_frames())


def from_block(rows: list[list[Any]], argument: str = "assumptions") -> Assumptions:
    """Assumptions from a worksheet range holding one or more tables.

    Tables are separated by blank rows. Each is a header row and its data, optionally under
    a title row whose only cell names the table (``StageDurations``), as the template's
    Assumptions sheet lays them out; an untitled table is recognised by its header
    (:meth:`Assumptions.from_range`). Tables not in the range keep the packaged values.
    """
    chunks, current = [], []
    for row in rows:
        if all(is_blank(c) for c in row):
            if current:
                chunks.append(current)
            current = []
        else:
            current.append(list(row))
    if current:
        chunks.append(current)
    by_key = {normalise(n): n for n in TABLE_NAMES}
    named: dict[str, list[list[Any]]] = {}
    untitled: list[list[list[Any]]] = []
    for chunk in chunks:
        filled = [c for c in chunk[0] if not is_blank(c)]
        title = by_key.get(normalise(filled[0])) if len(filled) == 1 else None
        if title is not None and len(chunk) > 1:
            named[title] = chunk[1:]
        elif len(filled) > 1:  # a header row: a table without a title
            untitled.append(chunk)
        # a lone text cell that names no table (a sheet title, a note) is skipped
    if not named and not untitled:
        raise InputTypeError("holds no assumption table (a header row such as "
                             "stage, A, B, C, or a title row naming the table)", argument=argument)
    result = Assumptions.from_tables(named) if named else Assumptions.default()
    for chunk in untitled:
        result = Assumptions.from_range(chunk, base=result, argument=argument)
    return result


@lru_cache(maxsize=16)
def _from_block_cached(key: tuple) -> Assumptions:
    return from_block([list(row) for row in key])


def from_argument(rows: list[list[Any]] | None) -> Assumptions | None:
    """The ``assumptions`` worksheet argument as Assumptions, or None for a blank argument:
    one table with its header row, or a block of tables such as the whole Assumptions
    sheet (:func:`from_block`); parsed once per distinct range content."""
    if rows is None:
        return None
    return _from_block_cached(tuple(tuple(row) for row in rows))


def resolve(assumptions: Assumptions | None) -> Assumptions:
    """``assumptions`` or the packaged defaults."""
    return assumptions if assumptions is not None else Assumptions.default()
