"""The deterministic waterfall of one collection vector, as a table (NPL_WATERFALL).

Each period's collections (currency) pay, in order, taxes, fixed expenses, the servicer's
fee, the liquidity facility and reserve account, each tranche's interest and principal
(senior first), the excess servicing fee, and the residual (see
:mod:`npl_xl.engine.waterfall` for the priority of payments). The Monte Carlo engine runs
the same kernel on every simulated path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from npl_xl.checks import Interval, check_each
from npl_xl.engine.waterfall import FLOW_COLUMNS, LEGACY_FLOW_COLUMNS, deterministic_waterfall
from npl_xl.errors import DomainError
from npl_xl.inputs.deal import parse_settings, parse_tranches

__all__ = ["waterfall_table", "in_table_order"]


def in_table_order(frame: pd.DataFrame, tranche_columns) -> pd.DataFrame:
    """The flow columns in NPL_WATERFALL's order: its original columns (they keep their
    places), then the tranches' ``tranche_columns``, then the columns added later (liquidity
    interest and write-off, reserve target, deferred fees, cumulative collections and
    forecast, CCR, trigger states). Used by NPL_WATERFALL and the audit trail."""
    legacy = list(LEGACY_FLOW_COLUMNS)
    added = [c for c in FLOW_COLUMNS if c not in legacy]
    return frame[legacy + list(tranche_columns) + added]


def waterfall_table(collections, tranches, settings=None, forecast=None) -> pd.DataFrame:
    """The waterfall of one vector of period collections.

    Parameters
    ----------
    collections : array_like, shape (n_periods,)
        Pool collections per payment period, currency, >= 0; period k is paid at month
        k x payment_months and the last entry is the final period.
    tranches : Tranches, table rows or DataFrame
        The Tranches table (:func:`npl_xl.inputs.deal.parse_tranches`).
    settings : DealSettings, dict, table rows or None
        The Settings table (:func:`npl_xl.inputs.deal.parse_settings`); None = defaults.
    forecast : array_like, shape (n_periods,), optional
        The issuance forecast of each period's collections (currency): the CCR trigger's
        denominator and the reserve target's next-period collections; None = the
        collections themselves.

    Returns
    -------
    DataFrame
        One row per period: period (1..), month, collections, taxes, fixed_expenses,
        servicer_fee, liquidity_draw, liquidity_repayment, liquidity_balance, reserve_draw,
        reserve_balance, excess_servicing_fee, residual, event_of_default, then for each
        tranche ``<name>_interest``, ``<name>_principal``, ``<name>_balance`` (currency, the
        balance at the end of the period), then liquidity_interest, liquidity_write_off,
        reserve_target, servicer_fee_deferred, deferred_fee_paid, cumulative_collections,
        cumulative_forecast, ccr (blank while nothing was forecast), ccr_breached and
        mezz_subordinated (trigger states, 1 = on).

    Raises
    ------
    DomainError
        ``#NUM!``: no periods, or a negative collection (naming the period).

    Examples
    --------
    Two periods of collections through a senior and a subordinated tranche, no taxes:

    >>> from npl_xl import waterfall_table
    >>> table = waterfall_table([60.0, 70.0],
    ...                         [["name", "kind", "balance", "coupon"],
    ...                          ["A", "senior", 80.0, 0.0], ["B", "subordinated", 40.0, 0.0]],
    ...                         {"tax_rate": 0.0, "reserve_multiple": 0.0})
    >>> table[["period", "month", "A_principal", "B_principal", "residual"]]
       period  month  A_principal  B_principal  residual
    0       1    6.0         60.0          0.0       0.0
    1       2   12.0         20.0         40.0      10.0
    """
    values = np.asarray(collections, dtype=float).ravel()
    if values.size == 0:
        raise DomainError("holds no periods", argument="collections")
    check_each(values, Interval(0.0), "collections", noun="period")
    if forecast is not None:
        forecast = np.asarray(forecast, dtype=float).ravel()
        if forecast.size != values.size:
            raise DomainError(f"must hold {values.size} periods like collections, got "
                              f"{forecast.size}", argument="forecast")
        check_each(forecast, Interval(0.0), "forecast", noun="period")
    deal_settings = parse_settings(settings)
    flows, columns, _, _ = deterministic_waterfall(values, parse_tranches(tranches),
                                                   deal_settings, forecast=forecast)
    frame = in_table_order(pd.DataFrame(flows, columns=columns), columns[len(FLOW_COLUMNS):])
    frame["ccr"] = frame["ccr"].astype(object).where(frame["ccr"].notna(), None)
    frame.insert(0, "month", np.arange(1, len(frame) + 1) * deal_settings.payment_months)
    frame.insert(0, "period", np.arange(1, len(frame) + 1))
    return frame
