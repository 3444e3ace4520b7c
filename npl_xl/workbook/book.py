"""The workbook as the macros see it, live in Excel or as a file.

The ribbon's macros (:mod:`npl_xl.macros`) take a *book* and use only this protocol:

- ``read_table(name) -> RangeValues``: an Excel table (ListObject) by name, header row included,
  with the sheet and top-left address its cells live at (for error messages);
- ``read_name(name) -> RangeValues | None``: the cells of a workbook name (``HistRecoveries``);
- ``has_table(name)``, ``sheet_names()``;
- ``write_sheet(spec)``: replace an output sheet's contents by a
  :class:`~npl_xl.workbook.results.SheetSpec` (titled blocks as Excel tables, native charts);
- ``mark_cells(sheet, cells)``: fill bad input cells in red;
- ``set_status(text)`` and ``progress(done, total)``: Excel's status bar / a stderr bar.

Two implementations:

- :class:`FileBook` reads an .xlsx/.xlsm file (the package checked first by
  :mod:`npl_xl.workbook.safety`; cell values streamed from the sheet XML, only the cells of
  the table or name asked for, so a stray cell at XFD1048576 or a table ref covering the
  whole sheet costs nothing beyond the cells that exist) and writes a *copy*: output sheets are built
  with xlsxwriter in a scratch workbook and grafted into the original package at the
  zip/XML level (:mod:`npl_xl.workbook.graft`), so the user's other parts survive byte for
  byte. It never writes to the file it read.
- :class:`npl_xl_udfs.book.XlwingsBook` (in ``udfs/``, beside everything else that needs
  live Excel) wraps a live ``xlwings.Book``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lxml import etree

from npl_xl.errors import InputTypeError, NplError, WorkbookError
from npl_xl.workbook.results import SheetSpec
from npl_xl.workbook.a1 import cell_address, column_index, parse_address, parse_range
from npl_xl.workbook.graft import NS_MAIN, Package, graft_sheets, mark_cells
from npl_xl.workbook.progress import ProgressBar
from npl_xl.workbook.safety import DEFAULT_LIMITS, ZIP_ERRORS, Limits, write_atomically

__all__ = ["RangeValues", "Book", "FileBook", "write_sheet_xlsxwriter"]

#: Fill of a marked (bad) input cell: Excel's "light red" conditional-format fill.
BAD_CELL_RGB = "FFFFC7CE"
#: Colours of a heat map's low, middle and high values (Excel's red-yellow-green scale).
HEAT_LOW, HEAT_MID, HEAT_HIGH = "#F8696B", "#FFEB84", "#63BE7B"


@dataclass
class RangeValues:
    """The values of a range read from a book: ``rows`` (header row first for tables) and
    where they are. (Not the table's definition: that is :class:`npl_xl.recalc.references.Table`,
    the geometry the formula engine resolves structured references with.)"""

    name: str
    sheet: str
    top_left: str
    rows: list[list]

    @property
    def origin(self) -> str:
        """``Sheet!A1`` of the first cell, as the table parsers expect."""
        return f"{self.sheet}!{self.top_left}"


class Book(Protocol):
    """What a macro may do with a workbook (see the module docstring)."""

    def sheet_names(self) -> list[str]: ...
    def has_table(self, name: str) -> bool: ...
    def read_table(self, name: str) -> RangeValues: ...
    def read_name(self, name: str) -> RangeValues | None: ...
    def write_sheet(self, spec: SheetSpec) -> None: ...
    def mark_cells(self, sheet: str, cells: list[str]) -> None: ...
    def set_status(self, text: str | None) -> None: ...
    def progress(self, done: int, total: int) -> None: ...




class FileBook:
    """A workbook file: read it, collect output sheets and marks, :meth:`save` a copy.

    Parameters
    ----------
    path : str or Path
        The .xlsx or .xlsm to read. It is never modified.
    progress_stream : file-like, optional
        Where :meth:`progress` draws its bar (the command line passes ``sys.stderr``);
        None keeps quiet.
    """

    def __init__(self, path, progress_stream=None, limits: Limits = DEFAULT_LIMITS):
        self.path = Path(path)
        self.limits = limits
        self.package = Package.read(self.path, limits)
        with _damaged(self.package):
            tables = self.package.tables()
        self._stream = progress_stream
        self._progress = ProgressBar(progress_stream)
        self._values: dict[tuple, list[list]] = {}
        self._strings: list[str] | None = None
        self._pending: dict[str, SheetSpec] = {}
        self._marks: dict[str, list[str]] = {}
        self._status: str | None = None
        self._tables = {t["name"].lower(): t for t in tables}

    # -- reading ----------------------------------------------------------------------
    def sheet_names(self) -> list[str]:
        return [name for name, _ in self.package.sheets()]

    def has_table(self, name: str) -> bool:
        return name.lower() in self._tables

    def _shared_strings(self) -> list[str]:
        if self._strings is None:
            package = self.package
            wb = package.workbook_part
            part = next((package.target(wb, r) for r in package.relationships(wb)
                         if (r.get("Type") or "").endswith("/sharedStrings")), None)
            self._strings = [] if part is None or part not in package.parts else \
                read_shared_strings(package, part)
        return self._strings

    def _cells(self, sheet: str, ref: str) -> list[list]:
        part = self.package.sheet_part(sheet)
        if part is None:
            raise InputTypeError(f"the workbook has no sheet named {sheet!r}", argument=sheet)
        bounds = parse_range(ref)
        key = (part, bounds)
        if key not in self._values:
            self._values[key] = read_cells(
                self.package, part, sheet, bounds, self._shared_strings, self.limits,
                report=lambda rows: self.set_status(f"npl-xl: {rows:,} rows of {sheet} read…"))
        return self._values[key]

    def read_table(self, name: str) -> RangeValues:
        info = self._tables.get(name.lower())
        if info is None:
            raise InputTypeError(f"the workbook has no Excel table named {name!r} "
                                 "(Insert > Table, then Table Design > Table Name)", argument=name)
        ref = info["ref"]
        return RangeValues(info["name"], info["sheet"], ref.split(":")[0], self._cells(info["sheet"], ref))

    def read_name(self, name: str) -> RangeValues | None:
        names = {k.lower(): v for k, v in self.package.defined_names().items()}
        formula = names.get(name.lower())
        if formula is None:
            return None
        m = re.fullmatch(r"'?(.+?)'?!(\$?[A-Z]{1,3}\$?\d+(?::\$?[A-Z]{1,3}\$?\d+)?)", formula.strip())
        if not m:
            raise InputTypeError(f"the name {name} must refer to one range of cells, "
                                 f"it refers to {formula}", argument=name)
        sheet, ref = m.group(1).replace("''", "'"), m.group(2).replace("$", "")
        return RangeValues(name, sheet, ref.split(":")[0], self._cells(sheet, ref))

    # -- writing ----------------------------------------------------------------------
    def write_sheet(self, spec: SheetSpec) -> None:
        self._pending[spec.name] = spec

    def mark_cells(self, sheet: str, cells: list[str]) -> None:
        self._marks.setdefault(sheet, []).extend(cells)

    def set_status(self, text: str | None) -> None:
        self._status = text
        if self._stream is not None and text:
            print(text, file=self._stream, flush=True)

    def progress(self, done: int, total: int) -> None:
        """Draw the progress of a run on the progress stream (:class:`ProgressBar`)."""
        self._progress(done, total)

    def save(self, out_path) -> Path:
        """Write the workbook with every pending sheet and mark to ``out_path``.

        The file is written to a temporary name in the same folder and renamed
        (:func:`~npl_xl.workbook.safety.write_atomically`), so a failure never leaves half a
        file. Writing over the file this book was read from (the same path or the same
        inode) is refused.
        """
        out_path = Path(out_path)
        package = self.package.copy()
        if self._pending:
            scratch = Package(_scratch_workbook(list(self._pending.values())))
            with _damaged(self.package):
                graft_sheets(package, scratch, list(self._pending))
        with _damaged(self.package):
            for sheet, cells in self._marks.items():
                mark_cells(package, sheet, sorted(set(cells), key=parse_address), BAD_CELL_RGB)
        return write_atomically(out_path, package.write, inputs=(self.path,))


def _damaged(package: Package):
    """Context: a workbook part that is well-formed XML but not what OOXML says (a styles
    part without cellXfs, a row without its number) ends in one line naming the file."""
    import contextlib

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except (KeyError, IndexError, AttributeError, TypeError, ValueError, StopIteration) as exc:
            if isinstance(exc, NplError):
                raise
            raise WorkbookError(f"{package.source} is damaged ({type(exc).__name__}: "
                                f"{' '.join(str(exc).split())[:160]}); open it in Excel and "
                                "save it again") from None
    return guard()


# -- streaming cell reader ---------------------------------------------------------------

_M = "{%s}" % NS_MAIN
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_ITERPARSE = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _unescape(text: str | None) -> str:
    """Undo OOXML's ``_xHHHH_`` escapes of control characters."""
    if not text:
        return ""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text) if "_x" in text else text


def _item_text(element) -> str:
    """The text of a shared or inline string item: ``<t>`` or rich-text runs ``<r><t>``."""
    direct = element.find(_M + "t")
    if direct is not None:
        return _unescape(direct.text)
    return "".join(_unescape(t.text) for t in element.iterfind(f"{_M}r/{_M}t"))


def _stream(package: Package, part: str):
    parts = package.parts
    if part in parts.loaded:
        return io.BytesIO(parts.loaded[part])
    return parts.archive.open(package.infos[part])


def _stream_errors(package: Package, part: str, what: str):
    """Context of a streamed parse: XML and zip errors become one line naming the part."""
    import contextlib

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except etree.XMLSyntaxError as exc:
            raise WorkbookError(f"{package.source}: part {part} ({what}) is damaged: "
                                f"{str(exc).splitlines()[0][:200]}") from None
        except ZIP_ERRORS as exc:
            raise WorkbookError(f"{package.source}: part {part} ({what}) cannot be unzipped: "
                                f"{exc}") from None
    return guard()


def read_shared_strings(package: Package, part: str) -> list[str]:
    """The shared strings of ``part``, streamed (one ``<si>`` at a time)."""
    strings: list[str] = []
    with _stream_errors(package, part, "the shared strings"), _stream(package, part) as stream:
        for _, item in etree.iterparse(stream, tag=_M + "si", **_ITERPARSE):
            strings.append(_item_text(item))
            item.clear()
            while item.getprevious() is not None:
                del item.getparent()[0]
    return strings


def read_cells(package: Package, part: str, sheet: str, bounds: tuple[int, int, int, int],
               strings, limits: Limits = DEFAULT_LIMITS, report=None,
               report_every: int = 100_000) -> list[list]:
    """Values of the cells of ``part`` inside ``bounds`` (0-based first row, first column,
    last row, last column), as rows of Python values (None for a blank), streamed.

    Only cells that exist are stored: rows end at the last row holding a value, and the
    rows are as wide as the widest (a stray cell far away from the data is refused, naming
    it, when rows x width would exceed ``limits.max_cells``). Text repeated down a column
    (codes) is held once. Reading stops after the last row of ``bounds``, and the rest of
    the part is still inflated (not parsed) so that zipfile checks its CRC.
    ``report(rows)`` is called every ``report_every`` rows (progress on a large tape).
    """
    r0, c0, r1, c1 = (k + 1 for k in bounds)  # 1-based below, as the XML counts
    rows: list[list] = []
    empty: list = []
    memo: dict[str, str] = {}
    far = None
    width = 0
    row_tag, c_tag = _M + "row", _M + "c"
    v_tag, is_tag = _M + "v", _M + "is"
    row_no = 0
    col_no = 0
    columns: dict[str, int] = {}
    shared = None
    with _stream_errors(package, part, f"sheet {sheet}"), _stream(package, part) as stream:
        for event, element in etree.iterparse(stream, events=("start", "end"),
                                              tag=(row_tag, c_tag), **_ITERPARSE):
            if element.tag == row_tag:
                if event == "start":
                    r = element.get("r")
                    row_no = int(r) if r else row_no + 1
                    col_no = 0
                    if row_no > r1:
                        break
                    if report is not None and row_no % report_every == 0:
                        report(row_no)
                else:
                    element.clear()
                    while element.getprevious() is not None:
                        del element.getparent()[0]
                continue
            if event == "start":
                continue
            ref = element.get("r")
            if ref:
                letters = ref.rstrip("0123456789")
                col_no = columns.get(letters) or columns.setdefault(letters, column_index(letters) + 1)
                if letters != ref:
                    row_no = int(ref[len(letters):])
            else:
                col_no += 1
            if not (r0 <= row_no <= r1 and c0 <= col_no <= c1):
                continue
            kind = element.get("t", "n")
            if kind == "inlineStr":
                inline = element.find(is_tag)
                value = _item_text(inline) if inline is not None else None
            else:
                v = element.find(v_tag)
                text = v.text if v is not None else None
                if text is None:
                    value = None
                elif kind == "n":
                    try:
                        value = float(text)
                    except ValueError:
                        raise WorkbookError(f"{package.source}: cell {sheet}!{cell_address(row_no - 1, col_no - 1)}"
                                            f" (part {part}) holds {text[:40]!r}, not a number") \
                            from None
                elif kind == "s":
                    if shared is None:
                        shared = strings()
                    index = int(text) if text.strip().isdigit() else -1
                    if not 0 <= index < len(shared):
                        raise WorkbookError(
                            f"{package.source}: cell {sheet}!{cell_address(row_no - 1, col_no - 1)} (part "
                            f"{part}) refers to shared string {text.strip()[:20]}, but the "
                            f"shared strings part holds {len(shared)}")
                    value = shared[index]
                elif kind == "b":
                    value = text.strip() in ("1", "true")
                elif kind == "e":
                    value = text.strip()
                else:  # str (a formula's text), d (ISO date: kept as written)
                    value = _unescape(text)
            if value is None or value == "":
                continue
            if isinstance(value, str):
                value = memo.setdefault(value, value) if len(memo) < 1_000_000 else value
            i, j = row_no - r0, col_no - c0
            while len(rows) <= i:
                rows.append(empty)
            row = rows[i]
            if row is empty:
                row = rows[i] = []
            if j >= len(row):
                row.extend([None] * (j + 1 - len(row)))
            row[j] = value
            if j + 1 > width:
                width, far = j + 1, (row_no, col_no)
        while stream.read(1 << 20):  # the rest, unparsed: zipfile checks the CRC at the end
            pass
    if rows and len(rows) * width > limits.max_cells:
        raise WorkbookError(
            f"{package.source}: sheet {sheet} has a cell as far as {cell_address(far[0] - 1, far[1] - 1)} inside "
            f"the range {cell_address(r0 - 1, c0 - 1)}:{cell_address(r1 - 1, c1 - 1)}: {len(rows):,} rows x {width:,} "
            f"columns is over the {limits.max_cells:,} cells npl-xl reads; delete the stray "
            "cells or shrink the table")
    for i, row in enumerate(rows):
        if row is empty:
            rows[i] = [None] * width
        elif len(row) < width:
            row.extend([None] * (width - len(row)))
    return rows


def _scratch_workbook(specs: list[SheetSpec]) -> bytes:
    import xlsxwriter

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "nan_inf_to_errors": True})
    for spec in specs:
        write_sheet_xlsxwriter(workbook, spec)
    workbook.close()
    return buffer.getvalue()


def _excel_value(value):
    """A DataFrame cell as a value xlsxwriter/xlwings can write (NaN -> blank)."""
    try:
        import numpy as np

        if isinstance(value, np.generic):
            value = value.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, float) and value != value:
        return None
    return value


def write_sheet_xlsxwriter(workbook, spec: SheetSpec):
    """Write a :class:`SheetSpec` as a new sheet of an xlsxwriter ``workbook``."""
    from npl_xl.workbook.charts import add_native_chart

    sheet = workbook.add_worksheet(spec.name)
    bold = workbook.add_format({"bold": True, "font_size": 13})
    caption = workbook.add_format({"bold": True})
    formats: dict[str, object] = {}

    def fmt(code):
        if code is None:
            return None
        if code not in formats:
            formats[code] = workbook.add_format({"num_format": code})
        return formats[code]

    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)  # print one page wide: tables and charts side by side
    sheet.write(0, 0, spec.title, bold)
    for k, note in enumerate(spec.notes):
        sheet.write(1 + k, 0, note)
    widths: dict[int, int] = {}
    for block in spec.blocks:
        header_row, col0 = spec.layout()[block.name]
        sheet.write(header_row - 1, col0, block.title, caption)
        frame = block.frame
        columns = [str(c) for c in frame.columns]
        data = [[_excel_value(v) for v in row] for row in frame.itertuples(index=False)]
        for j, column in enumerate(columns):
            numeric = frame[frame.columns[j]].dtype.kind in "fiu"
            widths[col0 + j] = max(widths.get(col0 + j, 8), min(40, len(column) + 2),
                                   14 if numeric else 8)
        if block.table:
            sheet.add_table(header_row, col0, header_row + max(1, len(data)), col0 + len(columns) - 1, {
                "name": block.name, "style": "Table Style Light 9", "autofilter": False,
                "columns": [{"header": c} for c in columns],
            })
        else:
            for j, column in enumerate(columns):
                sheet.write(header_row, col0 + j, column, caption)
        for i, row in enumerate(data):
            row_fmt = block.row_formats[i] if block.row_formats else None
            for j, value in enumerate(row):
                cell_fmt = fmt(row_fmt or block.format_of(columns[j]))
                target = block.links.get((i, columns[j]))
                if target:
                    sheet.write_url(header_row + 1 + i, col0 + j, f"internal:{target}",
                                    cell_fmt, string=str(value))
                else:
                    sheet.write(header_row + 1 + i, col0 + j, value, cell_fmt)
                if isinstance(value, str):
                    widths[col0 + j] = max(widths[col0 + j], min(40, len(value) + 2))
        if block.color_scale and len(data):
            cols = [col0 + columns.index(str(c)) for c in block.color_scale]
            sheet.conditional_format(header_row + 1, min(cols), header_row + len(data), max(cols),
                                     {"type": "3_color_scale", "min_color": HEAT_LOW,
                                      "mid_color": HEAT_MID, "max_color": HEAT_HIGH})
    for col, width in widths.items():
        sheet.set_column(col, col, width)

    def locate(block, column):
        return spec.locate(block, column)

    for chart in spec.charts:
        add_native_chart(workbook, sheet, chart, locate)
    return sheet
