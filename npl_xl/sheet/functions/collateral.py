"""Collateral worksheet functions: NPL_COMPS_VALUE, NPL_AUCTION_VALUE, NPL_NET_RECOVERY."""

from __future__ import annotations

from npl_xl.model import collateral
from npl_xl.sheet.convert import is_blank, rows_of, to_bool
from npl_xl.inputs.assumptions import from_argument
from npl_xl.sheet.registry import Arg, worksheet_function
from npl_xl.sheet.functions.timeline import ASSUMPTIONS_ARG


def _flags(value):
    """The judicial argument: one TRUE/FALSE or a range of them (blank cells = TRUE)."""
    if value is None:
        return None
    return [True if is_blank(c) else to_bool(c, "judicial") for row in rows_of(value) for c in row]


@worksheet_function(
    "NPL_COMPS_VALUE",
    Arg("area", "number", doc="Floor area of the subject property (m², or the unit the prices use), > 0"),
    Arg("prices", "vector", doc="Unit prices of the k comparables (currency per unit area), > 0"),
    Arg("factors", "matrix", doc="k x m correction coefficients, one row per comparable (1.03 = comparable 3% too cheap)"),
    Arg("weights", "vector", default=None, doc="k weights of the comparables, >= 0; blank = equal"),
    Arg("judicial", "any", default=None, doc="TRUE if the comparable sold at a court auction (one flag or k flags); blank = TRUE"),
    Arg("market_discount", "number", default=0.0, doc="Discount applied to open-market (judicial FALSE) comparables, decimal in [0, 1); default 0"),
    shape="1x2: unit_value, value",
    zh="市场比较法估值：修正后可比案例单价的加权平均（单价）及单价×面积（总价）",
)
def comps_value(area, prices, factors, weights, judicial, market_discount):
    """Comparable-sales value of a property: unit_value (weighted mean of adjusted comparable prices) and value = unit_value x area."""
    return [list(collateral.comps_value(area, prices, factors, weights, _flags(judicial), market_discount))]


@worksheet_function(
    "NPL_AUCTION_VALUE",
    Arg("appraisal", "number", doc="Appraisal or reference price of the property (currency), >= 0"),
    Arg("start_ratio", "number", default=collateral.MIN_START_RATIO, doc="Round-1 start price / appraisal, decimal >= 0.70; default 0.70 (the loan valuation uses the AuctionLadder table's start_ratio, 0.75 for residential)"),
    Arg("cut", "number", default=collateral.MAX_CUT, doc="Cut of the start price for round 2, decimal in [0, 0.20]; default 0.20"),
    Arg("p_sell", "vector", default=None, doc="1x3 probabilities of a sale in rounds 1-3 given earlier rounds failed; blank = assumptions"),
    Arg("premium", "vector", default=None, doc="1x3 average hammer premium over each round's start, decimal >= 0; blank = assumptions"),
    Arg("in_lieu", "bool", default=True, doc="TRUE (default): unsold property taken in kind at the round-2 start; FALSE: valued at 0"),
    Arg("collateral_type", "text", default=None, doc="Segment of the default ladder: residential (default), commercial, industrial, land, other"),
    Arg("province", "text", default=None, doc="Province (浙江, Zhejiang, ZJ) for the default ladder and durations; blank = tier B"),
    ASSUMPTIONS_ARG,
    shape="1x4: expected_proceeds, p_sold, expected_round, expected_months",
    zh="司法网络拍卖（一拍、二拍、变卖、以物抵债）的预期结果：预期成交额、成交概率、预期轮次、预期月数",
)
def auction_value(appraisal, start_ratio, cut, p_sell, premium, in_lieu, collateral_type, province,
                  assumptions):
    """Expected outcome of the online judicial auction ladder: expected_proceeds, p_sold, expected_round, expected_months."""
    return [collateral.auction_value(appraisal, start_ratio, cut, p_sell, premium, in_lieu,
                                     collateral_type, province, from_argument(assumptions)).as_row()]


@worksheet_function(
    "NPL_NET_RECOVERY",
    Arg("proceeds", "number", doc="Gross proceeds of the collateral (currency), >= 0"),
    Arg("claim", "number", doc="The lender's claim (currency), >= 0: the recovery cap"),
    Arg("prior_claims", "number", default=0.0, doc="Claims paid before this lender from the proceeds (currency); default 0"),
    Arg("cost_rate", "number", default=None, doc="Disposal costs, decimal of proceeds in [0, 1); blank = assumptions (residential 4%)"),
    Arg("deduction", "number", default=0.0, doc="Deductions (sole-residence rent, lease haircut) in currency; default 0"),
    Arg("collateral_type", "text", default=None, doc="Type whose default cost_rate applies when cost_rate is blank; default residential"),
    ASSUMPTIONS_ARG,
    zh="抵押物处置净回收：min(债权, max(0, 处置收入×(1−处置费率)−优先债权−扣减))",
)
def net_recovery(proceeds, claim, prior_claims, cost_rate, deduction, collateral_type, assumptions):
    """Net recovery to the lender: min(claim, max(0, proceeds x (1 - cost_rate) - prior_claims - deduction))."""
    return collateral.net_recovery(proceeds, claim, prior_claims, cost_rate, deduction,
                                   collateral_type, from_argument(assumptions))
