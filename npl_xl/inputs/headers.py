"""Header mapping: which column of a table as it comes from a data room holds which field.

One alias table for every table npl-xl reads (``npl_xl/inputs/data/header_aliases.csv``:
table kind, canonical field, alias, source), documented in docs/TAPES.md. A header matches
a field when its comparison key (:func:`header_key`) equals the key of one of the field's
aliases; a workbook table ``HeaderMap`` (source header, field[, table]) adds any other
spelling. Money headers may end with their unit in half- or full-width brackets::

    未偿本金余额（万元）  ->  field principal, unit 10,000 元
    Principal Balance (亿元)   ->  field principal, unit 100,000,000 元

EBA headers match with or without their field index ("3.09 Principal Balance",
"Principal Balance", "3.09").

:func:`map_headers` is the one entry point (``kind`` = "tape", "collateral",
"guarantees", or any kind a later table adds to the CSV, such as collections); it
returns a :class:`HeaderMapping` saying which header went to which field and through
which alias, which headers were ignored, and the unit of each money column.
"""

from __future__ import annotations

import csv
import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from npl_xl.errors import InputTypeError
from npl_xl.inputs.codes import DATA_DIR, normalise

__all__ = ["Alias", "aliases", "header_key", "split_unit", "money_unit_factor", "MONEY_UNITS",
           "HeaderMapping", "map_headers", "closest_headers", "parse_header_map"]

ALIAS_FILE = DATA_DIR / "header_aliases.csv"

#: Money units a header or the Settings key money_unit may name: spelling -> 元 per unit.
MONEY_UNITS = {"元": 1.0, "人民币元": 1.0, "yuan": 1.0, "cny": 1.0, "rmb": 1.0,
               "千元": 1e3, "万元": 1e4, "万": 1e4, "百万元": 1e6, "百万": 1e6,
               "亿元": 1e8, "亿": 1e8}
_UNIT_AT_END = re.compile(r"[(（\[【]\s*(?:单位\s*[:：]\s*)?([^()（）\[\]【】]+?)\s*[)）\]】]\s*$")
_EBA_INDEX = re.compile(r"^\s*(\d{1,2}\.\d{2})\s*")


@dataclass(frozen=True)
class Alias:
    """One row of the alias table: table kind, canonical field, the alias text, its source."""

    table: str
    field: str
    alias: str
    source: str


@lru_cache(maxsize=1)
def _rows() -> tuple[Alias, ...]:
    lines = [line for line in ALIAS_FILE.read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]
    return tuple(Alias(r["table"], r["field"], r["alias"], r["source"])
                 for r in csv.DictReader(lines))


def aliases(kind: str | None = None) -> tuple[Alias, ...]:
    """The alias table's rows (of one table kind when given), in file order."""
    return tuple(a for a in _rows() if kind is None or a.table == kind)


def money_unit_factor(text: Any, argument: str = "money_unit") -> float:
    """元 per unit of a unit name (元, 万元, 亿元, ...) or a positive number (10000)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text > 0:
            return float(text)
        raise InputTypeError(f"must be > 0, got {text:g}", argument=argument)
    key = unicodedata.normalize("NFKC", str(text)).strip().casefold()
    if key in MONEY_UNITS:
        return MONEY_UNITS[key]
    raise InputTypeError(f"unknown money unit {text!r}; use 元, 千元, 万元, 百万元 or 亿元 "
                         "(or the number of 元 per unit)", argument=argument)


def split_unit(header: Any) -> tuple[str, float | None, str | None]:
    """(header without a trailing money unit, 元 per unit or None, the unit as written).

    Only a bracketed unit at the end counts: 未偿本金余额（万元） -> (未偿本金余额, 10000, 万元);
    a bracket that is not a money unit (利息(含罚息)) is left in the header."""
    text = str(header).strip()
    match = _UNIT_AT_END.search(text)
    if match:
        unit = unicodedata.normalize("NFKC", match.group(1)).strip().casefold()
        if unit in MONEY_UNITS:
            return text[: match.start()].strip(), MONEY_UNITS[unit], match.group(1).strip()
    return text, None, None


def header_key(header: Any) -> str:
    """Comparison key of a header (unit removed): :func:`npl_xl.inputs.codes.normalise`."""
    return normalise(split_unit(header)[0])


def _keys_of(alias: str) -> list[str]:
    """The keys an alias matches: itself and, for an EBA field, its name and its index."""
    keys = [normalise(alias)]
    match = _EBA_INDEX.match(alias)
    if match and alias[match.end():].strip():
        keys += [normalise(alias[match.end():]), normalise(match.group(1))]
    return keys


@lru_cache(maxsize=None)
def _lookup(kind: str) -> dict[str, Alias]:
    table: dict[str, Alias] = {}
    for alias in aliases(kind):
        for key in _keys_of(alias.alias):
            other = table.setdefault(key, alias)
            if other.field != alias.field:
                raise ValueError(f"alias {alias.alias!r} of {kind} means both {other.field} and "
                                 f"{alias.field}")
    return table


def fields_of(kind: str) -> list[str]:
    """The canonical fields of a table kind, in the alias table's order."""
    out: list[str] = []
    for alias in aliases(kind):
        if alias.field not in out:
            out.append(alias.field)
    return out


@dataclass
class HeaderMapping:
    """How a header row was read.

    fields: field -> column index (0-based within the row). units: field -> 元 per unit
    written in its header (absent: no unit in the header). matched: (column, header, field,
    via) with via the alias matched, "HeaderMap" or "canonical". ignored: (column, header)
    of the headers that map to no field (kept as extra columns). problems: headers mapped
    twice to the same field, units on columns that are not money.
    """

    fields: dict[str, int] = field(default_factory=dict)
    units: dict[str, float] = field(default_factory=dict)
    matched: list[tuple[int, str, str, str]] = field(default_factory=list)
    ignored: list[tuple[int, str]] = field(default_factory=list)
    duplicates: list[tuple[int, int, str]] = field(default_factory=list)  # (column, first column, field)


def parse_header_map(rows: list[list[Any]] | None, kind: str = "tape") -> dict[str, str]:
    """The workbook's HeaderMap table (header row, then source header, field[, table]) as
    {header key: field} for one table kind; a row with a blank or other table applies to
    "tape" only when blank. Unknown fields raise InputTypeError naming the row."""
    if not rows:
        return {}
    known = set(fields_of(kind))
    out: dict[str, str] = {}
    body = rows[1:] if rows and rows[0] and normalise(rows[0][0]) in (
        "sourceheader", "header", "source", "表头", "原表头") else rows
    for r, row in enumerate(body, start=2 if body is not rows else 1):
        row = list(row) + [None, None, None]
        source, target, table = row[0], row[1], row[2]
        if source is None or str(source).strip() == "":
            continue
        table_kind = normalise(table) if table is not None and str(table).strip() else "tape"
        if table_kind != normalise(kind):
            continue
        name = str(target).strip() if target is not None else ""
        canonical = _lookup(kind).get(normalise(name))
        if canonical is None or (canonical.field not in known):
            raise InputTypeError(f"row {r}: field {name!r} is not a {kind} field; fields: "
                                 + ", ".join(sorted(known)), argument="HeaderMap")
        out[header_key(source)] = canonical.field
    return out


def map_headers(kind: str, header: list[Any], header_map: dict[str, str] | None = None,
                money_fields: frozenset[str] | set[str] = frozenset()) -> HeaderMapping:
    """Map one header row of a table of ``kind`` to canonical fields (module docstring).

    header_map: extra spellings ({header key: field}, :func:`parse_header_map`), which win
    over the alias table. money_fields: the fields that may carry a unit in their header;
    a unit on another header leaves the unit in its name (it then matches nothing).
    """
    lookup = _lookup(kind)
    extra = header_map or {}
    mapping = HeaderMapping()
    for j, title in enumerate(header):
        if title is None or str(title).strip() == "":
            continue
        text, unit, _ = split_unit(title)
        key = normalise(text)
        name = extra.get(key)
        via = "HeaderMap"
        if name is None and key in lookup:
            name, via = lookup[key].field, lookup[key].alias
        if name is not None and unit is not None and name not in money_fields:
            name = None  # a unit on a non-money header: not this field
        if name is None:
            mapping.ignored.append((j, str(title).strip()))
            continue
        if name in mapping.fields:
            mapping.duplicates.append((j, mapping.fields[name], name))
            continue
        mapping.fields[name] = j
        mapping.matched.append((j, str(title).strip(), name, via))
        if unit is not None:
            mapping.units[name] = unit
    return mapping


def closest_headers(kind: str, field_name: str, headers: list[str], n: int = 3) -> list[str]:
    """The headers (of those given) that came closest to any alias of ``field_name``, best
    first, at most n, each at a similarity of at least 0.4 (difflib ratio of the keys)."""
    keys = [k for a in aliases(kind) if a.field == field_name for k in _keys_of(a.alias)]
    scored = []
    for header in headers:
        hk = header_key(header)
        if not hk:
            continue
        best = max((difflib.SequenceMatcher(None, hk, k).ratio() for k in keys), default=0.0)
        if any(len(k) >= 2 and (k in hk or hk in k) for k in keys):
            best = max(best, 0.75)
        if best >= 0.4:
            scored.append((best, header))
    scored.sort(key=lambda s: -s[0])
    return [h for _, h in scored[:n]]
