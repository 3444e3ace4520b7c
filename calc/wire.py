"""The pipe between the Calc component (inside soffice) and the npl-xl worker process.

This module is imported by both ends: by the worker (``npl_xl_calc.wire``, the project's
interpreter) and by the component in soffice's own Python (the .oxt carries a copy as
``pythonpath/npl_calc_wire.py``), so it uses the standard library only and messages hold
only plain values (None, bool, float, int, str, tuples, lists, dicts): the two interpreters
need not share any class, nor the same Python minor version (pickle protocol 4 is read by
every Python 3 from 3.4).

A message is a 4-byte little-endian length and a pickle. Requests are tuples whose first
item says what they are (``("call", name, args)``, ``("macro", name)``, ``("book", op,
args)`` from the worker back to the component while a macro runs); answers likewise.

Error values travel as ``{ERROR_KEY: "#NUM!", "message": "..."}`` and become Calc error
values in the component as a NaN whose payload is Calc's error number (:func:`calc_error`),
which is what Calc itself stores for an error result: ISERROR, IFERROR, ISNA and
ERROR.TYPE see them, inside arrays too.
"""

from __future__ import annotations

import math
import pickle
import struct

__all__ = ["send", "receive", "ERROR_KEY", "error_value", "is_error_value", "CALC_ERROR_NUMBERS",
           "calc_error", "calc_error_code"]

_HEADER = struct.Struct("<I")
PROTOCOL = 4
ERROR_KEY = "__npl_error__"

#: Calc's internal number of each Excel error value (LibreOffice formula/errorcodes.hxx:
#: FormulaError::NoCode 521, DivisionByZero 532, NoValue 519, NoRef 524, NoName 525,
#: IllegalFPOperation 503, NotAvailable 0x7fff).
CALC_ERROR_NUMBERS = {"#NULL!": 521, "#DIV/0!": 532, "#VALUE!": 519, "#REF!": 524,
                      "#NAME?": 525, "#NUM!": 503, "#N/A": 0x7FFF}
_CODE_OF_NUMBER = {number: code for code, number in CALC_ERROR_NUMBERS.items()}


def send(stream, message) -> None:
    """Write one message (a plain value) to a binary stream and flush it."""
    data = pickle.dumps(message, PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exactly(stream, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the other end of the npl-xl pipe closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(stream):
    """Read one message; EOFError when the other end has gone."""
    (length,) = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    return pickle.loads(_read_exactly(stream, length))


def error_value(code: str, message: str = "") -> dict:
    """An error cell as it travels: the Excel code and why."""
    return {ERROR_KEY: code, "message": message}


def is_error_value(value) -> bool:
    return isinstance(value, dict) and ERROR_KEY in value


def calc_error(code: str) -> float:
    """The double Calc stores for error ``code``: a quiet NaN, payload Calc's error number."""
    number = CALC_ERROR_NUMBERS.get(code, CALC_ERROR_NUMBERS["#VALUE!"])
    return struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000000 | number))[0]


def calc_error_code(number: int) -> str | None:
    """The Excel spelling of Calc's error number (``cell.getError()``), None if not one."""
    return _CODE_OF_NUMBER.get(number)


def is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)
