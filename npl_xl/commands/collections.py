"""``npl-xl collections import FILE --book BOOK.xlsx``: a servicer's or trustee's collections
export (CSV or xlsx) appended to the deal workbook's Collections table, in a copy of the book.

Headers are mapped as the Collections table's are (:data:`npl_xl.inputs.collections.COLLECTION_COLUMNS`:
English, Chinese and report variants, case-, width- and space-insensitive); every row is
checked against the book's tape (loan ids) and Settings (closing_date for dates) before
anything is written.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pandas as pd

from npl_xl.errors import InputTypeError, TableError, WorkbookError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="append a collections export to the book's Collections table")
    imp.add_argument("file", type=Path, help="the export: .csv (UTF-8 or GBK) or .xlsx (first sheet)")
    imp.add_argument("--book", type=Path, required=True, help="the deal workbook")
    imp.add_argument("-o", "--output", type=Path, default=None,
                     help="output workbook (default: BOOK.collections.xlsx; never the book)")


def read_export(path: Path) -> list[list]:
    """The export's rows, header first: CSV (UTF-8 with or without BOM, else GBK) or the
    first sheet of an xlsx (its table named Collections when it has one)."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        data = path.read_bytes()
        for encoding in ("utf-8-sig", "gbk"):
            try:
                frame = pd.read_csv(io.StringIO(data.decode(encoding)), dtype=object,
                                    keep_default_na=False)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise WorkbookError(f"{path}: not UTF-8 or GBK text")
        rows = [list(frame.columns)] + frame.to_numpy(dtype=object).tolist()
        return [[_number_or_text(c) for c in r] for r in rows]
    if suffix in (".xlsx", ".xlsm"):
        from npl_xl.workbook.book import FileBook

        book = FileBook(path)
        if book.has_table("Collections"):
            return book.read_table("Collections").rows
        from python_calamine import CalamineWorkbook

        workbook = CalamineWorkbook.from_path(str(path))
        return workbook.get_sheet_by_index(0).to_python()
    raise InputTypeError(f"{path.name}: use a .csv or .xlsx export", argument="FILE")


def _number_or_text(cell):
    if not isinstance(cell, str):
        return cell
    text = cell.strip()
    if text == "":
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return text


def _point_name_at_table(path: Path, name: str, table: str) -> None:
    """Point the workbook name ``name`` at table ``table``'s range (header included) in the
    file we just wrote (our own output: rewritten through a temporary file and a rename)."""
    from npl_xl.workbook.a1 import quote_sheet
    from npl_xl.workbook.graft import NS_MAIN, Package
    from npl_xl.workbook.safety import write_atomically

    package = Package.read(path)
    info = next((t for t in package.tables() if t["name"] == table), None)
    if info is None:
        return
    first, _, last = info["ref"].partition(":")
    split = lambda a: (a.rstrip("0123456789"), a[len(a.rstrip("0123456789")):])  # noqa: E731
    (c0, r0), (c1, r1) = split(first), split(last or first)
    target = f"{quote_sheet(info['sheet'])}!${c0}${r0}:${c1}${r1}"
    root = package.xml(package.workbook_part)
    q = "{%s}" % NS_MAIN
    names = root.find(q + "definedNames")
    if names is None:
        return
    for element in names.findall(q + "definedName"):
        if element.get("name") == name and element.get("localSheetId") is None:
            element.text = target
    data = package.to_bytes()
    write_atomically(path, lambda handle: handle.write(data))


def main(args: argparse.Namespace) -> int:
    from npl_xl.inputs.collections import read_collections
    from npl_xl.macros import read_deal
    from npl_xl.workbook.book import FileBook
    from npl_xl.workbook.results import Block, SheetSpec

    book_path = Path(args.book)
    for p in (Path(args.file), book_path):
        if not p.is_file():
            raise FileNotFoundError(2, "No such file", str(p))
    out = Path(args.output) if args.output else book_path.with_name(
        f"{book_path.stem}.collections{book_path.suffix}")
    book = FileBook(book_path)
    valued, _, settings, _ = read_deal(book)
    loan_ids = list(valued["loan_id"].astype(str))
    new = read_collections(read_export(Path(args.file)), origin=f"{Path(args.file).name}!A1",
                           closing_date=settings.closing_date, loan_ids=loan_ids)
    frames = []
    if book.has_table("Collections"):
        table = book.read_table("Collections")
        try:
            frames.append(read_collections(table.rows, origin=table.origin,
                                           closing_date=settings.closing_date, loan_ids=loan_ids))
        except TableError as exc:
            raise TableError([f"Collections table ({table.origin}): {p}" for p in exc.problems]) from None
    frames.append(new)
    merged = pd.concat(frames, ignore_index=True)[["loan_id", "month", "amount", "resolved"]]
    spec = SheetSpec("Collections", "Collections 回收记录 (贷款编号, 回收月份, 回收金额, 已结清)",
                     [Block("Collections", "Collections table (name CollectionsTable)", merged,
                            formats={"month": "0.00", "amount": "#,##0.00"})],
                     notes=[f"{len(new)} rows imported from {Path(args.file).name}; months are "
                            "months after closing."])
    book.write_sheet(spec)
    book.save(out)
    _point_name_at_table(out, "CollectionsTable", "Collections")
    print(f"imported {len(new)} rows ({new['amount'].sum():,.2f}) into {len(merged)} collections")
    print(f"wrote {out}")
    return 0
