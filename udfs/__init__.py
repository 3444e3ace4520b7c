"""npl-xl worksheet functions for Excel, through xlwings (import name ``npl_xl_udfs``).

Point xlwings at this module (``UDF_MODULES = npl_xl_udfs``; ``npl-xl install`` does it) and
press *Import Functions*: every function of :data:`npl_xl.sheet.registry.REGISTRY` appears in
Excel under its contract name, with its arguments, category and help text.

This layer only converts: it declares each function to xlwings (arguments read raw, error
cells as their literals, ranges as lists of rows), hands the values to the registry, which
converts them, calls the core and formats the result, and turns error results into real
Excel error values (:func:`to_excel`). Nothing here computes a number.

The functions are generated from the registry, so that adding a worksheet function is one
declaration in ``npl_xl/functions``; each generated function has a real signature (the
contract's argument names, optional arguments defaulting to None) because xlwings writes
the VBA wrapper from ``inspect.signature``. A last parameter ``caller`` is xlwings'
reserved argument (the calling range; hidden from Excel's signature): when a cell's result is
an error, its message is kept under the cell's address for the ribbon's *Explain Error*
button, which runs in this same process because the add-in sets xlwings' "Use UDF Server".

Excel stays responsive: the Monte Carlo functions (the registry's ``cached=True`` ones:
NPL_TRANCHE_EL, NPL_BID_PRICE, NPL_TRANCHE_SIZE, NPL_SENSITIVITY, NPL_PRICE_TABLE) are
declared with xlwings' ``async_mode="threading"``: the cell shows ``#N/A waiting...`` while
a worker thread computes, then xlwings rewrites the cell's formula and Excel recalculates it
from xlwings' cache. The key ``NPL_ASYNC`` of the user's xlwings.conf (``~/.xlwings/``;
``"NPL_ASYNC","false"``) turns it off: every function then runs synchronously, as before.
Designed around xlwings' known problems with threading UDFs:

- results served from the cache on recalculation: after the first run, identical
  arguments are answered from the registry's own cache (no Monte Carlo), so an F9, a
  re-opened workbook or a cell left at ``#N/A waiting...`` when xlwings' formula rewrite
  failed under load (xlwings issue #2134) comes back at once;
- arguments that are formulas depending on lookups and named ranges make Excel call an
  async UDF again and again with intermediate values while it recalculates (#2218). Each
  request is filed under its calling range; a request is dropped, without simulating,
  when a request with *different* arguments for the same range arrives within
  :data:`ASYNC_DEBOUNCE_SECONDS` or while it waits for the one Monte Carlo lock (runs are
  serialised: numba already uses every core). Only the latest argument set is simulated;
  the dropped ones return ``#N/A`` ("superseded") into a cache entry Excel never reads
  again;
- spilled results (Excel 365) need xlwings to rewrite the formula with ``Formula2`` (else
  Excel adds the implicit-intersection ``@`` and shows one cell, #1277): fixed in the
  xlwings releases this package requires (>= 0.33); legacy Ctrl+Shift+Enter arrays keep
  their range;
- async functions are never volatile (a volatile async UDF recalculates itself for ever).
"""

from __future__ import annotations

import keyword
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import xlwings as xw

from npl_xl.errors import XlError
from npl_xl.sheet.registry import WorksheetFunction, load_all
from npl_xl.workbook.a1 import parse_address

__all__ = ["to_excel", "EXCEL_ERROR_SCODES", "build_udf", "explain", "async_enabled", "evaluate_async",
           "ASYNC_CONFIG_KEY", "ASYNC_DEBOUNCE_SECONDS"]

logger = logging.getLogger("npl_xl")

#: COM SCODE of each Excel error value: 0x800A0000 | xlErr number (CVErr(xlErrNA) = 2042).
#: These are the numbers Excel itself hands to COM for error cells (xlwings' cell_errors).
EXCEL_ERROR_SCODES = {
    "#NULL!": -2146826288,
    "#DIV/0!": -2146826281,
    "#VALUE!": -2146826273,
    "#REF!": -2146826265,
    "#NAME?": -2146826259,
    "#NUM!": -2146826252,
    "#N/A": -2146826246,
}

_RANGE_KINDS = {"vector", "matrix", "table", "codes"}


def _com_error(error: XlError):
    """A COM VT_ERROR variant: Excel shows it as a real error value (IFERROR, ISNA work).

    Where pywin32 is missing (not Windows: tests, documentation builds) the
    :class:`~npl_xl.errors.XlError` itself is returned; no Excel is there to receive it.
    """
    try:
        from pythoncom import VT_ERROR
        from win32com.client import VARIANT
    except ImportError:
        return error
    return VARIANT(VT_ERROR, EXCEL_ERROR_SCODES[error.code])


def to_excel(result: Any) -> Any:
    """Turn a registry result into what Excel receives: errors become VT_ERROR variants.

    The error's message goes to the log (xlwings writes it to its log file), since an
    Excel error value cannot carry text.
    """
    if isinstance(result, XlError):
        if result.message:
            logger.info("%s: %s", result.code, result.message)
        return _com_error(result)
    if isinstance(result, list):
        return [[to_excel(cell) for cell in row] for row in result]
    return result


#: (book, sheet, range address) -> (code, message, time): the latest errors, newest last.
ERROR_MESSAGES: OrderedDict[tuple[str, str, str], tuple[str, str, float]] = OrderedDict()
MAX_MESSAGES = 2000


#: The xlwings.conf key that turns the threading async mode of the Monte Carlo UDFs off.
ASYNC_CONFIG_KEY = "NPL_ASYNC"
#: Seconds an async request waits for a newer one from the same calling range (#2218).
ASYNC_DEBOUNCE_SECONDS = 0.25


def async_enabled(config: dict[str, str] | None = None) -> bool:
    """Whether the Monte Carlo UDFs use xlwings' threading async mode: True unless the
    user's xlwings.conf sets NPL_ASYNC to false/0/no/off."""
    if config is None:
        try:
            from xlwings.utils import read_user_config

            config = read_user_config()
        except Exception:  # no readable config: the default
            config = {}
    value = str(config.get(ASYNC_CONFIG_KEY.lower(), "true")).strip().lower()
    return value not in ("false", "0", "no", "off")


_ASYNC_STATE = threading.Lock()
_MONTE_CARLO = threading.Lock()
_LATEST: dict[tuple, tuple[int, str | None]] = {}
_TOKENS = iter(range(1, 1 << 62))


def _caller_key(caller) -> tuple | None:
    """(book, sheet, address) of the calling range: an xlwings Range, or in async mode
    xlwings' ComRange (marshalled to this worker thread by its ``impl``)."""
    try:
        if not hasattr(caller, "sheet") and hasattr(caller, "impl"):
            caller = xw.Range(impl=caller.impl)
        return (caller.sheet.book.name, caller.sheet.name, caller.address.replace("$", ""))
    except Exception:
        return None


def evaluate_async(function: WorksheetFunction, caller, args) -> Any:
    """Run in xlwings' worker thread: the latest-request-wins guard (module docstring),
    then the ordinary evaluation under the Monte Carlo lock."""
    key = _caller_key(caller)
    if key is None or function.is_cached(args):
        return _evaluate(function, caller, args)
    mine = function.cache_key(args)
    with _ASYNC_STATE:
        token = next(_TOKENS)
        _LATEST[key] = (token, mine)

    def superseded() -> bool:
        with _ASYNC_STATE:
            _, latest = _LATEST.get(key, (token, mine))
            return latest != mine

    time.sleep(ASYNC_DEBOUNCE_SECONDS)
    if superseded():
        return to_excel(XlError("#N/A", "superseded by a newer calculation of this cell"))
    with _MONTE_CARLO:
        if superseded():
            return to_excel(XlError("#N/A", "superseded by a newer calculation of this cell"))
        return _evaluate(function, caller, args)


def _evaluate(function: WorksheetFunction, caller, args) -> Any:
    result = function(*args)
    if caller is not None and _has_error(result):
        _remember(caller, result if isinstance(result, XlError) else _first_error(result))
    return to_excel(result)


def _has_error(result) -> bool:
    return isinstance(result, XlError) or (
        isinstance(result, list) and any(isinstance(c, XlError) for row in result for c in row))


def _first_error(rows) -> XlError:
    return next(c for row in rows for c in row if isinstance(c, XlError))


def _remember(caller, error: XlError) -> None:
    key = _caller_key(caller)  # a few COM calls, made only when a cell ends in an error
    if key is None:  # no address to file it under: the log still has it
        return
    ERROR_MESSAGES.pop(key, None)
    ERROR_MESSAGES[key] = (error.code, error.message, time.time())
    while len(ERROR_MESSAGES) > MAX_MESSAGES:
        ERROR_MESSAGES.popitem(last=False)


def explain(book: str, sheet: str, cell: str) -> str | None:
    """The message of the latest npl-xl error whose formula range contains ``cell``."""
    row, column = parse_address(cell)
    for (b, s, address), (code, message, _) in reversed(ERROR_MESSAGES.items()):
        if (b, s) != (book, sheet):
            continue
        first, _, last = address.partition(":")
        top, left = parse_address(first)
        bottom, right = parse_address(last or first)
        if top <= row <= bottom and left <= column <= right:
            return f"{code} {message}"
    return None


def build_udf(function: WorksheetFunction, use_async: bool | None = None):
    """Generate the xlwings UDF for one registry function, with a real signature; a
    ``cached`` (Monte Carlo) function in xlwings' threading async mode unless
    ``use_async`` is False (default: :func:`async_enabled`)."""
    run_async = function.cached and (async_enabled() if use_async is None else use_async)
    names = [arg.name for arg in function.args]
    for name in names:  # VBA parameter names: letters, digits, underscore; not reserved
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"{function.name}: argument name {name!r} is not legal")
    if "caller" in names:
        raise ValueError(f"{function.name}: 'caller' is reserved by xlwings")
    params = ", ".join(a.name if a.required else f"{a.name}=None" for a in function.args)
    source = (f"def {function.name}({params}, caller=None):\n"
              f"    return _evaluate(_function, caller, ({', '.join(names)},))\n")
    namespace = {"_evaluate": evaluate_async if run_async else _evaluate, "_function": function}
    exec(source, namespace)  # noqa: S102 - source built from validated identifiers only
    udf = namespace[function.name]
    udf.__doc__ = function.doc[:255]
    udf.__module__ = __name__
    for arg in function.args:
        options = {"err_to_str": True, "doc": arg.doc[:255] or arg.name}
        if arg.kind in _RANGE_KINDS:
            options["ndim"] = 2
        udf = xw.arg(arg.name, **options)(udf)
    if run_async:
        return xw.func(category=function.category, async_mode="threading")(udf)
    return xw.func(category=function.category)(udf)


def _export_all() -> list[str]:
    exported = []
    for function in load_all().values():
        globals()[function.name] = build_udf(function)
        exported.append(function.name)
    return exported


__all__ += _export_all()
