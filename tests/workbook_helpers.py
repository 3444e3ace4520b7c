"""Helpers shared by test_workbooks, test_macros and test_run: the committed workbooks,
zip-level edits of a workbook's cells, and LibreOffice rendering."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

from lxml import etree

from npl_xl.workbook.a1 import parse_address
from npl_xl.workbook.graft import NS_MAIN, Package

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "workbooks" / "npl_template.xlsx"
SAMPLE = ROOT / "workbooks" / "sample_deal.xlsx"
MORTGAGE = ROOT / "workbooks" / "sample_mortgage.xlsx"
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def zip_parts(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def with_cells(src, dst, cells: dict[str, object]) -> Path:
    """Copy workbook ``src`` to ``dst`` with cells ("Tape!E3") set to values (None =
    blank), edited in the sheet XML so nothing else changes."""
    package = Package.read(src)
    q = "{%s}" % NS_MAIN
    for address, value in cells.items():
        sheet, ref = address.split("!")
        root = package.xml(package.sheet_part(sheet))
        row_no, col_no = parse_address(ref)
        row = next(r for r in root.iter(q + "row") if int(r.get("r")) == row_no + 1)
        cell = next((c for c in row.iter(q + "c") if parse_address(c.get("r"))[1] == col_no),
                    None)
        if cell is None:  # a blank cell the writer left out: add it in column order
            after = [c for c in row.iter(q + "c") if parse_address(c.get("r"))[1] < col_no]
            cell = etree.Element(q + "c")
            if after:
                after[-1].addnext(cell)
            else:
                row.insert(0, cell)
        style = cell.get("s")
        cell.clear()
        cell.set("r", ref)
        if style is not None:
            cell.set("s", style)
        if value is None:
            continue
        if isinstance(value, str):
            cell.set("t", "inlineStr")
            etree.SubElement(etree.SubElement(cell, q + "is"), q + "t").text = value
        else:
            etree.SubElement(cell, q + "v").text = repr(float(value))
    Path(dst).write_bytes(package.to_bytes())
    return Path(dst)


def convert_to_pdf(path, outdir) -> Path:
    """LibreOffice headless, own profile: the PDF of the workbook (raises on failure)."""
    return _convert(path, outdir, "pdf", "pdf")


def resave_with_libreoffice(path, outdir) -> Path:
    """The workbook as LibreOffice loads and saves it again (.xlsx): what it understood."""
    return _convert(path, outdir, 'xlsx:"Calc MS Excel 2007 XML"', "xlsx")


def _convert(path, outdir, target: str, suffix: str) -> Path:
    outdir = Path(outdir)
    profile = outdir / "lo-profile"
    env = dict(os.environ, HOME=str(outdir))
    converted = outdir / "converted"
    subprocess.run([SOFFICE, f"-env:UserInstallation=file://{profile}", "--headless",
                    "--convert-to", target.replace('"', ""), "--outdir", str(converted), str(path)],
                   check=True, capture_output=True, timeout=180, env=env)
    out = converted / (Path(path).stem + "." + suffix)
    assert out.is_file(), f"LibreOffice wrote no {suffix} for {path}"
    return out
