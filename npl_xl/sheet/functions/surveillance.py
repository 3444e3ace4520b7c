"""Surveillance worksheet functions: NPL_ACTUAL_VS_EXPECTED, NPL_REPROJECT (FUNCTIONS.md
"Surveillance"); NPL_TRANCHE_EL's trailing ``collections`` argument is in structures.py."""

from __future__ import annotations

from npl_xl.analysis import surveillance
from npl_xl.sheet.functions.timeline import ASSUMPTIONS_ARG
from npl_xl.sheet.registry import Arg, worksheet_function
from npl_xl.sheet.tapes import COLLATERAL_ARG, GUARANTEES_ARG, valued_tape

__all__ = ["COLLECTIONS_ARG"]

#: The Collections table argument (trailing and optional where it re-projects a deal).
COLLECTIONS_ARG = Arg("collections", "table", default=None,
                      doc="Collections table with header: loan_id, month (or date), amount (currency), resolved (CollectionsTable); blank = none")
_TAPE = Arg("tape", "table", doc="The loan tape with its header row (LoanTape)")
_SETTINGS = Arg("settings", "table", default=None, doc="Two-column Settings table (DealSettings): as_of_months, overdue_months, closing_date, ...; blank = defaults")


@worksheet_function(
    "NPL_ACTUAL_VS_EXPECTED",
    _TAPE, Arg("collections", "table", doc="Collections table with header: loan_id, month (or date), amount (currency), resolved (CollectionsTable)"),
    _SETTINGS, ASSUMPTIONS_ARG, COLLATERAL_ARG, GUARANTEES_ARG,
    shape="header + one row per payment period up to as_of_months: period, month, expected, actual, cumulative_expected_share, cumulative_actual_share, ratio",
    cached=True,
    zh="跟踪：报告日前各支付期的实际回收与发行时预测回收（货币单位）及其占初始未偿本息的累计比例和比值",
)
def actual_vs_expected(tape, collections, settings, assumptions, collateral, guarantees):
    """Collections booked per payment period against the issuance model's expected collections (currency), cumulative shares of the initial claims (decimal) and their ratio, up to the report date as_of_months."""
    return surveillance.actual_vs_expected(
        valued_tape(tape, assumptions, collateral, guarantees, settings), collections, settings)


@worksheet_function(
    "NPL_REPROJECT",
    _TAPE, Arg("collections", "table", doc="Collections table with header: loan_id, month (or date), amount (currency), resolved (CollectionsTable)"),
    _SETTINGS, ASSUMPTIONS_ARG, COLLATERAL_ARG, GUARANTEES_ARG,
    shape="header + one row per loan: loan_id, collected, remaining_expected, remaining_months, status",
    zh="跟踪：逐笔贷款报告日已回收金额、剩余预期回收（货币单位）、剩余回收月数及状态（已结清/未结清）",
)
def reproject(tape, collections, settings, assumptions, collateral, guarantees):
    """Per loan at the report date: collected and remaining expected recovery (currency), months from the report date to its expected recovery, status resolved or open."""
    return surveillance.reproject(
        valued_tape(tape, assumptions, collateral, guarantees, settings), collections, settings)
