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
        _TABLE = table
    return _TABLE
