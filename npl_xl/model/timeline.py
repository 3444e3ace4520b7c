"""Judicial timeline: expected months from a case's current stage until cash is distributed.

The process ([CPL-Deadlines], [SPC-Auction] in docs/SOURCES.md) runs through the contract's stages in order::

    not_filed -> filed -> judgment -> enforcement -> appraisal -> auction_1
              -> auction_2 -> sale -> in_lieu -> distribution

Each stage takes the months of the ``StageDurations`` table for the province's region
tier (A fast, B middle, C slow). The auction stages are a ladder: round 2 is held only if
round 1 fails, the sale by conversion (变卖) only if round 2 fails, acceptance in kind
(以物抵债, then the creditor's resale) only if that fails too, with the failure
probabilities of the ``AuctionLadder`` for the collateral type and tier. The expected
months therefore weight each auction stage by the probability of reaching it, *given the
stage the case is in now*: a case in auction_2 has already seen round 1 fail.

Adjustments, all non-negative months:

* non-residential collateral: the ``commercial_addon`` months are added to the enforcement
  stage (vacating, investigation of commercial premises); its lower auction ladder adds the
  rest of the published 3–6 months;
* each legal defect adds its delay (``Defects`` table) to the stage it holds up;
* an unsecured claim (collateral type ``none``) has no appraisal or auction: its enforcement
  stage is the ``unsecured_enforcement`` row (enforcement against other assets, the 6-month
  legal clock extended as typical) and it goes straight to distribution.

An adjustment attached to a stage applies while the case has not yet passed that stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from npl_xl.inputs.assumptions import Assumptions, resolve
from npl_xl.inputs.codes import (COLLATERAL_CODES, COLLATERAL_TYPES, DEFECT_CODES, DEFECTS,
    PROVINCES, STAGE_CODES, STAGES)

__all__ = ["Case", "case_of", "judicial_schedule", "judicial_months", "auction_reach",
           "stage_durations", "AUCTION_STAGES"]

#: Indices of the ladder stages auction_1, auction_2, sale, in_lieu.
AUCTION_STAGES = (5, 6, 7, 8)
_ENFORCEMENT = STAGE_CODES.index("enforcement")
_APPRAISAL = STAGE_CODES.index("appraisal")
_IN_LIEU = STAGE_CODES.index("in_lieu")


@dataclass(frozen=True)
class Case:
    """A case in canonical codes: tier index (0 = A), stage index, collateral type index
    (COLLATERAL_CODES; 5 = none), defect indices (DEFECT_CODES)."""

    tier: int
    stage: int
    collateral: int
    defects: tuple[int, ...] = ()

    @property
    def secured(self) -> bool:
        return COLLATERAL_CODES[self.collateral] != "none"


def case_of(province: str | None, stage: str | None = None, collateral_type: str | None = None,
            defects: Sequence[str] = (), assumptions: Assumptions | None = None) -> Case:
    """Normalise codes (any spelling; None = default) into a :class:`Case`.

    Defaults: stage not_filed, collateral_type residential, province -> the
    blank_province_tier parameter (tier B in the packaged tables).

    Examples
    --------
    >>> from npl_xl import case_of
    >>> case_of("浙江省", "判决", "住宅")
    Case(tier=0, stage=2, collateral=0, defects=())
    """
    a = resolve(assumptions)
    tier = a.tier_of(PROVINCES.lookup(province, "province") if province is not None else None)
    stage_code = STAGES.lookup(stage, "stage") if stage is not None else "not_filed"
    ctype = COLLATERAL_TYPES.lookup(collateral_type, "collateral_type") if collateral_type is not None else "residential"
    found = DEFECTS.lookup_many(defects, "defects")
    return Case(tier, STAGE_CODES.index(stage_code), COLLATERAL_CODES.index(ctype),
                tuple(DEFECT_CODES.index(d) for d in found))


def auction_reach(p_sell: Sequence[float], first_round: int = 1) -> np.ndarray:
    """Probabilities of reaching auction_1, auction_2, sale and in_lieu, for a case now in
    round ``first_round`` (1 = auction_1 or earlier, 2 = auction_2, 3 = sale, 4 = in_lieu).

    p_sell: conditional probabilities of a sale in rounds 1–3 (decimals)."""
    reach = np.zeros(4)
    level = 1.0
    for k in range(first_round - 1, 4):
        reach[k] = level
        if k < 3:
            level *= 1.0 - p_sell[k]
    return reach


def stage_durations(case: Case, assumptions: Assumptions | None = None) -> np.ndarray:
    """(10,) months each stage takes in this case if it is held, adjustments included."""
    a = resolve(assumptions)
    months = a.durations_array[case.tier].copy()
    if case.secured:
        if COLLATERAL_CODES[case.collateral] != "residential":
            months[_ENFORCEMENT] += a.commercial_addon_array[case.tier]
    else:
        months[_ENFORCEMENT] = a.unsecured_enforcement_array[case.tier]
    for d in case.defects:
        at = int(a.defect_stage_array[d])
        if not case.secured and _APPRAISAL <= at <= _IN_LIEU:
            at = _ENFORCEMENT  # no auction to hold up: the delay falls on enforcement
        months[at] += a.defect_delay_array[d, case.tier]
    if not case.secured:
        months[_APPRAISAL:_IN_LIEU + 1] = 0.0
    return months


def judicial_schedule(case: Case, assumptions: Assumptions | None = None,
                      p_sell: Sequence[float] | None = None) -> list[tuple[str, float, float]]:
    """The stages ahead of ``case`` as (stage, start_month, end_month) rows, months from now.

    An auction stage lasts its duration times the probability of reaching it, so the
    rows add up to the expected months; an unsecured case skips appraisal to in_lieu.
    ``p_sell`` overrides the ladder's sale probabilities (decimals, rounds 1–3)."""
    a = resolve(assumptions)
    months = stage_durations(case, a)
    weight = np.ones(len(STAGE_CODES))
    if case.secured:
        if p_sell is None:
            p_sell = a.ladder_array[case.collateral, case.tier, [2, 4, 6]]
        first = max(case.stage, AUCTION_STAGES[0]) - AUCTION_STAGES[0] + 1
        if case.stage <= _IN_LIEU:
            weight[list(AUCTION_STAGES)] = auction_reach(p_sell, first)
    rows = []
    start = 0.0
    for i in range(case.stage, len(STAGE_CODES)):
        if not case.secured and _APPRAISAL <= i <= _IN_LIEU:
            continue
        end = start + weight[i] * months[i]
        rows.append((STAGE_CODES[i], start, end))
        start = end
    return rows


def judicial_months(case: Case, assumptions: Assumptions | None = None,
                    p_sell: Sequence[float] | None = None) -> float:
    """Expected months until cash is distributed: the last end_month of the schedule.

    Examples
    --------
    >>> from npl_xl import case_of, judicial_months
    >>> round(float(judicial_months(case_of("Zhejiang", "judgment", "residential"))), 4)
    7.3678
    """
    return judicial_schedule(case, assumptions, p_sell)[-1][2]
