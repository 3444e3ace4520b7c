"""Write a deal workbook from a template with some of its input tables replaced.

Used by ``npl-xl import-eba`` (and by any import that fills Tape, Collateral, Guarantees or
another input table): the template's sheets of those tables are rebuilt with the new rows
(row 1 the Chinese names, row 2 the table's header, data from row 3, as in the template),
the workbook names of the tables (LoanTape, CollateralTable, GuaranteeTable, ...) are
pointed at the new ranges, and the Summary sheet, whose array formulas are sized for the
template's rows, is replaced by a note. The file is written to a temporary name in the
target folder and renamed; an existing file is never overwritten.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from lxml import etree

from npl_xl.errors import NplError
from npl_xl.workbook.safety import write_atomically
from npl_xl.workbook.graft import NS_MAIN, Package, graft_sheets

__all__ = ["TableSheet", "write_from_template"]


@dataclass
class TableSheet:
    """One input table to write: sheet and table name, workbook name of its range, the
    frame (canonical columns first), Chinese names of its columns, a note for row 1."""

    name: str
    range_name: str
    frame: pd.DataFrame
    zh: dict
    note: str = ""


def _cell(value):
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _scratch(sheets: list[TableSheet], summary_note: str) -> tuple[bytes, dict[str, str]]:
    import xlsxwriter
    from xlsxwriter.utility import xl_col_to_name

    data = io.BytesIO()
    wb = xlsxwriter.Workbook(data, {"in_memory": True})
    zh_fmt = wb.add_format({"italic": True, "font_color": "#595959"})
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    money = wb.add_format({"num_format": "#,##0.00"})
    refs = {}
    for sheet in sheets:
        ws = wb.add_worksheet(sheet.name)
        frame = sheet.frame
        columns = [str(c) for c in frame.columns] or ["(empty)"]
        for j, column in enumerate(columns):
            ws.write(0, j, sheet.zh.get(column, ""), zh_fmt)
            ws.set_column(j, j, max(12, min(30, len(column) + 3)))
        last = 1 + max(len(frame), 1)
        ws.add_table(1, 0, last, len(columns) - 1, {"name": sheet.name, "style": "Table Style Medium 2",
                                                    "columns": [{"header": c} for c in columns]})
        for i, row in enumerate(frame.itertuples(index=False)):
            for j, value in enumerate(row):
                value = _cell(value)
                if value is None:
                    continue
                if isinstance(value, (dt.date, dt.datetime)):
                    ws.write_datetime(2 + i, j, value if isinstance(value, dt.datetime)
                                      else dt.datetime(value.year, value.month, value.day), date_fmt)
                elif isinstance(value, float):
                    ws.write_number(2 + i, j, value, money)
                else:
                    ws.write(2 + i, j, value)
        if sheet.note:
            ws.write(0, len(columns) + 1, sheet.note, zh_fmt)
        ws.freeze_panes(2, 1)
        refs[sheet.range_name] = f"{sheet.name}!$A$2:${xl_col_to_name(len(columns) - 1)}${last + 1}"
    ws = wb.add_worksheet("Summary")
    ws.write(0, 0, summary_note)
    wb.close()
    return data.getvalue(), refs


def write_from_template(template: Path, out: Path, sheets: list[TableSheet], summary_note: str) -> Path:
    """Write ``out``: ``template`` with the sheets of ``sheets`` rebuilt (module docstring).
    NplError when ``out`` exists or the template is not a workbook."""
    out = Path(out)
    if out.exists():
        raise NplError(f"{out} exists; npl-xl never overwrites a file: choose another --out")
    try:
        package = Package.read(template)
    except (OSError, ValueError, KeyError) as exc:
        raise NplError(f"the template {template} is not a readable workbook ({exc})") from None
    scratch_bytes, refs = _scratch(sheets, summary_note)
    scratch = Package(scratch_bytes)
    names = [s.name for s in sheets] + ["Summary"]
    graft_sheets(package, scratch, names)
    book = package.xml(package.workbook_part)
    defined = book.find(f"{{{NS_MAIN}}}definedNames")
    if defined is None:
        defined = etree.SubElement(book, f"{{{NS_MAIN}}}definedNames")
    for name, ref in refs.items():
        element = next((d for d in defined if d.get("name", "").lower() == name.lower()), None)
        if element is None:
            element = etree.SubElement(defined, f"{{{NS_MAIN}}}definedName", {"name": name})
        element.text = ref
    data = package.to_bytes()
    return write_atomically(out, lambda handle: handle.write(data), overwrite=False)
