"""Worksheet-function declarations, one module per domain.

Importing this package registers every function in :data:`npl_xl.sheet.registry.REGISTRY`.
Each module only declares: it converts nothing and computes nothing itself, but calls the
core modules (``npl_xl.model.beta``, ...) and shapes their results into the contract's rows.
To add a worksheet function, declare it in the module of its domain; the xlwings layer,
the headless engine and the docs pick it up from the registry.
"""

import importlib

#: Modules that declare worksheet functions, in the order the function wizard lists them.
MODULES = ["recovery", "collateral", "timeline", "loans", "structures", "analysis", "surveillance"]

for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")
