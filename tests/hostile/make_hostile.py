"""Damaged and hostile workbooks, built reproducibly from the committed template.

Each :class:`Case` is one file: a mutation of workbooks/npl_template.xlsx at the zip/XML
level, the class of issue 9 it belongs to (0 wrong results that look right, 1 tracebacks,
2 memory and time, 4 output integrity, 6 smaller, 7 Settings text), and what each command
must do with it: the exit status and a fragment the one-line message must contain (the
part, cell or key at fault). ``None`` for a command means "any of 0, 1, 2 without a
traceback" (the case is not about that command).

Run ``python tests/hostile/make_hostile.py DIR`` to write every case into DIR.
"""

from __future__ import annotations

import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbooks" / "npl_template.xlsx"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


@dataclass
class Entry:
    name: str
    data: bytes
    method: int = zipfile.ZIP_DEFLATED
    flag_bits: int = 0
    flip_crc: bool = False  # flip one digit of the stored data after writing (bad CRC)


@dataclass
class Case:
    """One hostile workbook and the expected behaviour of ``recalc`` and ``run``.

    ``recalc`` and ``run`` are (exit status, message fragment) or None (not about it).
    """

    name: str
    klass: int
    build: Callable[[list[Entry]], list[Entry]]
    recalc: tuple[int, str] | None
    run: tuple[int, str] | None
    extra_args: tuple[str, ...] = field(default=())


def template_entries() -> list[Entry]:
    with zipfile.ZipFile(TEMPLATE) as archive:
        return [Entry(i.filename, archive.read(i)) for i in archive.infolist()]


def write_entries(path: Path, entries: list[Entry]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name, (1980, 1, 1, 0, 0, 0))
            info.compress_type = entry.method
            info.flag_bits = entry.flag_bits
            archive.writestr(info, entry.data)
    return path


def _get(entries, name) -> Entry:
    return next(e for e in entries if e.name == name)


def _edit(name: str, edit: Callable[[bytes], bytes]):
    def build(entries):
        entry = _get(entries, name)
        new = edit(entry.data)
        assert new != entry.data, f"edit of {name} changed nothing"
        entry.data = new
        return entries
    return build


def _sub(name: str, pattern: bytes, replacement: bytes, count: int = 1):
    return _edit(name, lambda data: re.sub(pattern, replacement, data, count=count))


def _sheet_part(entries, sheet: str) -> str:
    workbook = _get(entries, "xl/workbook.xml").data.decode()
    rid = re.search(rf'<sheet name="{sheet}" sheetId="\d+" r:id="(rId\d+)"', workbook).group(1)
    rels = _get(entries, "xl/_rels/workbook.xml.rels").data.decode()
    target = re.search(rf'<Relationship Id="{rid}"[^>]*Target="([^"]+)"', rels) or \
        re.search(rf'Target="([^"]+)"[^>]*Id="{rid}"', rels)
    return "xl/" + target.group(1).lstrip("/").removeprefix("xl/")


def _on_sheet(sheet: str, edit: Callable[[bytes], bytes]):
    def build(entries):
        return _edit(_sheet_part(entries, sheet), edit)(entries)
    return build


def _add(name: str, data: bytes, method: int = zipfile.ZIP_DEFLATED):
    def build(entries):
        entries.append(Entry(name, data, method))
        return entries
    return build


def _drop(name: str):
    def build(entries):
        return [e for e in entries if e.name != name]
    return build


def _chain(*steps):
    def build(entries):
        for step in steps:
            entries = step(entries)
        return entries
    return build


def _prolog(name: str, prolog: bytes):
    """Put ``prolog`` between the XML declaration and the root element of ``name``."""
    def edit(data: bytes) -> bytes:
        head, sep, rest = data.partition(b"?>")
        return head + sep + b"\n" + prolog + rest
    return _edit(name, edit)


def _settings_value(key: str, text: str):
    """The Settings table's value cell of ``key`` replaced by the text ``text``."""
    def build(entries):
        strings = _get(entries, "xl/sharedStrings.xml").data.decode()
        items = re.findall(r"<si>(.*?)</si>", strings, flags=re.S)
        index = next(i for i, s in enumerate(items) if re.fullmatch(rf"<t[^>]*>{key}</t>", s))
        part = _sheet_part(entries, "Settings")
        sheet = _get(entries, part)
        xml = sheet.data.decode()
        m = re.search(rf'<c r="A(\d+)"[^>]*t="s"[^>]*><v>{index}</v></c>', xml)
        row = m.group(1)
        value_cell = re.compile(rf'<c r="B{row}"[^>]*?(?:/>|>.*?</c>)')
        new = f'<c r="B{row}" t="inlineStr"><is><t>{text}</t></is></c>'
        if value_cell.search(xml):
            xml = value_cell.sub(new, xml, count=1)
        else:
            xml = xml.replace(m.group(0), m.group(0) + new, 1)
        sheet.data = xml.encode()
        return entries
    return build


def _tape_cell(xml_cell: str, row: int | None = None):
    """Append a cell (as XML) to the Tape sheet, in a new last row ``row`` if given."""
    def edit(data: bytes) -> bytes:
        text = data.decode()
        if row is None:
            text = text.replace("</row>", xml_cell + "</row>", 1)
        else:
            text = text.replace("</sheetData>", f'<row r="{row}">{xml_cell}</row></sheetData>')
        return text.encode()
    return _on_sheet("Tape", edit)


def _stored_then_flip(name_of: Callable[[list[Entry]], str]):
    """Store a part uncompressed, and flip one digit of a value in the written file, so
    that its CRC no longer matches (done after writing: see :func:`build_case`)."""
    def build(entries):
        entry = _get(entries, name_of(entries))
        entry.method = zipfile.ZIP_STORED
        entry.flip_crc = True
        return entries
    return build


def _names(xml: str):
    return _sub("xl/workbook.xml", rb"</definedNames>", xml.encode() + b"</definedNames>")


_BOMB_MB = 1100


def _bomb(name: str, megabytes: int, inside: bytes = b""):
    """A part of ``megabytes`` MB that deflates to about a thousandth of it."""
    def build(entries):
        blank = b" " * (megabytes << 20)
        entries.append(Entry(name, inside + blank if inside else blank))
        return entries
    return build


def _ratio_bomb_strings(entries):
    """sharedStrings.xml padded with 300 MB of spaces inside the root: ratio about 1,000."""
    entry = _get(entries, "xl/sharedStrings.xml")
    entry.data = entry.data.replace(b"</sst>", b" " * (300 << 20) + b"</sst>")
    return entries


def _names_doubling(depth: int = 40) -> str:
    lines = [f'<definedName name="N{k}">N{k + 1}+N{k + 1}</definedName>' for k in range(depth)]
    return "".join(lines) + f'<definedName name="N{depth}">1</definedName>'


CASES: list[Case] = [
    # --- 0: wrong results that look right
    Case("dup_sheet_case", 0, _sub("xl/workbook.xml", rb'<sheet name="Tranches"', b'<sheet name="TAPE"'),
         (2, "two sheets are named"), (2, "two sheets are named")),
    Case("dup_sheet_exact", 0, _sub("xl/workbook.xml", rb'<sheet name="Lists"', b'<sheet name="Tape"'),
         (2, "two sheets are named"), (2, "two sheets are named")),
    Case("dup_entry_sheet", 0, lambda es: es + [Entry(_sheet_part(es, "Tranches"),
                                                     _get(es, _sheet_part(es, "Tranches")).data
                                                     .replace(b"<v>", b"<v>7", 3))],
         (2, "appears twice"), (2, "appears twice")),
    Case("dup_entry_case", 0, lambda es: es + [Entry("XL/Workbook.xml", _get(es, "xl/workbook.xml").data)],
         (2, "appears twice"), (2, "appears twice")),
    # --- 1: tracebacks instead of messages
    Case("doctype_external", 1, _prolog("xl/workbook.xml",
                                        b'<!DOCTYPE w [<!ENTITY x SYSTEM "file:///etc/passwd">]>'),
         (2, "xl/workbook.xml declares a document type"), (2, "xl/workbook.xml declares a document type")),
    Case("doctype_laughs", 1, _prolog("xl/sharedStrings.xml", b'<!DOCTYPE s [<!ENTITY a "aaaaaaaaaa">'
                                      b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                                      b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'),
         (2, "sharedStrings.xml declares a document type"), (2, "sharedStrings.xml declares a document type")),
    Case("doctype_after_comment", 1, _prolog("xl/styles.xml", b"<!-- " + b"x" * 100_000 + b" -->"
                                             b"<?pi here?><!DOCTYPE s SYSTEM \"http://127.0.0.1:9/x.dtd\">"),
         (2, "styles.xml declares a document type"), (2, "styles.xml declares a document type")),
    Case("huge_attribute", 1, _on_sheet("Tape", lambda d: d.replace(b"<c ", b'<c x="' + b"a" * 11_000_000 + b'" ', 1)),
         (2, "not readable XML"), (2, "damaged")),
    Case("deep_nesting", 1, _on_sheet("Tranches", lambda d: d.replace(
        b"</worksheet>", b"<extLst>" + b"<e>" * 400 + b"</e>" * 400 + b"</extLst></worksheet>")),
         (2, "not readable XML"), (0, "")),  # run streams the sheet: nesting costs nothing
    Case("bad_crc", 1, _stored_then_flip(lambda es: _sheet_part(es, "Tranches")),
         (2, "Bad CRC"), (2, "Bad CRC")),
    Case("encrypted_entry", 1, lambda es: [Entry(e.name, e.data, e.method,
                                                 1 if e.name == "xl/styles.xml" else 0) for e in es],
         (2, "xl/styles.xml is encrypted"), (2, "xl/styles.xml is encrypted")),
    Case("bzip2_entry", 1, lambda es: [Entry(e.name, e.data, zipfile.ZIP_BZIP2
                                             if e.name == "xl/workbook.xml" else e.method) for e in es],
         (2, "compression method 12"), (2, "compression method 12")),
    Case("lzma_entry", 1, lambda es: [Entry(e.name, e.data, zipfile.ZIP_LZMA
                                            if e.name.startswith("xl/worksheets/") else e.method) for e in es],
         (2, "compression method 14"), (2, "compression method 14")),
    Case("sst_out_of_range", 1, _on_sheet("Tape", lambda d: re.sub(rb'(<c r="A3"[^>]*t="s"[^>]*><v>)\d+',
                                                                    rb"\g<1>99999", d, count=1)),
         (2, "Tape!A3"), (2, "Tape!A3")),
    Case("local_sheet_id_past", 1, _names('<definedName name="Stray" localSheetId="42">Tape!$A$1</definedName>'),
         (2, "localSheetId"), None),
    Case("table_no_id", 1, _sub("xl/tables/table1.xml", rb' id="\d+"', b""),
         (2, "table1.xml"), (2, "table1.xml")),
    Case("table_no_ref", 1, _sub("xl/tables/table1.xml", rb' ref="[^"]+"', b""),
         (2, "table1.xml"), (2, "table1.xml")),
    Case("table_garbage_ref", 1, _sub("xl/tables/table1.xml", rb' ref="[^"]+"', b' ref="QQQQ0:;"'),
         (2, "table1.xml"), (2, "table1.xml")),
    Case("no_sheets", 1, _sub("xl/workbook.xml", rb"<sheets>.*</sheets>", b"<sheets/>"),
         (2, "no sheets"), (2, "no sheets")),
    Case("no_styles", 1, _chain(_drop("xl/styles.xml"),
                                _sub("xl/_rels/workbook.xml.rels", rb'<Relationship [^>]*styles[^>]*/>', b"")),
         None, (2, "no styles part")),
    # --- 2: memory and time
    Case("zip_bomb_unreferenced", 2, _bomb("xl/media/padding.bin", _BOMB_MB),
         (2, "over the limit"), (2, "over the limit")),
    Case("zip_bomb_ratio", 2, _ratio_bomb_strings, (2, "sharedStrings.xml inflates"),
         (2, "sharedStrings.xml inflates")),
    Case("names_doubling", 2, _names(_names_doubling()), (2, "expands to over"), None),
    Case("names_cycle", 2, _names('<definedName name="Ping">Pong+1</definedName>'
                                  '<definedName name="Pong">Ping+1</definedName>'),
         (2, "refers to itself"), None),
    Case("far_cell", 2, _tape_cell('<c r="XFD1048576"><v>1</v></c>', row=1048576),
         (2, "XFD1048576"), (0, "")),
    Case("far_cell_in_whole_sheet_table", 2, _chain(
        _tape_cell('<c r="XFD1048576"><v>1</v></c>', row=1048576),
        _sub("xl/tables/table1.xml", rb'ref="A2:[A-Z]+\d+"', b'ref="A2:XFD1048576"', count=2)),
         (2, "XFD1048576"), (2, "XFD1048576")),
    Case("whole_sheet_table", 2, _sub("xl/tables/table1.xml", rb'ref="A2:[A-Z]+\d+"', b'ref="A2:XFD1048576"', count=2),
         (2, "table1.xml"), (0, "")),
    Case("long_formula", 2, _on_sheet("Tranches", lambda d: d.replace(
        b"</sheetData>", b'<row r="40"><c r="A40"><f>' + b"1+" * 50_000 + b"1</f></c></row></sheetData>")),
         (2, "over Excel's limit of 8,192"), (0, "")),
    Case("payment_months_tiny", 2, _settings_value("payment_months", "0.0001"), None,
         (2, "payment_months")),
    # --- 4: output integrity
    Case("entry_dotdot", 4, _add("../../evil.txt", b"x"), (2, "'..'"), (2, "'..'")),
    Case("entry_absolute", 4, _add("/tmp/evil.txt", b"x"), (2, "absolute path"), (2, "absolute path")),
    Case("entry_backslash", 4, _add("xl\\..\\..\\evil.txt", b"x"), (2, "backslash"), (2, "backslash")),
    # --- 6: smaller
    Case("shared_strings_truncated", 6, _edit("xl/sharedStrings.xml", lambda d: d[: len(d) // 2]),
         (2, "shared strings"), (2, "shared strings")),
    Case("settings_full_width", 6, _settings_value("n_sims", "１０００"), None, (2, "n_sims")),
    # --- 7: Settings text that parses to NaN or infinity
    Case("settings_nan", 7, _settings_value("n_sims", "nan"), None, (2, "n_sims")),
    Case("settings_inf", 7, _settings_value("seed", "inf"), None, (2, "seed")),
    Case("settings_1e999", 7, _settings_value("n_sims", "1e999"), None, (2, "n_sims")),
]


def build_case(case: Case, folder: Path) -> Path:
    """Write ``case`` into ``folder`` (deterministic bytes) and return the path."""
    entries = case.build(template_entries())
    path = write_entries(folder / f"{case.name}.xlsx", entries)
    flipped = [e for e in entries if e.flip_crc]
    if flipped:  # bad CRC: flip one digit inside the stored part's data
        data = bytearray(path.read_bytes())
        marker = flipped[0].data
        at = data.find(marker)
        digit = marker.find(b"<v>") + 3
        data[at + digit] = ord("9") if data[at + digit] != ord("9") else ord("8")
        path.write_bytes(bytes(data))
    encrypted = [e.name for e in entries if e.flag_bits & 0x1]
    if encrypted:  # zipfile clears the flag when writing: set bit 0 in both headers
        data = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as archive:
            offsets = {i.filename: i.header_offset for i in archive.infolist()}
        for name in encrypted:
            data[offsets[name] + 6] |= 0x1
        at = data.find(b"PK\x01\x02")
        while at >= 0:
            size = int.from_bytes(data[at + 28:at + 30], "little")
            if data[at + 46:at + 46 + size].decode() in encrypted:
                data[at + 8] |= 0x1
            at = data.find(b"PK\x01\x02", at + 46)
        path.write_bytes(bytes(data))
    return path


def main(argv: list[str]) -> None:
    folder = Path(argv[0] if argv else "hostile")
    folder.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        print(build_case(case, folder))


if __name__ == "__main__":
    main(sys.argv[1:])
