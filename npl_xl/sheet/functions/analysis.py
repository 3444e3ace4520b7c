"""Structuring and analysis worksheet functions: NPL_TRANCHE_SIZE, NPL_BREAKEVEN,
NPL_SENSITIVITY, NPL_PRICE_TABLE (FUNCTIONS.md "Structuring and analysis")."""

from __future__ import annotations

from npl_xl.analysis import breakeven as breakeven_core
from npl_xl.analysis import price_table as price_table_core
from npl_xl.analysis import sensitivity as sensitivity_core
from npl_xl.analysis import sizing
from npl_xl.engine.pool import pool_from_tape
from npl_xl.sheet.functions.surveillance import COLLECTIONS_ARG
from npl_xl.sheet.functions.timeline import ASSUMPTIONS_ARG
from npl_xl.sheet.registry import Arg, worksheet_function
from npl_xl.sheet.tapes import COLLATERAL_ARG, GUARANTEES_ARG, valued_tape

_TAPE = Arg("tape", "table", doc="The loan tape with its header row (LoanTape)")
_TRANCHES = Arg("tranches", "table", doc="Tranches table with header: name, kind, balance, coupon, issue_price (TrancheTable)")
_TRANCHE = Arg("tranche", "text", default=None, doc="Name of a row of the tranches table; blank = the first senior tranche")
_SETTINGS = Arg("settings", "table", default=None, doc="Two-column Settings table of key and value (DealSettings); blank = defaults")
_N_SIMS = Arg("n_sims", "integer", default=None, doc="Monte Carlo paths; blank = the settings' n_sims (default 10,000)")
_SEED = Arg("seed", "integer", default=None, doc="Random seed >= 0; blank = the settings' seed (default 0)")


def _deal(tape, tranches, settings, assumptions, collateral, guarantees, collections):
    """(pool, tranches, settings) of the deal: at issuance, or from the report date when
    collections are given or as_of_months > 0 (FUNCTIONS.md "Surveillance")."""
    from npl_xl.analysis import surveillance
    from npl_xl.inputs.deal import parse_settings

    if collections is None and parse_settings(settings).as_of_months == 0:
        return pool_from_tape(tape, assumptions, collateral, guarantees, settings), tranches, settings
    valued = valued_tape(tape, assumptions, collateral, guarantees, settings)
    deal = surveillance.remaining_deal(valued, tranches, settings, collections)
    if deal.tranches is None:
        from npl_xl.errors import DomainError

        raise DomainError("every tranche is repaid at the report date", argument="collections")
    return deal.pool, deal.tranches, deal.settings


def _texts(value) -> list:
    """A text argument or a range of them as a flat list (blanks dropped)."""
    if isinstance(value, (list, tuple)):
        flat = [c for row in value for c in (row if isinstance(row, (list, tuple)) else [row])]
    else:
        flat = [value]
    return [c for c in flat if c is not None and str(c).strip() != ""]


@worksheet_function(
    "NPL_TRANCHE_SIZE",
    _TAPE, _TRANCHES,
    Arg("target_rating", "codes", doc="A rating (Aaa, Aa2, A2, Baa3, ...; case-insensitive), a comma-separated list or a range of ratings, one result row each"),
    _TRANCHE, _SETTINGS, _N_SIMS, _SEED, ASSUMPTIONS_ARG, COLLECTIONS_ARG, COLLATERAL_ARG,
    GUARANTEES_ARG,
    shape="one row per target rating: target_rating, balance, share_of_expected_recovery, EL, WAL",
    cached=True,
    zh="分层测算：在其他档不变时，使该档达到目标评级的最大规模（货币单位）及其占预期回收的比例、预期损失和加权平均期限（年）",
)
def tranche_size(tape, tranches, target_rating, tranche, settings, n_sims, seed, assumptions,
                 collections, collateral, guarantees):
    """Largest balance (currency) of the tranche, the others unchanged, at which NPL_RATING(EL, WAL) is the target rating or better, to 0.01 %: balance, share of the pool's expected recovery, EL, WAL (years)."""
    pool, tranches, settings = _deal(tape, tranches, settings, assumptions, collateral,
                                     guarantees, collections)
    result = sizing.tranche_size(pool, tranches, _texts(target_rating), tranche, settings,
                                 n_sims, seed)
    return result.contract_table()


@worksheet_function(
    "NPL_BREAKEVEN",
    _TAPE, _TRANCHES, _TRANCHE, _SETTINGS, ASSUMPTIONS_ARG, COLLATERAL_ARG, GUARANTEES_ARG,
    shape="1x3: recovery_haircut, delay_months, breakeven_collections",
    zh="盈亏平衡：该档首次违约（利息未足额或法定到期未清偿）时的回收折扣率、回收延迟月数及对应资产池总回收（确定性）",
)
def breakeven(tape, tranches, tranche, settings, assumptions, collateral, guarantees):
    """Deterministic break-evens of the tranche: the smallest recovery haircut (decimal, to 1e-4) and uniform delay (months, to 0.01) at which it misses interest or principal, and the pool's collections (currency) at that haircut."""
    pool = pool_from_tape(tape, assumptions, collateral, guarantees, settings)
    return [list(breakeven_core.breakeven(pool, tranches, tranche, settings))]


@worksheet_function(
    "NPL_SENSITIVITY",
    _TAPE, _TRANCHES,
    Arg("variable", "text", doc="rho (replaces rho), recovery (multiplier of every expected recovery: 0.9 = 10% lower), sd (multiplier of every recovery sd), delay (months added), timing_sd (months)"),
    Arg("shocks", "vector", doc="The values of the variable, a row or a column"),
    Arg("figure", "text", default="EL", doc="EL (default), PD, WAL (years), mean_irr (annual) or rating"),
    _TRANCHE, _SETTINGS, _N_SIMS, _SEED, ASSUMPTIONS_ARG, COLLECTIONS_ARG, COLLATERAL_ARG,
    GUARANTEES_ARG,
    shape="header (shock, tranche names) + one row per shock",
    cached=True,
    zh="敏感性分析：在同一组随机数下，各档（或指定档）的预期损失等指标随相关性、回收倍数、标准差倍数、延迟月数或时间标准差的变化",
)
def sensitivity(tape, tranches, variable, shocks, figure, tranche, settings, n_sims, seed,
                assumptions, collections, collateral, guarantees):
    """The tranche figure (EL, PD, WAL in years, mean IRR or rating) under each shock of one variable, every shock on the same random numbers; a shock equal to the base case gives NPL_TRANCHE_EL's figure."""
    pool, tranches, settings = _deal(tape, tranches, settings, assumptions, collateral,
                                     guarantees, collections)
    return sensitivity_core.sensitivity(pool, tranches, variable, shocks, figure, tranche,
                                        settings, n_sims, seed)


@worksheet_function(
    "NPL_PRICE_TABLE",
    _TAPE,
    Arg("prices", "vector", doc="Package prices paid at month 0 (currency), a row or a column"),
    _SETTINGS, _N_SIMS, _SEED, ASSUMPTIONS_ARG,
    Arg("stderr", "bool", default=False, doc="TRUE adds six columns: standard errors of mean_irr, irr_p10, irr_p50, irr_p90, moic, p_loss; default FALSE"),
    COLLATERAL_ARG, GUARANTEES_ARG,
    shape="header + one row per price: price, price_to_claim, mean_irr, irr_p10, irr_p50, irr_p90, moic, p_loss",
    cached=True,
    zh="报价表：每个收购价格下的平均内部收益率、10/50/90 分位收益率、回收倍数和亏损概率",
)
def price_table(tape, prices, settings, n_sims, seed, assumptions, stderr, collateral,
                guarantees):
    """Per package price (currency): price/claims, mean IRR, 10th/50th/90th percentile IRR (annual), mean multiple of collections over price, and the share of paths collecting less than the price."""
    pool = pool_from_tape(tape, assumptions, collateral, guarantees, settings)
    return price_table_core.price_table(pool, prices, settings, n_sims, seed, stderr)
