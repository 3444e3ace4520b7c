"""npl-xl: pricing non-performing loans and NPL ABS from a spreadsheet.

The core (this package) never imports Excel. Worksheet functions are declared once in
:mod:`npl_xl.sheet.functions` and served both by the xlwings layer (``npl_xl_udfs``) and by the
headless recalculation engine (:mod:`npl_xl.recalc`).
"""

from npl_xl.model.beta import BetaFit, beta_dist, beta_draws, beta_inv, beta_params, fit_beta
from npl_xl.errors import (ConvergenceError, DomainError, InputTypeError, NplError, TableError,
    UnknownCodeError, XlError)

__version__ = "0.1.0"

__all__ = [
    "BetaFit", "beta_dist", "beta_draws", "beta_inv", "beta_params", "fit_beta",
    "NplError", "InputTypeError", "DomainError", "UnknownCodeError", "ConvergenceError",
    "TableError", "XlError", "__version__",
]
