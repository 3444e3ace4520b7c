"""Formula text: A1 references, defined names and Excel-table structured references.

The engine never lets the formula library see a reference. :func:`templatize` lexes a
formula once, resolves defined names and structured references (``Tape[claim]``,
``Tape[[#This Row],[claim]]``, ``[@claim]``, ``Tape[#All]``...) to rectangular ranges, and
replaces every distinct range by a placeholder (``A1``, ``A2:B2``, ...) so that the text
handed to ``formulas.Parser`` depends only on the formula's *structure*. Cells filled down
with the same formula (shared formulas, calculated columns) then share one compiled
function and differ only in their :class:`Ref` list, which :meth:`Ref.shifted` moves like
Excel moves relative references.

String literals, quoted sheet names and array constants are copied untouched.
Coordinates are 0-based (row, column) everywhere in this module, as in
:mod:`npl_xl.workbook.a1` (the A1 helpers); addresses are text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from npl_xl.workbook.a1 import MAX_COLS, MAX_ROWS, column_index, column_letter, quote_sheet

__all__ = [
    "Ref", "Table", "Names", "FormulaIssue", "Template", "templatize", "translate_formula",
    "rewrite_formula",
]

_ERROR_LITERALS = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A",
                   "#GETTING_DATA")
_IDENT = r"[^\W\d][\w.\\]*"
_SHEET = rf"(?:'(?:[^']|'')+'|{_IDENT})"
_CELL = r"\$?[A-Za-z]{1,3}\$?\d+"
_COLS = r"\$?[A-Za-z]{1,3}:\$?[A-Za-z]{1,3}"
_ROWS = r"\$?\d+:\$?\d+"
_END = r"(?![\w.(\[!])"
_TOKEN = re.compile(
    rf"""
    (?P<string>"(?:[^"]|"")*")
  | (?P<error>(?:{_SHEET}!)?\#(?:NULL!|DIV/0!|VALUE!|REF!|NAME\?|NUM!|N/A|GETTING_DATA))
  | (?P<array>\{{[^{{}}"]*(?:"(?:[^"]|"")*"[^{{}}"]*)*\}})
  | (?P<spill>(?i:_xlfn\.)?(?i:ANCHORARRAY)\(\s*(?:(?P<ssheet>{_SHEET})!)?(?P<sa1>{_CELL})\s*\))
  | (?P<external>\[\d+\]{_SHEET}?!)
  | (?P<ref>(?:(?P<sheet>{_SHEET})!)?(?P<a1>{_CELL}(?::{_CELL})?|{_COLS}|{_ROWS}){_END})
  | (?P<sheet3d>{_SHEET}:{_SHEET}!)
  | (?P<qualified>(?P<qsheet>{_SHEET})!(?P<qname>{_IDENT}){_END})
  | (?P<structured>(?P<table>{_IDENT})?\[)
  | (?P<function>{_IDENT})\(
  | (?P<name>{_IDENT}){_END}
  | (?P<number>\d+(?:\.\d*)?(?:[Ee][+-]?\d+)?|\.\d+(?:[Ee][+-]?\d+)?)
  | (?P<other>[\s\S])
    """,
    re.VERBOSE,
)
_PREFIXES = re.compile(r"^(?:_xlfn\.|_xlws\.|_xll\.)+", re.IGNORECASE)
_A1_PART = re.compile(r"(\$?)([A-Za-z]{0,3})(\$?)(\d*)")


def _unquote_sheet(text: str) -> str:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    return text


@dataclass(frozen=True)
class Ref:
    """A rectangular range on one sheet, 0-based and inclusive, with Excel's ``$`` flags.

    ``abs_*`` say which coordinates stay put when the formula is filled elsewhere
    (``$A1``: column absolute). Whole-column references span every row (MAX_ROWS).
    """

    sheet: str
    row0: int
    col0: int
    row1: int
    col1: int
    abs_row0: bool = True
    abs_col0: bool = True
    abs_row1: bool = True
    abs_col1: bool = True
    address_only: bool = False  # ROW()/COLUMN(): the formula's own address, not a value
    follows_cell: bool = False  # #This Row, ROW(): moves with the cell the text is typed in

    @property
    def is_cell(self) -> bool:
        return self.row0 == self.row1 and self.col0 == self.col1

    @property
    def valid(self) -> bool:
        return 0 <= self.row0 <= self.row1 < MAX_ROWS and 0 <= self.col0 <= self.col1 < MAX_COLS

    def shifted(self, rows: int, cols: int) -> Ref:
        """The reference as it reads in a cell ``rows`` down and ``cols`` right.

        Corners that cross each other are swapped (``A1:$B$1`` one row down covers B1:A2).
        """
        row0 = self.row0 + (0 if self.abs_row0 else rows)
        row1 = self.row1 + (0 if self.abs_row1 else rows)
        col0 = self.col0 + (0 if self.abs_col0 else cols)
        col1 = self.col1 + (0 if self.abs_col1 else cols)
        abs_row0, abs_row1, abs_col0, abs_col1 = (self.abs_row0, self.abs_row1,
                                                  self.abs_col0, self.abs_col1)
        if row0 > row1:
            row0, row1, abs_row0, abs_row1 = row1, row0, abs_row1, abs_row0
        if col0 > col1:
            col0, col1, abs_col0, abs_col1 = col1, col0, abs_col1, abs_col0
        return Ref(self.sheet, row0, col0, row1, col1, abs_row0, abs_col0, abs_row1, abs_col1,
                   self.address_only, self.follows_cell)

    def a1(self, with_sheet: bool = True, dollars: bool = True) -> str:
        """The reference as A1 text (whole columns as ``A:B``)."""
        def part(row, col, abs_row, abs_col, show_row=True, show_col=True):
            text = ""
            if show_col:
                text += ("$" if abs_col and dollars else "") + column_letter(col)
            if show_row:
                text += ("$" if abs_row and dollars else "") + str(row + 1)
            return text

        if self.row0 == 0 and self.row1 == MAX_ROWS - 1 and (self.col0, self.col1) != (0, MAX_COLS - 1):
            body = (part(0, self.col0, True, self.abs_col0, show_row=False) + ":"
                    + part(0, self.col1, True, self.abs_col1, show_row=False))
        elif self.col0 == 0 and self.col1 == MAX_COLS - 1:
            body = (part(self.row0, 0, self.abs_row0, True, show_col=False) + ":"
                    + part(self.row1, 0, self.abs_row1, True, show_col=False))
        else:
            body = part(self.row0, self.col0, self.abs_row0, self.abs_col0)
            if not self.is_cell:
                body += ":" + part(self.row1, self.col1, self.abs_row1, self.abs_col1)
        return f"{quote_sheet(self.sheet)}!{body}" if with_sheet else body

    @property
    def stays_cell(self) -> bool:
        """A single cell wherever the formula is filled (``$J$1:J1`` grows: not one)."""
        return (self.is_cell and self.abs_row0 == self.abs_row1
                and self.abs_col0 == self.abs_col1)


def _parse_a1(sheet: str, text: str) -> Ref:
    """A1 text (cell, range, ``A:C`` or ``2:5``) on ``sheet`` -> :class:`Ref`."""
    parts = []
    for piece in text.split(":"):
        m = _A1_PART.fullmatch(piece)
        abs_col, letters, abs_row, digits = m.groups()
        if not letters:  # a row range: the $ sits before the digits
            abs_row, abs_col = abs_col, "$"
        parts.append((
            int(digits) - 1 if digits else None,
            column_index(letters) if letters else None,
            bool(abs_row) or not digits,
            bool(abs_col) or not letters,
        ))
    if len(parts) == 1:
        parts.append(parts[0])
    (r0, c0, ar0, ac0), (r1, c1, ar1, ac1) = parts
    if r0 is None:
        r0, r1 = 0, MAX_ROWS - 1
    if c0 is None:
        c0, c1 = 0, MAX_COLS - 1
    if r0 > r1:
        r0, r1, ar0, ar1 = r1, r0, ar1, ar0
    if c0 > c1:
        c0, c1, ac0, ac1 = c1, c0, ac1, ac0
    return Ref(sheet, r0, c0, r1, c1, ar0, ac0, ar1, ac1)


@dataclass(frozen=True)
class Table:
    """An Excel table (ListObject): its name, sheet, ref (0-based, inclusive) and columns."""

    name: str
    sheet: str
    row0: int
    col0: int
    row1: int
    col1: int
    columns: tuple[str, ...]
    header_rows: int = 1
    totals_rows: int = 0

    def column(self, name: str) -> int:
        wanted = name.strip().lower()
        for i, column in enumerate(self.columns):
            if column.strip().lower() == wanted:
                return self.col0 + i
        raise _Unresolvable("#REF!", f"table {self.name} has no column {name!r}")

    @property
    def data_rows(self) -> tuple[int, int]:
        return self.row0 + self.header_rows, self.row1 - self.totals_rows


@dataclass
class Names:
    """What a formula can refer to by name: defined names and tables.

    ``workbook`` maps upper-case name -> definition text; ``local`` maps
    (sheet, upper-case name) -> definition text (sheet-scoped names win on their sheet).
    ``tables`` maps upper-case table name -> :class:`Table`; ``spills`` maps the anchor
    (sheet, row, col) of each array formula to its range (row0, col0, row1, col1), which
    is what Excel 365's spill reference ``C7#`` (stored as ``_xlfn.ANCHORARRAY(C7)``) means.
    """

    workbook: dict[str, str]
    local: dict[tuple[str, str], str]
    tables: dict[str, Table]
    sheets: tuple[str, ...] = ()
    spills: dict[tuple[str, int, int], tuple[int, int, int, int]] = field(default_factory=dict)

    def definition(self, name: str, sheet: str) -> str | None:
        upper = name.upper()
        found = self.local.get((sheet, upper))
        return found if found is not None else self.workbook.get(upper)

    def table_at(self, sheet: str, row: int, col: int) -> Table | None:
        for table in self.tables.values():
            if (table.sheet == sheet and table.row0 <= row <= table.row1
                    and table.col0 <= col <= table.col1):
                return table
        return None

    def sheet_name(self, text: str) -> str:
        """A sheet name as written in a formula -> the workbook's spelling (case-insensitive)."""
        name = _unquote_sheet(text)
        for sheet in self.sheets:
            if sheet.lower() == name.lower():
                return sheet
        raise _Unresolvable("#REF!", f"no sheet named {name!r}")


class _Unresolvable(Exception):
    """A reference that cannot be resolved: becomes an error literal in the formula."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class _Unsupported(Exception):
    """Syntax the engine does not evaluate (external links, 3-D references, ...)."""


@dataclass(frozen=True)
class FormulaIssue:
    """Why a formula cannot be computed at all: ``#NAME?: function X is not supported``."""

    code: str
    message: str


@dataclass(frozen=True)
class Template:
    """A formula reduced to its structure.

    ``text`` is the formula with every distinct range replaced by a placeholder
    (``A{k+1}`` for a cell, ``A{k+1}:B{k+1}`` for a range) and is what gets compiled;
    ``refs[k]`` is the range behind placeholder k. ``issue`` is set when the formula
    cannot be evaluated; ``notes`` explain error literals that resolution put in the text
    (an unknown name, a missing table column).
    """

    text: str
    refs: tuple[Ref, ...]
    functions: tuple[str, ...]
    issue: FormulaIssue | None = None
    notes: tuple[str, ...] = ()
    intersects: bool = False  # a range was read as the cell in the formula's row/column

    @staticmethod
    def placeholder(k: int, ref: Ref) -> str:
        return f"A{k + 1}" if ref.stays_cell else f"A{k + 1}:B{k + 1}"

    def placeholder_keys(self) -> dict[str, int]:
        return {self.placeholder(k, ref): k for k, ref in enumerate(self.refs)}


# ---------------------------------------------------------------------------------------
# structured references


def _bracket_end(text: str, start: int) -> int:
    """Index just past the ``]`` matching the ``[`` at ``start`` (``'`` escapes a char)."""
    depth, i = 0, start
    while i < len(text):
        ch = text[i]
        if ch == "'":
            i += 2
            continue
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise _Unsupported("unbalanced [ ] in a structured reference")


def _unescape(name: str) -> str:
    return re.sub(r"'(.)", r"\1", name)


_SPECIALS = {"#ALL", "#DATA", "#HEADERS", "#TOTALS", "#THIS ROW"}


def _specifier_items(body: str) -> list[str]:
    """``[[#This Row],[a]:[c]]`` body -> ``['#This Row', 'a', ':', 'c']``; ``@a`` forms too."""
    body = body.strip()
    if not body:
        return []
    if body.startswith("@"):
        rest = body[1:].strip()
        if not rest:
            return ["#This Row"]
        if rest.startswith("["):
            return ["#This Row"] + _specifier_items(rest)
        return ["#This Row", _unescape(rest)]
    if not body.startswith("["):
        return [_unescape(body)]
    items, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "[":
            end = _bracket_end(body, i)
            items.append(_unescape(body[i + 1:end - 1]))
            i = end
        elif ch == ":":
            items.append(":")
            i += 1
        elif ch in ", \t":
            i += 1
        else:
            raise _Unsupported(f"cannot read structured reference [{body}]")
    return items


def resolve_structured(table: Table, body: str, row: int) -> Ref:
    """``Table[body]`` read in a cell of 0-based ``row`` -> an absolute :class:`Ref`.

    Rows follow Excel: no special item means ``#Data``; ``#This Row`` is the formula's own
    row and must be a data row. Columns: none means all; ``[a]:[c]`` a column range.
    """
    items = _specifier_items(body)
    specials = [i.upper() for i in items if i.upper() in _SPECIALS]
    columns = [i for i in items if i.upper() not in _SPECIALS]
    data0, data1 = table.data_rows
    this_row = "#THIS ROW" in specials
    if this_row:
        if not data0 <= row <= data1:
            raise _Unresolvable("#VALUE!", f"{table.name}[#This Row] used outside the table's rows")
        row0 = row1 = row
    elif not specials or specials == ["#DATA"]:
        row0, row1 = data0, data1
    else:
        wanted = set(specials)
        if "#ALL" in wanted:
            wanted = {"#HEADERS", "#DATA", "#TOTALS"}
        bands = []
        if "#HEADERS" in wanted:
            if not table.header_rows:
                raise _Unresolvable("#REF!", f"table {table.name} has no header row")
            bands.append((table.row0, table.row0 + table.header_rows - 1))
        if "#DATA" in wanted:
            bands.append((data0, data1))
        if "#TOTALS" in wanted:
            if not table.totals_rows and "#ALL" not in specials:
                raise _Unresolvable("#REF!", f"table {table.name} has no totals row")
            if table.totals_rows:
                bands.append((table.row1 - table.totals_rows + 1, table.row1))
        row0, row1 = min(b[0] for b in bands), max(b[1] for b in bands)
    if not columns:
        col0, col1 = table.col0, table.col1
    elif len(columns) == 1:
        col0 = col1 = table.column(columns[0])
    elif len(columns) == 3 and columns[1] == ":":
        col0, col1 = sorted((table.column(columns[0]), table.column(columns[2])))
    else:
        raise _Unsupported(f"cannot read structured reference {table.name}[{body}]")
    return Ref(table.sheet, row0, col0, row1, col1, not this_row, True, not this_row, True,
               follows_cell=this_row)


# ---------------------------------------------------------------------------------------
# lexing


def _tokens(text: str):
    """(kind, match, end) over formula text; structured references consume their brackets."""
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        kind = m.lastgroup
        if kind in ("sheet", "a1", "table", "qsheet", "qname", "ssheet", "sa1"):  # inner group
            kind = next(k for k in ("ref", "structured", "qualified", "spill")
                        if m.group(k) is not None)
        end = m.end()
        if kind == "structured":
            end = _bracket_end(text, m.end() - 1)
        yield kind, m, end
        pos = end


def _definition_refs(definition: str, names: Names, sheet: str, row: int, col: int,
                     depth: int, notes: list | None, functions: list | None,
                     own_cell: bool = False) -> Ref | list:
    """A defined name's definition -> a Ref (when it is one range) or resolved pieces."""
    if depth > 20:
        raise _Unresolvable("#NAME?", "defined names refer to each other in a loop")
    text = definition.strip().lstrip("=")
    pieces = list(_resolve_pieces(text, names, sheet, row, col, depth + 1, notes, functions,
                                  own_cell))
    refs = [p for p in pieces if isinstance(p, Ref)]
    rest = "".join(p for p in pieces if isinstance(p, str)).strip()
    if len(refs) == 1 and not rest:
        return refs[0]
    return pieces


_LAMBDA_DEFINITION = re.compile(r"\s*=?\s*(?:_xlfn\.)?LAMBDA\(", re.IGNORECASE)


def _definition_pieces(definition: str, names: Names, sheet: str, row: int, col: int,
                       depth: int, notes, functions, own_cell: bool) -> list:
    if depth > 20:
        raise _Unresolvable("#NAME?", "defined names refer to each other in a loop")
    return list(_resolve_pieces(definition.strip().lstrip("="), names, sheet, row, col,
                                depth + 1, notes, functions, own_cell))


def _resolve_pieces(text: str, names: Names, sheet: str, row: int, col: int, depth: int = 0,
                    notes: list | None = None, functions: list | None = None,
                    own_cell: bool = False):
    """Formula text -> pieces: literal text, or a :class:`Ref` for each reference.

    ``own_cell``: functions of :data:`OWN_CELL_FUNCTIONS` renamed and given the cell
    (for compiling; the readable form keeps them as typed).
    """
    for kind, m, end in _tokens(text):
        raw = text[m.start():end]
        try:
            if kind == "ref":
                ref_sheet = names.sheet_name(m.group("sheet")) if m.group("sheet") else sheet
                yield _parse_a1(ref_sheet, m.group("a1"))
            elif kind == "spill":
                anchor_sheet = names.sheet_name(m.group("ssheet")) if m.group("ssheet") else sheet
                anchor = _parse_a1(anchor_sheet, m.group("sa1"))
                spill = names.spills.get((anchor_sheet, anchor.row0, anchor.col0))
                if spill is None:
                    raise _Unresolvable("#REF!", f"{anchor.a1(dollars=False)}# is not an array "
                                                 "formula with a saved range")
                yield Ref(anchor_sheet, *spill)
            elif kind == "structured":
                table_name = m.group("table")
                if table_name is None:
                    table = names.table_at(sheet, row, col)
                    if table is None:
                        raise _Unresolvable("#REF!", f"{raw} is used outside a table")
                else:
                    table = names.tables.get(table_name.upper())
                    if table is None:
                        raise _Unresolvable("#REF!", f"no table named {table_name}")
                yield resolve_structured(table, raw[len(table_name or ""):][1:-1], row)
            elif kind in ("name", "qualified"):
                name = m.group("name") if kind == "name" else m.group("qname")
                scope = names.sheet_name(m.group("qsheet")) if kind == "qualified" else sheet
                upper = name.upper()
                if upper in ("TRUE", "FALSE") or upper.startswith(("_XLPM.", "_XLETA.")):
                    yield raw  # LAMBDA/LET parameters, built-ins passed as a LAMBDA
                    continue
                definition = names.definition(name, scope)
                if definition is not None:
                    resolved = _definition_refs(definition, names, scope, row, col, depth,
                                                notes, functions, own_cell)
                    if isinstance(resolved, Ref):
                        yield resolved
                    else:
                        yield "("
                        yield from resolved
                        yield ")"
                elif upper in names.tables:
                    yield resolve_structured(names.tables[upper], "", row)
                else:
                    raise _Unresolvable("#NAME?", f"name {name} is not defined")
            elif kind == "function":
                definition = names.definition(m.group("function"), sheet)
                if definition is not None and _LAMBDA_DEFINITION.match(definition):
                    # a defined name holding a LAMBDA, called: =MYLAMBDA(2,1,2) is
                    # (LAMBDA(x,y,z,...))(2,1,2)
                    yield "("
                    yield from _definition_pieces(definition, names, sheet, row, col, depth,
                                                  notes, functions, own_cell)
                    yield ")"
                    yield "("
                    continue
                if functions is not None:
                    functions.append(m.group("function"))
                bare = _PREFIXES.sub("", m.group("function")).upper()
                if own_cell and bare in OWN_CELL_FUNCTIONS:
                    # formulas reads INDIRECT("A1") as a range literal and folds calls
                    # without references at compile time: renamed, and given the cell
                    # itself (where INDIRECT's text is read) as a first argument
                    yield f"{OWN_CELL_FUNCTIONS[bare]}("
                    yield Ref(sheet, row, col, row, col, False, False, False, False, True, True)
                    yield ","
                    continue
                yield raw
                if m.group("function").upper() in ("ROW", "COLUMN") and text[end:end + 1] == ")":
                    yield Ref(sheet, row, col, row, col, False, False, False, False, True, True)
            elif kind == "external":
                function = re.match(rf"\[\d+\]!({_IDENT})\(", text[m.start():])
                if function:  # an add-in function saved as [1]!NPL_X( : call it by name
                    continue
                raise _Unsupported("references to other workbooks are not supported")
            elif kind == "error":  # Sheet1!#REF! (a deleted range) is plain #REF!
                yield raw[raw.index("#"):]
            elif kind == "sheet3d":
                raise _Unsupported("3-D references across sheets are not supported")
            else:
                yield raw
        except _Unresolvable as exc:
            if notes is not None:
                notes.append(f"{exc.code}: {exc.message}")
            yield exc.code


def rewrite_formula(formula: str, names: Names, sheet: str, row: int, col: int) -> str:
    """Formula text with names and structured references replaced by absolute A1 ranges.

    ``=SUM(Tape[claim])`` in any cell -> ``=SUM(Tape!$C$2:$C$11)``; ``[@claim]`` in row 5
    of the table -> ``Tape!C5``. Unresolvable references become error literals
    (``#REF!``, ``#NAME?``), as Excel would show them. This is the readable form of what
    :func:`templatize` compiles.
    """
    text = formula[1:] if formula.startswith("=") else formula
    pieces = _resolve_pieces(text, names, sheet, row, col)
    return "=" + "".join(p if isinstance(p, str) else p.a1() for p in pieces)


#: functions whose arguments are single values: a range given to them in a plain
#: (non-array) formula means the one cell in the formula's row or column (Excel's
#: implicit intersection); aggregates and lookups take the whole range instead
SCALAR_ARGUMENTS = frozenset({
    "IF", "IFERROR", "IFNA", "ISNA", "ISERROR", "ISERR", "ISNUMBER", "ISTEXT", "ISBLANK",
    "ISLOGICAL", "NOT", "ROUND", "ROUNDUP", "ROUNDDOWN", "ABS", "INT", "EXP", "LN", "SQRT",
    "MOD", "POWER", "SIGN", "LEFT", "RIGHT", "MID", "LEN", "UPPER", "LOWER", "TRIM", "DATE",
    "YEAR", "MONTH", "DAY", "EDATE", "EOMONTH", "VALUE", "N", "TEXT", "CHAR", "CODE",
})

#: functions that read where their argument is, not its values (no dependency on it)
ADDRESS_ARGUMENTS = frozenset({"ROW", "COLUMN", "ROWS", "COLUMNS", "AREAS", "ISREF",
                               "ISFORMULA", "CELL"})

#: functions whose result depends on the cell they are typed in -> the name the engine
#: registers them under (their first argument is then that cell)
OWN_CELL_FUNCTIONS = {"INDIRECT": "_XLNPL.INDIRECT", "CELL": "_XLNPL.CELL"}

_FUNCTION_PIECE = re.compile(rf"({_IDENT})\($")


def _corner(pick, a: Ref, b: Ref, side: str) -> tuple[int, bool]:
    """One side of a combined range: its coordinate and ``$`` flag from the Ref giving it."""
    source = a if pick(getattr(a, side), getattr(b, side)) == getattr(a, side) else b
    return getattr(source, side), getattr(source, "abs_" + side)


def _combined(a: Ref, b: Ref, outer: bool) -> Ref:
    lo, hi = (min, max) if outer else (max, min)
    (row0, ar0), (col0, ac0) = _corner(lo, a, b, "row0"), _corner(lo, a, b, "col0")
    (row1, ar1), (col1, ac1) = _corner(hi, a, b, "row1"), _corner(hi, a, b, "col1")
    return Ref(a.sheet, row0, col0, row1, col1, ar0, ac0, ar1, ac1)


def _bounding(a: Ref, b: Ref) -> Ref | None:
    """``A1:B2:C3`` (range operator): the smallest range holding both, same sheet only."""
    return _combined(a, b, outer=True) if a.sheet == b.sheet else None


def _intersection(a: Ref, b: Ref) -> Ref | None:
    """``B2:E5 C3:D4`` (intersection operator): the common cells, None when there are none."""
    if a.sheet != b.sheet:
        return None
    joined = _combined(a, b, outer=False)
    return joined if joined.row0 <= joined.row1 and joined.col0 <= joined.col1 else None


def _apply_range_operators(pieces: list, notes: list) -> list:
    """Ranges joined by ``:`` or by spaces (intersection) resolved to one Ref each."""
    for operator in (":", " "):
        out: list = []
        i = 0
        while i < len(pieces):
            piece = pieces[i]
            if (isinstance(piece, Ref) and len(out) >= 2 and isinstance(out[-2], Ref)
                    and isinstance(out[-1], str) and out[-1] != ""
                    and (out[-1] == ":" if operator == ":" else out[-1].strip(" ") == "")):
                left = out[-2]
                joined = _bounding(left, piece) if operator == ":" else _intersection(left, piece)
                del out[-2:]
                if joined is None:
                    code = "#REF!" if operator == ":" else "#NULL!"
                    notes.append(f"{code}: " + ("ranges on different sheets" if operator == ":"
                                                else "the ranges have no cell in common"))
                    out.append(code)
                else:
                    out.append(joined)
            else:
                out.append(piece)
            i += 1
        pieces = _merge_spaces(out) if operator == ":" else out
    return pieces


def _merge_spaces(pieces: list) -> list:
    """Runs of whitespace pieces as one piece (so ``A1  B1`` is one operator)."""
    out: list = []
    for piece in pieces:
        if (isinstance(piece, str) and piece.isspace() and out and isinstance(out[-1], str)
                and out[-1].isspace()):
            out[-1] += piece
        else:
            out.append(piece)
    return out


def _in_context(pieces: list, row: int, col: int, intersect: bool, notes: list,
                intersected: list) -> list:
    """Refs as their context reads them.

    A direct argument of ROW/ROWS/... (:data:`ADDRESS_ARGUMENTS`) is ``address_only``:
    the formula does not depend on its cells. With ``intersect`` (a plain formula), a
    multi-cell range outside every function, or inside functions of single values
    only (:data:`SCALAR_ARGUMENTS`), is the cell in the formula's row (a column range)
    or column (a row range): ``=Pmt_Nbr*2`` in row 18 reads row 18 of the column only.
    """
    out = []
    stack: list[str | None] = []  # enclosing functions; None for a bracketing parenthesis
    for k, piece in enumerate(pieces):
        if isinstance(piece, str):
            m = _FUNCTION_PIECE.search(piece)
            if m:
                stack.append(_PREFIXES.sub("", m.group(1)).upper())
            elif piece == "(":
                stack.append(None)
            elif piece == ")" and stack:
                stack.pop()
            out.append(piece)
            continue
        enclosing = [f for f in stack if f is not None]
        before = next((p for p in reversed(out) if not (isinstance(p, str) and p.isspace())), "")
        first_of_offset = isinstance(before, str) and bool(
            re.search(r"(?i)\bOFFSET\($", before))  # OFFSET moves its base: no value read
        if (enclosing and stack[-1] is not None and enclosing[-1] in ADDRESS_ARGUMENTS) \
                or first_of_offset:
            out.append(replace(piece, address_only=True))
            continue
        if (intersect and not piece.is_cell and not piece.address_only
                and all(f in SCALAR_ARGUMENTS for f in enclosing)):
            intersected.append(piece)
            if piece.col0 == piece.col1 and piece.row0 <= row <= piece.row1:
                out.append(Ref(piece.sheet, row, piece.col0, row, piece.col0, False, True,
                               False, True, follows_cell=True))
            elif piece.row0 == piece.row1 and piece.col0 <= col <= piece.col1:
                out.append(Ref(piece.sheet, piece.row0, col, piece.row0, col, True, False,
                               True, False, follows_cell=True))
            else:
                notes.append(f"#VALUE!: {piece.a1()} has no cell in the formula's row or "
                             "column (implicit intersection)")
                out.append("#VALUE!")
            continue
        out.append(piece)
    return out


def templatize(formula: str, names: Names, sheet: str, row: int, col: int,
               known_functions, intersect: bool = False) -> Template:
    """Formula text in cell (sheet, row, col) -> its :class:`Template`.

    ``known_functions`` is a container of upper-case function names the engine can
    evaluate; ``_xlfn.``/``_xlws.`` prefixes are dropped when the bare name is known.
    ``intersect``: the formula is a plain one (not an array formula), so a range where
    one value is expected means one cell (:func:`_in_context`).
    """
    text = formula[1:] if formula.startswith("=") else formula
    notes: list[str] = []
    functions: list[str] = []
    try:
        pieces = list(_resolve_pieces(text, names, sheet, row, col, notes=notes,
                                      functions=functions, own_cell=True))
    except _Unsupported as exc:
        return Template("", (), (), FormulaIssue("#NAME?", str(exc)))
    intersected: list[Ref] = []
    pieces = _in_context(_apply_range_operators(pieces, notes), row, col, intersect, notes,
                         intersected)
    out, refs, index = [], [], {}
    # formulas' parser drops line breaks inside string literals: spelled as CHAR(10)
    pieces = [f'({piece})'.replace("\r", '"&CHAR(13)&"').replace("\n", '"&CHAR(10)&"')
              if isinstance(piece, str) and piece.startswith('"') and ("\n" in piece or "\r" in piece)
              else piece for piece in pieces]
    for piece in pieces:
        if isinstance(piece, Ref):
            k = index.setdefault(piece, len(refs))
            if k == len(refs):
                refs.append(piece)
            out.append(Template.placeholder(k, piece))
        else:
            out.append(piece)
    body = "".join(out)
    unknown = []
    for name in dict.fromkeys(functions):
        upper = name.upper()
        if upper in known_functions or upper.startswith("_XLPM."):  # a LAMBDA parameter
            continue
        bare = _PREFIXES.sub("", upper)
        if bare in known_functions:
            body = re.sub(re.escape(name) + r"\(", bare + "(", body)
        else:
            unknown.append(_PREFIXES.sub("", name))
    issue = None
    if unknown:
        issue = FormulaIssue("#NAME?", f"function {', '.join(unknown)} is not supported")
    return Template("=" + body, tuple(refs), tuple(functions), issue, tuple(notes),
                    bool(intersected))


def _shift_part(part: str, rows: int, cols: int) -> str | None:
    """One corner of an A1 reference (``$B2``, ``C``, ``$7``) moved; None if off the sheet."""
    abs_col, letters, abs_row, digits = _A1_PART.fullmatch(part).groups()
    if not letters:  # a row of a row range: the $ was matched as the column's
        abs_row, abs_col = abs_col, ""
    text = ""
    if letters:
        col = column_index(letters) + (0 if abs_col else cols)
        if not 0 <= col < MAX_COLS:
            return None
        text += abs_col + column_letter(col)
    if digits:
        row = int(digits) - 1 + (0 if abs_row else rows)
        if not 0 <= row < MAX_ROWS:
            return None
        text += abs_row + str(row + 1)
    return text


def translate_formula(formula: str, rows: int, cols: int) -> str:
    """Formula text as Excel writes it ``rows`` down and ``cols`` right of the original.

    Relative parts of A1 references move; ``$`` parts, names, structured references and
    string literals stay. A reference moved off the sheet becomes ``#REF!``. This is the
    text of a shared formula's cell (``<f t="shared" si=..>``) at that offset.
    """
    out = []
    text = formula[1:] if formula.startswith("=") else formula
    for kind, m, end in _tokens(text):
        if kind != "ref":
            out.append(text[m.start():end])
            continue
        moved = [_shift_part(part, rows, cols) for part in m.group("a1").split(":")]
        if None in moved:
            out.append("#REF!")
            continue
        prefix = m.group("sheet") + "!" if m.group("sheet") else ""
        out.append(prefix + ":".join(moved))
    return ("=" if formula.startswith("=") else "") + "".join(out)
