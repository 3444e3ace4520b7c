"""One error hierarchy for the core, and the one place that maps it to Excel error values.

Every exception the core raises on purpose derives from :class:`NplError`. Each class
carries the Excel error code it becomes in a cell (``#VALUE!`` for a wrong type or shape,
``#NUM!`` for an impossible number, ``#N/A`` for an unknown code) and a message that names
the argument and the problem. Front ends (the xlwings layer, the headless engine, the
command line) never decide codes themselves: they call :func:`to_xl_error` and translate
the resulting :class:`XlError` into their own native error object.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "NplError",
    "InputTypeError",
    "DomainError",
    "UnknownCodeError",
    "ConvergenceError",
    "TableError",
    "WorkbookError",
    "XlError",
    "ERROR_CODES",
    "DYNAMIC_ARRAY_ERROR_CODES",
    "to_xl_error",
    "is_error_literal",
]

#: The Excel error literals, in Excel's own spelling.
ERROR_CODES = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A")
#: Excel 365's dynamic-array errors: a spill range that is not empty, a calculation that
#: cannot give a value (headless recalc writes them; worksheet functions never return them)
DYNAMIC_ARRAY_ERROR_CODES = ("#SPILL!", "#CALC!")


class NplError(Exception):
    """Base class of every error npl-xl raises on purpose.

    Parameters
    ----------
    message : str
        What is wrong, in words an analyst understands.
    argument : str, optional
        The worksheet argument (or table column) at fault; prefixed to the message.
    """

    excel_code = "#VALUE!"

    def __init__(self, message: str, *, argument: str | None = None):
        self.argument = argument
        self.detail = message
        super().__init__(f"{argument}: {message}" if argument else message)


class InputTypeError(NplError, TypeError):
    """A blank where a value is required, text where a number is required, a wrong shape."""

    excel_code = "#VALUE!"


class DomainError(NplError, ValueError):
    """A number outside its domain (a negative sd, a mean of 1.2, rho of 1)."""

    excel_code = "#NUM!"


class UnknownCodeError(NplError, LookupError):
    """An unknown code: province, stage, collateral type, defect, tranche kind, key."""

    excel_code = "#N/A"

    def __str__(self) -> str:  # LookupError subclasses KeyError-style repr otherwise
        return self.args[0] if self.args else ""


class ConvergenceError(NplError, ArithmeticError):
    """A numerical method that did not converge (an MLE, an IRR, a bid-price search)."""

    excel_code = "#NUM!"


class TableError(NplError, ValueError):
    """Problems found in a table (loan tape, tranches, settings), all of them at once.

    Parameters
    ----------
    problems : list of str
        One line per problem, each naming its row, column and cell address.
    """

    excel_code = "#VALUE!"

    def __init__(self, problems: list[str], *, argument: str | None = None):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s): " if len(self.problems) > 1 else ""
        super().__init__(head + "; ".join(self.problems), argument=argument)


class WorkbookError(NplError):
    """A file that is not a workbook npl-xl can read (missing, not xlsx/xlsm, damaged)."""

    excel_code = "#VALUE!"


@dataclass(frozen=True)
class XlError:
    """An Excel error value as a plain Python object: the code and why.

    This is what a worksheet function returns instead of raising. Adapters turn it into
    ``formulas.XlError`` (headless) or a COM ``VT_ERROR`` variant (Excel).
    """

    code: str
    message: str = ""

    def __post_init__(self):
        if self.code not in ERROR_CODES and self.code not in DYNAMIC_ARRAY_ERROR_CODES:
            raise ValueError(f"not an Excel error code: {self.code!r}")

    def __str__(self) -> str:
        return self.code


def is_error_literal(value) -> bool:
    """True when ``value`` is an Excel error literal such as ``'#N/A'``."""
    return isinstance(value, str) and value in ERROR_CODES


def to_xl_error(exc: BaseException) -> XlError:
    """Map any exception to the Excel error value a cell shows, with its message.

    An :class:`NplError` keeps its own code and message. Anything else is a defect in
    npl-xl, not in the user's input: it becomes ``#VALUE!`` with the exception type named,
    so the cell shows an error instead of a silently wrong number.
    """
    if isinstance(exc, NplError):
        return XlError(exc.excel_code, str(exc))
    return XlError("#VALUE!", f"internal error ({type(exc).__name__}): {exc}")
