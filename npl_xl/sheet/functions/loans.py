"""Loan and pool worksheet functions: NPL_LOAN_RECOVERY, NPL_STRAT."""

from __future__ import annotations

from npl_xl.model import loans
from npl_xl.analysis import strat
from npl_xl.sheet.tapes import COLLATERAL_ARG, GUARANTEES_ARG, read_tables
from npl_xl.inputs.assumptions import from_argument
from npl_xl.sheet.registry import Arg, worksheet_function
from npl_xl.sheet.functions.timeline import ASSUMPTIONS_ARG


@worksheet_function(
    "NPL_LOAN_RECOVERY",
    Arg("claim", "number", doc="Outstanding principal + interest + fees (currency), > 0"),
    Arg("collateral_value", "number", default=None, doc="Latest appraisal of the collateral (currency); required unless collateral_type is none"),
    Arg("collateral_type", "text", default=None, doc="residential, commercial, industrial, land, other, none; blank = residential if a value is given, else none"),
    Arg("province", "text", default=None, doc="Province of the collateral (or borrower if unsecured); blank = tier B"),
    Arg("stage", "text", default=None, doc="Current disposal stage; blank = not_filed"),
    Arg("defects", "codes", default=(), doc="Legal defects: waiting_seizure, pre_registration, sole_residence, lease, debtor_missing, criminal, bankruptcy"),
    Arg("borrower", "number", default=0.0, doc="Expected recovery from the borrower (currency, undiscounted); default 0"),
    Arg("guarantor", "number", default=0.0, doc="Expected recovery from guarantors (currency, undiscounted); default 0"),
    Arg("other", "number", default=0.0, doc="Other expected recoveries (currency, undiscounted); default 0"),
    Arg("prior_claims", "number", default=0.0, doc="Claims paid before this lender from the collateral (currency); default 0"),
    Arg("lien_rank", "integer", default=1, doc="Lien rank, 1 = first (default)"),
    ASSUMPTIONS_ARG,
    shape="1x3: expected_recovery, expected_months, recovery_sd",
    zh="单户贷款尽调估值：预期回收金额（以债权为上限）、预期回收月数、回收率标准差",
)
def loan_recovery(claim, collateral_value, collateral_type, province, stage, defects, borrower,
                  guarantor, other, prior_claims, lien_rank, assumptions):
    """Due-diligence valuation of one loan: expected recovery (capped at the claim), expected months and recovery-rate sd."""
    return [loans.loan_recovery(claim, collateral_value, collateral_type, province, stage, defects,
                                borrower, guarantor, other, prior_claims, lien_rank,
                                from_argument(assumptions)).as_row()]


@worksheet_function(
    "NPL_STRAT",
    Arg("tape", "table", doc="The loan tape with its header row (LoanTape)"),
    Arg("by", "text", doc="Tape column to group by (English or Chinese header), or balance, region_tier, difficulty"),
    Arg("measure", "text", default="claim", doc="Numeric column summed per group; default claim"),
    ASSUMPTIONS_ARG, COLLATERAL_ARG, GUARANTEES_ARG,
    shape="header + one row per group: group, count, sum, share",
    zh="资产池分层统计：每组的笔数、指标合计及占比",
)
def stratify(tape, by, measure, assumptions, collateral, guarantees):
    """Pool stratification: one row per group with the count of loans, the sum of the measure and its share."""
    frames = read_tables(tape, collateral, guarantees)
    return strat.stratify(frames[0], by, measure, from_argument(assumptions), frames[1], frames[2])
