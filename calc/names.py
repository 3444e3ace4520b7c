"""Function names in formulas: Calc's long add-in names and the short names Excel knows.

Calc 7.4 knows an add-in function in an .xlsx only under its programmatic name
(``ORG.NPLXL.CALC.NPLFUNCTIONS.NPL_BETA_PARAMS``) and writes that name back into the files
it saves, which Excel (and ``npl-xl recalc``) do not know. The extension therefore, on
loading a workbook, enters again each formula that calls an npl-xl function by its short
name (:func:`long_names`), and after saving an .xlsx/.xlsm gives the file's formulas their
short names back (:func:`short_names_in_xlsx`).

Shared by the component in soffice (the .oxt carries a copy as
``pythonpath/npl_calc_names.py``) and the tests: the standard library only.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile

__all__ = ["long_prefix", "long_names", "fill_omitted", "short_names", "short_names_in_xlsx"]

_SHORT_CALL = re.compile(r"(?<![\w.])(NPL_[A-Z0-9_]+)(?=\s*\()", re.IGNORECASE)


def long_prefix(service: str) -> str:
    """``org.nplxl.calc.NplFunctions`` -> ``ORG.NPLXL.CALC.NPLFUNCTIONS.``"""
    return service.upper() + "."


def long_names(formula: str, prefix: str, functions) -> str:
    """Calls of npl-xl functions (names in ``functions``) by their long names, with
    omitted arguments filled (:func:`fill_omitted`); other names untouched."""

    def replace(match):
        name = match.group(1).upper()
        return prefix + name if name in functions else match.group(0)

    return fill_omitted(_SHORT_CALL.sub(replace, formula), prefix)


def fill_omitted(formula: str, prefix: str) -> str:
    """``""`` in each empty argument of an npl-xl call: ``F(a;;b)`` -> ``F(a;"";b)``.

    Calc refuses an empty argument of an add-in function (Err:504) where Excel passes it
    as omitted; the registry treats ``""`` as a blank, i.e. exactly as an omitted argument
    (its default). Texts in quotes and structured references in brackets are skipped.
    """
    call = re.compile(re.escape(prefix) + r"NPL_[A-Z0-9_]+\s*\Z", re.IGNORECASE)
    out: list[str] = []
    stack: list[list] = []  # per open parenthesis: [npl-xl call?, current argument empty?]
    quote = None
    brackets = 0
    for i, ch in enumerate(formula):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            brackets += 1
        elif ch == "]":
            brackets -= 1
        elif brackets:
            pass
        elif ch == "(":
            if stack:
                stack[-1][1] = False
            stack.append([bool(call.search(formula, 0, i)), True])
            out.append(ch)
            continue
        elif ch in ";,)" and stack:
            npl, empty = stack[-1]
            if npl and empty and (ch != ")" or out[-1] != "("):  # F() takes nothing
                out.append('""')
            if ch == ")":
                stack.pop()
            else:
                stack[-1][1] = True
            out.append(ch)
            continue
        if stack and not ch.isspace():
            stack[-1][1] = False
        out.append(ch)
    return "".join(out)


def short_names(text: bytes, prefix: str) -> bytes:
    """Every long npl-xl name in ``text`` without its prefix."""
    return re.sub(re.escape(prefix).encode(), b"", text, flags=re.IGNORECASE)


_F_ELEMENT = re.compile(rb"(<f\b[^>]*>)([^<]*)(</f>)")
_DEFINED = re.compile(rb"(<definedName\b[^>]*>)([^<]*)(</definedName>)")


def short_names_in_xlsx(path: str, prefix: str) -> bool:
    """Rewrite a saved .xlsx/.xlsm so its formulas call npl-xl functions by the names Excel
    knows (formulas of the sheets, defined names); through a temporary file beside it,
    renamed over it. Returns whether anything changed."""
    marker = re.compile(re.escape(prefix).encode(), re.IGNORECASE)

    def shorten(match):
        return match.group(1) + short_names(match.group(2), prefix) + match.group(3)

    with zipfile.ZipFile(path) as source:
        items = [(info, source.read(info)) for info in source.infolist()]
    changed = False
    out = []
    for info, data in items:
        name = info.filename
        if name.startswith("xl/") and name.endswith(".xml") and marker.search(data):
            pattern = _DEFINED if name == "xl/workbook.xml" else _F_ELEMENT
            new = pattern.sub(shorten, data)
            changed = changed or new != data
            data = new
        out.append((info, data))
    if not changed:
        return False
    fd, tmp = tempfile.mkstemp(prefix=".npl-xl-", suffix=".xlsx",
                               dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as target:
            for info, data in out:
                target.writestr(info, data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True
