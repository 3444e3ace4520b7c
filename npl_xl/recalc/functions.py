"""The one adapter between the ``formulas`` library and :mod:`npl_xl.sheet.registry`.

``formulas`` hands a worksheet function numpy object arrays (ranges), Python scalars
(literals), ``schedula.EMPTY`` for blank cells and its own ``XlError`` tokens. The
registry takes Excel-shaped raw values: None for blanks, float, str, bool,
:class:`npl_xl.errors.XlError`, a list of rows for a range. :func:`to_raw` and
:func:`from_raw` translate both ways; :func:`function_table` registers every NPL_*
function once, through :func:`adapt`, in ``formulas``' global function table.

Messages: ``formulas`` errors are bare codes, so an NPL function's
:attr:`~npl_xl.errors.XlError.message` is handed to a :class:`MessageLog` that the engine
reads after evaluating each cell.
"""

from __future__ import annotations

import importlib
import math
import re
import sys
import types
from typing import Any

import numpy as np
import schedula as sh
from formulas.tokens.operand import Error as _FormulasErrors
from formulas.tokens.operand import XlError as _FormulasError

from npl_xl.errors import ERROR_CODES, XlError

__all__ = ["MessageLog", "formulas_error", "to_raw", "from_raw", "adapt", "function_table",
           "is_error"]


class MessageLog:
    """Why NPL functions returned errors while the current cell was evaluated."""

    def __init__(self):
        self.entries: list[tuple[str, str]] = []

    def add(self, error: XlError) -> None:
        if error.message:
            self.entries.append((error.code, error.message))

    def take(self) -> list[tuple[str, str]]:
        entries, self.entries = self.entries, []
        return entries


#: the log every adapted function writes to (the engine evaluates one cell at a time)
LOG = MessageLog()


def formulas_error(code: str):
    """``'#N/A'`` -> the ``formulas`` error token (``formulas.NA``)."""
    return _FormulasErrors.errors.get(code.upper(), _FormulasErrors.errors["#VALUE!"])


def is_error(value: Any) -> bool:
    return isinstance(value, _FormulasError)


class _Omitted(int):
    """An omitted argument, as in ``=NPL_JUDICIAL_MONTHS("ZJ",,"residential")``.

    ``formulas`` compiles an omitted argument to the integer 0, which is what Excel's own
    functions see. For a worksheet function of an add-in Excel passes a *missing* argument
    instead, which xlwings turns into a blank (the argument's default). This 0 carries a
    mark so that :func:`to_raw` can hand the registry a blank, while native functions still
    see 0.
    """

    def __repr__(self) -> str:
        return "OMITTED"


OMITTED = _Omitted(0)


def _raw_scalar(value: Any) -> Any:
    if value is sh.EMPTY or value is None or value is OMITTED:
        return None
    if isinstance(value, _FormulasError):
        code = str(value)
        return XlError(code if code in ERROR_CODES else "#VALUE!", "an argument is an error value")
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return value


def to_raw(value: Any) -> Any:
    """A ``formulas`` argument -> an Excel-shaped raw value (a range = list of rows)."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _raw_scalar(value.item())
        rows = value if value.ndim == 2 else value.reshape(1, -1)
        return [[_raw_scalar(v) for v in row] for row in rows.tolist()]
    return _raw_scalar(value)


def _formulas_scalar(value: Any, log: MessageLog) -> Any:
    if isinstance(value, XlError):
        log.add(value)
        return formulas_error(value.code)
    if isinstance(value, float) and not math.isfinite(value):
        return formulas_error("#NUM!")
    return value


def from_raw(result: Any, log: MessageLog = LOG) -> Any:
    """A registry result -> a ``formulas`` value (lists of rows -> ``Array``)."""
    from formulas.functions import Array

    if isinstance(result, list):
        out = np.empty((len(result), max((len(r) for r in result), default=0)), dtype=object)
        for i, row in enumerate(result):
            for j, cell in enumerate(row):
                out[i, j] = _formulas_scalar(cell, log)
        return out.view(Array)
    return _formulas_scalar(result, log)


def adapt(function, log: MessageLog = LOG):
    """A registry :class:`~npl_xl.sheet.registry.WorksheetFunction` as a ``formulas`` function."""

    def call(*args):
        return from_raw(function(*(to_raw(a) for a in args)), log)

    call.__name__ = function.name
    call.__doc__ = function.doc
    return call


_TABLE: dict | None = None

#: modules ``formulas`` imports at load time but only needs inside a few statistical
#: functions (NORM.DIST, PERCENTILE, ...): about 1.5 s of a 4 s recalc on 2 cores
_DEFERRED = ("scipy.stats", "scipy.interpolate")


class _DeferredModule(types.ModuleType):
    """Stands in for a slow module while ``formulas``' function modules are imported.

    During the import, ``from scipy.interpolate import interp1d`` gets a callable that
    imports the real module when first called; afterwards, attribute access
    (``stats.norm.ppf``) imports the real module. Removed from ``sys.modules`` once
    ``formulas`` is loaded, so the rest of the process imports the real modules normally.
    """

    def __init__(self, name: str):
        super().__init__(name)
        self.loading = True

    def real(self) -> types.ModuleType:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return importlib.import_module(self.__name__)

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if self.__dict__.get("loading"):
            def deferred(*args, **kwargs):
                return getattr(self.real(), attr)(*args, **kwargs)
            return deferred
        return getattr(self.real(), attr)


def _load_formulas_functions() -> dict:
    """``formulas.get_functions()`` with :data:`_DEFERRED` imports put off until used."""
    import formulas

    stand_ins = [_DeferredModule(name) for name in _DEFERRED if name not in sys.modules]
    for module in stand_ins:
        sys.modules[module.__name__] = module
    try:
        return formulas.get_functions()
    finally:
        for module in stand_ins:
            module.loading = False
            if sys.modules.get(module.__name__) is module:
                del sys.modules[module.__name__]


def function_table() -> dict:
    """``formulas``' global function table with every NPL_* function of the registry added.

    The table is shared by every ``formulas.Parser`` in the process, so registration
    happens once, before the first formula is compiled.
    """
    global _TABLE
    if _TABLE is None:
        from formulas.functions import wrap_func

        from npl_xl.sheet.registry import load_all

        table = _load_formulas_functions()
        from formulas.tokens.operand import Empty

        Empty.compile = staticmethod(lambda: OMITTED)  # see _Omitted
        for name, function in load_all().items():
            table[name] = wrap_func(adapt(function))
        for name, function in REFERENCE_FUNCTIONS.items():
            table[name] = wrap_func(function, ranges=True)
        from npl_xl.recalc.aggregates import AGGREGATE_FUNCTIONS

        for name, function in AGGREGATE_FUNCTIONS.items():
            table[name] = wrap_func(function, ranges=True)
        table["VLOOKUP"] = wrap_func(_fast_vlookup(table["VLOOKUP"]))
        table["MATCH"] = wrap_func(_fast_match(table["MATCH"]))
        for name, function in TIME_VALUE_FUNCTIONS.items():
            table[name] = wrap_func(function)
        table["XIRR"] = wrap_func(_polished_xirr(table["XIRR"]))
        for name in ("DEC2BIN", "DEC2OCT", "DEC2HEX"):
            table[name] = wrap_func(_negative_ignores_places(table[name]))
        table["VDB"] = wrap_func(_booleans_as_numbers(table["VDB"]))
        table["COUNTIF"] = wrap_func(_not_equal_counts_everything_else(table["COUNTIF"]))
        for name, function in ARRAY_FUNCTIONS.items():
            table[name] = table["_XLFN." + name] = wrap_func(function)
        table["INDEX"] = dict(table["INDEX"], function=_index_zero_is_whole(
            table["INDEX"]["function"]))
        table["LOOKUP"] = wrap_func(_lookup_2d_longer_side(table["LOOKUP"]))
        table["YEARFRAC"] = wrap_func(xyearfrac)
        table["TEXT"] = wrap_func(_elementwise(_text_sections(table["TEXT"])))
        for name in ("TREND", "GROWTH"):
            table[name] = wrap_func(_shaped_like_new_x(table[name]))
        _criteria_not_equal_and_blank()
        _TABLE = table
    return _TABLE


# ---------------------------------------------------------------------------------------
# dynamic references: INDIRECT, OFFSET and the functions that look at a reference itself


class DynamicContext:
    """What the reference functions need from the engine while one cell is evaluated.

    The engine sets ``resolve(text, a1) -> Ref`` (reference text as INDIRECT reads it,
    in the current cell), ``read(ref) -> 2-D object array`` (computing on demand any
    formula cell of the range not computed yet: a dynamic reference's dependencies are
    known only when it is evaluated, so Excel treats INDIRECT/OFFSET as volatile),
    ``is_formula(sheet, row, col)`` and ``here`` = (sheet, row, col) of the cell.
    """

    resolve = None
    read = None
    is_formula = None
    is_subtotal = None  # (sheet, row, col) -> does the cell hold SUBTOTAL/AGGREGATE?
    here: tuple[str, int, int] | None = None


CONTEXT = DynamicContext()


class ReferenceFailure(Exception):
    """A dynamic reference that cannot be followed: its Excel error code and why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _scalar(value: Any) -> Any:
    from formulas.ranges import Ranges

    if isinstance(value, Ranges):
        value = value.value
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else sh.EMPTY
    return value


def _as_ranges(ref, values: np.ndarray):
    from formulas.ranges import Ranges

    from npl_xl.workbook.a1 import cell_address, quote_sheet

    text = f"{quote_sheet(ref.sheet)}!{cell_address(ref.row0, ref.col0)}:" \
           f"{cell_address(ref.row1, ref.col1)}"
    return Ranges().push(text, values)


def _ref_of(value):
    """The :class:`~npl_xl.recalc.references.Ref` behind a ``formulas`` Ranges argument."""
    from formulas.ranges import Ranges

    from npl_xl.recalc.references import Ref
    from npl_xl.workbook.a1 import column_index

    if not isinstance(value, Ranges) or len(value.ranges) != 1:
        raise ReferenceFailure("#VALUE!", "the argument must be a reference")
    r = value.ranges[0]
    return Ref(r["sheet"], int(r["r1"]) - 1, column_index(r["c1"]),
               int(r["r2"]) - 1, column_index(r["c2"]))


def _failed(exc: Exception):
    if isinstance(exc, ReferenceFailure):
        LOG.add(XlError(exc.code, exc.message))
        return formulas_error(exc.code)
    LOG.add(XlError("#VALUE!", f"{type(exc).__name__}: {exc}"))
    return formulas_error("#VALUE!")


def _number(value: Any, what: str) -> int:
    value = _scalar(value)
    if value is sh.EMPTY or value is None or value is OMITTED:
        return 0
    if is_error(value):
        raise ReferenceFailure(str(value), f"{what} is an error value")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ReferenceFailure("#VALUE!", f"{what} must be a number, got {value!r}") from None
    return int(math.floor(float(value)))


def xindirect(here, ref_text, a1=True):
    """INDIRECT(ref_text, [a1]): the reference named by a text, read now.

    ``here`` is the formula's own cell (see ``OWN_CELL_FUNCTIONS`` in references.py).
    """
    try:
        text = _scalar(ref_text)
        if is_error(text):
            return text
        style = _scalar(a1)
        a1_style = True if style is OMITTED or style is sh.EMPTY else bool(style)
        ref = CONTEXT.resolve(str(text), a1_style)
        return _as_ranges(ref, CONTEXT.read(ref))
    except Exception as exc:
        return _failed(exc)


def xoffset(reference, rows, cols, height=None, width=None):
    """OFFSET(reference, rows, cols, [height], [width]): a moved and resized reference."""
    from npl_xl.recalc.references import Ref
    from npl_xl.workbook.a1 import MAX_COLS, MAX_ROWS

    try:
        base = _ref_of(reference)
        height = base.row1 - base.row0 + 1 if height in (None, OMITTED) else _number(height, "height")
        width = base.col1 - base.col0 + 1 if width in (None, OMITTED) else _number(width, "width")
        if height < 1 or width < 1:
            raise ReferenceFailure("#REF!", "height and width must be at least 1")
        row0 = base.row0 + _number(rows, "rows")
        col0 = base.col0 + _number(cols, "cols")
        ref = Ref(base.sheet, row0, col0, row0 + height - 1, col0 + width - 1)
        if not (0 <= row0 and ref.row1 < MAX_ROWS and 0 <= col0 and ref.col1 < MAX_COLS):
            raise ReferenceFailure("#REF!", "the moved reference is off the sheet")
        return _as_ranges(ref, CONTEXT.read(ref))
    except Exception as exc:
        return _failed(exc)


def xisformula(reference):
    """ISFORMULA(reference): does the cell hold a formula? For a range, an array of the
    answer for each of its cells (as Excel 365 evaluates it)."""
    try:
        ref = _ref_of(reference)
        if ref.is_cell:
            return bool(CONTEXT.is_formula(ref.sheet, ref.row0, ref.col0))
        from formulas.functions import Array

        rows, cols = ref.row1 - ref.row0 + 1, ref.col1 - ref.col0 + 1
        if rows * cols > 1_000_000:
            raise ReferenceFailure("#NUM!", "ISFORMULA of over a million cells")
        out = np.empty((rows, cols), dtype=object)
        for r in range(rows):
            for c in range(cols):
                out[r, c] = bool(CONTEXT.is_formula(ref.sheet, ref.row0 + r, ref.col0 + c))
        return out.view(Array)
    except Exception as exc:
        return _failed(exc)


def xcell(here, info_type, reference=None):
    """CELL(info_type, [reference]) for address, row, col, contents, type, sheet name."""
    from npl_xl.recalc.references import Ref
    from npl_xl.workbook.a1 import column_letter, quote_sheet

    try:
        kind = str(_scalar(info_type)).strip().lower()
        if reference is None or reference is OMITTED:
            sheet, row, col = CONTEXT.here
            ref = Ref(sheet, row, col, row, col)
        else:
            ref = _ref_of(reference)
        here_sheet = CONTEXT.here[0] if CONTEXT.here else ref.sheet
        if kind == "address":
            address = f"${column_letter(ref.col0)}${ref.row0 + 1}"
            return address if ref.sheet == here_sheet else f"{quote_sheet(ref.sheet)}!{address}"
        if kind == "row":
            return float(ref.row0 + 1)
        if kind == "col":
            return float(ref.col0 + 1)
        value = CONTEXT.read(Ref(ref.sheet, ref.row0, ref.col0, ref.row0, ref.col0))[0, 0]
        if kind == "contents":
            return 0.0 if value is sh.EMPTY else value
        if kind == "type":
            return "b" if value is sh.EMPTY else "l" if isinstance(value, str) else "v"
        raise ReferenceFailure("#VALUE!", f"CELL info_type {kind!r} is not supported")
    except Exception as exc:
        return _failed(exc)


#: public names of the helpers above, for the other function modules of the adapter
ref_of, scalar_of, failed = _ref_of, _scalar, _failed

#: function name -> implementation taking ``formulas`` Ranges (registered with ranges=True)
REFERENCE_FUNCTIONS = {
    "INDIRECT": xindirect, "_XLNPL.INDIRECT": xindirect, "OFFSET": xoffset,
    "ISFORMULA": xisformula, "_XLFN.ISFORMULA": xisformula, "CELL": xcell,
    "_XLNPL.CELL": xcell,
}


# ---------------------------------------------------------------------------------------
# exact-match lookups through a cached index (formulas 1.3.4 types every cell of the
# lookup column on every call: 3,600 VLOOKUPs over 3,000 rows took minutes)

_LOOKUP_INDEX: dict[tuple, dict] = {}
_LOOKUP_GRIDS: list[np.ndarray] = []  # only views of these (the sheets' grids) are cached


def clear_lookup_cache(grids: list[np.ndarray] | None = None) -> None:
    """Forget the lookup indexes (the engine calls it when grid values may change);
    ``grids``: the arrays whose views may be indexed from now on."""
    _LOOKUP_INDEX.clear()
    if grids is not None:
        _LOOKUP_GRIDS[:] = grids


def _lookup_key(value: Any):
    """Excel's exact-match identity: numbers by value, text case-insensitively; None for
    what the index does not handle (blanks, errors, wildcards)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:  # -1.1 in an array constant
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        return ("b", bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return ("n", float(value))
    if isinstance(value, str):
        return ("s", value.lower())
    return None


def _first_positions(column: np.ndarray) -> dict | None:
    """{key: first position} of a grid column, cached for views of the grid."""
    base = column.base
    key = None
    if base is not None and any(base is grid for grid in _LOOKUP_GRIDS):
        key = (column.__array_interface__["data"][0], column.shape, column.strides)
        cached = _LOOKUP_INDEX.get(key)
        if cached is not None:
            return cached
    positions: dict = {}
    for i, value in enumerate(column.tolist()):
        k = _lookup_key(value)
        if k is not None and k not in positions:
            positions[k] = i
    if key is not None:
        _LOOKUP_INDEX[key] = positions
    return positions


def _exact_target(lookup_value):
    if isinstance(lookup_value, np.ndarray):
        if lookup_value.size != 1:
            return None
        lookup_value = lookup_value.ravel()[0]
    if isinstance(lookup_value, str) and any(c in lookup_value for c in "*?~"):
        return None  # wildcards: the library's matching
    return lookup_value


def _is_exact(match_flag, false_means_exact: bool) -> bool:
    flag = match_flag.ravel()[0] if isinstance(match_flag, np.ndarray) else match_flag
    if flag is OMITTED or flag is None:
        return False
    if isinstance(flag, (bool, np.bool_, int, float, np.integer, np.floating)):
        return (not flag) if false_means_exact else float(flag) == 0.0
    return False


_ABSENT = object()  # an argument not written at all (unlike OMITTED, written empty)


def _fast_vlookup(original):
    def vlookup(lookup_value, table_array, col_index_num, range_lookup=_ABSENT):
        args = [lookup_value, table_array, col_index_num] + (
            [] if range_lookup is _ABSENT else [range_lookup])
        target = _exact_target(lookup_value)
        if (range_lookup is _ABSENT or not _is_exact(range_lookup, True) or target is None
                or is_error(target)
                or not isinstance(table_array, np.ndarray) or table_array.ndim != 2
                or isinstance(col_index_num, np.ndarray) and col_index_num.size != 1):
            return original(*args)
        column = _scalar(col_index_num)
        if not isinstance(column, (int, float, np.integer, np.floating)) \
                or isinstance(column, bool):
            return original(*args)
        column = int(column)
        if column < 1:
            return formulas_error("#VALUE!")
        if column > table_array.shape[1]:
            return formulas_error("#REF!")
        key = _lookup_key(target)
        if key is None:
            return original(*args)
        row = _first_positions(table_array[:, 0]).get(key)
        if row is None:
            return formulas_error("#N/A")
        return table_array[row, column - 1]
    return vlookup


def _fast_match(original):
    def match(lookup_value, lookup_array, match_type=_ABSENT):
        args = [lookup_value, lookup_array] + ([] if match_type is _ABSENT else [match_type])
        target = _exact_target(lookup_value)
        if (match_type is _ABSENT or not _is_exact(match_type, False) or target is None
                or is_error(target)
                or not isinstance(lookup_array, np.ndarray) or lookup_array.ndim != 2
                or 1 not in lookup_array.shape):
            return original(*args)
        key = _lookup_key(target)
        if key is None:
            return original(*args)
        line = lookup_array[:, 0] if lookup_array.shape[1] == 1 else lookup_array[0, :]
        position = _first_positions(line).get(key)
        return formulas_error("#N/A") if position is None else float(position + 1)
    return match


# ---------------------------------------------------------------------------------------
# time value of money, as Excel documents it (formulas 1.3.4 gets several wrong:
# IPMT(0.005,1,360,-250000) is #NUM! where Excel gives 1250; see the parity results)


class _Bad(Exception):
    """An Excel error code raised inside a time-value function."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _tv_number(value: Any, default: float | None = None) -> float:
    """One argument as a number: blank 0, TRUE 1, numeric text its number, else #VALUE!."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise _Bad("#VALUE!")
        value = value.ravel()[0]
    if value is OMITTED or value is None:
        if default is None:
            raise _Bad("#VALUE!")
        return default
    if value is sh.EMPTY:
        return 0.0
    if is_error(value):
        raise _Bad(str(value))
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise _Bad("#VALUE!") from None
    return float(value)


def _tv(function):
    """Arguments coerced by :func:`_tv_number`; errors and non-finite results as codes."""
    def call(*args):
        try:
            result = function(*args)
        except _Bad as bad:
            return formulas_error(bad.code)
        except (ZeroDivisionError, OverflowError, ValueError):
            return formulas_error("#NUM!")
        if isinstance(result, complex) or not math.isfinite(result):
            return formulas_error("#NUM!")
        return float(result)
    call.__name__ = function.__name__
    return call


def _fv(r, n, pmt, pv, when):
    if r == 0:
        return -(pv + pmt * n)
    growth = (1 + r) ** n
    return -(pv * growth + pmt * (1 + r * when) * (growth - 1) / r)


def _pmt(r, n, pv, fv, when):
    if n == 0:
        raise _Bad("#NUM!")
    if r == 0:
        return -(pv + fv) / n
    growth = (1 + r) ** n
    return -(pv * growth + fv) * r / ((1 + r * when) * (growth - 1))


def _ipmt(r, per, n, pv, fv, when):
    if not 1 <= per <= n:
        raise _Bad("#NUM!")
    pmt = _pmt(r, n, pv, fv, when)
    if when and per == 1:
        return 0.0
    interest = _fv(r, per - 1, pmt, pv, when) * r
    return interest / (1 + r) if when else interest


def _when(value) -> float:
    return 0.0 if _tv_number(value, 0.0) == 0 else 1.0


def _elementwise(function):
    """Excel's array evaluation of a function of single values: array arguments give an
    array of results (a 1x1 or single row/column repeats; beyond a shorter array #N/A)."""
    def call(*args):
        arrays = [a for a in args if isinstance(a, np.ndarray) and a.size > 1]
        if not arrays:
            return function(*args)
        shaped = [a.reshape(1, -1) if a.ndim == 1 else a for a in arrays]
        rows = max(a.shape[0] for a in shaped)
        cols = max(a.shape[1] for a in shaped)
        from formulas.functions import Array

        out = np.empty((rows, cols), dtype=object)
        for i in range(rows):
            for j in range(cols):
                picked = []
                for a in args:
                    if not isinstance(a, np.ndarray) or a.size <= 1:
                        picked.append(a)
                        continue
                    a = a.reshape(1, -1) if a.ndim == 1 else a
                    ii = 0 if a.shape[0] == 1 else i
                    jj = 0 if a.shape[1] == 1 else j
                    picked.append(a[ii, jj] if ii < a.shape[0] and jj < a.shape[1]
                                  else formulas_error("#N/A"))
                out[i, j] = function(*picked)
        return out.view(Array)
    call.__name__ = function.__name__
    return call


@_tv
def xpmt(rate, nper, pv, fv=OMITTED, type=OMITTED):  # noqa: A002 (Excel's argument name)
    """PMT: -(pv(1+r)^n + fv) r / ((1 + r type)((1+r)^n - 1)); -(pv+fv)/n at r = 0."""
    return _pmt(_tv_number(rate), _tv_number(nper), _tv_number(pv), _tv_number(fv, 0.0),
                _when(type))


@_tv
def xfv(rate, nper, pmt, pv=OMITTED, type=OMITTED):  # noqa: A002
    """FV: -(pv(1+r)^n + pmt(1 + r type)((1+r)^n - 1)/r); -(pv + pmt n) at r = 0."""
    return _fv(_tv_number(rate), _tv_number(nper), _tv_number(pmt), _tv_number(pv, 0.0),
               _when(type))


@_tv
def xpv(rate, nper, pmt, fv=OMITTED, type=OMITTED):  # noqa: A002
    """PV: -(fv + pmt(1 + r type)((1+r)^n - 1)/r) / (1+r)^n; -(fv + pmt n) at r = 0."""
    r, n, p, f, w = (_tv_number(rate), _tv_number(nper), _tv_number(pmt),
                     _tv_number(fv, 0.0), _when(type))
    if r == 0:
        return -(f + p * n)
    growth = (1 + r) ** n
    return -(f + p * (1 + r * w) * (growth - 1) / r) / growth


@_tv
def xnper(rate, pmt, pv, fv=OMITTED, type=OMITTED):  # noqa: A002
    """NPER: log((pmt(1+r type) - fv r) / (pmt(1+r type) + pv r)) / log(1+r);
    -(pv+fv)/pmt at r = 0; #NUM! when no number of periods repays the loan."""
    r, p, v, f, w = (_tv_number(rate), _tv_number(pmt), _tv_number(pv),
                     _tv_number(fv, 0.0), _when(type))
    if r == 0:
        if p == 0:
            raise _Bad("#NUM!")
        return -(v + f) / p
    a = p * (1 + r * w)
    ratio = (a - f * r) / (a + v * r)
    if ratio <= 0 or r <= -1:
        raise _Bad("#NUM!")
    return math.log(ratio) / math.log1p(r)


@_tv
def xipmt(rate, per, nper, pv, fv=OMITTED, type=OMITTED):  # noqa: A002
    """IPMT: the interest part of payment ``per`` (1..nper): FV after per-1 periods
    times the rate (divided by 1+r and 0 in period 1 for payments in advance)."""
    return _ipmt(_tv_number(rate), _tv_number(per), _tv_number(nper), _tv_number(pv),
                 _tv_number(fv, 0.0), _when(type))


@_tv
def xppmt(rate, per, nper, pv, fv=OMITTED, type=OMITTED):  # noqa: A002
    """PPMT = PMT - IPMT for payment ``per``."""
    r, k, n, v, f, w = (_tv_number(rate), _tv_number(per), _tv_number(nper),
                        _tv_number(pv), _tv_number(fv, 0.0), _when(type))
    return _pmt(r, n, v, f, w) - _ipmt(r, k, n, v, f, w)


#: formulas' functions replaced by the definitions above (each upstream bug noted in
#: benchmarks/results/recalc_parity.md)
TIME_VALUE_FUNCTIONS = {"PMT": _elementwise(xpmt), "FV": _elementwise(xfv),
                        "PV": _elementwise(xpv), "NPER": _elementwise(xnper),
                        "IPMT": _elementwise(xipmt), "PPMT": _elementwise(xppmt)}


def _polished_xirr(original):
    """XIRR: formulas' own result (its argument checks and error values agree with
    Excel's), then Newton steps on sum v_i/(1+r)^((d_i-d_1)/365) to full precision:
    formulas 1.3.4 stops about 5e-8 (relative) from the root."""
    def xirr(values, dates, guess=_ABSENT):
        args = [values, dates] + ([] if guess is _ABSENT else [guess])
        first = original(*args)
        start = _scalar(first)
        if is_error(start) or not isinstance(start, (int, float, np.integer, np.floating)):
            return first
        try:
            v = np.asarray(np.ravel(values), dtype=float)
            t = (np.floor(np.asarray(np.ravel(dates), dtype=float)) - math.floor(
                float(np.ravel(dates)[0]))) / 365.0
        except (TypeError, ValueError):
            return first
        x = float(start)
        for _ in range(50):
            growth = (1 + x) ** t
            value = float(np.sum(v / growth))
            slope = float(np.sum(-t * v / (growth * (1 + x))))
            if slope == 0 or not math.isfinite(slope):
                return first
            step = value / slope
            if not math.isfinite(step) or x - step <= -1:
                return first
            x -= step
            if abs(step) <= 1e-15 * max(1.0, abs(x)):
                break
        return x if abs(x - float(start)) <= 1e-6 * max(1.0, abs(x)) else first
    return xirr


def _negative_ignores_places(original):
    """DEC2BIN/DEC2OCT/DEC2HEX: Excel ignores ``places`` for a negative number (it is
    written in 10 digits, two's complement); formulas 1.3.4 returns #NUM!."""
    def convert(number, places=_ABSENT):
        value = _scalar(number)
        if places is not _ABSENT and isinstance(value, (int, float, np.integer, np.floating)) \
                and not isinstance(value, bool) and value < 0:
            return original(number)
        return original(number) if places is _ABSENT else original(number, places)
    return convert


def _booleans_as_numbers(original):
    """VDB: a TRUE/FALSE ``no_switch`` (as Excel's examples write it) is 1/0; formulas
    1.3.4 returns #VALUE! for a boolean there."""
    def call(*args):
        return original(*[float(a) if isinstance(a, (bool, np.bool_)) else a for a in args])
    return call


def _not_equal_counts_everything_else(original):
    """COUNTIF(range, "<>23"): Excel counts every cell not equal to 23, blanks and text
    included (6 of 23, 5, "x", blank, 23, 7, 8, 9); formulas 1.3.4 counts only numbers.
    Counted as the range's size minus the cells equal to the rest (``"=23"``)."""
    def countif(range_, criteria):
        text = _scalar(criteria)
        if not (isinstance(text, str) and text.startswith("<>")) \
                or not isinstance(range_, np.ndarray):
            return original(range_, criteria)
        rest = text[2:]
        if rest == "":
            blank = sum(1 for v in range_.ravel().tolist() if v is sh.EMPTY or v == "")
            return float(range_.size - blank)
        equal = _scalar(original(range_, "=" + rest))
        if is_error(equal):
            return equal
        return float(range_.size - float(equal))
    return countif


# ---------------------------------------------------------------------------------------
# dynamic-array functions formulas 1.3.4 lacks


def xsequence(rows, columns=OMITTED, start=OMITTED, step=OMITTED):
    """SEQUENCE(rows, [columns], [start], [step]): start, start+step, ... row by row.

    Sizes are truncated to whole numbers (SEQUENCE(2.7) has 2 rows); a size below 1 is
    Excel's #CALC! (written #VALUE!, with the reason)."""
    from formulas.functions import Array

    try:
        height = int(math.trunc(_tv_number(rows)))
        width = int(math.trunc(_tv_number(columns, 1.0)))
        first, increment = _tv_number(start, 1.0), _tv_number(step, 1.0)
    except _Bad as bad:
        return formulas_error(bad.code)
    if height < 1 or width < 1:
        LOG.add(XlError("#VALUE!", "SEQUENCE needs at least 1 row and 1 column "
                                   "(Excel: #CALC!)"))
        return formulas_error("#VALUE!")
    if height * width > 10_000_000:
        LOG.add(XlError("#NUM!", f"SEQUENCE of {height:,} x {width:,} values is too large"))
        return formulas_error("#NUM!")
    values = first + increment * np.arange(height * width, dtype=float)
    return values.reshape(height, width).astype(object).view(Array)


#: bare name -> implementation; registered also under the ``_xlfn.`` name Excel writes
ARRAY_FUNCTIONS = {"SEQUENCE": xsequence}


# ---------------------------------------------------------------------------------------
# INDEX, LOOKUP, criteria, YEARFRAC: formulas 1.3.4 disagrees with Excel


def _index_zero_is_whole(original):
    """INDEX(array, 0, c) is column c, INDEX(array, r, 0) row r, INDEX(array, 0, 0) all
    of it (Microsoft: "If row_num is set to 0, INDEX returns the array of values for the
    entire column"); formulas 1.3.4 reads 0 as 1 and gives one cell."""
    def index(compiling, array, row_num=_ABSENT, col_num=_ABSENT, *rest):
        args = [a for a in (row_num, col_num) if a is not _ABSENT] + list(rest)
        if compiling or rest or row_num is _ABSENT:
            return original(compiling, array, *args)
        from formulas.functions import Array
        from formulas.ranges import Ranges

        values = array.value if isinstance(array, Ranges) else array
        if not isinstance(values, np.ndarray) or values.ndim != 2:
            return original(compiling, array, *args)
        try:
            r = _tv_number(row_num, 0.0)
            c = None if col_num is _ABSENT else _tv_number(col_num, 0.0)
        except _Bad:
            return original(compiling, array, *args)
        if c is None or (r != 0 and c != 0):  # one index, or two non-zero: as formulas does
            return original(compiling, array, *args)
        rows, cols = values.shape
        r, c = int(r), int(c)
        if r < 0 or c < 0:
            return formulas_error("#VALUE!")
        if r > rows or c > cols:
            return formulas_error("#REF!")
        block = values[(slice(None) if r == 0 else slice(r - 1, r)),
                       (slice(None) if c == 0 else slice(c - 1, c))]
        if isinstance(array, Ranges):  # a reference stays one (ROWS(INDEX(A1:C3,0,2)))
            from npl_xl.recalc.references import Ref

            base = _ref_of(array)
            row0 = base.row0 + (r - 1 if r else 0)
            col0 = base.col0 + (c - 1 if c else 0)
            return _as_ranges(Ref(base.sheet, row0, col0, row0 + block.shape[0] - 1,
                                  col0 + block.shape[1] - 1), block)
        return block.view(Array)
    return index


def _lookup_2d_longer_side(original):
    """LOOKUP(value, array) on a 2-D array searches the first row when the array is wider
    than tall, else the first column, and returns the matching value of the last row or
    column (Microsoft's array form of LOOKUP); formulas 1.3.4 always searches the first
    column."""
    def lookup(lookup_value, array, result_vector=_ABSENT):
        if not isinstance(array, np.ndarray) or array.ndim != 2 or 1 in array.shape:
            args = [lookup_value, array] + ([] if result_vector is _ABSENT else [result_vector])
            return original(*args)
        rows, cols = array.shape
        searched = array[0:1, :] if cols > rows else array[:, 0:1]
        if result_vector is not _ABSENT:  # a 2-D lookup_vector: its longer side's first line
            return original(lookup_value, searched, result_vector)
        return original(lookup_value, searched, array[-1:, :] if cols > rows else array[:, -1:])
    return lookup


def _criteria_not_equal_and_blank() -> None:
    """Criteria of COUNTIF(S), SUMIF(S), AVERAGEIF(S), MAXIFS, MINIFS as Excel reads them:
    ``"<>23"`` is every cell not equal to 23 (text and blanks included), ``"<>"`` every
    non-blank cell, ``"="`` every blank one. formulas 1.3.4 compares ``<>`` only with cells
    of the criterion's type (COUNTIFS(range,"<>23") over 23, 5, "x", blank, 23, 7 gave 2
    where Excel gives 4) and reads ``"="``/``"<>"`` as the texts "=" and "<>". Its
    criterion matcher (module ``formulas.functions``, ``__xfilter``) is wrapped; if a
    future version renames it, nothing is changed (COUNTIF keeps its own fix)."""
    import formulas.functions as library

    original = library.__dict__.get("__xfilter")
    if original is None or getattr(original, "npl_fixed", False):
        return

    def matcher(test_range, condition):
        if isinstance(condition, str):
            raw = np.asarray(test_range["raw"], dtype=object)
            if condition == "=":
                return np.vectorize(lambda v: isinstance(v, str) and v == "",
                                    otypes=[bool])(raw)
            if condition == "<>":
                return np.vectorize(lambda v: not (isinstance(v, str) and v == ""),
                                    otypes=[bool])(raw)
            if condition.startswith("<>"):
                return ~np.asarray(original(test_range, "=" + condition[2:]), dtype=bool)
        return original(test_range, condition)

    matcher.npl_fixed = True
    library.__dict__["__xfilter"] = matcher


def _excel_date(serial: float) -> tuple[int, int, int]:
    """(year, month, day) of an Excel 1900-system serial, with its fictitious 29 Feb 1900
    (serial 60) and serial 0 as 0 Jan 1900."""
    import datetime

    serial = int(serial)
    if serial == 0:
        return 1900, 1, 0
    if serial == 60:
        return 1900, 2, 29
    day = datetime.date(1899, 12, 31 if serial < 60 else 30) + datetime.timedelta(serial)
    return day.year, day.month, day.day


def _leap(year: int) -> bool:
    """Gregorian leap year (actual/actual year lengths: Excel counts 1900 as 365 days)."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _last_of_february(y: int, m: int, d: int) -> bool:
    """The last day of February in Excel's calendar (which has a 29 Feb 1900)."""
    return m == 2 and d == (29 if _leap(y) or y == 1900 else 28)


def _yearfrac(start: int, end: int, basis: int) -> float:
    """YEARFRAC of whole serials start <= end (Microsoft's YEARFRAC; the 30/360 and
    actual/actual rules as Excel applies them, D. A. Wheeler, "YEARFRAC in Excel and
    OpenFormula", 2008)."""
    y1, m1, d1 = _excel_date(start)
    y2, m2, d2 = _excel_date(end)
    if start == end:
        return 0.0
    if basis == 0:  # US (NASD) 30/360
        if d1 == 31 and d2 == 31:
            d1 = d2 = 30
        elif d1 == 31:
            d1 = 30
        elif d1 == 30 and d2 == 31:
            d2 = 30
        elif _last_of_february(y1, m1, d1) and _last_of_february(y2, m2, d2):
            d1 = d2 = 30
        elif _last_of_february(y1, m1, d1):
            d1 = 30
        return ((y2 - y1) * 360 + (m2 - m1) * 30 + (d2 - d1)) / 360.0
    if basis == 4:  # European 30/360
        d1, d2 = min(d1, 30), min(d2, 30)
        return ((y2 - y1) * 360 + (m2 - m1) * 30 + (d2 - d1)) / 360.0
    days = end - start
    if basis == 2:
        return days / 360.0
    if basis == 3:
        return days / 365.0
    # basis 1, actual/actual
    within_a_year = y1 == y2 or (y2 == y1 + 1 and (m1 > m2 or (m1 == m2 and d1 >= d2)))
    if within_a_year:
        if y1 == y2:
            length = 366 if _leap(y1) else 365
        elif (_leap(y1) and (m1, d1) <= (2, 29)) or (_leap(y2) and (m2, d2) >= (2, 29)):
            length = 366
        else:
            length = 365
        return days / length
    years = range(y1, y2 + 1)
    average = sum(366 if _leap(y) else 365 for y in years) / len(years)
    return days / average


def _as_number(text) -> Any:
    """A number, or text read as VALUE reads it (numbers, dates, times); else #VALUE!."""
    if not isinstance(text, str):
        return float(text)
    try:
        return float(text)
    except ValueError:
        from npl_xl.recalc.aggregates import call_builtin

        value = _scalar(call_builtin("VALUE", text))
        return float(value) if isinstance(value, (int, float, np.integer, np.floating)) \
            and not isinstance(value, bool) else formulas_error("#VALUE!")


def xyearfrac(start_date, end_date, basis=OMITTED):
    """YEARFRAC(start_date, end_date, [basis]): the basis is checked first (an error is
    returned as it is, text or TRUE/FALSE #VALUE!, outside 0-4 #NUM!), then the dates
    (truncated to whole days; before 0 or after 31 Dec 9999 #NUM!); dates given in
    either order."""
    def one(value):
        if isinstance(value, np.ndarray):
            if value.size != 1:
                raise _Bad("#VALUE!")
            value = value.ravel()[0]
        return value

    try:
        b = one(basis)
        if is_error(b):
            return b
        if b is OMITTED or b is sh.EMPTY or b is None:  # (EMPTY is a str: first)
            b = 0
        elif isinstance(b, (bool, np.bool_)):
            raise _Bad("#VALUE!")
        else:
            b = _as_number(b)
            if is_error(b):
                return b
            b = int(math.trunc(b))
        if not 0 <= b <= 4:
            raise _Bad("#NUM!")
        serials = []
        for value in (one(start_date), one(end_date)):
            if is_error(value):
                return value
            if isinstance(value, str) and value is not sh.EMPTY:
                value = _as_number(value)
                if is_error(value):
                    return value
            if isinstance(value, (bool, np.bool_)):
                raise _Bad("#VALUE!")
            number = 0.0 if value is sh.EMPTY or value is None else float(value)
            if not 0 <= number < 2958466:
                raise _Bad("#NUM!")
            serials.append(int(math.floor(number)))
    except _Bad as bad:
        return formulas_error(bad.code)
    except (TypeError, ValueError):
        return formulas_error("#VALUE!")
    start, end = sorted(serials)
    return _yearfrac(start, end, b)


def _format_sections(code: str) -> list[str]:
    """A number format split at its unquoted, unescaped ``;`` (positive; negative; zero;
    text)."""
    sections, current, i = [], [], 0
    while i < len(code):
        ch = code[i]
        if ch == '"':
            end = code.find('"', i + 1)
            end = len(code) if end < 0 else end + 1
            current.append(code[i:end])
            i = end
            continue
        if ch == "\\" and i + 1 < len(code):
            current.append(code[i:i + 2])
            i += 2
            continue
        if ch == "[":
            end = code.find("]", i)
            end = len(code) if end < 0 else end + 1
            current.append(code[i:end])
            i = end
            continue
        if ch == ";":
            sections.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    sections.append("".join(current))
    return sections


def _has_text_placeholder(section: str) -> bool:
    return "@" in re.sub(r'"[^"]*"|\\.', "", section)


def _text_section(section: str, text: str) -> str:
    """A format's text section applied to text: ``@`` is the text, quoted and escaped
    characters are literal."""
    out, i = [], 0
    while i < len(section):
        ch = section[i]
        if ch == '"':
            end = section.find('"', i + 1)
            end = len(section) if end < 0 else end
            out.append(section[i + 1:end])
            i = end + 1
            continue
        if ch == "\\" and i + 1 < len(section):
            out.append(section[i + 1])
            i += 2
            continue
        out.append(text if ch == "@" else ch)
        i += 1
    return "".join(out)


def _text_sections(original):
    """TEXT(value, format_text) choosing the format's section as Excel does (Microsoft,
    "Review guidelines for customizing a number format"): positive;negative;zero;text.
    A number uses the first section, or the second (for its absolute value: the section
    writes its own sign) when negative, the third when zero; two sections: the first
    serves zero too. Text uses the fourth section (``@`` = the text), or is returned as
    it is; ``@`` in a number section is #VALUE!. formulas 1.3.4 formats every number
    with a wrong section and ignores ``@``. Conditional sections (``[>100]``) are left
    to formulas."""
    def text(value, format_text):
        code = _scalar(format_text)
        item = _scalar(value)
        if item is sh.EMPTY or item is None:  # a blank is 0 (EMPTY is a str: first)
            item = 0.0
        if not isinstance(code, str) or is_error(item) or re.search(r"\[[<>=]", code):
            return original(value, format_text)
        sections = _format_sections(code)
        if len(sections) > 1 and any(_has_text_placeholder(s) for s in sections[:3]):
            return formulas_error("#VALUE!")
        if isinstance(item, str):
            try:
                float(item)
            except ValueError:
                if len(sections) >= 4:
                    return _text_section(sections[3], item)
                if len(sections) == 1 and _has_text_placeholder(sections[0]):
                    return _text_section(sections[0], item)
                time = _time_text(item)
                if time is False:  # looks like a time, but not one Excel accepts
                    return item
                if time is not None:
                    item = time
                elif len(sections) == 1 and not _ELAPSED.match(sections[0]):
                    return original(value, format_text)  # date text: formulas reads it
                else:
                    number = _as_number(item)  # TEXT("1987-08-26", "0;-0") is 32015
                    if is_error(number):
                        return item
                    item = number
        if len(sections) == 1:
            elapsed = _ELAPSED.match(sections[0])
            if elapsed:
                return _elapsed_time(item, elapsed)
            return original(item, format_text)
        try:
            number = _tv_number(item, 0.0)
        except _Bad as bad:
            return formulas_error(bad.code)
        if number < 0:
            section, number = sections[1], -number
        elif number == 0 and len(sections) >= 3:
            section = sections[2]
        else:
            section = sections[0]
        if section == "":
            return ""
        return original(number, section)
    return text


def _shaped_like_new_x(original):
    """TREND/GROWTH: the result has the shape of new_x's (Microsoft: "returns the
    y-values along that line for the array of new_x's"); formulas 1.3.4 may return a
    row as a column, which a dynamic array would then spill the wrong way."""
    def fit(known_y, known_x=_ABSENT, new_x=_ABSENT, *rest):
        args = [known_y] + [a for a in (known_x, new_x) if a is not _ABSENT] + list(rest)
        result = original(*args)
        if isinstance(new_x, np.ndarray) and new_x.ndim == 2 and isinstance(result, np.ndarray) \
                and result.size == new_x.size and result.shape != new_x.shape \
                and 1 in new_x.shape:
            return result.reshape(new_x.shape)
        return result
    return fit


_H_M = re.compile(r"^\s*(\d+):(\d+)\.?\s*$")
_M_S = re.compile(r"^\s*(\d+):(\d+\.\d+)\s*$")
_H_M_S = re.compile(r"^\s*(\d+):(\d+):(\d+(?:\.\d*)?)\s*$")


def _time_text(text: str):
    """Time-only text as Excel's TEXT reads it, in days; False when it has a time's form
    but Excel refuses it; None when it is not time-only text. ``h:m`` (h < 24, m <= 9999),
    ``m:s.f`` (m < 60, s < 10000), ``h:m:s`` (h < 24, m < 60, s < 10000), as in the cached
    values of pycel's text.xlsx ("23:99" is 1.02708 days, "24:99" is left as text).
    formulas 1.3.4 adds today's date to such text."""
    m = _H_M.match(text)
    if m:
        h, mi = int(m.group(1)), int(m.group(2))
        return (h * 60 + mi) / 1440.0 if h < 24 and mi <= 9999 else False
    m = _M_S.match(text)
    if m:
        mi, sec = int(m.group(1)), float(m.group(2))
        return (mi * 60 + sec) / 86400.0 if mi < 60 and sec < 10000 else False
    m = _H_M_S.match(text)
    if m:
        h, mi, sec = int(m.group(1)), int(m.group(2)), float(m.group(3))
        return (h * 3600 + mi * 60 + sec) / 86400.0 if h < 24 and mi < 60 and sec < 10000 \
            else False
    return None


#: an elapsed-time format: [h], [m] or [s] first, then :m(m) / :s(s), then .0..0
_ELAPSED = re.compile(r"^\[(?P<first>h+|m+|s+)\](?P<rest>(?::(?:m+|s+)){0,2})"
                      r"(?P<fraction>\.0+)?$", re.IGNORECASE)


def _elapsed_time(value, match) -> str:
    """TEXT with an elapsed-time format ([h]:mm:ss, [m]:ss, [s].000): the whole value in
    hours, minutes or seconds (not wrapped at 24 h), the later parts within their unit.
    The time is rounded to the format's smallest unit of seconds, then each part
    truncated. A negative value takes a minus sign with the bracket part alone, and is
    #VALUE! with any other part (as Excel's cached values in pycel's text.xlsx show:
    -1 with [h] is "-24", with [h]:m #VALUE!)."""
    if isinstance(value, str):
        value = _as_number(value)
        if is_error(value):
            return value
    try:
        days = _tv_number(value, 0.0)
    except _Bad as bad:
        return formulas_error(bad.code)
    first = match.group("first").lower()
    rest = [p for p in match.group("rest").lower().split(":") if p]
    fraction = match.group("fraction") or ""
    if days < 0 and (rest or fraction):
        return formulas_error("#VALUE!")
    decimals = max(len(fraction) - 1, 0)
    seconds = round(abs(days) * 86400.0, decimals)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    whole = seconds // units[first[0]]
    parts = [f"{int(whole):0{len(first)}d}"]
    left = seconds - whole * units[first[0]]
    for part in rest:
        amount = left // units[part[0]]
        left -= amount * units[part[0]]
        parts.append(f"{int(amount):0{len(part)}d}")
    text = ":".join(parts)
    if fraction:
        digits = f"{left:.{decimals}f}".split(".")[-1] if decimals else ""
        text += "." + digits
    return ("-" if days < 0 and whole else "") + text
