"""Judicial-timeline worksheet functions: NPL_JUDICIAL_MONTHS, NPL_JUDICIAL_SCHEDULE."""

from __future__ import annotations

from npl_xl.model import timeline
from npl_xl.inputs.assumptions import from_argument
from npl_xl.sheet.registry import Arg, worksheet_function

#: The optional assumptions argument shared by the collateral, timeline and loan functions.
ASSUMPTIONS_ARG = Arg("assumptions", "table", default=None, doc="Optional: an assumption table with its header row (StageDurations, Defects, AuctionLadder, ...), or the Assumptions sheet's block of tables (AssumptionTables); blank = packaged defaults")

_ARGS = (
    Arg("province", "text", doc="Province of the court (浙江, 浙江省, Zhejiang, ZJ)"),
    Arg("stage", "text", default=None, doc="Current stage: not_filed (default), filed, judgment, enforcement, appraisal, auction_1, auction_2, sale, in_lieu, distribution (or 未诉, 一拍...)"),
    Arg("collateral_type", "text", default=None, doc="residential (default), commercial, industrial, land, other, none (unsecured)"),
    Arg("defects", "codes", default=(), doc="Comma-separated list or range: waiting_seizure, pre_registration, sole_residence, lease, debtor_missing, criminal, bankruptcy"),
    ASSUMPTIONS_ARG,
)


def _case(province, stage, collateral_type, defects, assumptions):
    a = from_argument(assumptions)
    return timeline.case_of(province, stage, collateral_type, defects, a), a


@worksheet_function("NPL_JUDICIAL_MONTHS", *_ARGS, zh="从当前诉讼阶段到司法处置回款的预期月数")
def judicial_months(province, stage, collateral_type, defects, assumptions):
    """Expected months from the current stage until cash is distributed, for a claim disposed of through the courts."""
    case, a = _case(province, stage, collateral_type, defects, assumptions)
    return timeline.judicial_months(case, a)


@worksheet_function("NPL_JUDICIAL_SCHEDULE", *_ARGS, shape="nx3: stage, start_month, end_month", zh="此后各司法阶段及其预期起止月份；最后的结束月等于NPL_JUDICIAL_MONTHS")
def judicial_schedule(province, stage, collateral_type, defects, assumptions):
    """The stages ahead with expected start and end months; the last end_month equals NPL_JUDICIAL_MONTHS."""
    case, a = _case(province, stage, collateral_type, defects, assumptions)
    return [list(row) for row in timeline.judicial_schedule(case, a)]
