"""Collateral values: comparable sales, the judicial auction ladder, net recovery.

Money is in the workbook's currency unit, ratios and rates are decimals, time in months.

The auction ladder follows the Supreme People's Court's online judicial auction rules
(法释〔2016〕18号, [SPC-Auction] in docs/SOURCES.md): round 1 starts at ``start_ratio`` (≥ 0.70) of the
appraisal, round 2 at ``(1 - cut)`` of that (cut ≤ 0.20), the sale by conversion (变卖) at
the round-2 start, bids only upward; if all fail the creditor may accept the property in
kind (以物抵债) at the round-2 start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from npl_xl.inputs.assumptions import LADDER_FIELDS, Assumptions, resolve
from npl_xl.inputs.codes import COLLATERAL_CODES, COLLATERAL_TYPES, PROVINCES
from npl_xl.checks import Interval, check_each
from npl_xl.errors import DomainError, InputTypeError
from npl_xl.model.timeline import AUCTION_STAGES, auction_reach, stage_durations, Case

__all__ = ["AuctionOutcome", "auction_value", "comps_value", "net_recovery", "ladder_segment",
           "MIN_START_RATIO", "MAX_CUT"]

#: Statutory floor of the first auction's start price, share of the appraisal [S] art. 10.
MIN_START_RATIO = 0.70
#: Statutory maximum cut of the start price between rounds [S] art. 26.
MAX_CUT = 0.20


@dataclass(frozen=True)
class AuctionOutcome:
    """Expected outcome of the auction ladder.

    expected_proceeds: currency; p_sold: decimal probability of a sale in some round;
    expected_round: rounds held in expectation (1–3); expected_months: months of the
    auction stages in expectation (in-kind acceptance included when valued)."""

    expected_proceeds: float
    p_sold: float
    expected_round: float
    expected_months: float

    def as_row(self) -> list[float]:
        return [self.expected_proceeds, self.p_sold, self.expected_round, self.expected_months]


def ladder_segment(collateral_type: str | None = None, province: str | None = None,
                   assumptions: Assumptions | None = None) -> dict[str, float]:
    """The AuctionLadder row for a collateral type and province (codes in any spelling;
    blank type = residential, blank province = the blank_province_tier)."""
    a = resolve(assumptions)
    ctype = COLLATERAL_TYPES.lookup(collateral_type, "collateral_type") if collateral_type else "residential"
    if ctype == "none":
        raise DomainError("an unsecured loan (none) has no collateral to auction",
                          argument="collateral_type")
    tier = a.tier_of(PROVINCES.lookup(province, "province") if province else None)
    values = a.ladder_array[COLLATERAL_CODES.index(ctype), tier]
    return dict(zip(LADDER_FIELDS, map(float, values))) | {"tier": tier,
                                                          "type": COLLATERAL_CODES.index(ctype)}


def _check_probabilities(values, name: str, low: float, high: float | None) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    if array.size != 3:
        raise InputTypeError(f"must hold 3 values (rounds 1, 2 and 3), got {array.size}",
                             argument=name)
    return check_each(array, Interval(low, high), name, noun="round")


def auction_value(appraisal: float, start_ratio: float = MIN_START_RATIO, cut: float = MAX_CUT,
                  p_sell: Sequence[float] | None = None, premium: Sequence[float] | None = None,
                  in_lieu: bool = True, collateral_type: str | None = None,
                  province: str | None = None, assumptions: Assumptions | None = None,
                  first_round: int = 1) -> AuctionOutcome:
    """Expected outcome of the judicial auction ladder for a property appraised at
    ``appraisal`` (currency).

    A sale in round k yields start_k (1 + premium_k); start_1 = start_ratio × appraisal,
    start_2 = start_3 = (1 − cut) start_1. If all rounds fail, ``in_lieu`` values the
    creditor's acceptance in kind at start_2 (else 0). p_sell and premium default to the
    AuctionLadder row of the collateral type and province's tier. ``first_round`` (1–3)
    values a case whose earlier rounds have already failed.

    Examples
    --------
    A residential property appraised at 1,000,000 (currency), tier B, from the first round:

    >>> from npl_xl import auction_value
    >>> outcome = auction_value(1_000_000)
    >>> outcome.expected_proceeds, outcome.expected_round
    (654948.0, 2.04)
    """
    if appraisal < 0:
        raise DomainError(f"must be >= 0, got {appraisal:g}", argument="appraisal")
    if start_ratio < MIN_START_RATIO:
        raise DomainError(f"must be at least {MIN_START_RATIO} of the appraisal (法释〔2016〕18号 "
                          f"art. 10), got {start_ratio:g}", argument="start_ratio")
    if start_ratio > 1.5:
        raise DomainError(f"must be at most 1.5 (a decimal: 0.8 = 80%), got {start_ratio:g}",
                          argument="start_ratio")
    if not 0 <= cut <= MAX_CUT:
        raise DomainError(f"must be between 0 and {MAX_CUT} (法释〔2016〕18号 art. 26), got {cut:g}",
                          argument="cut")
    a = resolve(assumptions)
    segment = ladder_segment(collateral_type, province, a)
    if p_sell is None:
        p_sell = [segment["p_sell_1"], segment["p_sell_2"], segment["p_sell_3"]]
    if premium is None:
        premium = [segment["premium_1"], segment["premium_2"], segment["premium_3"]]
    p_sell = _check_probabilities(p_sell, "p_sell", 0.0, 1.0)
    premium = _check_probabilities(premium, "premium", 0.0, None)
    start_1 = start_ratio * appraisal
    start_2 = (1.0 - cut) * start_1
    starts = np.array([start_1, start_2, start_2])
    reach = auction_reach(p_sell, first_round)  # rounds 1-3 and in_lieu
    p_sale = reach[:3] * p_sell
    p_none = reach[3]
    proceeds = float(np.sum(p_sale * starts * (1.0 + premium)) + (p_none * start_2 if in_lieu else 0.0))
    durations = stage_durations(Case(segment["tier"], AUCTION_STAGES[0], segment["type"]), a)
    weights = reach.copy()
    if not in_lieu:
        weights[3] = 0.0
    months = float(np.dot(weights, durations[list(AUCTION_STAGES)]))
    p_sold = 1.0 - p_none  # = p_sale.sum() up to rounding, and never above 1
    return AuctionOutcome(proceeds, p_sold, float(reach[:3].sum()), months)


def comps_value(area: float, prices: Sequence[float], factors, weights: Sequence[float] | None = None,
                judicial: bool | Sequence[bool] | None = None,
                market_discount: float = 0.0) -> tuple[float, float]:
    """Market (comparable sales) approach: (unit_value, value).

    prices: k unit prices of the comparables (currency per unit area); factors: k×m
    correction coefficients (1.03 = the comparable is 3% too cheap, multiply up); a
    comparable whose ``judicial`` flag is False (an open-market sale, not a court auction)
    is further multiplied by (1 − market_discount). unit_value = weighted mean of the
    adjusted prices (weights default equal, normalised); value = unit_value × area.

    Examples
    --------
    100 m² against two court-auction comparables at 10,000 and 11,000 per m², the second
    corrected by 0.95: unit value (10,000 + 10,450) / 2 = 10,225:

    >>> from npl_xl import comps_value
    >>> comps_value(100, [10_000, 11_000], [[1.0], [0.95]])
    (10225.0, 1022500.0)
    """
    prices = np.asarray(prices, dtype=float).ravel()
    k = prices.size
    if k == 0:
        raise InputTypeError("needs at least one comparable price", argument="prices")
    if area <= 0:
        raise DomainError(f"must be > 0, got {area:g}", argument="area")
    if (prices <= 0).any():
        raise DomainError(f"every price must be > 0, got {prices[prices <= 0][0]:g}", argument="prices")
    factors = np.atleast_2d(np.asarray(factors, dtype=float))
    if factors.shape[0] != k and factors.shape[0] == 1 and factors.shape[1] == k:
        factors = factors.T  # one factor per comparable, entered as a row
    if factors.shape[0] != k:
        raise InputTypeError(f"must have one row per comparable ({k} rows), got "
                             f"{factors.shape[0]}x{factors.shape[1]}", argument="factors")
    if (factors <= 0).any():
        raise DomainError(f"every factor must be > 0, got {factors[factors <= 0][0]:g}", argument="factors")
    if weights is None:
        weights = np.ones(k)
    weights = np.asarray(weights, dtype=float).ravel()
    if weights.size != k:
        raise InputTypeError(f"must hold {k} weights (one per comparable), got {weights.size}",
                             argument="weights")
    if (weights < 0).any() or weights.sum() <= 0:
        raise DomainError("must be >= 0 with a positive sum", argument="weights")
    if judicial is None:
        flags = np.ones(k, dtype=bool)
    else:
        flags = np.asarray(judicial, dtype=bool).ravel()
        if flags.size == 1:
            flags = np.repeat(flags, k)
        if flags.size != k:
            raise InputTypeError(f"must hold 1 or {k} TRUE/FALSE flags, got {flags.size}",
                                 argument="judicial")
    if not 0 <= market_discount < 1:
        raise DomainError(f"must be in [0, 1), got {market_discount:g}", argument="market_discount")
    adjusted = prices * factors.prod(axis=1) * np.where(flags, 1.0, 1.0 - market_discount)
    unit_value = float(np.dot(weights, adjusted) / weights.sum())
    return unit_value, unit_value * area


def net_recovery(proceeds: float, claim: float, prior_claims: float = 0.0,
                 cost_rate: float | None = None, deduction: float = 0.0,
                 collateral_type: str | None = None,
                 assumptions: Assumptions | None = None) -> float:
    """Net recovery to this lender from collateral proceeds (currency):
    min(claim, max(0, proceeds (1 − cost_rate) − prior_claims − deduction)).

    cost_rate (decimal of proceeds) defaults to the CostRates row of ``collateral_type``
    (blank = residential); deduction covers the sole-residence rent (5–8 years of rent)
    and lease haircuts.

    Examples
    --------
    Proceeds 800,000 less 5% costs = 760,000, below the claim of 1,000,000:

    >>> from npl_xl import net_recovery
    >>> net_recovery(800_000, 1_000_000, cost_rate=0.05)
    760000.0
    """
    for name, value in (("proceeds", proceeds), ("claim", claim), ("prior_claims", prior_claims),
                        ("deduction", deduction)):
        if value < 0:
            raise DomainError(f"must be >= 0, got {value:g}", argument=name)
    if cost_rate is None:
        ctype = COLLATERAL_TYPES.lookup(collateral_type, "collateral_type") if collateral_type else "residential"
        cost_rate = float(resolve(assumptions).cost_rate_array[COLLATERAL_CODES.index(ctype)])
    if not 0 <= cost_rate < 1:
        raise DomainError(f"must be in [0, 1), got {cost_rate:g}", argument="cost_rate")
    return min(claim, max(0.0, proceeds * (1.0 - cost_rate) - prior_claims - deduction))
