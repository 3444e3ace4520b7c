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
"""

from __future__ import annotations

import keyword
import logging
import time
from collections import OrderedDict
from typing import Any

import xlwings as xw

from npl_xl.errors import XlError
from npl_xl.sheet.registry import WorksheetFunction, load_all
from npl_xl.workbook.a1 import parse_address

__all__ = ["to_excel", "EXCEL_ERROR_SCODES", "build_udf", "explain"]

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
    try:  # a few COM calls, made only when a cell ends in an error
        key = (caller.sheet.book.name, caller.sheet.name, caller.address.replace("$", ""))
    except Exception:  # no address to file it under: the log still has it
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


def build_udf(function: WorksheetFunction):
    """Generate the xlwings UDF for one registry function, with a real signature."""
    names = [arg.name for arg in function.args]
    for name in names:  # VBA parameter names: letters, digits, underscore; not reserved
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"{function.name}: argument name {name!r} is not legal")
    if "caller" in names:
        raise ValueError(f"{function.name}: 'caller' is reserved by xlwings")
    params = ", ".join(a.name if a.required else f"{a.name}=None" for a in function.args)
    source = (f"def {function.name}({params}, caller=None):\n"
              f"    return _evaluate(_function, caller, ({', '.join(names)},))\n")
    namespace = {"_evaluate": _evaluate, "_function": function}
    exec(source, namespace)  # noqa: S102 - source built from validated identifiers only
    udf = namespace[function.name]
    udf.__doc__ = function.doc[:255]
    udf.__module__ = __name__
    for arg in function.args:
        options = {"err_to_str": True, "doc": arg.doc[:255] or arg.name}
        if arg.kind in _RANGE_KINDS:
            options["ndim"] = 2
        udf = xw.arg(arg.name, **options)(udf)
    return xw.func(category=function.category)(udf)


def _export_all() -> list[str]:
    exported = []
    for function in load_all().values():
        globals()[function.name] = build_udf(function)
        exported.append(function.name)
    return exported


__all__ += _export_all()
