"""Workbooks for the recalc tests, built by the tests themselves (openpyxl + zip editing).

:func:`build_feature_workbook` writes a workbook holding every feature `npl-xl recalc` must
handle; :data:`EXPECTED` gives each checked cell's value computed independently of the
engine (hand arithmetic, closed forms, scipy). Helpers edit a saved package part by part
(shared formulas, dynamic-array metadata, VBA and ribbon parts), which openpyxl cannot
write.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
from scipy import stats

TAPE_HEADER = ["loan_id", "claim", "mean rr", "sd", "recovery", "weighted", "big"]
TAPE_ROWS = [
    ["L1", 100.0, 0.2, 0.1, 0.0],
    ["L2", 200.0, 0.3, 0.1, 0.2],
    ["L3", 300.0, 0.4, 0.1, 0.4],
    ["L4", 400.0, 0.5, 0.1, 0.6],
    ["L5", 500.0, 0.6, 0.1, 1.0],
]

# Native formulas on Calc: (cell, formula, expected). Arithmetic in the comments.
NATIVE = [
    ("A1", "=SUM(Tape[claim])", 1500.0),                                  # 100+...+500
    ("A2", "=SUMPRODUCT(Tape[claim],Tape[mean rr])", 700.0),             # 20+60+120+200+300
    ("A3", '=IF(A1>1000,"big","small")', "big"),
    ("A4", '=INDEX(Tape[claim],MATCH("L3",Tape[loan_id],0))', 300.0),
    ("A5", '=VLOOKUP("L4",LoanTape,2,FALSE)', 400.0),                     # workbook name
    ("A6", '=IFERROR(VLOOKUP("zz",LoanTape,2,FALSE),-1)', -1.0),
    ("A7", '=ISNA(MATCH("zz",Tape[loan_id],0))', True),
    ("A8", "=Tape!B2*RATE", 5.0),                                          # 100 * 0.05
    ("A9", "=SUM(BALANCES)", 600.0),                                       # 100+200+300
    ("A10", "=SUM(Tape[[claim]:[mean rr]])", 1502.0),                      # 1500 + 2.0
    ("A11", "=COUNTA(Tape[#Headers])", 7.0),
    ("A12", "=ROWS(Tape[#All])", 6.0),
    ("A13", '="x[1]"&"]"&"Tape[claim]"', "x[1]]Tape[claim]"),             # literals untouched
    ("A14", "=LOCALRATE", 0.1),                                            # Calc-scoped name
    ("A15", "=SUM(Tape[weighted])", 700.0),                                # calculated column
    ("A16", "=Other!B1*2", 0.4),                                           # cross-sheet: 0.2*2
    ("A17", "=A1>0", True),
    ("A18", '=Tape!A3&"-"&Tape!B3', "L2-200"),
    ("A19", "=1/0", "#DIV/0!"),
    ("E4", "=Tape!B2:B6*2", 600.0),  # implicit intersection with row 4: Tape!B4*2
    ("E10", "=Tape!B2:B6*2", "#VALUE!"),  # row 10 meets no row of B2:B6
]

_K = 0.3 * 0.7 / 0.1 ** 2 - 1  # mean 0.3, sd 0.1: k = 20, alpha 6, beta 14
_FIT_INTERIOR = np.array([0.2, 0.4, 0.6])  # recovery column minus the 0 and the 1
_FIT_K = 0.4 * 0.6 / _FIT_INTERIOR.var() - 1  # population variance 0.08/3 -> k = 8

# NPL formulas on Calc: (cell or array range, formula, expected: value or list of rows).
NPL = [
    ("C1:D1", "=NPL_BETA_PARAMS(0.4,0.2)", [[2.0, 3.0]]),  # k = 0.24/0.04-1 = 5
    ("C2", "=NPL_BETA_INV(0.5,Tape!C3,Tape!D3)", stats.beta.ppf(0.5, 0.3 * _K, 0.7 * _K)),
    ("C3", "=NPL_BETA_DIST(0.5,0.4,0.2)", 11 / 16),  # I_0.5(2,3) = (C(4,2)+C(4,3)+1)/16
    ("C4", "=NPL_BETA_DIST(0.5,0.4,0.2,FALSE)", 1.5),  # 0.5*0.25/B(2,3), B(2,3)=1/12
    ("C5:H5", '=NPL_BETA_FIT(Tape[recovery],"MOM")',
     [[0.4 * _FIT_K, 0.6 * _FIT_K, 0.2, 0.2,
       float(stats.beta.logpdf(_FIT_INTERIOR, 0.4 * _FIT_K, 0.6 * _FIT_K).sum()), 3.0]]),
    ("C7:C11", "=NPL_BETA_DRAWS(0.4,0.2,5,7)", None),  # checked against beta_draws
    ("C12", "=INDEX(NPL_BETA_PARAMS(C2,0.05),1,2)",  # NPL reading an NPL cell
     None),
    ("C13", "=C1+D1", 5.0),  # native reading NPL array cells
    ("C14", "=NPL_BETA_PARAMS(1.4,0.2)", "#NUM!"),
    ("C15", '=IFERROR(C14,"bad")', "bad"),
    ("C16", "=ISERROR(C14)", True),
    ("C17", "=C14+1", "#NUM!"),
    ("C18", "=FOO(1)", "#NAME?"),
    ("C19", "=NPL_BETA_INV(0.5,Tape!C2:C3,0.1)", "#VALUE!"),
    ("C20", "=SUM(_xlfn.ANCHORARRAY(C7))", None),  # Excel 365's C7#: the draws' range
    ("C21", '=ISNA(NPL_BETA_FIT(Tape[recovery],"XYZ"))', True),  # unknown method: #N/A
]

ERROR_CELLS = {"Calc!A19", "Calc!C14", "Calc!C17", "Calc!C18", "Calc!C19", "Calc!E10"}


def build_feature_workbook(path: Path) -> Path:
    """The feature workbook: a table, names, native and NPL formulas, arrays, errors."""
    import openpyxl
    from openpyxl.workbook.defined_name import DefinedName
    from openpyxl.worksheet.formula import ArrayFormula
    from openpyxl.worksheet.table import Table

    book = openpyxl.Workbook()
    tape = book.active
    tape.title = "Tape"
    tape.append(TAPE_HEADER)
    for i, row in enumerate(TAPE_ROWS, start=2):
        # F as Excel stores a calculated column; G in the short form [@col]
        tape.append(row + ["=Tape[[#This Row],[claim]]*Tape[[#This Row],[mean rr]]",
                           "=[@claim]>250"])
    tape.add_table(Table(displayName="Tape", ref="A1:G6"))
    calc = book.create_sheet("Calc")
    other = book.create_sheet("Other")
    other["B1"] = 0.2
    other["B2"] = "=LOCALRATE"  # the workbook-scoped LOCALRATE: Calc!B22
    calc["B20"], calc["B21"], calc["B22"] = 0.05, 0.1, 0.2
    book.defined_names["RATE"] = DefinedName("RATE", attr_text="Calc!$B$20")
    book.defined_names["BALANCES"] = DefinedName("BALANCES", attr_text="Tape!$B$2:$B$4")
    book.defined_names["LoanTape"] = DefinedName("LoanTape", attr_text="Tape!$A$1:$G$6")
    book.defined_names["LOCALRATE"] = DefinedName("LOCALRATE", attr_text="Calc!$B$22")
    calc.defined_names["LOCALRATE"] = DefinedName("LOCALRATE", attr_text="Calc!$B$21")
    for cell, formula, _ in NATIVE:
        calc[cell] = formula
    for where, formula, _ in NPL:
        if ":" in where:
            calc[where.split(":")[0]] = ArrayFormula(where, formula)
        else:
            calc[where] = formula
    book.save(path)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def edit_parts(path: Path, out: Path, edit) -> Path:
    """Copy the package at ``path`` to ``out``; ``edit(parts)`` changes the dict of parts."""
    contents = parts(path)
    edit(contents)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return out


def sheet_part(path: Path, sheet: str) -> str:
    """The part name of ``sheet`` (follows workbook.xml and its relationships)."""
    contents = parts(path)
    book = contents["xl/workbook.xml"].decode()
    rid = re.search(rf'<sheet [^>]*name="{re.escape(sheet)}"[^>]*r:id="(rId\d+)"', book).group(1)
    rels = contents["xl/_rels/workbook.xml.rels"].decode()
    target = re.search(rf'<Relationship [^>]*Id="{rid}"[^>]*/>', rels).group(0)
    target = re.search(r'Target="([^"]+)"', target).group(1)
    return target.lstrip("/") if target.startswith("/xl/") else "xl/" + target


def xlwings_vba_project() -> bytes:
    """A real vbaProject.bin, from the xlwings package's quickstart workbook."""
    import xlwings

    source = Path(xlwings.__file__).parent / "quickstart.xlsm"
    with zipfile.ZipFile(source) as archive:
        return archive.read("xl/vbaProject.bin")


CUSTOM_UI14 = (b'<customUI xmlns="http://schemas.microsoft.com/office/2009/07/customui">'
               b'<ribbon><tabs><tab id="nplTab" label="NPL"><group id="g" label="Run">'
               b'<button id="run" label="Run Simulation" onAction="RunSimulation"/>'
               b'</group></tab></tabs></ribbon></customUI>')


def make_macro_workbook(xlsx: Path, out: Path) -> Path:
    """``xlsx`` turned into an .xlsm with a real vbaProject.bin and a customUI14 ribbon."""

    def edit(contents: dict[str, bytes]) -> None:
        contents["xl/vbaProject.bin"] = xlwings_vba_project()
        contents["customUI/customUI14.xml"] = CUSTOM_UI14
        types = contents["[Content_Types].xml"].decode()
        types = types.replace(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
            "application/vnd.ms-excel.sheet.macroEnabled.main+xml")
        types = types.replace(
            "</Types>",
            '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'
            "</Types>")
        contents["[Content_Types].xml"] = types.encode()
        rels = contents["_rels/.rels"].decode().replace(
            "</Relationships>",
            '<Relationship Id="rIdUI14" Type="http://schemas.microsoft.com/office/2007/'
            'relationships/ui/extensibility" Target="customUI/customUI14.xml"/>'
            "</Relationships>")
        contents["_rels/.rels"] = rels.encode()
        book_rels = contents["xl/_rels/workbook.xml.rels"].decode().replace(
            "</Relationships>",
            '<Relationship Id="rIdVBA" Type="http://schemas.microsoft.com/office/2006/'
            'relationships/vbaProject" Target="vbaProject.bin"/></Relationships>')
        contents["xl/_rels/workbook.xml.rels"] = book_rels.encode()

    return edit_parts(xlsx, out, edit)


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def libreoffice_convert(source: Path, out_dir: Path, profile: Path,
                        recalc_on_load: bool) -> Path:
    """Open ``source`` in headless LibreOffice and save it as .xlsx in ``out_dir``.

    ``recalc_on_load`` sets OOXMLRecalcMode=0 (always recalculate) in a private profile,
    so LibreOffice computes every formula itself; otherwise it keeps cached values.
    """
    user = profile / "user"
    user.mkdir(parents=True, exist_ok=True)
    mode = 0 if recalc_on_load else 1
    (user / "registrymodifications.xcu").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<oor:items xmlns:oor="http://openoffice.org/2001/registry" '
        'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        '<item oor:path="/org.openoffice.Office.Calc/Formula/Load">'
        f'<prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>{mode}</value></prop></item>\n'
        "</oor:items>\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [soffice(), f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
         "--convert-to", "xlsx", "--outdir", str(out_dir), str(source)],
        check=True, capture_output=True, timeout=180)
    converted = out_dir / (source.stem + ".xlsx")
    if not converted.exists():
        raise RuntimeError(f"LibreOffice wrote nothing for {source}")
    return converted


#: xl/metadata.xml as Excel 365 writes it for spilled formulas (the XLDAPR type)
DYNAMIC_ARRAY_METADATA = (
    b'<metadata xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    b'xmlns:xda="http://schemas.microsoft.com/office/spreadsheetml/2017/dynamicarray">'
    b'<metadataTypes count="1"><metadataType name="XLDAPR" minSupportedVersion="120000"'
    b' copy="1" pasteAll="1" pasteValues="1" merge="1" splitFirst="1" rowColShift="1"'
    b' clearFormats="1" clearComments="1" assign="1" coerce="1" cellMeta="1"/>'
    b'</metadataTypes><futureMetadata name="XLDAPR" count="1"><bk><extLst><ext '
    b'uri="{bdbb8cdc-fa1e-496e-a857-3c3f30c029c3}"><xda:dynamicArrayProperties '
    b'fDynamic="1" fCollapsed="0"/></ext></extLst></bk></futureMetadata>'
    b'<cellMetadata count="1"><bk><rc t="1" v="0"/></bk></cellMetadata></metadata>')


def mark_dynamic_arrays(contents: dict[str, bytes], sheet: str, anchors) -> None:
    """Make the array formulas at ``anchors`` (``'C7'``...) of part ``sheet`` spilled
    dynamic arrays as Excel 365 saves them: ``cm="1"`` on the anchor ``<c>``, the XLDAPR
    metadata part, its content type and relationship. Edits ``contents`` in place."""
    for anchor in anchors:
        cell = f'<c r="{anchor}"'.encode()
        contents[sheet] = re.sub(re.escape(cell), cell + b' cm="1"', contents[sheet])
    contents["xl/metadata.xml"] = DYNAMIC_ARRAY_METADATA
    contents["[Content_Types].xml"] = contents["[Content_Types].xml"].replace(
        b"</Types>", b'<Override PartName="/xl/metadata.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.spreadsheetml.sheetMetadata+xml"/></Types>')
    contents["xl/_rels/workbook.xml.rels"] = contents["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>", b'<Relationship Id="rIdMeta" Type="http://schemas.openxmlformats'
        b'.org/officeDocument/2006/relationships/sheetMetadata" Target="metadata.xml"/>'
        b"</Relationships>")
