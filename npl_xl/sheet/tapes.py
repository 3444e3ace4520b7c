"""The tape arguments of the worksheet functions, read and valued in one call.

Every function that values a tape (NPL_STRAT, NPL_TRANCHE_EL, NPL_BID_PRICE, and the
analysis and surveillance functions) takes the same trailing optional ``collateral`` and
``guarantees`` ranges (the Collateral and Guarantees tables with their header rows; names
CollateralTable, GuaranteeTable) and calls :func:`valued_tape` or :func:`tape_pool`, so
that all of them read and value a tape the same way.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from npl_xl.engine.pool import Pool, pool_from_tape
from npl_xl.inputs.assumptions import from_argument
from npl_xl.inputs.tape import read_tables
from npl_xl.model.loans import value_tape
from npl_xl.sheet.registry import Arg

__all__ = ["COLLATERAL_ARG", "GUARANTEES_ARG", "read_tables", "valued_tape", "tape_pool"]  # read_tables re-exported

COLLATERAL_ARG = Arg("collateral", "table", default=None,
                     doc="Optional: the Collateral table with its header row (CollateralTable): "
                         "collateral_id, loan_ids, collateral_type, province, collateral_value "
                         "(currency), lien_rank, prior_claims, stage, defects; blank = each loan's "
                         "Tape collateral")
GUARANTEES_ARG = Arg("guarantees", "table", default=None,
                     doc="Optional: the Guarantees table with its header row (GuaranteeTable): "
                         "guarantor, loan_ids, expected_recovery (currency); blank = none")


def valued_tape(tape: Any, assumptions: Any = None, collateral: Any = None, guarantees: Any = None,
                settings: Any = None) -> pd.DataFrame:
    """The valued tape (:func:`npl_xl.model.loans.value_tape`) from the worksheet arguments:
    tape, assumptions, collateral and guarantees ranges as the registry passes them (lists
    of rows; blank = None) or frames; settings for money_unit and appraisal ageing."""
    frames = read_tables(tape, collateral, guarantees, settings)
    table = assumptions if assumptions is None or not isinstance(assumptions, list) else from_argument(assumptions)
    return value_tape(frames[0], table, frames[1], frames[2])


def tape_pool(tape: Any, assumptions: Any = None, collateral: Any = None, guarantees: Any = None,
              settings: Any = None) -> Pool:
    """The engine's :class:`~npl_xl.engine.pool.Pool` of :func:`valued_tape`
    (:func:`npl_xl.engine.pool.pool_from_tape`)."""
    return pool_from_tape(tape, assumptions, collateral, guarantees, settings)
