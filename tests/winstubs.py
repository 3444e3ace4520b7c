"""Load xlwings' Windows UDF machinery on Linux, with pywin32 replaced by stand-ins.

xlwings' decorators do nothing off Windows, so the code that really runs in Excel
(``xlwings.udfs``: the decorators that record argument options, the VBA wrapper writer,
and ``xlwings._xlwindows``' value cleaning used by ``call_udf``) only loads when pywin32
and the Windows parts of ctypes exist. These stand-ins are just enough for those modules
to import; nothing here pretends to be Excel. What is verified with them is what xlwings
itself does with our functions: the metadata, the generated VBA, and the conversion
pipelines for arguments and results.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import sys
import types

WIN_MODULES = ["pywintypes", "pythoncom", "win32api", "win32con", "win32gui", "win32process",
               "win32timezone", "win32com", "win32com.client", "win32com.client.dynamic",
               "win32com.client.gencache", "win32com.server", "win32com.server.util",
               "win32com.server.dispatcher"]


class Anything:
    """Any pywin32 object: attributes, calls and subclassing all work and do nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return Anything()

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return Anything()

    def __mro_entries__(self, bases):
        return (object,)


class VARIANT:
    """Same constructor as ``win32com.client.VARIANT(varianttype, value)``."""

    def __init__(self, varianttype, value):
        self.varianttype = varianttype
        self.value = value

    def __repr__(self):
        return f"VARIANT({self.varianttype}, {self.value})"


VT_ERROR = 10  # pythoncom.VT_ERROR (wtypes.h)


@contextlib.contextmanager
def windows_xlwings(monkeypatch):
    """Yield ``(xlwings.udfs, npl_xl_udfs)`` decorated by xlwings' real Windows decorators."""
    for name in WIN_MODULES:
        module = types.ModuleType(name)
        module.__getattr__ = lambda attr: Anything()
        monkeypatch.setitem(sys.modules, name, module)
    sys.modules["pythoncom"].VT_ERROR = VT_ERROR
    sys.modules["pywintypes"].TimeType = type("TimeType", (), {})
    sys.modules["pywintypes"].com_error = type("com_error", (Exception,), {})
    sys.modules["win32com.client"].VARIANT = VARIANT
    sys.modules["win32com"].client = sys.modules["win32com.client"]
    for attr in ("windll", "oledll"):
        monkeypatch.setattr(ctypes, attr, Anything(), raising=False)
    monkeypatch.setattr(ctypes, "PyDLL", Anything)  # _xlwindows loads pythoncom's DLL
    for name in ("xlwings._xlwindows", "xlwings.udfs"):
        sys.modules.pop(name, None)
    import xlwings

    win = importlib.import_module("xlwings._xlwindows")
    udfs = importlib.import_module("xlwings.udfs")
    if "excel" not in [engine.name for engine in xlwings.engines]:
        xlwings.engines.add(xlwings.main.Engine(impl=win.engine))
    monkeypatch.setattr(xlwings, "func", udfs.xlfunc)
    monkeypatch.setattr(xlwings, "arg", udfs.xlarg)
    monkeypatch.setattr(xlwings, "ret", udfs.xlret)
    import npl_xl_udfs

    layer = importlib.reload(npl_xl_udfs)
    try:
        yield udfs, layer
    finally:
        for name in ("xlwings._xlwindows", "xlwings.udfs"):
            sys.modules.pop(name, None)
        engines = xlwings.engines
        if "excel" in engines.engines_by_name:
            engines.engines.remove(engines.engines_by_name.pop("excel"))
        monkeypatch.undo()
        importlib.reload(npl_xl_udfs)
