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

- :class:`FileBook` reads an .xlsx/.xlsm file (python-calamine for cell values, the
  package XML for table and name metadata) and writes a *copy*: output sheets are built
  with xlsxwriter in a scratch workbook and grafted into the original package at the
  zip/XML level (:mod:`npl_xl.workbook.graft`), so the user's other parts survive byte for
  byte. It never writes to the file it read.
- :class:`npl_xl_udfs.book.XlwingsBook` (in ``udfs/``, beside everything else that needs
  live Excel) wraps a live ``xlwings.Book``.
"""

from __future__ import annotations

import io
import os
import re
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lxml import etree

from npl_xl.errors import InputTypeError, NplError, WorkbookError
from npl_xl.workbook.results import SheetSpec
from npl_xl.workbook.a1 import parse_address, parse_range
from npl_xl.workbook.graft import Package, graft_sheets, mark_cells
from npl_xl.workbook.progress import ProgressBar

__all__ = ["RangeValues", "Book", "FileBook", "write_sheet_xlsxwriter", "write_file_atomically"]

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


def _blank_to_none(value):
    return None if isinstance(value, str) and value == "" else value


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

    def __init__(self, path, progress_stream=None):
        self.path = Path(path)
        try:
            self.package = Package.read(self.path)
            tables = self.package.tables()
        except (zipfile.BadZipFile, ValueError, KeyError, etree.XMLSyntaxError) as exc:
            raise WorkbookError(f"{self.path} is not a readable .xlsx/.xlsm workbook ({exc})") \
                from None
        self._stream = progress_stream
        self._progress = ProgressBar(progress_stream)
        self._values: dict[str, list[list]] = {}
        self._calamine = None
        self._pending: dict[str, SheetSpec] = {}
        self._marks: dict[str, list[str]] = {}
        self._status: str | None = None
        self._tables = {t["name"].lower(): t for t in tables}

    # -- reading ----------------------------------------------------------------------
    def sheet_names(self) -> list[str]:
        return [name for name, _ in self.package.sheets()]

    def has_table(self, name: str) -> bool:
        return name.lower() in self._tables

    def _sheet_values(self, sheet: str) -> list[list]:
        if sheet not in self._values:
            if self._calamine is None:
                from python_calamine import CalamineWorkbook

                self._calamine = CalamineWorkbook.from_filelike(io.BytesIO(self.path.read_bytes()))
            self._values[sheet] = self._calamine.get_sheet_by_name(sheet).to_python(
                skip_empty_area=False)
        return self._values[sheet]

    def _cells(self, sheet: str, ref: str) -> list[list]:
        r0, c0, r1, c1 = parse_range(ref)
        values = self._sheet_values(sheet)
        out = []
        for r in range(r0, r1 + 1):
            row = values[r] if r < len(values) else []
            out.append([_blank_to_none(row[c]) if c < len(row) else None for c in range(c0, c1 + 1)])
        return out

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

        The file is written to a temporary name in the same folder and renamed, so a
        failure never leaves half a file. Writing over the file this book was read from is
        refused.
        """
        out_path = Path(out_path)
        if out_path.resolve() == self.path.resolve():
            raise NplError(f"refusing to overwrite the input workbook {self.path}; "
                           "choose another output file")
        package = Package(self.package.to_bytes())
        if self._pending:
            scratch = Package(_scratch_workbook(list(self._pending.values())))
            graft_sheets(package, scratch, list(self._pending))
        for sheet, cells in self._marks.items():
            mark_cells(package, sheet, sorted(set(cells), key=parse_address), BAD_CELL_RGB)
        return write_file_atomically(out_path, package.to_bytes())


def write_file_atomically(out_path, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to a temporary file in ``out_path``'s folder and rename it to
    ``out_path``, so a failure never leaves half a file; with overwrite=False an existing
    file (also one that appears meanwhile) is an NplError and stays as it was."""
    out_path = Path(out_path)
    if not overwrite and out_path.exists():
        raise NplError(f"{out_path} exists; npl-xl never overwrites a file: choose another name")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".npl-xl-", suffix=out_path.suffix,
                               dir=out_path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
        if overwrite:
            os.replace(tmp, out_path)
        else:
            try:
                os.link(tmp, out_path)  # fails if the name was taken meanwhile
            except FileExistsError:
                raise
            except OSError:  # no hard links on this file system: check, then rename
                if out_path.exists():
                    raise FileExistsError(out_path) from None
                os.replace(tmp, out_path)
            else:
                os.unlink(tmp)
    except FileExistsError:
        os.unlink(tmp)
        raise NplError(f"{out_path} exists; npl-xl never overwrites a file: choose another name") from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out_path


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
