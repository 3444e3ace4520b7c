"""Structure worksheet functions: NPL_WATERFALL, NPL_TRANCHE_EL, NPL_RATING, NPL_BID_PRICE,
NPL_RIGHTS_SPLIT."""

from __future__ import annotations

from npl_xl.analysis import pricing, rights, surveillance
from npl_xl.analysis.cashflows import waterfall_table
from npl_xl.inputs.deal import parse_settings
from npl_xl.analysis.convergence import simulate_to_target
from npl_xl.engine.pool import pool_from_tape
from npl_xl.model.rating import rating_from_el
from npl_xl.sheet.registry import Arg, worksheet_function
from npl_xl.sheet.functions.surveillance import COLLECTIONS_ARG
from npl_xl.sheet.tapes import COLLATERAL_ARG, GUARANTEES_ARG, valued_tape
from npl_xl.sheet.functions.timeline import ASSUMPTIONS_ARG

_TAPE = Arg("tape", "table", doc="The loan tape with its header row (LoanTape)")
_TRANCHES = Arg("tranches", "table", doc="Tranches table with header: name, kind, balance, coupon, issue_price (currency, or per 100 of face), optional pari_group and principal (sequential or pro_rata) (TrancheTable)")
_SETTINGS = Arg("settings", "table", default=None, doc="Two-column Settings table of key and value (DealSettings); blank = defaults")
_N_SIMS = Arg("n_sims", "integer", default=None, doc="Monte Carlo paths; blank = the settings' n_sims (default 10,000)")
_SEED = Arg("seed", "integer", default=None, doc="Random seed >= 0; blank = the settings' seed (default 0)")


@worksheet_function(
    "NPL_WATERFALL",
    Arg("collections", "vector", doc="Pool collections per payment period (currency), one row or column"),
    _TRANCHES, _SETTINGS,
    Arg("forecast", "vector", default=None, doc="Issuance forecast of each period's collections (currency), same length; the CCR trigger's denominator and the reserve target's next-period collections; blank = the collections themselves"),
    shape="header + one row per period",
    zh="单一回收路径的确定性现金流瀑布：税费、各档利息本金、储备金、流动性支持、触发状态、超额服务费与剩余收益",
)
def waterfall(collections, tranches, settings, forecast):
    """Deterministic waterfall of one vector of collections: taxes (on gross collections), fees, reserve, each tranche's interest, principal, balance, excess fee, residual; then liquidity interest and write-off, CCR and trigger states (1 = on)."""
    return waterfall_table(collections, tranches, settings, forecast)


@worksheet_function(
    "NPL_TRANCHE_EL",
    _TAPE, _TRANCHES, _SETTINGS, _N_SIMS, _SEED, ASSUMPTIONS_ARG,
    Arg("stderr", "bool", default=False, doc="TRUE adds the standard errors of PD, WAL (years) and mean_irr as three more columns; default FALSE"),
    COLLECTIONS_ARG, COLLATERAL_ARG, GUARANTEES_ARG,
    shape="header + one row per tranche: name, EL, PD, WAL, mean_irr, rating, el_stderr",
    cached=True,
    zh="贷款清单与现金流瀑布的蒙特卡洛模拟：各档预期损失、违约概率、加权平均期限（年）、平均内部收益率、评级、预期损失标准误",
)
def tranche_el(tape, tranches, settings, n_sims, seed, assumptions, stderr, collections,
               collateral, guarantees):
    """Monte Carlo tranche figures over the loan tape and the waterfall: EL, PD, WAL (years), mean IRR (effective annual), rating (NR: subordinated tranches are not rated), EL standard error; with collections and as_of_months, from the report date on."""
    if collections is None and parse_settings(settings).as_of_months == 0:
        pool = pool_from_tape(tape, assumptions, collateral, guarantees, settings)
        result, _ = simulate_to_target(pool, tranches, settings, n_sims, seed)
        return result.contract_table(with_stderr=stderr)
    valued = valued_tape(tape, assumptions, collateral, guarantees, settings)
    deal = surveillance.remaining_deal(valued, tranches, settings, collections)
    return surveillance.tranche_figures(deal, n_sims, seed, with_stderr=stderr)[0]


@worksheet_function(
    "NPL_RATING",
    Arg("el", "number", doc="Expected loss, decimal of par (0.001 = 0.1%)"),
    Arg("wal_years", "number", doc="Weighted average life, years"),
    shape="text",
    zh="按穆迪理想化预期损失表，给出该加权平均期限下理想化预期损失不低于el的最高评级",
)
def rating(el, wal_years):
    """Highest Moody's rating whose idealized expected loss at this WAL is >= el (linear in WAL, 1-10 years)."""
    return rating_from_el(el, wal_years)


@worksheet_function(
    "NPL_BID_PRICE",
    _TAPE,
    Arg("target_irr", "number", doc="Target IRR, annual effective decimal"),
    Arg("confidence", "number", default=0.5, doc="P(IRR >= target), decimal in (0, 1); default 0.5 (median)"),
    _SETTINGS, _N_SIMS, _SEED, ASSUMPTIONS_ARG,
    Arg("stderr", "bool", default=False, doc="TRUE adds a second row with the Monte Carlo standard errors of the figures; default FALSE"),
    COLLATERAL_ARG, GUARANTEES_ARG,
    shape="1x3: price, price_to_claim, irr_at_price_mean; 1x4 with price_to_principal when the tape has a principal column",
    cached=True,
    zh="资产包整体报价：使P(内部收益率≥目标收益率)=置信度的价格、价格占债权本息比例及该价格下的平均内部收益率；贷款清单有未偿本金列时另加价格占本金比例（本金折扣率为1减去该比例）",
)
def bid_price(tape, target_irr, confidence, settings, n_sims, seed, assumptions, stderr, collateral,
              guarantees):
    """Package price with P(IRR >= target_irr) = confidence, IRR effective annual, to bid_horizon_months, unstressed unless bid_with_stresses: price, price/claims, mean IRR at that price; with a principal column, price/principal (本金折扣率 = 1 - it)."""
    pool = pool_from_tape(tape, assumptions, collateral, guarantees, settings)
    result = pricing.bid_price(pool, target_irr, confidence, settings,
                               n_sims, seed)
    return [result.as_row(), result.stderr_row()] if stderr else [result.as_row()]


@worksheet_function(
    "NPL_RIGHTS_SPLIT",
    Arg("collections", "vector", doc="Net collections per period (currency), one row or column"),
    Arg("mode", "text", doc="ordinary (普通), senior (优先), junior (劣后) or semi-junior (半劣后)"),
    Arg("investor_cost", "number", doc="Investor's cost (currency)"),
    Arg("amc_cost", "number", doc="AMC's retained cost (currency)"),
    Arg("investor_rate", "number", default=0.0, doc="Investor's fixed annual return, decimal; default 0"),
    Arg("amc_rate", "number", default=0.0, doc="AMC's fixed annual return, decimal; default 0"),
    Arg("share", "number", default=None, doc="Investor's share, decimal; default investor_cost/(investor_cost+amc_cost)"),
    Arg("period_months", "number", default=6.0, doc="Months per period for accruing returns; default 6"),
    shape="periods x 2: investor, amc",
    zh="不良资产收益权转让模式（普通、优先、劣后、半劣后）下各期回收款在投资人与资产管理公司之间的分配",
)
def rights_split(collections, mode, investor_cost, amc_cost, investor_rate, amc_rate, share,
                 period_months):
    """Split each period's collections between investor and AMC under one of the four income-right transfer modes AMCs use (see docs/MODEL.md)."""
    return rights.rights_split(collections, mode, investor_cost, amc_cost, investor_rate,
                               amc_rate, share, period_months)
