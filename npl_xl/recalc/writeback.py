"""Write computed values into a copy of the workbook as the formulas' cached values.

The copy is made part by part: every part except the sheets that hold formulas and the
workbook part is copied byte-for-byte, so tables, styles, names, data validation, charts,
``xl/metadata.xml`` (dynamic arrays), ``vbaProject.bin`` and customUI/customUI14 ribbon
parts survive untouched (openpyxl.save would drop the customUI14 relationship and
metadata.xml). In the sheet XML each formula cell gets its ``<v>`` and ``t`` (``e`` error,
``str`` text, ``b`` boolean, none for numbers); every cell of an array formula's range
is written, creating ``<c>``/``<row>`` elements where the file has none.

``calcPr``: ``fullCalcOnLoad`` is removed, since its only purpose is to throw cached values
away. Nothing else in the workbook part changes: ``calcId`` stays as the file had it
(Excel fully recalculates, on open, a file whose calcId is older than its own
calculation engine; a template last saved by Excel keeps showing the cached values).
"""

from __future__ import annotations

import bisect
import math
import re
import zipfile
from pathlib import Path
from typing import Any

from lxml import etree

from npl_xl.errors import XlError
from npl_xl.workbook.a1 import cell_address, column_index

__all__ = ["cell_xml_value", "write_values", "drop_full_calc_on_load", "encode_text"]

_CELL_REF = re.compile(r"([A-Z]{1,3})(\d+)")
_FULL_CALC = re.compile(rb'\s+fullCalcOnLoad="(?:1|true)"')
#: characters XML 1.0 cannot hold (C0 controls but tab, LF, CR; lone surrogates; U+FFFE/F),
#: and text that already looks like an escape (its ``_`` is escaped as ``_x005F_``)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"
                      "|_(?=x[0-9A-Fa-f]{4}_)")


def encode_text(text: str) -> str:
    """Text as OOXML stores it: a character XML cannot hold as Excel's ``_xHHHH_`` escape.

    ``CHAR(1)`` -> ``_x0001_``; a literal ``_x0041_`` in the text keeps its meaning by
    escaping its underscore (``_x005F_x0041_``), as Excel does (ECMA-376 Part 1,
    22.9.2.19 ST_Xstring). The reader undoes both.
    """
    return _NOT_XML.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)


def cell_xml_value(value: Any) -> tuple[str | None, str]:
    """A value -> (``t`` attribute or None for a number, ``<v>`` text)."""
    if isinstance(value, XlError):
        return "e", value.code
    if isinstance(value, bool):
        return "b", "1" if value else "0"
    if isinstance(value, (int, float)):
        number = float(value)
        if not math.isfinite(number):
            return "e", "#NUM!"
        if number.is_integer() and abs(number) < 1e15:
            return None, str(int(number))
        return None, repr(number)
    return "str", encode_text(str(value))


def drop_full_calc_on_load(workbook_xml: bytes) -> bytes:
    """The workbook part without ``fullCalcOnLoad`` in ``<calcPr>``; other bytes unchanged."""
    return re.sub(rb"<(?:\w+:)?calcPr\b[^>]*>",
                  lambda m: _FULL_CALC.sub(b"", m.group(0)), workbook_xml)


def _position(element, row_hint: int, col_hint: int) -> tuple[int, int]:
    ref = element.get("r")
    if ref:
        m = _CELL_REF.match(ref)
        return int(m.group(2)) - 1, column_index(m.group(1))
    return row_hint, col_hint


def _sheet_with_values(xml: bytes, values: dict[tuple[int, int], Any],
                       spills: dict | None = None) -> bytes:
    """The sheet XML with ``values`` (0-based (row, col) -> value) as cached values.

    ``spills``: dynamic arrays whose range changed, anchor (row, col) -> (saved range, new
    range) as (row0, col0, row1, col1): the anchor's ``<f ref>`` becomes the new range and
    the cells of the saved range outside it lose their cached value (Excel leaves them
    empty; their style stays).
    """
    root = etree.fromstring(xml)
    ns = etree.QName(root).namespace
    q = lambda tag: f"{{{ns}}}{tag}"  # noqa: E731
    sheet_data = root.find(q("sheetData"))
    rows: dict[int, Any] = {}  # 0-based row index -> <row>
    cells: dict[tuple[int, int], Any] = {}
    row_index = -1
    for row in sheet_data.iterfind(q("row")):
        r = row.get("r")
        row_index = int(r) - 1 if r else row_index + 1
        rows[row_index] = row
        col_index = -1
        for cell in row.iterfind(q("c")):
            _, col_index = _position(cell, row_index, col_index + 1)
            cells[(row_index, col_index)] = cell
    row_order = sorted(rows)
    for (r, c), (old, new) in (spills or {}).items():
        anchor = cells.get((r, c))
        f = anchor.find(q("f")) if anchor is not None else None
        if f is not None:
            f.set("ref", _range_text(new))
        for rr in range(old[0], old[2] + 1):
            for cc in range(old[1], old[3] + 1):
                inside = new[0] <= rr <= new[2] and new[1] <= cc <= new[3]
                cell = cells.get((rr, cc))
                if inside or cell is None or (rr, cc) in values:
                    continue
                for child in cell.findall(q("v")) + cell.findall(q("is")):
                    cell.remove(child)
                cell.attrib.pop("t", None)
    for (r, c), value in sorted(values.items()):
        cell = cells.get((r, c))
        if cell is None:
            cell = _new_cell(sheet_data, rows, row_order, r, c, q)
            cells[(r, c)] = cell
        try:
            _set_value(cell, value, q)
        except Exception as exc:  # a bug: reported with the cell, exit status 3
            exc.add_note(f"writing {cell_address(r, c)}")
            raise
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _range_text(bounds: tuple[int, int, int, int]) -> str:
    row0, col0, row1, col1 = bounds
    first, last = cell_address(row0, col0), cell_address(row1, col1)
    return first if first == last else f"{first}:{last}"


def _new_cell(sheet_data, rows: dict, row_order: list[int], r: int, c: int, q):
    """A new empty ``<c>`` at (r, c), inserted in order; its ``<row>`` created if missing."""
    row = rows.get(r)
    if row is None:
        row = etree.Element(q("row"), r=str(r + 1))
        at = bisect.bisect_left(row_order, r)
        if at < len(row_order):
            rows[row_order[at]].addprevious(row)
        else:
            sheet_data.append(row)
        row_order.insert(at, r)
        rows[r] = row
    cell = etree.Element(q("c"), r=cell_address(r, c))
    for existing in row.iterfind(q("c")):
        ref = existing.get("r")
        if ref and column_index(_CELL_REF.match(ref).group(1)) > c:
            existing.addprevious(cell)
            break
    else:
        row.append(cell)
    spans = row.get("spans")
    if spans and ":" in spans and " " not in spans:
        lo, hi = (int(x) for x in spans.split(":"))
        row.set("spans", f"{min(lo, c + 1)}:{max(hi, c + 1)}")
    return cell


def _set_value(cell, value: Any, q) -> None:
    for child in cell.findall(q("v")) + cell.findall(q("is")):
        cell.remove(child)
    kind, text = cell_xml_value(value)
    if kind is None:
        cell.attrib.pop("t", None)
    else:
        cell.set("t", kind)
    v = etree.Element(q("v"))
    v.text = text
    f = cell.find(q("f"))
    if f is not None:
        f.addnext(v)
    else:
        cell.insert(0, v)


def _entry_like(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """A fresh zip entry with the name, date, compression and attributes of ``info``."""
    entry = zipfile.ZipInfo(info.filename, info.date_time)
    entry.compress_type = info.compress_type
    entry.external_attr = info.external_attr
    entry.create_system = info.create_system
    entry.comment = info.comment
    return entry


def write_values(path_in: str | Path, path_out: str | Path, workbook_part: str,
                 sheet_values: dict[str, dict[tuple[int, int], Any]],
                 sheet_spills: dict[str, dict] | None = None) -> None:
    """Copy ``path_in`` to ``path_out`` with cached values injected.

    ``sheet_values`` maps a sheet part name (``xl/worksheets/sheet1.xml``) to
    {(row, col): value}; ``sheet_spills`` the dynamic arrays whose range changed, by the
    same part names (see :func:`_sheet_with_values`). The copy goes to a temporary file in the output folder, renamed
    over ``path_out`` only when complete, with the mode the umask gives a new file;
    ``path_in`` is only read (and a ``path_out`` that is ``path_in`` is refused).
    """
    from npl_xl.errors import WorkbookError
    from npl_xl.workbook.safety import ZIP_ERRORS, write_atomically

    def read(source, info) -> bytes:
        try:
            return source.read(info)
        except ZIP_ERRORS as exc:
            raise WorkbookError(f"{path_in}: part {info.filename} cannot be unzipped: {exc}") \
                from None

    def write(handle) -> None:
        with zipfile.ZipFile(path_in) as source, \
                zipfile.ZipFile(handle, "w", allowZip64=True) as target:
            for info in source.infolist():
                data = read(source, info)
                if info.filename in sheet_values:
                    try:
                        data = _sheet_with_values(data, sheet_values[info.filename],
                                                  (sheet_spills or {}).get(info.filename))
                    except Exception as exc:
                        exc.add_note(f"of {info.filename}")
                        raise
                elif info.filename == workbook_part:
                    data = drop_full_calc_on_load(data)
                target.writestr(_entry_like(info), data)

    write_atomically(path_out, write, inputs=(path_in,))
