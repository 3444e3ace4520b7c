"""Editing an .xlsx/.xlsm package at the zip/XML level, without a spreadsheet library's save.

openpyxl's load-and-save drops parts it does not model (the Office 2010 ribbon
relationship, dynamic-array metadata, data-validation extensions...; see ARCHITECTURE.md).
So npl-xl never saves a user's workbook through a library. Output sheets are built in
a *scratch* workbook with xlsxwriter and their parts are grafted into a copy of the user's
package:

1. the scratch sheet XML gets its shared strings inlined (``t="inlineStr"``) and its
   style indices remapped into the target's ``styles.xml`` (number formats, fonts, fills,
   borders and cell formats appended, reusing identical ones);
2. the parts it relates to (tables, drawing, charts) are copied under free part names,
   with their relationships, content types and workbook-unique table ids;
3. a sheet of the same name is replaced in place (same part name, same position, so
   sheet-scoped names keep their index) after its old drawing/charts/tables are removed;
   a new sheet is appended to ``workbook.xml``;
4. ``xl/calcChain.xml`` is dropped when a sheet is replaced (Excel rebuilds it; a stale
   chain is what triggers Excel's repair prompt).

Every other part is copied byte-for-byte: other sheets, tables, names, validations,
``vbaProject.bin``, ``customUI``, ``metadata.xml``.
"""

from __future__ import annotations

import io
import posixpath
import re
import shutil
import zipfile
from collections.abc import MutableMapping
from copy import deepcopy

from lxml import etree

from npl_xl.errors import WorkbookError
from npl_xl.workbook.a1 import MAX_COLS, MAX_ROWS, cell_address, parse_address
from npl_xl.workbook.safety import (DEFAULT_LIMITS, ZIP_ERRORS, Limits, check_package,
                                    check_sheet_names, parse_xml, read_part)

__all__ = ["Package", "graft_sheets", "mark_cells", "NS_MAIN"]

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
NS_CT = "http://schemas.openxmlformats.org/package/2006/content-types"
REL_WORKSHEET = NS_REL + "/worksheet"
REL_CALC_CHAIN = NS_REL + "/calcChain"
REL_TABLE = NS_REL + "/table"
CT_WORKSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"

_M = "{%s}" % NS_MAIN
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def _q(tag: str) -> str:
    return _M + tag


class _Parts(MutableMapping):
    """Part name -> bytes, read from the zip only when asked for (a million-row sheet that
    is only copied is never held whole in memory); parts set or read are kept."""

    def __init__(self, archive: zipfile.ZipFile, source: str):
        self.archive, self.source = archive, source
        self.order = [info.filename for info in archive.infolist() if not info.is_dir()]
        self.present = set(self.order)
        self.loaded: dict[str, bytes] = {}

    def __getitem__(self, name: str) -> bytes:
        if name in self.loaded:
            return self.loaded[name]
        if name not in self.present:
            raise KeyError(name)
        data = self.loaded[name] = read_part(self.source, self.archive, name)
        return data

    def __setitem__(self, name: str, data: bytes) -> None:
        if name not in self.present:
            self.present.add(name)
            self.order.append(name)
        self.loaded[name] = data

    def __delitem__(self, name: str) -> None:
        if name not in self.present:
            raise KeyError(name)
        self.present.discard(name)
        self.order.remove(name)
        self.loaded.pop(name, None)

    def __contains__(self, name) -> bool:
        return name in self.present

    def __iter__(self):
        return iter(list(self.order))

    def __len__(self) -> int:
        return len(self.order)


class Package:
    """An OPC package (the zip behind .xlsx/.xlsm) edited part by part.

    ``data`` (the zip's bytes) is checked first (:func:`npl_xl.workbook.safety.check_package`:
    duplicate or unsafe entry names, encryption, compression, sizes, DTDs); parts are read
    on demand and untouched parts are streamed into the output by :meth:`write`.
    """

    def __init__(self, data: bytes, limits: Limits = DEFAULT_LIMITS, source: str = "the package"):
        self.data = data
        self.source = str(source)
        archive = zipfile.ZipFile(io.BytesIO(data))
        check_package(self.source, archive, limits)
        self.infos = {info.filename: info for info in archive.infolist() if not info.is_dir()}
        self.parts = _Parts(archive, self.source)
        self._xml: dict[str, etree._Element] = {}
        self._dirty: set[str] = set()

    @classmethod
    def read(cls, path, limits: Limits = DEFAULT_LIMITS) -> "Package":
        """The package of the file at ``path`` (checked: a folder, a FIFO or a file that is
        not a zip are refused with a message)."""
        from npl_xl.workbook.safety import check_regular_file

        check_regular_file(path)
        with open(path, "rb") as handle:
            data = handle.read()
        try:
            return cls(data, limits, source=str(path))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
            raise WorkbookError(f"{path} is not an .xlsx/.xlsm workbook: {exc}") from None

    def copy(self) -> "Package":
        """A fresh, unedited package of the same bytes."""
        return Package(self.data, Limits(1 << 62, 1 << 62, float("inf")), self.source)

    # -- XML parts -------------------------------------------------------------------
    def peek(self, name: str) -> etree._Element:
        """The parsed part, for reading: the part's bytes stay as they are."""
        if name not in self._xml:
            if name not in self.parts:
                raise WorkbookError(f"{self.source}: part {name} is missing")
            self._xml[name] = parse_xml(self.source, name, self.parts[name])
        return self._xml[name]

    def xml(self, name: str) -> etree._Element:
        """The parsed part, for editing: it is serialised again on :meth:`to_bytes`."""
        self._dirty.add(name)
        return self.peek(name)

    def _flush(self) -> None:
        for name in self._dirty:
            if name in self.parts and name in self._xml:
                self.parts[name] = etree.tostring(self._xml[name], xml_declaration=True,
                                                  encoding="UTF-8", standalone=True)
        self._xml.clear()
        self._dirty.clear()

    def write(self, handle) -> None:
        """Write the package as a zip to the binary file ``handle``; parts never read are
        streamed from the source zip in 1 MB pieces."""
        self._flush()
        parts = self.parts
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for name in parts:
                old = self.infos.get(name)
                info = zipfile.ZipInfo(name, old.date_time if old else _FIXED_DATE)
                info.compress_type = old.compress_type if old else zipfile.ZIP_DEFLATED
                if old is not None:
                    info.external_attr = old.external_attr
                    info.comment = old.comment
                if name in parts.loaded or old is None:
                    archive.writestr(info, parts[name])
                    continue
                info.file_size = old.file_size
                try:
                    with parts.archive.open(old) as source, \
                            archive.open(info, "w", force_zip64=old.file_size > (1 << 30)) as target:
                        shutil.copyfileobj(source, target, 1 << 20)
                except ZIP_ERRORS as exc:
                    raise WorkbookError(f"{self.source}: part {name} cannot be unzipped: {exc}") \
                        from None

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self.write(buffer)
        return buffer.getvalue()

    # -- relationships ---------------------------------------------------------------
    @staticmethod
    def rels_name(part: str) -> str:
        folder, base = posixpath.split(part)
        return posixpath.join(folder, "_rels", base + ".rels")

    def relationships(self, part: str) -> list[etree._Element]:
        name = self.rels_name(part)
        if name not in self.parts:
            return []
        return list(self.peek(name))

    def target(self, part: str, rel: etree._Element) -> str | None:
        """The part name a relationship points to, or None for an external target."""
        if rel.get("TargetMode") == "External":
            return None
        target = rel.get("Target") or ""
        if target.startswith("/"):
            return target[1:]
        return posixpath.normpath(posixpath.join(posixpath.dirname(part), target))

    def add_relationship(self, part: str, rel_type: str, target_part: str) -> str:
        name = self.rels_name(part)
        if name not in self.parts:
            self.parts[name] = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                                b'<Relationships xmlns="%s"/>' % NS_PKG_REL.encode())
        root = self.xml(name)
        used = {r.get("Id") for r in root}
        k = 1
        while f"rId{k}" in used:
            k += 1
        rel = etree.SubElement(root, "{%s}Relationship" % NS_PKG_REL)
        rel.set("Id", f"rId{k}")
        rel.set("Type", rel_type)
        rel.set("Target", posixpath.relpath(target_part, posixpath.dirname(part)))
        return f"rId{k}"

    # -- content types ---------------------------------------------------------------
    def content_type(self, part: str) -> str | None:
        types = self.peek("[Content_Types].xml")
        for el in types:
            if el.get("PartName") == "/" + part:
                return el.get("ContentType")
        ext = part.rsplit(".", 1)[-1].lower()
        for el in types:
            if el.get("Extension", "").lower() == ext:
                return el.get("ContentType")
        return None

    def add_part(self, part: str, data: bytes, content_type: str) -> None:
        self.parts[part] = data
        self._xml.pop(part, None)
        if self.content_type(part) != content_type:
            types = self.xml("[Content_Types].xml")
            override = etree.SubElement(types, "{%s}Override" % NS_CT)
            override.set("PartName", "/" + part)
            override.set("ContentType", content_type)

    def remove_part(self, part: str) -> None:
        self.parts.pop(part, None)
        self.infos.pop(part, None)
        self._xml.pop(part, None)
        self._dirty.discard(part)
        rels = self.rels_name(part)
        self.parts.pop(rels, None)
        self.infos.pop(rels, None)
        self._xml.pop(rels, None)
        types = self.xml("[Content_Types].xml")
        for el in list(types):
            if el.get("PartName") == "/" + part:
                types.remove(el)

    def free_name(self, like: str) -> str:
        """A part name not in use, shaped like ``like`` ("xl/charts/chart3.xml")."""
        folder, base = posixpath.split(like)
        stem, ext = posixpath.splitext(base)
        stem = stem.rstrip("0123456789")
        k = 1
        while posixpath.join(folder, f"{stem}{k}{ext}") in self.parts:
            k += 1
        return posixpath.join(folder, f"{stem}{k}{ext}")

    def descendants(self, part: str) -> list[str]:
        """Every internal part reachable from ``part`` through relationships (not itself)."""
        seen: list[str] = []
        stack = [part]
        while stack:
            current = stack.pop()
            for rel in self.relationships(current):
                target = self.target(current, rel)
                if target and target in self.parts and target not in seen and target != part:
                    seen.append(target)
                    stack.append(target)
        return seen

    # -- workbook --------------------------------------------------------------------
    @property
    def workbook_part(self) -> str:
        for rel in self.relationships(""):
            if (rel.get("Type") or "").endswith("/officeDocument"):
                part = self.target("", rel)
                if part and part in self.parts:
                    return part
        raise WorkbookError(f"{self.source} has no SpreadsheetML workbook part (no "
                            "officeDocument relationship in _rels/.rels)")

    def sheets(self) -> list[tuple[str, str]]:
        """(sheet name, part name) of every sheet, in tab order; refuses a workbook with no
        sheets, with two sheets of the same name (ignoring case, as Excel), or with a sheet
        whose part is missing."""
        wb = self.workbook_part
        targets = {r.get("Id"): self.target(wb, r) for r in self.relationships(wb)}
        element = self.peek(wb).find(_q("sheets"))
        out = []
        for s in (element if element is not None else []):
            part = targets.get(s.get("{%s}id" % NS_REL))
            if part is None or part not in self.parts:
                raise WorkbookError(f"{self.source}: the part of sheet {s.get('name')!r} is "
                                    f"missing ({wb} relationship {s.get('{%s}id' % NS_REL)})")
            out.append((s.get("name"), part))
        check_sheet_names(self.source, [name for name, _ in out])
        return out

    def sheet_part(self, sheet: str) -> str | None:
        for name, part in self.sheets():
            if name.lower() == sheet.lower():
                return part
        return None

    def tables(self) -> list[dict]:
        """Every Excel table: name, sheet, ref, header_rows, part."""
        out = []
        for sheet, part in self.sheets():
            for rel in self.relationships(part):
                if rel.get("Type") == REL_TABLE:
                    table_part = self.target(part, rel)
                    out.append(self._table(sheet, table_part))
        return out

    def _table(self, sheet: str, table_part: str) -> dict:
        """One table part's name, sheet, ref, header rows and id, checked."""
        root = self.peek(table_part)
        where = f"{self.source}: table part {table_part}"
        name = root.get("displayName") or root.get("name")
        if not name:
            raise WorkbookError(f"{where} has no name")
        ident = root.get("id") or ""
        if not ident.strip().isdigit():
            raise WorkbookError(f"{where} ({name}) has no numeric id")
        ref = root.get("ref") or ""
        if not re.fullmatch(r"\$?[A-Za-z]{1,3}\$?[1-9]\d{0,6}(?::\$?[A-Za-z]{1,3}\$?[1-9]\d{0,6})?",
                            ref):
            raise WorkbookError(f"{where} ({name}) has the range {ref!r}, not a range such as "
                                "A1:Q1201")
        first, _, last = ref.partition(":")
        (r0, c0), (r1, c1) = parse_address(first), parse_address(last or first)
        if not (r0 <= r1 < MAX_ROWS and c0 <= c1 < MAX_COLS):
            raise WorkbookError(f"{where} ({name}) has the range {ref!r}, outside the sheet "
                                "(A1:XFD1048576) or reversed")
        header = root.get("headerRowCount", "1")
        if not header.strip().isdigit():
            raise WorkbookError(f"{where} ({name}) has headerRowCount {header!r}")
        return {"name": name, "sheet": sheet, "ref": ref, "header_rows": int(header),
                "part": table_part, "id": int(ident)}

    def styles_part(self) -> str:
        """The workbook's styles part; a WorkbookError when the package has none."""
        wb = self.workbook_part
        for r in self.relationships(wb):
            if (r.get("Type") or "").endswith("/styles"):
                part = self.target(wb, r)
                if part in self.parts:
                    return part
        raise WorkbookError(f"{self.source} has no styles part (xl/styles.xml): open it in "
                            "Excel and save it again")

    def defined_names(self) -> dict[str, str]:
        """Workbook-scoped defined names -> their formula text (``Tape!$A$1:$C$9``)."""
        names = self.peek(self.workbook_part).find(_q("definedNames"))
        if names is None:
            return {}
        return {n.get("name"): n.text or "" for n in names
                if n.get("localSheetId") is None and n.get("name")}

    def drop_calc_chain(self) -> None:
        wb = self.workbook_part
        for rel in self.relationships(wb):
            if rel.get("Type") == REL_CALC_CHAIN:
                self.remove_part(self.target(wb, rel))
                self.xml(self.rels_name(wb)).remove(rel)


# -- styles ----------------------------------------------------------------------------

class _StyleMerger:
    """Appends cell formats of a scratch styles.xml to the target's; maps xf indices."""

    def __init__(self, target: etree._Element, source: etree._Element):
        self.target, self.source = target, source
        self.memo: dict[int, int] = {}

    def _intern(self, tag: str, element: etree._Element) -> int:
        """Index of an identical element in the target's collection, appending it if new."""
        node = self.target.find(_q(tag))
        key = etree.tostring(element)
        for i, existing in enumerate(node):
            if etree.tostring(existing) == key:
                return i
        node.append(deepcopy(element))
        node.set("count", str(len(node)))
        return len(node) - 1

    def _num_fmt(self, fmt_id: int) -> int:
        if fmt_id < 164:
            return fmt_id  # built-in
        src = self.source.find(_q("numFmts"))
        code = next(f.get("formatCode") for f in src if int(f.get("numFmtId")) == fmt_id)
        node = self.target.find(_q("numFmts"))
        if node is None:
            node = etree.Element(_q("numFmts"))
            self.target.insert(0, node)
        for f in node:
            if f.get("formatCode") == code:
                return int(f.get("numFmtId"))
        new_id = max([163] + [int(f.get("numFmtId")) for f in node]) + 1
        etree.SubElement(node, _q("numFmt"), numFmtId=str(new_id), formatCode=code)
        node.set("count", str(len(node)))
        return new_id

    def map(self, index: int) -> int:
        if index in self.memo:
            return self.memo[index]
        xf = deepcopy(self.source.find(_q("cellXfs"))[index])
        for attr, tag in (("fontId", "fonts"), ("fillId", "fills"), ("borderId", "borders")):
            element = self.source.find(_q(tag))[int(xf.get(attr, "0"))]
            xf.set(attr, str(self._intern(tag, element)))
        xf.set("numFmtId", str(self._num_fmt(int(xf.get("numFmtId", "0")))))
        xf.set("xfId", "0")
        self.memo[index] = self._intern("cellXfs", xf)
        return self.memo[index]


def _inline_strings(sheet: etree._Element, shared: list[str]) -> None:
    for cell in sheet.iter(_q("c")):
        if cell.get("t") == "s":
            value = cell.find(_q("v"))
            text = shared[int(value.text)]
            cell.remove(value)
            cell.set("t", "inlineStr")
            inline = etree.SubElement(cell, _q("is"))
            t = etree.SubElement(inline, _q("t"))
            t.text = text
            if text != text.strip():
                t.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")


def _shared_strings(pkg: Package) -> list[str]:
    name = "xl/sharedStrings.xml"
    if name not in pkg.parts:
        return []
    return ["".join(si.itertext()) for si in pkg.xml(name)]


def _copy_tree(src: Package, part: str, dst: Package, memo: dict, table_ids: list[int]) -> str:
    """Copy ``part`` and everything it relates to from ``src`` into ``dst`` under free names."""
    if part in memo:
        return memo[part]
    new = dst.free_name(part)
    memo[part] = new
    data = src.parts[part]
    content_type = src.content_type(part)
    if content_type and content_type.endswith("table+xml"):
        root = etree.fromstring(data)
        table_ids[0] += 1
        root.set("id", str(table_ids[0]))
        data = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
    dst.add_part(new, data, content_type)
    _copy_relationships(src, part, dst, new, memo, table_ids)
    return new


def _copy_relationships(src, part, dst, new, memo, table_ids) -> None:
    rels = src.relationships(part)
    if not rels:
        return
    root = etree.Element("{%s}Relationships" % NS_PKG_REL, nsmap={None: NS_PKG_REL})
    for rel in rels:
        copy = deepcopy(rel)
        target = src.target(part, rel)
        if target is not None:
            child = _copy_tree(src, target, dst, memo, table_ids)
            copy.set("Target", posixpath.relpath(child, posixpath.dirname(new)))
        root.append(copy)
    name = dst.rels_name(new)
    dst.parts[name] = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
    dst._xml.pop(name, None)


def graft_sheets(target: Package, scratch: Package, sheet_names: list[str]) -> None:
    """Put the scratch workbook's sheets ``sheet_names`` into ``target``, replacing sheets
    of the same name (case-insensitive) in place and appending the others."""
    shared = _shared_strings(scratch)
    styles_part = target.styles_part()
    merger = _StyleMerger(target.xml(styles_part), scratch.xml("xl/styles.xml"))
    table_ids = [max([0] + [t["id"] for t in target.tables()])]
    scratch_parts = dict((n.lower(), p) for n, p in scratch.sheets())
    replaced_any = False
    for name in sheet_names:
        src_part = scratch_parts[name.lower()]
        sheet = deepcopy(scratch.xml(src_part))
        _inline_strings(sheet, shared)
        for element in sheet.iter(_q("c"), _q("row")):
            if element.get("s") is not None:
                element.set("s", str(merger.map(int(element.get("s")))))
        for col in sheet.iter(_q("col")):
            if col.get("style") is not None:
                col.set("style", str(merger.map(int(col.get("style")))))
        for view in sheet.iter(_q("sheetView")):
            view.attrib.pop("tabSelected", None)

        existing = target.sheet_part(name)
        if existing is not None:
            for old in target.descendants(existing):
                target.remove_part(old)
            target.parts.pop(target.rels_name(existing), None)
            target._xml.pop(target.rels_name(existing), None)
            dst_part = existing
            replaced_any = True
        else:
            dst_part = target.free_name("xl/worksheets/sheet1.xml")
            rid = target.add_relationship(target.workbook_part, REL_WORKSHEET, dst_part)
            sheets = target.xml(target.workbook_part).find(_q("sheets"))
            sheet_id = max(int(s.get("sheetId")) for s in sheets) + 1
            etree.SubElement(sheets, _q("sheet"), {"name": name, "sheetId": str(sheet_id),
                                                   "{%s}id" % NS_REL: rid})
        target.add_part(dst_part, etree.tostring(sheet, xml_declaration=True, encoding="UTF-8",
                                                 standalone=True), CT_WORKSHEET)
        _copy_relationships(scratch, src_part, target, dst_part, {}, table_ids)
    if replaced_any:
        target.drop_calc_chain()


def mark_cells(target: Package, sheet: str, cells: list[str], rgb: str = "FFFFC7CE") -> None:
    """Give ``cells`` of ``sheet`` a solid fill of colour ``rgb`` (ARGB), keeping the rest
    of each cell's format; cells missing from the sheet XML (blanks) are created."""
    part = target.sheet_part(sheet)
    if part is None:
        raise ValueError(f"no sheet named {sheet!r}")
    styles = target.xml(target.styles_part())
    fill = etree.Element(_q("fill"))
    pattern = etree.SubElement(fill, _q("patternFill"), patternType="solid")
    etree.SubElement(pattern, _q("fgColor"), rgb=rgb)
    etree.SubElement(pattern, _q("bgColor"), indexed="64")
    merger = _StyleMerger(styles, styles)
    fill_id = merger._intern("fills", fill)
    remap: dict[int, int] = {}

    def marked(style: int) -> int:
        if style not in remap:
            xf = deepcopy(styles.find(_q("cellXfs"))[style])
            xf.set("fillId", str(fill_id))
            xf.set("applyFill", "1")
            remap[style] = merger._intern("cellXfs", xf)
        return remap[style]

    root = target.xml(part)
    data = root.find(_q("sheetData"))
    rows = {int(r.get("r")): r for r in data.iter(_q("row"))}
    for ref in cells:
        row, col_no = parse_address(ref)
        row_no = row + 1  # the XML's row numbers are 1-based
        row = rows.get(row_no)
        if row is None:
            row = etree.Element(_q("row"), r=str(row_no))
            later = [r for n, r in sorted(rows.items()) if n > row_no]
            if later:
                later[0].addprevious(row)
            else:
                data.append(row)
            rows[row_no] = row
        cell = next((c for c in row.iter(_q("c")) if parse_address(c.get("r"))[1] == col_no), None)
        if cell is None:
            cell = etree.Element(_q("c"), r=cell_address(row_no - 1, col_no))
            if row.get("s") is not None and row.get("customFormat") == "1":
                cell.set("s", row.get("s"))
            later = [c for c in row.iter(_q("c")) if parse_address(c.get("r"))[1] > col_no]
            if later:
                later[0].addprevious(cell)
            else:
                row.append(cell)
            row.attrib.pop("spans", None)
        cell.set("s", str(marked(int(cell.get("s", "0")))))
