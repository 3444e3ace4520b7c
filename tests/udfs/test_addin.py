"""The ribbon, its VBA callbacks, the Python macros behind them, and the add-in build.

Excel is not here, so these tests check every link of the chain that a file can show:
ribbon XML -> VBA Sub -> RunPython target -> npl_xl.macros function, and the NPL.xlam that
``npl-xl install`` builds at the zip level (the parts Excel adds on Windows, the imported
VBA callbacks and UDF wrappers, are built by construction only; see ARCHITECTURE.md).
"""

from __future__ import annotations

import hashlib
import inspect
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from lxml import etree

import npl_xl_udfs.ribbon as ribbon
from npl_xl_udfs import install

ADDIN_DIR = Path(install.__file__).with_name("addin")
CUSTOMUI_NS = "http://schemas.microsoft.com/office/2009/07/customui"


def ribbon_buttons():
    root = etree.parse(str(ADDIN_DIR / "customUI14.xml")).getroot()
    return root, root.findall(f".//{{{CUSTOMUI_NS}}}button")


def test_ribbon_xml_is_well_formed_office_2010_customui():
    root, buttons = ribbon_buttons()
    assert root.tag == f"{{{CUSTOMUI_NS}}}customUI"
    ids = [b.get("id") for b in buttons]
    assert len(ids) == len(set(ids)) == len(ribbon.MACROS) + len(ribbon.EXCEL_ONLY)
    labels = {b.get("label") for b in buttons}
    assert labels == {"Run Simulation", "Fit Recoveries", "Validate Tape", "Stratify Pool",
                      "Price Bid", "Clear Results", "Explain Error", "Size Tranches",
                      "Sensitivity", "Surveillance Report"}


def test_every_onaction_has_its_vba_sub_with_the_callback_signature():
    source = (ADDIN_DIR / "NplRibbon.bas").read_text()
    assert source.startswith('Attribute VB_Name = "NplRibbon"')
    callbacks = set(re.findall(r"^Public Sub (\w+)\(control As IRibbonControl\)", source, re.M))
    _, buttons = ribbon_buttons()
    for button in buttons:
        module, sub = button.get("onAction").split(".")
        assert module == "NplRibbon"
        assert sub in callbacks, f"{button.get('id')}: no Sub {sub}"
    assert len(callbacks) == len(buttons)


def test_every_callback_runs_a_python_macro_that_exists():
    source = (ADDIN_DIR / "NplRibbon.bas").read_text()
    targets = re.findall(r'RunNplMacro "(\w+)"', source)
    assert sorted(targets) == sorted(ribbon.MACROS + ribbon.EXCEL_ONLY)
    assert all(callable(getattr(ribbon, name)) for name in ribbon.EXCEL_ONLY)
    runpython = re.search(r'RunPython "(.*?)" & macroName & "\(\)"', source).group(1)
    assert runpython == "import npl_xl_udfs.ribbon as ribbon; ribbon."
    from npl_xl import macros

    for name in ribbon.MACROS:
        assert callable(getattr(ribbon, name)) and not inspect.signature(
            getattr(ribbon, name)).parameters
        target = getattr(macros, name)
        assert next(iter(inspect.signature(target).parameters)) == "book", name


@pytest.fixture(scope="module")
def built_addin(tmp_path_factory):
    build_dir = tmp_path_factory.mktemp("addin")
    result = subprocess.run([sys.executable, "-m", "npl_xl.cli", "install", "--dry-run",
                             "--build-dir", str(build_dir)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return build_dir / install.ADDIN_NAME, result.stdout


def test_install_dry_run_prints_every_step(built_addin):
    _, stdout = built_addin
    for number, step in enumerate(install.STEPS, start=1):
        assert f"[{number}/{len(install.STEPS)}] {step.title}" in stdout
    assert "would copy" in stdout and "NPL_BETA_PARAMS(0.4,0.2)" in stdout


def test_built_addin_carries_our_ribbon_config_and_xlwings_vba(built_addin):
    import xlwings

    path, _ = built_addin
    template = Path(xlwings.__file__).with_name(install.XLWINGS_TEMPLATE)
    with zipfile.ZipFile(path) as addin, zipfile.ZipFile(template) as source:
        names = set(addin.namelist())
        assert install.RIBBON_PART in names and "customUI/customUI.xml" not in names
        assert addin.read(install.RIBBON_PART) == (ADDIN_DIR / "customUI14.xml").read_bytes()
        digest = hashlib.sha256
        assert digest(addin.read("xl/vbaProject.bin")).digest() == \
            digest(source.read("xl/vbaProject.bin")).digest()
        rels = etree.fromstring(addin.read("_rels/.rels"))
        ui = [r for r in rels if r.get("Type") == install.RIBBON_REL_TYPE]
        assert [r.get("Target") for r in ui] == [install.RIBBON_PART]
        workbook = addin.read("xl/workbook.xml").decode()
        assert 'name="npl_xl.conf"' in workbook
        sheet = addin.read("xl/worksheets/sheet1.xml").decode()
        assert "<t>npl_xl_udfs</t>" in sheet and sys.executable.split("/")[-1] in sheet
        assert '<c r="B8" t="b"><v>1</v></c>' in sheet  # Use UDF Server
        content_types = addin.read("[Content_Types].xml").decode()
        assert "application/vnd.ms-excel.addin.macroEnabled.main+xml" in content_types


def test_addin_vba_project_defines_runpython(built_addin):
    """olevba (oletools) decompresses the VBA project: the xlwings module our callbacks
    rely on is there."""
    olevba = pytest.importorskip("oletools.olevba")
    path, _ = built_addin
    parser = olevba.VBA_Parser(str(path))
    modules = {name: code for _, _, name, code in parser.extract_macros()}
    parser.close()
    xlwings_module = next(code for name, code in modules.items() if name.startswith("xlwings"))
    assert re.search(r"^(Public )?(Function|Sub) RunPython\(", xlwings_module, re.M)
    assert "Public Const PROJECT_NAME" in xlwings_module
