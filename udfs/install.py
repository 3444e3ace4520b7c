"""``npl-xl install``: set up Excel for npl-xl on Windows; elsewhere, a dry run.

The steps, in order (each prints what it does; ``--dry-run`` or a machine without Excel
only prints and builds what can be built without Excel):

1. warm the numba caches, so Excel's first recalculation does not wait for compilation;
2. install the xlwings add-in (``xlwings addin install``);
3. write the user's xlwings configuration: this interpreter and the UDF module
   ``npl_xl_udfs``;
4. build the NPL add-in ``NPL.xlam`` from xlwings' custom-add-in template: our ribbon
   (customUI14.xml) and its configuration sheet are written at the zip level; on Windows
   Excel then imports the ribbon callbacks (NplRibbon.bas), names the VBA project, and
   writes the worksheet-function wrappers (xlwings' Import Functions);
5. copy NPL.xlam into Excel's start-up folder (XLSTART), so it loads with Excel;
6. check the result: Excel opens a new workbook, computes ``=NPL_BETA_PARAMS(0.4,0.2)``
   through the add-in, and the answer must be alpha 2, beta 3.

What needs Excel (steps 2, 4's VBA part, 5, 6) was built against xlwings' and Excel's
documented COM interfaces and is verified only by construction here; see ARCHITECTURE.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lxml import etree

from npl_xl.workbook.safety import write_atomically

ADDIN_NAME = "NPL.xlam"
PROJECT_NAME = "npl_xl"  #: the add-in's xlwings PROJECT_NAME: config sheet npl_xl.conf
UDF_MODULE = "npl_xl_udfs"
RIBBON_PART = "customUI/customUI14.xml"
RIBBON_REL_TYPE = "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility"
RIBBON_CONTENT_TYPE = "application/xml"
XLWINGS_TEMPLATE = "quickstart_addin_ribbon.xlam"  #: ships in the xlwings wheel

_PKG_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


@dataclass(frozen=True)
class Context:
    """Where the installer works and whether it may touch Excel."""

    build_dir: Path
    dry_run: bool
    python: str = sys.executable

    @property
    def on_windows(self) -> bool:
        return sys.platform.startswith("win")

    @property
    def live(self) -> bool:
        """True when steps may change this machine's Excel set-up."""
        return self.on_windows and not self.dry_run


@dataclass(frozen=True)
class Step:
    title: str
    action: Callable[[Context], str]


# ------------------------------------------------------------------ step 1: caches
def warm_caches(ctx: Context) -> str:
    """Compile (or load from numba's cache) every kernel: the Philox draws, the quantile
    tables, the collection and waterfall kernels, by a tiny run of each."""
    from npl_xl.engine import Pool, simulate_deal
    from npl_xl.sheet.registry import load_all

    load_all()["NPL_BETA_DRAWS"](0.4, 0.2, 10.0)
    pool = Pool.from_arrays([100.0, 200.0], [40.0, 90.0], [12.0, 24.0], [0.2, 0.2], [1, 2])
    tranches = [["name", "kind", "balance", "coupon"], ["A", "senior", 50.0, 0.03],
                ["B", "subordinated", 20.0, 0.0]]
    simulate_deal(pool, tranches, None, n_sims=8, seed=0)
    return "numba kernels compiled and cached"


# ------------------------------------------------------------------ step 2: xlwings add-in
def install_xlwings_addin(ctx: Context) -> str:
    command = [ctx.python, "-c", "from xlwings.cli import main; main()", "addin", "install"]
    if not ctx.live:
        return "would run: " + subprocess.list2cmdline(command)
    subprocess.run(command, check=True)
    return "xlwings add-in installed"


# ------------------------------------------------------------------ step 3: configuration
def xlwings_config_lines(ctx: Context) -> list[str]:
    """The user's xlwings.conf entries: this interpreter and the UDF module."""
    pythonw = Path(ctx.python).with_name("pythonw.exe")
    interpreter = str(pythonw if pythonw.exists() else Path(ctx.python))
    return [f'"INTERPRETER_WIN","{interpreter}"', f'"UDF_MODULES","{UDF_MODULE}"']


def write_xlwings_config(ctx: Context) -> str:
    lines = xlwings_config_lines(ctx)
    target = Path.home() / ".xlwings" / "xlwings.conf"
    if not ctx.live:
        return f"would write to {target}:\n      " + "\n      ".join(lines)
    target.parent.mkdir(parents=True, exist_ok=True)
    existing = target.read_text(encoding="utf-8").splitlines() if target.exists() else []
    keys = {line.split(",", 1)[0] for line in lines}
    kept = [line for line in existing if line.split(",", 1)[0] not in keys]
    data = ("\n".join(kept + lines) + "\n").encode("utf-8")
    write_atomically(target, lambda handle: handle.write(data))
    return f"wrote {target}"


# ------------------------------------------------------------------ step 4: the add-in
def ribbon_xml() -> bytes:
    return resources.files("npl_xl_udfs").joinpath("addin/customUI14.xml").read_bytes()


def ribbon_vba() -> str:
    return resources.files("npl_xl_udfs").joinpath("addin/NplRibbon.bas").read_text("utf-8")


def build_addin_package(template: Path, target: Path, config: dict[str, str]) -> Path:
    """Write ``target``: the xlwings custom-add-in template with our ribbon and config sheet.

    Zip level only: every part but the ribbon, the root relationships, the content types,
    the workbook (sheet name) and the configuration sheet is copied byte for byte, the VBA
    project included.
    """
    with zipfile.ZipFile(template) as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
        infos = {info.filename: info for info in source.infolist()}
    parts.pop("customUI/customUI.xml", None)  # the template's sample ribbon
    parts[RIBBON_PART] = ribbon_xml()
    parts["_rels/.rels"] = _with_ribbon_relationship(parts["_rels/.rels"])
    parts["xl/workbook.xml"] = _rename_config_sheet(parts["xl/workbook.xml"])
    parts["xl/worksheets/sheet1.xml"] = _write_config(parts["xl/worksheets/sheet1.xml"],
                                                      parts["xl/sharedStrings.xml"], config)
    buffer = tempfile.NamedTemporaryFile(dir=target.parent, suffix=".tmp", delete=False)
    buffer.close()
    try:
        with zipfile.ZipFile(buffer.name, "w", zipfile.ZIP_DEFLATED) as out:
            for name, data in parts.items():
                info = infos.get(name) or zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(info, data)
        os.replace(buffer.name, target)
    finally:
        if os.path.exists(buffer.name):
            os.unlink(buffer.name)
    return target


def _with_ribbon_relationship(rels_xml: bytes) -> bytes:
    root = etree.fromstring(rels_xml)
    for rel in list(root):
        if rel.get("Type", "").endswith("/ui/extensibility"):
            root.remove(rel)
    ids = {rel.get("Id") for rel in root}
    new_id = next(f"rIdNpl{i}" for i in range(1, 100) if f"rIdNpl{i}" not in ids)
    etree.SubElement(root, f"{{{_PKG_RELS}}}Relationship",
                     Id=new_id, Type=RIBBON_REL_TYPE, Target=RIBBON_PART)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _rename_config_sheet(workbook_xml: bytes) -> bytes:
    root = etree.fromstring(workbook_xml)
    for sheet in root.iter(f"{{{_MAIN}}}sheet"):
        if sheet.get("name", "").endswith(".conf"):
            sheet.set("name", f"{PROJECT_NAME}.conf")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _write_config(sheet_xml: bytes, shared_strings_xml: bytes,
                  config: dict[str, str | bool]) -> bytes:
    """Put each config value in column B beside its label in column A."""
    strings = [si.xpath("string(.)") for si in etree.fromstring(shared_strings_xml)]
    root = etree.fromstring(sheet_xml)
    ns = {"m": _MAIN}
    wanted = {key.upper(): value for key, value in config.items()}
    for row in root.iterfind(".//m:sheetData/m:row", ns):
        cells = row.findall("m:c", ns)
        label_cell = next((c for c in cells if c.get("r", "").startswith("A")), None)
        if label_cell is None or label_cell.get("t") != "s":
            continue
        label = strings[int(label_cell.findtext("m:v", namespaces=ns))].upper().replace(" ", "_")
        if label not in wanted:
            continue
        address = "B" + label_cell.get("r")[1:]
        for cell in cells:
            if cell.get("r") == address:
                row.remove(cell)
        if isinstance(wanted[label], bool):
            value = etree.SubElement(row, f"{{{_MAIN}}}c", r=address, t="b")
            etree.SubElement(value, f"{{{_MAIN}}}v").text = "1" if wanted[label] else "0"
        else:
            value = etree.SubElement(row, f"{{{_MAIN}}}c", r=address, t="inlineStr")
            etree.SubElement(etree.SubElement(value, f"{{{_MAIN}}}is"),
                             f"{{{_MAIN}}}t").text = wanted[label]
        row.set("spans", "1:2")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def addin_config(ctx: Context) -> dict[str, str | bool]:
    """The add-in's own configuration sheet (xlwings reads it before the user's file).

    "Use UDF Server": the ribbon's macros run in the COM server that computes the worksheet
    functions, so they start fast and Explain Error can read the functions' messages.
    """
    interpreter = xlwings_config_lines(ctx)[0].split(",", 1)[1].strip('"')
    return {"Interpreter_Win": interpreter, "UDF_Modules": UDF_MODULE, "Use_UDF_Server": True}


def build_addin(ctx: Context) -> str:
    import xlwings

    template = Path(xlwings.__file__).with_name(XLWINGS_TEMPLATE)
    target = ctx.build_dir / ADDIN_NAME
    ctx.build_dir.mkdir(parents=True, exist_ok=True)
    build_addin_package(template, target, addin_config(ctx))
    done = f"built {target} (ribbon, configuration sheet {PROJECT_NAME}.conf)"
    if not ctx.live:
        return done + "; Excel would now import NplRibbon.bas and the UDF wrappers"
    _finish_addin_in_excel(target)
    return done + ", ribbon callbacks and UDF wrappers imported by Excel"


def _finish_addin_in_excel(target: Path) -> None:  # pragma: no cover - needs Excel
    """Import the VBA callbacks and the UDF wrappers into the add-in through Excel (COM).

    Needs "Trust access to the VBA project object model" (File > Options > Trust Center).
    """
    import xlwings as xw
    from xlwings.udfs import import_udfs

    with xw.App(visible=False, add_book=False) as app:
        book = app.books.open(str(target))
        project = book.api.VBProject
        components = project.VBComponents
        for name in ("RibbonMyAddin", "NplRibbon"):
            try:
                components.Remove(components(name))
            except Exception:  # not there: nothing to remove
                pass
        with tempfile.TemporaryDirectory() as scratch:
            bas = Path(scratch) / "NplRibbon.bas"
            bas.write_text(ribbon_vba().replace("\n", "\r\n"), encoding="cp1252",
                           errors="replace")
            components.Import(str(bas))
        module = components("xlwings").CodeModule
        for line in range(1, module.CountOfLines + 1):
            if module.Lines(line, 1).startswith("Public Const PROJECT_NAME"):
                module.ReplaceLine(line, f'Public Const PROJECT_NAME As String = "{PROJECT_NAME}"')
                break
        project.Name = "NplXl"
        import_udfs(UDF_MODULE, book.api)
        book.save()
        book.close()


# ------------------------------------------------------------------ step 5: XLSTART
def xlstart_dir() -> Path:
    return Path(os.environ.get("APPDATA", Path.home() / "AppData/Roaming")) / \
        "Microsoft" / "Excel" / "XLSTART"


def install_addin(ctx: Context) -> str:
    source, target = ctx.build_dir / ADDIN_NAME, xlstart_dir() / ADDIN_NAME
    if not ctx.live:
        return f"would copy {source} to {target}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    return f"copied to {target}"


# ------------------------------------------------------------------ step 6: check
def check_in_excel(ctx: Context) -> str:
    formula = "=NPL_BETA_PARAMS(0.4,0.2)"
    if not ctx.live:
        return f"would enter {formula} in a new workbook and expect alpha 2, beta 3"
    import xlwings as xw  # pragma: no cover - needs Excel

    with xw.App(visible=False) as app:
        app.books.open(str(xlstart_dir() / ADDIN_NAME))
        sheet = app.books.add().sheets[0]
        sheet["A1:B1"].formula_array = formula
        app.calculate()
        values = sheet["A1:B1"].value
    if not (isinstance(values, list) and [round(v, 9) for v in values] == [2.0, 3.0]):
        raise RuntimeError(f"{formula} gave {values!r} in Excel, expected [2.0, 3.0]")
    return f"{formula} = {values} in Excel"


STEPS = [
    Step("Warm the numba caches", warm_caches),
    Step("Install the xlwings add-in", install_xlwings_addin),
    Step("Point xlwings at this interpreter and npl_xl_udfs", write_xlwings_config),
    Step("Build the NPL add-in with its ribbon", build_addin),
    Step("Install the NPL add-in into Excel's start-up folder", install_addin),
    Step("Check a worksheet function through Excel", check_in_excel),
]


def default_build_dir() -> Path:
    base = os.environ.get("LOCALAPPDATA") or (Path.home() / ".local" / "share")
    return Path(base) / "npl-xl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="print each step and build what can be built; change nothing in Excel")
    parser.add_argument("--build-dir", type=Path, default=None,
                        help=f"where to build {ADDIN_NAME} (default: {default_build_dir()})")
    # LibreOffice Calc (npl_xl_calc; docs/LIBREOFFICE.md)
    parser.add_argument("--libreoffice", action="store_true",
                        help="install the LibreOffice Calc extension instead of the Excel add-in")
    parser.add_argument("--profile", type=Path, default=None,
                        help="with --libreoffice: the LibreOffice profile folder to install into")
    parser.add_argument("--uninstall", action="store_true",
                        help="with --libreoffice: remove the extension")


def main(args: argparse.Namespace) -> int:
    if getattr(args, "libreoffice", False):
        from npl_xl_calc.install import main as install_libreoffice

        return install_libreoffice(args)
    ctx = Context(build_dir=args.build_dir or default_build_dir(),
                  dry_run=args.dry_run or not sys.platform.startswith("win"))
    if ctx.dry_run:
        reason = "--dry-run" if args.dry_run else "no Excel on this platform"
        print(f"npl-xl install: dry run ({reason}): each step is printed; "
              f"files are built in {ctx.build_dir}")
    for number, step in enumerate(STEPS, start=1):
        print(f"[{number}/{len(STEPS)}] {step.title}", flush=True)
        try:
            print(f"      {step.action(ctx)}", flush=True)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"npl-xl install: step {number} failed: {exc}", file=sys.stderr)
            return 1
    return 0
