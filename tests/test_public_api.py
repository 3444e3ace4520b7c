"""The curated Python API: the names ``npl_xl`` exports, their docs, and a quick import.

Adding a name to the API is a decision: add it to npl_xl._EXPORTS and to PUBLIC below, with
an Examples section in its docstring (run by tests/test_doctests.py).
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import npl_xl

PUBLIC = sorted("""
    Assumptions BetaFit BidResult ConvergenceError DealResult DealSettings DomainError
    InputTypeError LoanValue NplError Pool SETTINGS TableError Tranche Tranches
    UnknownCodeError XlError auction_value beta_dist beta_draws beta_inv beta_params
    bid_collections bid_price case_of comps_value fit_beta idealized_el judicial_months
    loan_recovery net_recovery parse_settings parse_tranches pool_from_frame pool_from_tape
    price_from_collections rating_from_el read_tape rights_split simulate_collections
    simulate_deal stratify value_tape waterfall_table
""".split()) + ["__version__"]


def test_the_exported_names_are_pinned():
    assert npl_xl.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(npl_xl, name) is not None, name
    assert set(PUBLIC) <= set(dir(npl_xl))


def test_each_name_is_the_defining_modules_object():
    # one object per name: npl_xl.simulate_deal is npl_xl.engine.simulate.simulate_deal
    from npl_xl.engine.simulate import simulate_deal
    from npl_xl.errors import TableError

    assert npl_xl.simulate_deal is simulate_deal and npl_xl.TableError is TableError
    try:
        npl_xl.no_such_name
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_every_exported_function_and_class_has_a_running_example():
    missing = []
    for name in PUBLIC:
        value = getattr(npl_xl, name)
        if name.startswith("__") or not (inspect.isfunction(value) or inspect.isclass(value)):
            continue
        if name == "XlError" or inspect.isclass(value) and issubclass(value, Exception):
            continue  # errors and error values: documented by the functions that raise them
        if name in ("BetaFit", "BidResult", "DealResult", "LoanValue", "Pool", "Tranche",
                    "Tranches", "DealSettings"):
            continue  # results and records: shown by the examples of what returns them
        if ">>> " not in (value.__doc__ or "") or "Examples\n" not in value.__doc__:
            missing.append(name)
    assert not missing, f"no Examples section: {missing}"


def test_import_is_quick_and_loads_no_numerics():
    # `import npl_xl` must not pull in numba, scipy or pandas (each name loads on first use)
    code = ("import sys, npl_xl; heavy = [m for m in ('numba', 'scipy', 'pandas', 'numpy') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", out
