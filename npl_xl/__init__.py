"""npl-xl: pricing non-performing loans and NPL ABS from a spreadsheet, or from Python.

The names below are the package's Python API, for the analyst who works in a notebook; the
same core serves the worksheet functions (:mod:`npl_xl.sheet.functions`, through xlwings
and the headless recalculation) and the ribbon's macros. Units: money in the tape's
currency, rates and shares as decimals (0.05 = 5%), IRRs effective annual, times in months
unless a name says years (WAL).

==========================  ===============================================================
reading and valuing a tape  :func:`read_tape`, :func:`value_tape`, :func:`loan_recovery`
the pool                    :func:`pool_from_tape`, :func:`pool_from_frame`, :class:`Pool`
the deal                    :func:`parse_tranches`, :func:`parse_settings`,
                            :class:`DealSettings`, :data:`SETTINGS`
simulation                  :func:`simulate_deal` -> :class:`DealResult`,
                            :func:`simulate_collections`
the waterfall               :func:`waterfall_table`
bid pricing                 :func:`bid_price` -> :class:`BidResult`, :func:`bid_collections`,
                            :func:`price_from_collections`
rating                      :func:`rating_from_el`, :func:`idealized_el`
stratification              :func:`stratify`
income-right transfers      :func:`rights_split`
assumptions                 :class:`Assumptions`
recovery rates              :func:`beta_params`, :func:`fit_beta`, :func:`beta_inv`,
                            :func:`beta_dist`, :func:`beta_draws`
collateral and timelines    :func:`auction_value`, :func:`comps_value`, :func:`net_recovery`,
                            :func:`case_of`, :func:`judicial_months`
errors                      :class:`NplError` and its subclasses, :class:`XlError`
==========================  ===============================================================

``import npl_xl`` is quick: each name is imported on first use (numba, scipy and pandas
load then).

Examples
--------
A two-loan tape through the whole chain:

>>> import npl_xl
>>> tape = [["loan_id", "claim", "province", "collateral_type", "collateral_value", "stage"],
...         ["L1", 1_000_000, "浙江", "住宅", 1_500_000, "auction_1"],
...         ["L2", 400_000, "Jiangsu", "none", None, "judgment"]]
>>> pool = npl_xl.pool_from_tape(tape)
>>> pool.n_loans, pool.total_claim
(2, 1400000.0)
>>> tranches = [["name", "kind", "balance", "coupon"],
...             ["优先A", "senior", 500_000, 0.03], ["次级", "subordinated", 300_000, 0.0]]
>>> result = npl_xl.simulate_deal(pool, tranches, n_sims=400, seed=7)
>>> result.contract_table()["name"].tolist()
['优先A', '次级']
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first use).
_EXPORTS = {
    # inputs
    "read_tape": "npl_xl.inputs.tape",
    "Assumptions": "npl_xl.inputs.assumptions",
    "parse_tranches": "npl_xl.inputs.deal", "parse_settings": "npl_xl.inputs.deal",
    "Tranche": "npl_xl.inputs.deal", "Tranches": "npl_xl.inputs.deal",
    "DealSettings": "npl_xl.inputs.deal", "SETTINGS": "npl_xl.inputs.deal",
    # model
    "value_tape": "npl_xl.model.loans", "loan_recovery": "npl_xl.model.loans",
    "LoanValue": "npl_xl.model.loans",
    "rating_from_el": "npl_xl.model.rating", "idealized_el": "npl_xl.model.rating",
    "BetaFit": "npl_xl.model.beta", "beta_dist": "npl_xl.model.beta",
    "beta_draws": "npl_xl.model.beta", "beta_inv": "npl_xl.model.beta",
    "beta_params": "npl_xl.model.beta", "fit_beta": "npl_xl.model.beta",
    "auction_value": "npl_xl.model.collateral", "comps_value": "npl_xl.model.collateral",
    "net_recovery": "npl_xl.model.collateral",
    "case_of": "npl_xl.model.timeline", "judicial_months": "npl_xl.model.timeline",
    # engine
    "Pool": "npl_xl.engine.pool", "pool_from_tape": "npl_xl.engine.pool",
    "pool_from_frame": "npl_xl.engine.pool",
    "simulate_deal": "npl_xl.engine.simulate", "simulate_collections": "npl_xl.engine.simulate",
    "DealResult": "npl_xl.engine.simulate",
    # analysis
    "waterfall_table": "npl_xl.analysis.cashflows",
    "bid_price": "npl_xl.analysis.pricing", "bid_collections": "npl_xl.analysis.pricing",
    "price_from_collections": "npl_xl.analysis.pricing", "BidResult": "npl_xl.analysis.pricing",
    "stratify": "npl_xl.analysis.strat",
    "rights_split": "npl_xl.analysis.rights",
    # errors
    "NplError": "npl_xl.errors", "InputTypeError": "npl_xl.errors",
    "DomainError": "npl_xl.errors", "UnknownCodeError": "npl_xl.errors",
    "ConvergenceError": "npl_xl.errors", "TableError": "npl_xl.errors",
    "XlError": "npl_xl.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'npl_xl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
