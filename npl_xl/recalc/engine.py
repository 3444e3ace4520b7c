"""Evaluate every formula of a workbook: own dependency graph, ``formulas`` for the maths.

Why not ``formulas.ExcelModel``: it builds a schedula dispatcher node per cell and range and
takes about 50 s for a 10,000 x 18 loan tape with 50 formulas (benchmarks/results/recalc.md),
and cannot read structured references. Here the workbook is read once into one numpy
object grid per sheet; each formula is reduced to a :class:`~.references.Template` (its
ranges replaced by placeholders) and compiled once per distinct template with
``formulas.Parser``, so a column of 10,000 filled-down formulas compiles once. Formula cells
are evaluated in topological order; a range argument is a slice of the grid (a view, no
copy), which is the fast path for SUM/SUMPRODUCT/lookups over a whole tape column. A range
that overlaps formula cells depends on them. Cells sharing an element-wise template that
do not read each other (calculated columns) are computed in one call on columns.

Coordinates are 0-based (row, col); addresses in results are ``Sheet!A1``.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import schedula as sh

from npl_xl.errors import XlError
from npl_xl.recalc import functions as fx
from npl_xl.recalc import lambdas
from npl_xl.recalc.references import FormulaIssue, Ref, Template, templatize, translate_formula
from npl_xl.recalc.xlsx import (CalcSettings, FormulaCell, ParsedWorkbook, read_calc_settings,
    read_package)
from npl_xl.workbook.a1 import MAX_COLS, MAX_ROWS, cell_address, quote_sheet

__all__ = ["CellError", "Evaluation", "evaluate_package", "evaluate_workbook", "address"]

#: what a native error means when no NPL function said why
_NATIVE_MEANING = {
    "#DIV/0!": "division by zero",
    "#N/A": "value not available (e.g. a lookup found no match)",
    "#VALUE!": "wrong type of argument or operand",
    "#NUM!": "invalid number",
    "#REF!": "invalid reference",
    "#NAME?": "unknown name or function",
    "#NULL!": "empty intersection of ranges",
    "#SPILL!": "the spill range of a dynamic array is not empty",
}


#: functions that look at the reference itself, not only its values: their arguments are
#: passed as ``formulas`` Ranges carrying the real address (slower, so only for them)
_REFERENCE_FUNCTIONS = frozenset({"ROW", "COLUMN", "ROWS", "COLUMNS", "AREAS", "ISREF",
                                  "SINGLE", "_XLFN.SINGLE", "OFFSET", "ISFORMULA",
                                  "_XLFN.ISFORMULA", "CELL", "INDIRECT", "SUBTOTAL",
                                  "AGGREGATE", "_XLFN.AGGREGATE", "DSUM", "DAVERAGE",
                                  "DCOUNT", "DCOUNTA", "DGET", "DMAX", "DMIN", "DPRODUCT",
                                  "DSTDEV", "DSTDEVP", "DVAR", "DVARP"})

#: how deep dynamic references (INDIRECT/OFFSET) may nest cells computed on demand
_MAX_DEMAND_DEPTH = 150

_R1C1 = re.compile(r"^(?:(?P<sheet>'(?:[^']|'')+'|[^!]+)!)?R(?P<r>\[-?\d+\]|\d+)?"
                   r"C(?P<c>\[-?\d+\]|\d+)?$", re.IGNORECASE)


#: functions that treat a referenced cell unlike a typed value (AVERAGE skips text in a
#: cell but not a typed "1"; TYPE of a range is 64): a single cell reaches them as a
#: 1x1 range, to every other function as its value
_REFERENCE_AWARE = re.compile(
    r"(?:_XLFN\.)*(?:AVERAGE|COUNT|MAX|MIN|STDEV|VAR|SUM|MEDIAN|GEOMEAN|HARMEAN|AVEDEV|DEVSQ"
    r"|TYPE|X?NPV|X?IRR|MIRR|TREND|GROWTH|LINEST|LOGEST|FORECAST|TEXTSPLIT|PRODUCT|AND|OR|XOR"
    r"|CONCAT|TEXTJOIN|MODE|LARGE|SMALL|PERCENT|QUARTILE|RANK|KURT|SKEW|CORREL|COVAR|PEARSON"
    r"|RSQ|SLOPE|INTERCEPT|STEYX|INDEX|MATCH|X?LOOKUP|VLOOKUP|HLOOKUP|XMATCH|CHOOSE|N$|T$"
    r"|SUBTOTAL|AGGREGATE|D[A-Z]+$|FILTER|SORT|UNIQUE|TAKE|DROP|[VH]STACK|TRANSPOSE|MMULT)",
    re.IGNORECASE)


def _keeps_references(functions) -> bool:
    return any(_REFERENCE_AWARE.match(f) for f in functions)


#: functions that work cell by cell when given columns of values (Excel's array
#: semantics), so cells sharing a formula built from them and operators can be computed
#: in one call; aggregates (SUM, AND, MIN...) are deliberately absent
_ELEMENTWISE = frozenset({
    "IF", "IFERROR", "IFNA", "_XLFN.IFNA", "ISNA", "ISERROR", "ISERR", "ISNUMBER", "ISTEXT",
    "ISBLANK", "ISLOGICAL", "NOT", "ROUND", "ROUNDUP", "ROUNDDOWN", "ABS", "INT", "EXP", "LN",
    "SQRT", "MOD", "POWER", "SIGN", "LEFT", "RIGHT", "MID", "LEN", "UPPER", "LOWER", "TRIM",
})

#: ranges larger than this many cells are clipped to the sheet's used area rather than
#: padded with blanks (A1:XFD1048576 would otherwise need 17 billion cells)
_MAX_PADDED = 5_000_000


def address(sheet: str, row: int, col: int) -> str:
    return f"{sheet}!{cell_address(row, col)}"


@dataclass(frozen=True)
class CellError:
    """A formula cell that ends in an error value, or could not be computed at all."""

    code: str
    message: str
    computed: bool = True

    def describe(self) -> str:
        if not self.computed:
            return f"could not be computed ({self.code}: {self.message})"
        return f"{self.code} — {self.message}" if self.message else self.code


@dataclass
class Node:
    """One formula: a single cell, or the whole range of an array formula."""

    sheet: int
    row: int
    col: int
    rows: int
    cols: int
    formula: str
    template: Template
    refs: tuple[Ref, ...]
    is_array: bool = False
    offset: tuple[int, int] = (0, 0)  # shared-formula cell: where it sits from its master
    dynamic: bool = False  # a spilled dynamic array: its range follows its result
    blocked: str | None = None  # why its spill range cannot be used (#SPILL!)

    @property
    def text(self) -> str:
        """The formula as this cell reads it (a shared formula's master text, moved)."""
        return translate_formula(self.formula, *self.offset) if self.offset != (0, 0) \
            else self.formula


@dataclass
class Evaluation:
    """Computed values of every formula cell (array formulas: every cell of their range).

    ``values[(sheet, row, col)]`` is a float, str, bool or :class:`npl_xl.errors.XlError`;
    ``errors`` holds the cells whose value is an error or that could not be computed;
    ``formulas`` the formula text by anchor cell.
    """

    package: ParsedWorkbook
    values: dict[tuple[str, int, int], Any] = field(default_factory=dict)
    errors: dict[tuple[str, int, int], CellError] = field(default_factory=dict)
    formulas: dict[tuple[str, int, int], str] = field(default_factory=dict)
    #: dynamic arrays whose spill range changed: anchor -> (saved range, new range), each
    #: (row0, col0, row1, col1); the new range is the anchor alone for a #SPILL!
    spills: dict[tuple[str, int, int], tuple[tuple, tuple]] = field(default_factory=dict)

    def by_address(self) -> dict[str, Any]:
        """``{'Sheet!A1': value}`` for every formula cell."""
        return {address(*key): value for key, value in self.values.items()}

    @property
    def cells_computed(self) -> int:
        return sum(1 for key in self.values
                   if key not in self.errors or self.errors[key].computed)


def _compile(text: str, cache: dict):
    """Compile a template's text once: (function, problem, messages logged while compiling).

    ``formulas`` folds constant sub-expressions at compile time, so an NPL function with
    literal arguments runs (and reports its error message) during compilation.
    """
    if text not in cache:
        import formulas

        fx.LOG.take()
        try:
            if lambdas.uses_lambdas(text):
                function = lambdas.compile_lambda_formula(
                    text, lambda plain: formulas.Parser().ast(plain)[1].compile())
            else:
                function = formulas.Parser().ast(text)[1].compile()
            cache[text] = (function, None, fx.LOG.take())
        except Exception as exc:  # the library's parse errors have no common base class
            cache[text] = (None, f"formula syntax not supported ({type(exc).__name__})", [])
    return cache[text]


class _Templates:
    """:func:`templatize` with a cache for the same text typed into many cells.

    A calculated column written cell by cell (``[@claim]*[@rate]`` in every row) has one
    text; its A1 references mean the same cells wherever it is typed, and only references
    that follow the cell (``#This Row``, ``ROW()``) move. So the template is made once per
    (sheet, text, table the cell is in) and those references are moved for each cell.
    """

    def __init__(self, names, known_functions):
        self.names, self.known = names, known_functions
        self.cache: dict[tuple, tuple[Template, int, int]] = {}

    def __call__(self, text: str, sheet: str, row: int, col: int,
                 intersect: bool = True) -> tuple[Template, tuple]:
        table = self.names.table_at(sheet, row, col)
        in_data = table is not None and table.data_rows[0] <= row <= table.data_rows[1]
        key = (sheet, text, table.name if table else None, in_data, intersect)
        cached = self.cache.get(key)
        if cached is not None:
            template, base_row, base_col = cached
            dr, dc = row - base_row, col - base_col
            return template, tuple(r.shifted(dr, dc) if r.follows_cell else r
                                   for r in template.refs)
        template = templatize(text, self.names, sheet, row, col, self.known, intersect)
        if not template.notes and not template.intersects:  # these depend on the position
            self.cache[key] = (template, row, col)
        return template, template.refs


def _build_nodes(package: ParsedWorkbook, known_functions) -> list[Node]:
    nodes: list[Node] = []
    names = package.names
    templates = _Templates(names, known_functions)
    for index, sheet in enumerate(package.sheets):
        masters: dict[str, tuple[FormulaCell, Template, tuple[Ref, ...]]] = {}
        for cell in sheet.formulas:
            if cell.kind == "shared" and cell.text is None:
                master = masters.get(cell.shared_index)
                if master is None:
                    template = Template("", (), (), FormulaIssue(
                        "#NAME?", f"shared formula {cell.shared_index} has no master cell"))
                    nodes.append(Node(index, cell.row, cell.col, 1, 1, "", template, ()))
                    continue
                first, template, first_refs = master
                dr, dc = cell.row - first.row, cell.col - first.col
                if template.intersects or template.notes:  # depends on the position
                    moved = translate_formula(first.text or "", dr, dc)
                    try:
                        own, own_refs = templates(moved, sheet.name, cell.row, cell.col)
                    except Exception as exc:
                        own, own_refs = Template("", (), (), FormulaIssue(
                            "#NAME?", f"formula could not be read ({type(exc).__name__}: {exc})")), ()
                    nodes.append(Node(index, cell.row, cell.col, 1, 1, first.text, own,
                                      own_refs, offset=(dr, dc)))
                    continue
                nodes.append(Node(index, cell.row, cell.col, 1, 1, first.text, template,
                                  tuple(r.shifted(dr, dc) for r in first_refs),
                                  offset=(dr, dc)))
                continue
            text = cell.text or ""
            refs: tuple[Ref, ...] = ()
            if cell.kind == "dataTable":
                template = Template("", (), (), FormulaIssue(
                    "#NAME?", "what-if data tables are not supported"))
            else:
                try:
                    template, refs = templates(text, sheet.name, cell.row, cell.col,
                                               intersect=cell.kind != "array")
                except Exception as exc:  # one unreadable formula must not stop the run
                    template = Template("", (), (), FormulaIssue(
                        "#NAME?", f"formula could not be read ({type(exc).__name__}: {exc})"))
            if cell.kind == "shared":
                masters[cell.shared_index] = (cell, template, refs)
            rows = cols = 1
            row, col = cell.row, cell.col
            is_array = cell.kind == "array" and cell.ref is not None
            if is_array:
                row, col = cell.ref[0], cell.ref[1]
                rows, cols = cell.ref[2] - row + 1, cell.ref[3] - col + 1
            nodes.append(Node(index, row, col, rows, cols, text, template, refs, is_array,
                              dynamic=is_array and cell.dynamic))
    return nodes


def _filled(shape: tuple[int, int], value: Any) -> np.ndarray:
    """An object array holding ``value`` itself (np.full would turn str subclasses into str)."""
    array = np.empty(shape, dtype=object)
    array.fill(value)
    return array


class _Grids:
    """One object grid per sheet (values, then computed results) and who owns each cell."""

    def __init__(self, package: ParsedWorkbook, nodes: list[Node]):
        self.empty = sh.EMPTY
        self.index = {sheet.name: i for i, sheet in enumerate(package.sheets)}
        self.values, self.owner = [], []
        for i, sheet in enumerate(package.sheets):
            rows = max((r for r, _, _ in sheet.values), default=0) + 1
            cols = max((c for _, c, _ in sheet.values), default=0) + 1
            for node in nodes:
                if node.sheet == i:
                    rows = max(rows, node.row + node.rows)
                    cols = max(cols, node.col + node.cols)
            grid = _filled((rows, cols), sh.EMPTY)
            for r, c, v in sheet.values:
                grid[r, c] = v
            owner = np.full((rows, cols), -1, dtype=np.int64)
            self.values.append(grid)
            self.owner.append(owner)
        for n, node in enumerate(nodes):
            self.owner[node.sheet][node.row:node.row + node.rows, node.col:node.col + node.cols] = n

    def _window(self, ref: Ref):
        """(sheet index, rows slice, cols slice, exact shape) of ``ref`` on its grid."""
        i = self.index[ref.sheet]
        height, width = self.values[i].shape
        row1 = min(ref.row1, max(height - 1, ref.row0)) if ref.row1 == MAX_ROWS - 1 else ref.row1
        col1 = min(ref.col1, max(width - 1, ref.col0)) if ref.col1 == MAX_COLS - 1 else ref.col1
        return i, slice(ref.row0, row1 + 1), slice(ref.col0, col1 + 1), (
            row1 - ref.row0 + 1, col1 - ref.col0 + 1)

    def owners(self, ref: Ref) -> np.ndarray:
        i, rows, cols, _ = self._window(ref)
        block = self.owner[i][rows, cols]
        if block.size == 1:
            return block.ravel() if block.ravel()[0] >= 0 else block.ravel()[:0]
        return np.unique(block[block >= 0])

    def read(self, ref: Ref) -> np.ndarray:
        """The values of ``ref`` as a 2-D object array (blank padding beyond the used area)."""
        if not ref.valid:
            return np.array([[fx.formulas_error("#REF!")]], dtype=object)
        i, rows, cols, shape = self._window(ref)
        block = self.values[i][rows, cols]
        whole = ref.row1 == MAX_ROWS - 1 or ref.col1 == MAX_COLS - 1
        if block.shape == shape or whole or shape[0] * shape[1] > _MAX_PADDED:
            return block  # beyond the used area every cell is blank: clipped, not padded
        padded = _filled(shape, self.empty)
        padded[:block.shape[0], :block.shape[1]] = block
        return padded


def _needs(nodes: list[Node], grids: _Grids) -> list[set[int]]:
    """For each node, the nodes whose cells its ranges read."""
    needs = []
    for node in nodes:
        needed: set[int] = set()
        for ref in node.refs:
            if ref.valid and ref.sheet in grids.index and not ref.address_only:
                needed.update(grids.owners(ref).tolist())
        needs.append(needed)
    return needs


def _columnar(node: Node) -> bool:
    """Can this formula be computed for many cells in one call (see :func:`_units`)?"""
    template = node.template
    return (template.issue is None and not node.is_array and not template.notes
            and all(ref.stays_cell for ref in node.refs)
            and all(f.upper() in _ELEMENTWISE for f in template.functions))


def _levels(needs: list[set[int]]) -> tuple[np.ndarray, list[int]]:
    """Each node's depth in the dependency graph, and the nodes on or behind a cycle.

    A node reading nothing computed is level 0; otherwise one more than the deepest node
    it reads. Nodes of one level never read each other, which is what makes grouping
    them safe (:func:`_units`). Cyclic nodes (and those that read them) get level -1.
    """
    count = len(needs)
    dependents: list[list[int]] = [[] for _ in range(count)]
    pending = np.zeros(count, dtype=np.int64)
    for n, needed in enumerate(needs):
        for m in needed:
            dependents[m].append(n)
        pending[n] = len(needed)
    level = np.full(count, -1, dtype=np.int64)
    ready = [n for n in range(count) if pending[n] == 0]
    for n in ready:
        level[n] = 0
    while ready:
        n = ready.pop()
        for v in dependents[n]:
            if level[n] + 1 > level[v]:
                level[v] = level[n] + 1
            pending[v] -= 1
            if pending[v] == 0:
                ready.append(v)
    cyclic = [n for n in range(count) if pending[n] > 0]
    level[cyclic] = -1
    return level, cyclic


def _units(nodes: list[Node], level: np.ndarray, vectorize: bool) -> list[list[int]]:
    """Non-cyclic nodes grouped into units of work, in an order that computes every node
    after the nodes it reads.

    Cells with the same template whose arguments are single cells and whose functions
    work cell by cell (a calculated column, a filled-down IF) form one unit when they sit
    at the same dependency level (:func:`_levels`), so none of them reads another, nor
    anything computed after them: the unit is computed in one call on columns of values,
    20-50x faster than one call per cell. A running balance (each row reads the row
    above) has one cell per level and is computed row by row. Everything else is a unit
    of one.
    """
    by_level: dict[int, list[int]] = {}
    for n in np.argsort(level, kind="stable").tolist():
        if level[n] >= 0:
            by_level.setdefault(int(level[n]), []).append(n)
    units: list[list[int]] = []
    for lv in sorted(by_level):
        groups: dict[str, list[int]] = {}
        for n in by_level[lv]:
            if vectorize and _columnar(nodes[n]):
                groups.setdefault(nodes[n].template.text, []).append(n)
            else:
                units.append([n])
        units.extend(groups.values())
    return units


def _plain(value: Any) -> Any:
    """A ``formulas`` cell value -> float / str / bool / error token (blank -> 0)."""
    if isinstance(value, np.ndarray):
        value = value.item() if value.ndim == 0 else value.ravel()[0]
    if value is None or value is sh.EMPTY:
        return 0.0
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return number if np.isfinite(number) else fx.formulas_error("#NUM!")
    if isinstance(value, (complex, np.complexfloating)):  # a real function gone complex
        return fx.formulas_error("#NUM!")
    if isinstance(value, np.str_):
        return str(value)
    return value


def _natural_shape(result: Any) -> tuple[int, int] | None:
    """(rows, cols) a dynamic array's result spills over (a single value: 1 x 1); None
    for a single error value, whose shape is not known: ``formulas`` gives one error
    where Excel may give an array of them (TRIMRANGE(G135:H139,{1;3},2) is two #VALUE!),
    so the saved range is kept, filled with the error."""
    from formulas.ranges import Ranges

    if isinstance(result, Ranges):
        result = result.value
    single = result.ravel()[0] if isinstance(result, np.ndarray) and result.size == 1 \
        else result
    if fx.is_error(single):
        return None
    if isinstance(result, np.ndarray) and result.ndim == 2 and result.size:
        return int(result.shape[0]), int(result.shape[1])
    if isinstance(result, np.ndarray) and result.ndim == 1 and result.size:
        return 1, int(result.shape[0])
    return 1, 1


def _fit(result: Any, rows: int, cols: int) -> np.ndarray:
    """A result shaped onto an array formula's range as Excel does.

    A single row or column repeats across the range; cells beyond the result are #N/A.
    """
    array = np.asarray(result, dtype=object)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(1, -1)
    out = _filled((rows, cols), fx.formulas_error("#N/A"))
    height, width = array.shape
    for r in range(rows):
        for c in range(cols):
            rr = 0 if height == 1 else r
            cc = 0 if width == 1 else c
            if rr < height and cc < width:
                out[r, c] = _plain(array[rr, cc])
    return out


def _ranges(ref: Ref, value: np.ndarray):
    """A ``formulas`` Ranges: the values plus the real address ROW()/ROWS() need."""
    from formulas.ranges import Ranges

    # corners spelled out: formulas 1.3.4 reads the whole column "C:C" as rows 0..1048576
    # (ROWS gives 1048577)
    text = f"{quote_sheet(ref.sheet)}!{cell_address(ref.row0, ref.col0)}:" \
           f"{cell_address(ref.row1, ref.col1)}"
    return Ranges().push(text, value)


def _implicit_intersection(result: Any, node: Node, refs: list[Ref],
                           values: list[np.ndarray]) -> Any:
    """A single-cell formula's value when its expression gives several values.

    Excel (file semantics of a plain, non-array formula) intersects a range with the
    formula's own row or column: ``=Tape!B2:B6*2`` typed in row 4 is ``Tape!B4*2``, in
    row 10 it is #VALUE!. The range is the first argument read with the result's shape;
    when there is none (an NPL function returning a row), the top-left value is kept.
    """
    if not isinstance(result, np.ndarray) or result.ndim != 2 or result.size <= 1:
        return result
    height, width = result.shape
    for ref, value in zip(refs, values):
        if value.shape != (height, width):
            continue
        i = node.row - ref.row0 if height > 1 else 0
        j = node.col - ref.col0 if width > 1 else 0
        if 0 <= i < height and 0 <= j < width:
            return result[i, j]
        return fx.formulas_error("#VALUE!")
    return result


def _first_error_source(node: Node, grids: _Grids, code: str, messages: dict):
    """The first input cell holding error ``code`` (for 'propagated from' messages)."""
    for ref in node.refs:
        if not ref.valid or ref.sheet not in grids.index:
            continue
        block = grids.read(ref)
        for (r, c), value in np.ndenumerate(block):
            if fx.is_error(value) and str(value) == code:
                key = (ref.sheet, ref.row0 + r, ref.col0 + c)
                return key, messages.get(key)
    return None, None


# ----------------------------------------------------------------------------------------
# fast path: arithmetic on numbers without the formula library's dispatcher

class _NotPlain(Exception):
    """An operand is not a finite float (text, blank, error...): use the library."""


def _f_div(a, b):
    if b == 0.0:
        raise _NotPlain
    return a / b


def _f_pow(a, b):
    try:
        value = a ** b
    except (OverflowError, ZeroDivisionError):
        raise _NotPlain from None
    if type(value) is not float:  # complex from a negative base
        raise _NotPlain
    return value


_FAST_TOKEN = re.compile(r"\s*(?:(?P<ref>A\d+)(?![\d:(])|(?P<num>\d+(?:\.\d*)?(?:[Ee][+-]?\d+)?"
                         r"|\.\d+(?:[Ee][+-]?\d+)?)|(?P<op><>|<=|>=|[-+*/^()<>=]))")
_FAST_BINARY = {"+": (1, "({} + {})"), "-": (1, "({} - {})"), "*": (2, "({} * {})"),
                "/": (2, "_f_div({}, {})"), "^": (4, "_f_pow({}, {})"),
                "=": (0, "({} == {})"), "<>": (0, "({} != {})"), "<": (0, "({} < {})"),
                ">": (0, "({} > {})"), "<=": (0, "({} <= {})"), ">=": (0, "({} >= {})")}


def _fast_function(text: str, inputs: list[str]):
    """A plain Python function for a template of numbers, cells and + - * / ^ and
    comparisons (a schedule's ``=B5*$B$1``), taking the cells in ``inputs`` order.

    It raises :class:`_NotPlain` unless every cell holds a float (and for a division by
    zero, an overflow, a complex power), where the caller falls back to the compiled
    ``formulas`` function: the fast path only ever computes what IEEE arithmetic on
    floats gives, which is what Excel and ``formulas`` give for such operands. None when
    the template has anything else (functions, text, ranges, ``&``, ``%``).
    """
    body = text[1:] if text.startswith("=") else text
    tokens, pos = [], 0
    while pos < len(body):
        m = _FAST_TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            if body[pos:].strip() == "":
                break
            return None
        tokens.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    position = 0

    def peek():
        return tokens[position] if position < len(tokens) else (None, None)

    def primary():
        nonlocal position
        kind, value = peek()
        position += 1
        if kind == "ref":
            return f"_c({value})"
        if kind == "num":
            return repr(float(value))
        if value in ("-", "+"):
            operand = primary()  # Excel: unary minus binds tighter than ^ (=-3^2 is 9)
            return f"(-{operand})" if value == "-" else operand
        if value == "(":
            inner = expression(0)
            if peek()[1] != ")":
                raise ValueError
            position += 1
            return inner
        raise ValueError

    def expression(min_prec):
        nonlocal position
        left = primary()
        while True:
            kind, value = peek()
            if kind != "op" or value not in _FAST_BINARY:
                return left
            prec, form = _FAST_BINARY[value]
            if prec < min_prec:
                return left
            position += 1
            right = expression(prec + 1 if value != "^" else prec + 1)
            left = form.format(left, right)

    try:
        source = expression(0)
    except (ValueError, IndexError):
        return None
    if position != len(tokens) or any(t[0] == "ref" and t[1] not in inputs for t in tokens):
        return None
    code = f"lambda {', '.join(inputs)}: {source}" if inputs else f"lambda: {source}"
    return eval(code, {"_f_div": _f_div, "_f_pow": _f_pow, "_c": _float_cell})  # noqa: S307


def _float_cell(value):
    if type(value) is not float:
        raise _NotPlain
    return value


class _Evaluator:
    """Evaluates nodes into the grids and records values, errors and messages."""

    def __init__(self, package: ParsedWorkbook, nodes: list[Node], grids: _Grids,
                 known_functions=frozenset()):
        self.nodes, self.grids = nodes, grids
        self.evaluation = Evaluation(package)
        self.compiled: dict[str, tuple] = {}
        self.messages: dict[tuple[str, int, int], str] = {}
        self.sheet_names = [s.name for s in package.sheets]
        self.names, self.known = package.names, known_functions
        self.done = np.zeros(len(nodes), dtype=bool)
        self.fast_functions: dict[str, Any] = {}
        self.shapes: dict[int, tuple[int, int]] = {}  # dynamic arrays: their result's shape
        self.active: list[int] = []  # nodes being evaluated (outer first)
        fx.CONTEXT.resolve, fx.CONTEXT.read = self.resolve, self.read_on_demand
        fx.CONTEXT.is_formula = self.is_formula
        fx.CONTEXT.is_subtotal = self.is_subtotal

    def _fast(self, node: Node, function):
        """The plain-arithmetic function of ``node``'s template, or None (see
        :func:`_fast_function`)."""
        text = node.template.text
        if text not in self.fast_functions:
            self.fast_functions[text] = _fast_function(text, list(function.inputs))
        fast = self.fast_functions[text]
        if fast is None or node.is_array or not all(r.is_cell for r in node.refs):
            return None
        return fast

    def owner_of(self, node: Node) -> int:
        return int(self.grids.owner[node.sheet][node.row, node.col])

    # -- dynamic references (see npl_xl.recalc.functions.DynamicContext)

    def resolve(self, text: str, a1: bool = True) -> Ref:
        """INDIRECT's text in the current cell -> a Ref (A1, R1C1, names, tables)."""
        sheet, row, col = fx.CONTEXT.here
        text = text.strip()
        if not a1:
            m = _R1C1.match(text)
            if not m:
                raise fx.ReferenceFailure("#REF!", f"{text!r} is not an R1C1 reference")
            def part(group, here):
                if group is None:
                    return here
                return here + int(group[1:-1]) if group.startswith("[") else int(group) - 1
            target_row, target_col = part(m.group("r"), row), part(m.group("c"), col)
            prefix = m.group("sheet") + "!" if m.group("sheet") else ""
            text = prefix + cell_address(target_row, target_col) if target_row >= 0 \
                and target_col >= 0 else "#REF!"
        template = templatize(text, self.names, sheet, row, col, self.known, intersect=False)
        body = template.text[1:]
        if template.issue is not None or len(template.refs) != 1 or body not in ("A1", "A1:B1"):
            why = template.notes[0].split(": ", 1)[-1] if template.notes else \
                "it does not name one range"
            raise fx.ReferenceFailure("#REF!", f"INDIRECT({text!r}): {why}")
        ref = template.refs[0]
        if ref.sheet not in self.grids.index:
            raise fx.ReferenceFailure("#REF!", f"no sheet {ref.sheet!r}")
        return ref

    def is_formula(self, sheet: str, row: int, col: int) -> bool:
        owner = self.grids.owner[self.grids.index[sheet]]
        return row < owner.shape[0] and col < owner.shape[1] and owner[row, col] >= 0

    def is_subtotal(self, sheet: str, row: int, col: int) -> bool:
        """Does the cell hold a SUBTOTAL or AGGREGATE formula (which those skip)?"""
        owner = self.grids.owner[self.grids.index[sheet]]
        if not (row < owner.shape[0] and col < owner.shape[1] and owner[row, col] >= 0):
            return False
        functions = self.nodes[int(owner[row, col])].template.functions
        return any(re.sub(r"(?i)^(?:_xlfn\.)+", "", f).upper() in ("SUBTOTAL", "AGGREGATE")
                   for f in functions)

    def read_on_demand(self, ref: Ref) -> np.ndarray:
        """The values of ``ref``, computing first any of its formula cells not yet done."""
        if ref.sheet not in self.grids.index:
            raise fx.ReferenceFailure("#REF!", f"no sheet {ref.sheet!r}")
        self.ensure(ref)
        return self.grids.read(ref)

    def ensure(self, ref: Ref) -> None:
        for m in self.grids.owners(ref).tolist():
            if self.done[m]:
                continue
            if m in self.active:
                raise fx.ReferenceFailure("#VALUE!", "circular reference (through a dynamic "
                                                     "reference: INDIRECT/OFFSET)")
            if len(self.active) >= _MAX_DEMAND_DEPTH:
                raise fx.ReferenceFailure("#VALUE!", "dynamic references nested deeper than "
                                                     f"{_MAX_DEMAND_DEPTH} cells")
            saved_log, saved_here = fx.LOG.take(), fx.CONTEXT.here
            try:
                self.run(m)
            finally:
                fx.LOG.entries, fx.CONTEXT.here = saved_log, saved_here

    def store(self, node: Node, block: np.ndarray, issue: CellError | None, log) -> None:
        sheet = self.sheet_names[node.sheet]
        evaluation = self.evaluation
        self.grids.values[node.sheet][node.row:node.row + node.rows,
                                      node.col:node.col + node.cols] = block
        for (r, c), value in np.ndenumerate(block):
            key = (sheet, node.row + r, node.col + c)
            if fx.is_error(value):
                error = issue if issue is not None else self._explain(node, str(value), log)
                self.messages[key] = error.message
                evaluation.errors[key] = error
                code = error.code if error.code in _NATIVE_MEANING else "#VALUE!"
                evaluation.values[key] = XlError(code, error.message)
            else:
                evaluation.values[key] = value
        evaluation.formulas[(sheet, node.row, node.col)] = node.text

    def _explain(self, node: Node, code: str, log) -> CellError:
        """Why ``node`` holds error ``code``: an NPL message, a note, or its source cell."""
        message = next((m for k, m in log if k == code), None)
        if message is None:
            message = next((n.split(": ", 1)[1] for n in node.template.notes
                            if n.startswith(code)), None)
        if message is None:
            source, why = _first_error_source(node, self.grids, code, self.messages)
            if source is not None:
                message = f"from {address(*source)}" + (f": {why}" if why else "")
        return CellError(code, message or _NATIVE_MEANING.get(code, ""))

    def fail(self, node: Node, code: str, message: str) -> None:
        self.done[self.owner_of(node)] = True
        block = _filled((node.rows, node.cols), fx.formulas_error(code))
        self.store(node, block, CellError(code, message, computed=False), [])

    def _prepare(self, node: Node):
        """(compiled function, refs in its argument order, compile log) or None if failed."""
        issue = node.template.issue
        if issue is not None:
            self.fail(node, issue.code, issue.message)
            return None
        function, problem, compile_log = _compile(node.template.text, self.compiled)
        if function is None:
            self.fail(node, "#NAME?", problem)
            return None
        keys = node.template.placeholder_keys()
        try:
            order = [keys[key] if key in keys else _union_parts(key, keys)
                     for key in function.inputs]
        except KeyError:
            self.fail(node, "#NAME?", "formula syntax not supported (range operators)")
            return None
        return function, order, compile_log

    def run(self, n: int) -> None:
        """Evaluate one node."""
        node = self.nodes[n]
        if node.blocked:  # computed, but its values have nowhere to go
            self.done[n] = True
            self.store(node, _filled((1, 1), fx.formulas_error("#SPILL!")),
                       CellError("#SPILL!", node.blocked), [])
            return
        prepared = self._prepare(node)
        if prepared is None:
            return
        function, order, compile_log = prepared
        if any(isinstance(k, tuple) for k in order):  # a union: (A1:A3,C1:C3)
            function = _with_unions(function, order, node.refs)
            order = [k for entry in order for k in (entry if isinstance(entry, tuple)
                                                    else (entry,))]
        refs = [node.refs[k] for k in order]
        self.active.append(n)
        try:
            self._run_prepared(n, node, function, compile_log, refs)
        finally:
            self.active.pop()
            self.done[n] = True

    def _run_prepared(self, n: int, node: Node, function, compile_log, refs) -> None:
        for ref in refs:  # cells a dynamic reference made this node skip ahead of
            if not ref.address_only and ref.valid and ref.sheet in self.grids.index:
                try:
                    self.ensure(ref)
                except fx.ReferenceFailure as exc:
                    self.fail(node, exc.code, exc.message)
                    return
        fx.CONTEXT.here = (self.sheet_names[node.sheet], node.row, node.col)
        values = [self.grids.read(ref) for ref in refs]
        fast = self._fast(node, function)
        if fast is not None:
            try:
                result = fast(*[value[0, 0] for value in values])
            except _NotPlain:
                pass
            else:
                block = np.empty((1, 1), dtype=object)
                block[0, 0] = _plain(result)
                self.store(node, block, None, compile_log)
                return
        if _REFERENCE_FUNCTIONS.intersection(f.upper() for f in node.template.functions):
            args = [_ranges(ref, value) for ref, value in zip(refs, values)]
        elif _keeps_references(node.template.functions):
            args = values
        else:  # a single cell as its value: formulas' functions want scalars (DEC2BIN places)
            args = [value[0, 0] if ref.is_cell and value.shape == (1, 1) else value
                    for ref, value in zip(refs, values)]
        fx.LOG.take()
        try:
            result = function(*args)
        except Exception as exc:  # a library failure is this cell's problem, not the run's
            self.fail(node, "#VALUE!", f"evaluation failed ({type(exc).__name__})")
            return
        log = compile_log + fx.LOG.take()
        if node.dynamic:
            shape = _natural_shape(result)
            if shape is not None:
                self.shapes[n] = shape
        if node.is_array:
            block = _fit(result, node.rows, node.cols)
        else:
            block = np.empty((1, 1), dtype=object)
            block[0, 0] = _plain(_implicit_intersection(result, node, refs, values))
        self.store(node, block, None, log)

    def run_columnar(self, members: list[int]) -> None:
        """Evaluate same-template cells in one call on columns; one by one if that fails."""
        first = self.nodes[members[0]]
        prepared = self._prepare(first)
        if prepared is None:
            for n in members[1:]:
                self.run(n)
            return
        function, order, _ = prepared
        if any(isinstance(k, tuple) for k in order):
            for n in members:
                self.run(n)
            return
        args = []
        for k in order:
            column = np.empty((len(members), 1), dtype=object)
            for i, n in enumerate(members):
                column[i, 0] = self.grids.read(self.nodes[n].refs[k])[0, 0]
            args.append(column)
        try:
            result = np.asarray(function(*args), dtype=object)
        except Exception:  # the library would not take columns: fall back, cell by cell
            result = None
        if result is None or result.shape not in ((len(members), 1), (1, 1), ()):
            for n in members:
                self.run(n)
            return
        flat = result.ravel()
        for i, n in enumerate(members):
            block = np.empty((1, 1), dtype=object)
            block[0, 0] = _plain(flat[i if flat.size > 1 else 0])
            self.store(self.nodes[n], block, None, [])
            self.done[n] = True


def _union_parts(key: str, keys: dict[str, int]) -> tuple[int, ...]:
    """The placeholders of a union input of ``formulas`` (``'(A1:B1, A2:B2)'``)."""
    if not (key.startswith("(") and key.endswith(")")):
        raise KeyError(key)
    parts = key.replace("(", "").replace(")", "").split(",")  # nested: (A1, (A2, A3))
    return tuple(keys[part.strip()] for part in parts)


def _with_unions(function, order: list, refs: tuple):
    """``function`` taking each union's ranges as separate arguments (the engine reads
    every range alike) and handing ``formulas`` one multi-area Ranges per union."""
    from formulas.ranges import Ranges

    def call(*args):
        grouped, position = [], 0
        for entry in order:
            if not isinstance(entry, tuple):
                grouped.append(args[position])
                position += 1
                continue
            union = Ranges()
            for k in entry:
                value = args[position]
                value = value.value if isinstance(value, Ranges) else value
                ref = refs[k]
                union.push(f"{quote_sheet(ref.sheet)}!{cell_address(ref.row0, ref.col0)}:"
                           f"{cell_address(ref.row1, ref.col1)}", _as_block(value))
                position += 1
            grouped.append(union)
        return function(*grouped)

    call.inputs = getattr(function, "inputs", None)
    return call


def _as_block(value) -> np.ndarray:
    array = np.asarray(value, dtype=object)
    return array.reshape(1, 1) if array.ndim == 0 else array


def _downstream(cyclic: list[int], needs: list[set[int]]) -> list[int]:
    """Of the nodes left by :func:`_levels`, those that only read a cycle (feed none),
    in an order that computes each after what it reads."""
    inside = set(cyclic)
    readers = {n: 0 for n in cyclic}  # how many left-over nodes read n
    for n in cyclic:
        for m in needs[n] & inside:
            readers[m] += 1
    sinks = [n for n in cyclic if readers[n] == 0]
    removed = []
    while sinks:
        n = sinks.pop()
        removed.append(n)
        for m in needs[n] & inside:
            readers[m] -= 1
            if readers[m] == 0:
                sinks.append(m)
    return removed[::-1]


def _iterate(evaluator: _Evaluator, cyclic: list[int], needs: list[set[int]],
             settings: CalcSettings) -> None:
    """Circular references computed as Excel does with iterative calculation enabled.

    The cells on cycles start blank (0) and are recomputed in sheet, row, column order,
    each reading the others' latest values, until no value of theirs changes by more
    than ``iterate_delta`` or ``iterate_count`` rounds have run; then the cells that
    only read the cycles are computed once from the result.
    """
    nodes, grids = evaluator.nodes, evaluator.grids
    evaluator.done[cyclic] = True  # read as they stand (blank at first), not on demand
    after = _downstream(cyclic, needs)
    on_cycle = set(cyclic) - set(after)
    ordered = sorted(on_cycle, key=lambda n: (nodes[n].sheet, nodes[n].row, nodes[n].col))

    def snapshot():
        return [grids.values[nodes[n].sheet][nodes[n].row:nodes[n].row + nodes[n].rows,
                                             nodes[n].col:nodes[n].col + nodes[n].cols].copy()
                for n in ordered]

    for _ in range(settings.iterate_count):
        fx.clear_lookup_cache()  # values change from round to round
        before = snapshot()
        for n in ordered:
            evaluator.run(n)
        change = 0.0
        for old, new in zip(before, snapshot()):
            for a, b in zip(old.ravel(), new.ravel()):
                if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                    change = max(change, abs(float(a) - float(b)))
                elif type(a) is not type(b) or a != b:
                    change = math.inf
        if change <= settings.iterate_delta:
            break
    for n in after:
        evaluator.run(n)


def evaluate_package(package: ParsedWorkbook, vectorize: bool = True,
                     settings: CalcSettings | None = None) -> Evaluation:
    """Compute every formula of a read package.

    ``vectorize=False`` computes every cell on its own (the reference the columnar path
    is tested against). ``settings``: the workbook's calculation settings (read from the
    package when not given); circular references are errors unless they enable iteration.
    """
    if settings is None:
        settings = read_calc_settings(package.path, package.workbook_part)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # numpy's overflow/invalid warnings inside formulas' functions: the cell's value
        # (#NUM!) says it; they must not reach the user's terminal
        warnings.simplefilter("ignore", RuntimeWarning)
        return _evaluate(package, vectorize, settings)


#: how many times the workbook is evaluated again after dynamic arrays change size
_MAX_SPILL_PASSES = 4


def _evaluate(package: ParsedWorkbook, vectorize: bool, settings: CalcSettings) -> Evaluation:
    """Every formula; again with the new ranges while dynamic arrays change size.

    A dynamic array (``FormulaCell.dynamic``) whose result has another shape than its
    saved spill range spills over the result's shape, as Excel does, unless a cell of
    that range (other than the anchor) holds a value or another formula: then the
    anchor is ``#SPILL!`` and the rest is empty. Cells that read the array then read its
    new range, so the whole workbook is evaluated again with the new ranges (the usual
    case, no size change, evaluates once).
    """
    known = frozenset(fx.function_table()) | lambdas.NAMES
    saved = {(s.name, f.row, f.col): f.ref for s in package.sheets for f in s.formulas
             if f.dynamic and f.ref is not None}
    if not saved:
        return _evaluate_once(package, vectorize, settings, known, {})
    # the cached values a spill range's cells hold are the array's old result, not input
    covered: dict[str, set] = {}
    for (sheet, _, _), (row0, col0, row1, col1) in saved.items():
        covered.setdefault(sheet, set()).update(
            (r, c) for r in range(row0, row1 + 1) for c in range(col0, col1 + 1))
    package = replace(package, sheets=[
        replace(sheet, values=[v for v in sheet.values
                               if (v[0], v[1]) not in covered.get(sheet.name, ())])
        for sheet in package.sheets])
    occupied = [{(r, c) for r, c, _ in sheet.values} for sheet in package.sheets]
    ranges: dict[tuple[str, int, int], tuple] = dict(saved)  # anchor -> range or blocked
    for _ in range(_MAX_SPILL_PASSES):
        evaluation, nodes, shapes = _evaluate_once(package, vectorize, settings, known,
                                                   ranges, return_nodes=True)
        wanted = dict(ranges)
        for n, node in enumerate(nodes):
            if not node.dynamic or n not in shapes:
                continue
            sheet = package.sheets[node.sheet].name
            rows, cols = shapes[n]
            want = (node.row, node.col, node.row + rows - 1, node.col + cols - 1)
            wanted[(sheet, node.row, node.col)] = _spill_target(
                want, n, node, nodes, occupied[node.sheet])
        if wanted == ranges:
            break
        ranges = wanted
    for anchor, target in ranges.items():
        new = (anchor[1], anchor[2], anchor[1], anchor[2]) if isinstance(target, str) \
            else target
        if new != saved[anchor]:
            evaluation.spills[anchor] = (saved[anchor], new)
    return evaluation


def _spill_target(want: tuple, n: int, node: Node, nodes: list[Node], occupied: set):
    """The range a dynamic array may spill over, or why not (text, for #SPILL!)."""
    row0, col0, row1, col1 = want
    if row1 >= MAX_ROWS or col1 >= MAX_COLS:
        return "the spill range would run off the sheet"
    for r in range(row0, row1 + 1):
        for c in range(col0, col1 + 1):
            if (r, c) != (row0, col0) and (r, c) in occupied:
                return f"{cell_address(r, c)} in the spill range is not empty"
    for m, other in enumerate(nodes):
        if m == n or other.sheet != node.sheet:
            continue
        if (other.row <= row1 and row0 <= other.row + other.rows - 1
                and other.col <= col1 and col0 <= other.col + other.cols - 1):
            if other.dynamic and other.blocked:
                continue
            return (f"the spill range meets the formula in "
                    f"{cell_address(other.row, other.col)}")
    return want


def _evaluate_once(package: ParsedWorkbook, vectorize: bool, settings: CalcSettings,
                   known, ranges: dict, return_nodes: bool = False):
    """One evaluation; ``ranges``: dynamic arrays' ranges (or why #SPILL!) by anchor."""
    if ranges:
        names = package.names
        spills = dict(names.spills)
        spills.update({anchor: ((anchor[1], anchor[2], anchor[1], anchor[2])
                                if isinstance(target, str) else target)
                       for anchor, target in ranges.items()})
        package = replace(package, names=replace(names, spills=spills))  # for A1# references
    nodes = _build_nodes(package, known)
    if ranges:
        for node in nodes:
            if not node.dynamic:
                continue
            anchor = (package.sheets[node.sheet].name, node.row, node.col)
            target = ranges.get(anchor)
            if isinstance(target, str):
                node.blocked, node.rows, node.cols = target, 1, 1
            elif target is not None:
                node.rows, node.cols = target[2] - target[0] + 1, target[3] - target[1] + 1
    evaluation, evaluator = _run_all(package, nodes, vectorize, settings, known)
    if return_nodes:
        return evaluation, nodes, evaluator.shapes
    return evaluation


def _run_all(package: ParsedWorkbook, nodes: list[Node], vectorize: bool,
             settings: CalcSettings, known):
    grids = _Grids(package, nodes)
    fx.clear_lookup_cache(grids.values)
    needs = _needs(nodes, grids)
    level, cyclic = _levels(needs)
    order = _units(nodes, level, vectorize)
    evaluator = _Evaluator(package, nodes, grids, known)
    for members in order:
        members = [n for n in members if not evaluator.done[n]]  # some computed on demand
        if not members:
            continue
        try:
            if len(members) == 1:
                evaluator.run(members[0])
            else:
                evaluator.run_columnar(members)
        except Exception as exc:  # a bug: the command reports it with the cell (status 3)
            node = nodes[members[0]]
            exc.add_note(f"at {address(package.sheets[node.sheet].name, node.row, node.col)}")
            raise
    if settings.iterate and cyclic:
        _iterate(evaluator, cyclic, needs, settings)
    else:
        for n in sorted(cyclic):
            evaluator.fail(nodes[n], "#VALUE!", "circular reference, or depends on one")
    return evaluator.evaluation, evaluator


def evaluate_workbook(path: str | Path) -> dict[str, Any]:
    """Compute a workbook in memory: ``{'Sheet!A1': value}`` for every formula cell.

    Values are float, str, bool or :class:`npl_xl.errors.XlError` (with the reason).
    Nothing is written.
    """
    return evaluate_package(read_package(path)).by_address()
