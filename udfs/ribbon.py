"""Python side of the ribbon: one function per button, called by RunPython from NplRibbon.bas.

Each function wraps the ACTIVE workbook (inside an add-in, ``xw.Book.caller()`` is the add-in
itself, so the deal workbook is ``xw.books.active``) in the live-Excel book adapter and runs
the macro of the same name from :mod:`npl_xl.macros`. The same macros run headless against
the workbook file (``npl-xl run`` and the tests), so nothing here computes. An expected
failure (bad tape, bad settings) is shown in a message box with its message, never a
traceback.
"""

from __future__ import annotations

#: The ribbon's macros, in the order of the buttons; each is a function of npl_xl.macros
#: taking a book, and a function of this module taking nothing.
MACROS = ("validate_tape", "stratify_pool", "fit_recoveries", "run_simulation", "price_bid",
          "clear_results")
#: Structuring and analysis buttons (Size Tranches, Sensitivity), then Surveillance Report.
MACROS += ("size_tranches", "sensitivity_analysis", "surveillance_report")


def _run(name: str) -> None:
    import xlwings as xw

    from npl_xl import macros
    from npl_xl.errors import NplError

    from npl_xl_udfs.book import XlwingsBook

    book = XlwingsBook(xw.books.active)
    try:
        getattr(macros, name)(book)
    except NplError as exc:
        book.set_status(None)
        xw.apps.active.alert(str(exc), title="npl-xl", mode="info")


def _make(name: str):
    def macro() -> None:
        _run(name)

    macro.__name__ = macro.__qualname__ = name
    macro.__doc__ = f"Ribbon button: npl_xl.macros.{name} on the active workbook."
    return macro


for _name in MACROS:
    globals()[_name] = _make(_name)


def explain_error() -> None:
    """Ribbon button Explain Error: the message behind the selected cell's error value.

    The worksheet functions run in xlwings' COM server, which keeps each error's message
    (npl_xl_udfs.ERROR_MESSAGES); the add-in sets "Use UDF Server", so this macro runs in
    that same process and can read them.
    """
    import xlwings as xw

    import npl_xl_udfs

    app = xw.apps.active
    cell = app.selection[0, 0]
    message = npl_xl_udfs.explain(cell.sheet.book.name, cell.sheet.name, cell.address)
    app.alert(message or f"No npl-xl error is recorded for {cell.address}.", title="npl-xl")


#: Buttons that need live Excel and have no headless counterpart.
EXCEL_ONLY = ("explain_error",)

__all__ = list(MACROS) + list(EXCEL_ONLY)
