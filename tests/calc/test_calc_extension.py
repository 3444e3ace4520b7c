"""The Calc extension's generated parts, its pipe and its worker, without LibreOffice."""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import zipfile

import pytest

from npl_xl.sheet.registry import load_all
from npl_xl_calc import names, spec, wire
from npl_xl_calc.oxt import oxt_parts


def test_uno_names_follow_the_uno_identifier_rules():
    assert spec.uno_name("n_sims") == "nSims"
    assert spec.uno_name("collateral_type") == "collateralType"
    assert spec.uno_name("mean") == "mean"
    assert spec.uno_name("type") == "typeValue"  # an IDL keyword
    with pytest.raises(ValueError):
        spec.uno_name("bad-name")


def test_idl_has_one_method_per_registry_function_with_the_hidden_argument():
    registry = load_all()
    specs = spec.function_specs(registry)
    idl = spec.idl_source(specs)
    for function in registry.values():
        line = next(l for l in idl.splitlines() if f" {function.name}(" in l)
        assert line.count("[in] any ") == len(function.args)
        assert "[in] com::sun::star::beans::XPropertySet options" in line
        assert line.strip().startswith("sequence< sequence< any > >" if function.returns_array
                                       else "any ")
    assert idl.count("{") == idl.count("}")


def test_wizard_texts_carry_english_and_the_chinese_one_liner():
    registry = load_all()
    data = json.loads(spec.functions_json(spec.function_specs(registry)))
    by_name = {f["name"]: f for f in data["functions"]}
    assert data["service"] == spec.SERVICE
    for name, function in registry.items():
        entry = by_name[name]
        assert entry["doc"] == function.doc and entry["zh"] == function.zh
        assert [a["name"] for a in entry["args"]] == [a.name for a in function.args]


def test_menu_has_every_ribbon_button_and_explain_error():
    from npl_xl_udfs.ribbon import MACROS

    xcu = spec.addons_xcu().decode()
    for name in MACROS:
        assert f"{spec.PROTOCOL}{name}<" in xcu
    assert f"{spec.PROTOCOL}{spec.EXPLAIN_ERROR}<" in xcu
    assert [b[0] for b in spec.buttons()] == list(MACROS) + [spec.EXPLAIN_ERROR]
    assert spec.buttons()[0][1] == "Validate Tape"
    assert f"{spec.PROTOCOL}*" in spec.protocol_handler_xcu().decode()


def test_oxt_parts_are_well_formed_and_consistent():
    from lxml import etree

    parts = oxt_parts(b"rdb", python="/usr/bin/python3")
    for name, data in parts.items():
        if name.endswith((".xml", ".xcu", ".components")):
            etree.fromstring(data)  # raises if not well formed
    manifest = parts["META-INF/manifest.xml"].decode()
    for listed in ("types/npl_calc.rdb", "npl_calc.components", "Addons.xcu",
                   "ProtocolHandler.xcu", "Jobs.xcu"):
        assert listed in manifest and listed in parts
    worker = json.loads(parts["worker.json"])
    assert worker["python"] == "/usr/bin/python3"
    assert spec.IMPLEMENTATION in parts["npl_calc.components"].decode()
    compile(parts["npl_calc.py"], "npl_calc.py", "exec")  # the component is valid Python


def test_calc_error_values_are_nan_with_calc_error_numbers():
    for code, number in wire.CALC_ERROR_NUMBERS.items():
        value = wire.calc_error(code)
        assert math.isnan(value)
        bits = struct.unpack("<Q", struct.pack("<d", value))[0]
        assert bits == 0x7FF8000000000000 | number  # what LibreOffice's CreateDoubleError makes
        assert wire.calc_error_code(number) == code
    assert wire.CALC_ERROR_NUMBERS["#NUM!"] == 503 and wire.CALC_ERROR_NUMBERS["#N/A"] == 0x7FFF


def test_long_names_and_omitted_arguments():
    prefix = names.long_prefix(spec.SERVICE)
    functions = set(load_all())
    assert names.long_names('=npl_tranche_el(LoanTape;T;S;1000;;A)', prefix, functions) == \
        f'={prefix}NPL_TRANCHE_EL(LoanTape;T;S;1000;"";A)'
    assert names.long_names('=npl_beta_params(;0.2)+SUM(1;;2)', prefix, functions) == \
        f'={prefix}NPL_BETA_PARAMS("";0.2)+SUM(1;;2)'  # only npl-xl calls are filled
    assert names.long_names('=NPL_JUDICIAL_MONTHS(Tape[[#This Row];[a]];;"x;;y")', prefix,
                            functions) == \
        f'={prefix}NPL_JUDICIAL_MONTHS(Tape[[#This Row];[a]];"";"x;;y")'
    assert names.long_names("=NPL_NOT_OURS(1;;2)", prefix, functions) == "=NPL_NOT_OURS(1;;2)"
    assert names.short_names(f"{prefix}NPL_BETA_INV(1,2,3)".lower().encode(), prefix) == \
        b"npl_beta_inv(1,2,3)"


def test_short_names_in_a_saved_xlsx(tmp_path):
    prefix = names.long_prefix(spec.SERVICE)
    path = tmp_path / "calc.xlsx"
    sheet = (f'<worksheet><sheetData><row r="1"><c r="A1"><f>{prefix}NPL_BETA_INV(0.5,0.4,0.2)'
             f'</f><v>1</v></c><c r="B1" t="inlineStr"><is><t>{prefix}kept</t></is></c>'
             "</row></sheetData></worksheet>")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
        archive.writestr("xl/workbook.xml", "<workbook/>")
    assert names.short_names_in_xlsx(str(path), prefix)
    with zipfile.ZipFile(path) as archive:
        text = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>NPL_BETA_INV(0.5,0.4,0.2)</f>" in text
    assert f"<t>{prefix}kept</t>" in text  # text cells are data, left alone
    assert not names.short_names_in_xlsx(str(path), prefix)  # nothing left to change


def test_worker_process_answers_like_the_registry():
    """The real worker, over real pipes: calls, blanks as Calc passes them, errors."""
    registry = load_all()
    process = subprocess.Popen([sys.executable, "-P", "-m", "npl_xl_calc.worker", "functions"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        def ask(*message):
            wire.send(process.stdin, message)
            return wire.receive(process.stdout)

        assert ask("ping")[0] == "pong"
        kind, value = ask("call", "NPL_BETA_PARAMS", (0.4, 0.2))
        assert kind == "result" and value == registry["NPL_BETA_PARAMS"](0.4, 0.2)
        _, error = ask("call", "NPL_BETA_PARAMS", (1.4, 0.2))
        assert wire.is_error_value(error) and error[wire.ERROR_KEY] == "#NUM!"
        assert "mean" in error["message"]
        # a blank cell reaches an add-in as 0.0: for a text argument it is the blank it was
        _, months = ask("call", "NPL_JUDICIAL_MONTHS", ("广东", 0.0))
        assert months == registry["NPL_JUDICIAL_MONTHS"]("广东", None)
        _, unknown = ask("call", "NPL_NO_SUCH", ())
        assert unknown[wire.ERROR_KEY] == "#NAME?"
        # a range as Calc passes it: tuples of rows, "" for a blank cell inside
        _, fit = ask("call", "NPL_BETA_FIT", (((0.2,), (0.4,), ("",), (0.6,)), "MOM"))
        assert fit == registry["NPL_BETA_FIT"]([[0.2], [0.4], [""], [0.6]], "MOM")
    finally:
        process.stdin.close()
        assert process.wait(timeout=60) == 0


def test_install_without_libreoffice_is_a_dry_run(tmp_path, monkeypatch, capsys):
    from npl_xl.cli import main_cli
    from npl_xl_calc import office

    monkeypatch.setattr(office, "soffice_path", lambda: None)
    monkeypatch.setattr(office, "unoidl_write", lambda: None)
    assert main_cli(["install", "--libreoffice", "--build-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "dry run (no LibreOffice (soffice) on this machine)" in out
    assert "would add" in out and not list(tmp_path.iterdir())


@pytest.mark.libreoffice
def test_install_upgrade_and_uninstall_in_a_profile(live_calc, tmp_path, capsys):
    """The extension manager steps behind ``npl-xl install --libreoffice --profile``."""
    from npl_xl.cli import main_cli
    from npl_xl_calc import office

    oxt = live_calc.root / "build" / office.OXT_NAME  # built by the session's install
    profile = tmp_path / "profile"
    with office.HeadlessOffice(profile) as running:
        assert running.call("add_extension", path=str(oxt)) == "installed"
        assert running.call("add_extension", path=str(oxt)) == "upgraded"
        assert running.call("extensions").count(office.EXTENSION_ID) == 1
    assert main_cli(["install", "--libreoffice", "--profile", str(profile), "--uninstall"]) == 0
    assert "removed" in capsys.readouterr().out
    with office.HeadlessOffice(profile) as running:
        assert office.EXTENSION_ID not in running.call("extensions")
