"""The xlwings layer: every registry function as a UDF, checked through xlwings' own code.

Excel itself is not available here. What these tests establish is everything short of it:
the functions xlwings would register (names, argument names and docs, optional arguments,
category), the VBA that xlwings' *Import Functions* writes for the whole module, the
argument and result conversions xlwings applies in ``call_udf``, and that errors leave the
layer as COM VT_ERROR variants. That Excel shows such a variant as #N/A etc. is the
documented COM behaviour (a VBA function returning CVErr(xlErrNA)), verified only by
construction.
"""

from __future__ import annotations

import io
import re
import types

import pytest

from npl_xl.sheet.registry import load_all
from winstubs import VT_ERROR, VARIANT, windows_xlwings

REGISTRY = load_all()

# VBA keywords that cannot name a parameter (MS-VBAL 3.3.5.2 reserved identifiers)
VBA_RESERVED = {
    "and", "as", "boolean", "byref", "byte", "byval", "call", "case", "const", "currency",
    "date", "declare", "dim", "do", "double", "each", "else", "elseif", "empty", "end",
    "enum", "eqv", "erase", "error", "event", "exit", "false", "for", "friend", "function",
    "get", "global", "gosub", "goto", "if", "imp", "implements", "in", "integer", "is",
    "let", "like", "long", "loop", "lset", "me", "mod", "new", "next", "not", "nothing",
    "null", "on", "option", "optional", "or", "paramarray", "preserve", "private",
    "public", "raiseevent", "redim", "rem", "resume", "return", "rset", "select", "set",
    "single", "static", "step", "stop", "string", "sub", "then", "to", "true", "type",
    "typeof", "until", "variant", "wend", "while", "with", "withevents", "xor", "date",
    "object", "decimal", "longlong", "longptr", "attribute", "begin", "version",
}


@pytest.fixture()
def win(monkeypatch):
    with windows_xlwings(monkeypatch) as pair:
        yield pair


def generated_vba(xlwings_udfs, layer) -> str:
    buffer = io.StringIO()
    workbook = types.SimpleNamespace(Name="npl_template.xlsm")
    xlwings_udfs.generate_vba_wrapper("npl_xl_udfs", layer, buffer, workbook)
    return buffer.getvalue()


def vba_functions(vba: str) -> dict[str, list[str]]:
    """Function name -> its parameter declarations, from VBA source."""
    found = {}
    for match in re.finditer(r"^Function (\w+)\(([^)]*)\)", vba, flags=re.M):
        params = [p.strip() for p in match.group(2).split(",") if p.strip()]
        found[match.group(1)] = params
    return found


def test_every_registry_function_is_exported_with_its_signature():
    import inspect

    import npl_xl_udfs

    for name, function in REGISTRY.items():
        udf = getattr(npl_xl_udfs, name)
        params = list(inspect.signature(udf).parameters.values())
        assert [p.name for p in params] == [a.name for a in function.args] + ["caller"]
        for param, arg in zip(params, function.args):
            assert (param.default is inspect.Parameter.empty) == arg.required, (name, arg.name)
        assert udf.__doc__ and len(udf.__doc__) <= 255


def test_xlwings_metadata(win):
    _, layer = win
    for name, function in REGISTRY.items():
        info = getattr(layer, name).__xlfunc__
        assert info["name"] == name
        assert info["category"] == "NPL"
        assert info["volatile"] is False  # Monte Carlo is seeded, never volatile
        assert [a["name"] for a in info["args"]] == [a.name for a in function.args] + ["caller"]
        for meta, arg in zip(info["args"], function.args):
            assert ("optional" in meta) == (not arg.required), (name, arg.name)
            assert meta["options"]["err_to_str"] is True
            assert meta["doc"] and len(meta["doc"]) <= 255
            ranged = arg.kind in {"vector", "matrix", "table", "codes"}
            assert meta["options"].get("ndim") == (2 if ranged else None), (name, arg.name)


def test_generated_vba_declares_every_function_legally(win):
    vba = generated_vba(*win)
    functions = vba_functions(vba)
    assert set(functions) == set(REGISTRY), "every function, nothing else"
    for name, params in functions.items():
        spec = REGISTRY[name].args
        assert len(params) == len(spec)
        for declared, arg in zip(params, spec):
            words = declared.split()
            assert words[-1] == arg.name
            assert (words[0] == "Optional") == (not arg.required), (name, declared)
            assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,254}", arg.name)
            assert arg.name.lower() not in VBA_RESERVED, (name, arg.name)
        # VBA: once an argument is Optional, every later one must be too
        flags = [p.startswith("Optional") for p in params]
        assert flags == sorted(flags), name
        call_args = ", ".join([a.name for a in spec] + ["Nothing"])
        assert f'XLPy.CallUDF("npl_xl_udfs", "{name}", Array({call_args}), ' in vba
    assert len(re.findall(r"^End Function$", vba, flags=re.M)) == len(REGISTRY)
    assert all(len(line) <= 1023 for line in vba.splitlines())


def call_like_excel(xlwings_udfs, layer, name, *values):
    """What ``xlwings.udfs.call_udf`` does around a call, minus COM: convert each argument
    with the function's recorded options, call, convert the result for Excel."""
    from xlwings import conversion

    func = getattr(layer, name)
    info = func.__xlfunc__
    args = []
    for i, value in enumerate(values):
        meta = info["args"][i]
        if value is MISSING:
            args.append(meta.get("optional"))
        else:
            args.append(conversion.read(None, value, meta["options"]))
    return conversion.write(func(*args), None, info["ret"]["options"])


MISSING = object()
NA = -2146826246  # how COM hands Excel's #N/A to Python (xlwings' cell_errors)


def test_values_round_trip_through_xlwings_conversion(win):
    result = call_like_excel(*win, "NPL_BETA_PARAMS", 0.4, 0.2)
    assert result == [[pytest.approx(2.0), pytest.approx(3.0)]]
    # a column range as COM delivers it: a tuple of row tuples, blanks as None
    data = ((0.1,), (None,), (0.3,), (0.0,), (0.55,), (1.0,))
    fit = call_like_excel(*win, "NPL_BETA_FIT", data, MISSING, MISSING)
    assert len(fit) == 1 and len(fit[0]) == 6 and fit[0][5] == 3.0
    draws = call_like_excel(*win, "NPL_BETA_DRAWS", 0.3, 0.1, 4.0, MISSING, True)
    assert len(draws) == 4 and all(len(row) == 1 and row[0] <= 0.3 for row in draws)


def test_errors_reach_excel_as_vt_error_variants(win):
    bad = call_like_excel(*win, "NPL_BETA_PARAMS", 1.4, 0.2)
    cell = bad[0][0] if isinstance(bad, list) else bad
    assert isinstance(cell, VARIANT)
    assert cell.varianttype == VT_ERROR and cell.value == -2146826252  # #NUM!
    unknown = call_like_excel(*win, "NPL_BETA_FIT", ((0.2,), (0.4,)), "median", MISSING)
    cell = unknown[0][0] if isinstance(unknown, list) else unknown
    assert cell.value == NA  # unknown code: #N/A
    # an error cell as an argument propagates as the same error
    propagated = call_like_excel(*win, "NPL_BETA_INV", NA, 0.4, 0.2)
    cell = propagated[0][0] if isinstance(propagated, list) else propagated
    assert cell.value == NA


def test_scodes_match_xlwings_reading_of_error_cells():
    """The SCODEs we send are the ones xlwings decodes when Excel sends errors to Python."""
    import ast
    import importlib.util
    import pathlib

    import npl_xl_udfs

    # read xlwings._xlwindows as text: importing it needs Windows
    source = pathlib.Path(importlib.util.find_spec("xlwings._xlwindows").origin).read_text()
    block = source[source.index("cell_errors = {"):]
    block = block[:block.index("}") + 1].split("=", 1)[1]
    xlwings_codes = {v: k for k, v in ast.literal_eval(block.strip()).items()}
    assert npl_xl_udfs.EXCEL_ERROR_SCODES == xlwings_codes


def test_error_messages_are_kept_for_explain_error():
    import npl_xl_udfs

    caller = types.SimpleNamespace(address="$C$4:$D$4", sheet=types.SimpleNamespace(
        name="Calc", book=types.SimpleNamespace(name="deal.xlsx")))
    npl_xl_udfs.NPL_BETA_PARAMS(0.4, 0.9, caller)
    assert npl_xl_udfs.explain("deal.xlsx", "Calc", "D4").startswith("#NUM! sd:")
    assert npl_xl_udfs.explain("deal.xlsx", "Calc", "$C$4").startswith("#NUM! sd:")
    assert npl_xl_udfs.explain("deal.xlsx", "Calc", "E4") is None
    assert npl_xl_udfs.explain("other.xlsx", "Calc", "C4") is None
    npl_xl_udfs.NPL_BETA_PARAMS(0.4, 0.2, caller)  # a good result records nothing
    assert npl_xl_udfs.explain("deal.xlsx", "Calc", "C4").startswith("#NUM! sd:")


def test_every_udf_answers_blank_and_text_cells_with_an_error_variant(win):
    """Each function, through xlwings' argument pipeline, given all-blank cells and then text
    in every argument: an error value comes back (never an exception, never a number)."""
    for name, function in REGISTRY.items():
        for value in (None, "abc"):
            result = call_like_excel(*win, name, *[value] * len(function.args))
            cells = [c for row in result for c in row] if isinstance(result, list) else [result]
            assert all(isinstance(c, VARIANT) and c.varianttype == VT_ERROR for c in cells), \
                (name, value, result)


# --- the threading async mode of the Monte Carlo functions --------------------------------

MONTE_CARLO = {"NPL_TRANCHE_EL", "NPL_BID_PRICE", "NPL_TRANCHE_SIZE", "NPL_SENSITIVITY",
               "NPL_PRICE_TABLE"}


def test_monte_carlo_udfs_are_declared_async(win):
    _, layer = win
    assert MONTE_CARLO <= {n for n, f in REGISTRY.items() if f.cached}
    for name, function in REGISTRY.items():
        info = getattr(layer, name).__xlfunc__
        assert info["async_mode"] == ("threading" if function.cached else None), name
        assert info["volatile"] is False  # a volatile async UDF would recalculate for ever


def test_the_config_switch_turns_async_off(monkeypatch, tmp_path):
    import xlwings

    import npl_xl_udfs

    conf = tmp_path / "xlwings.conf"
    conf.write_text('"UDF_MODULES","npl_xl_udfs"\n"NPL_ASYNC","False"\n')
    monkeypatch.setattr(xlwings, "USER_CONFIG_FILE", str(conf))
    assert npl_xl_udfs.async_enabled() is False
    with windows_xlwings(monkeypatch) as (_, layer):
        assert all(getattr(layer, n).__xlfunc__["async_mode"] is None for n in REGISTRY)
    assert npl_xl_udfs.async_enabled({"npl_async": "true"}) is True
    assert npl_xl_udfs.async_enabled({}) is True


def test_generated_vba_of_async_functions_hands_over_the_caller(win):
    # xlwings decides sync or async in Python (call_udf); the VBA must pass
    # Application.Caller (without it xlwings' async path returns 0 and never writes back)
    # and must not mark the function volatile
    vba = generated_vba(*win)
    for name in MONTE_CARLO:
        body = vba[vba.index(f"Function {name}("):]
        body = body[:body.index("End Function")]
        assert "Application.Caller)" in body and "Application.Volatile" not in body


def test_latest_request_per_cell_wins(monkeypatch):
    """Two requests for one cell with different arguments (Excel recalculating a lookup
    the cell depends on, xlwings #2218): only the latest is simulated; the same arguments
    twice simulate once."""
    import threading
    import types

    import npl_xl_udfs
    from npl_xl.errors import XlError
    from npl_xl.sheet.registry import Arg, WorksheetFunction

    calls = []

    def slow(x):
        calls.append(x)
        return x * 2.0

    function = WorksheetFunction("NPL_TEST_SLOW", slow, (Arg("x", "number"),), "test",
                                 cached=True)
    caller = types.SimpleNamespace(address="$B$2", sheet=types.SimpleNamespace(
        name="Calc", book=types.SimpleNamespace(name="deal.xlsx")))
    monkeypatch.setattr(npl_xl_udfs, "ASYNC_DEBOUNCE_SECONDS", 0.3)
    results = {}

    def request(x):
        results[x] = npl_xl_udfs.evaluate_async(function, caller, (x,))

    first = threading.Thread(target=request, args=(1.0,))
    first.start()
    import time
    time.sleep(0.05)
    second = threading.Thread(target=request, args=(2.0,))
    second.start()
    first.join()
    second.join()
    assert calls == [2.0] and results[2.0] == 4.0
    assert isinstance(results[1.0], XlError) and "superseded" in results[1.0].message
    # the same arguments again: answered from the cache, no second simulation
    assert npl_xl_udfs.evaluate_async(function, caller, (2.0,)) == 4.0 and calls == [2.0]
