"""Whole-package bid price from simulated pool collections (NPL_BID_PRICE).

The buyer pays ``price`` at closing (month 0) and receives the pool's simulated collections
on the payment dates (:mod:`npl_xl.engine`; collections are net of disposal costs, as the
loan valuation's expected recoveries are). With settings ``bid_net_of_servicing`` TRUE
(default) the servicer's fee, servicer_fee_rate x collections, is deducted; trust taxes and
the deal's fixed expenses are not (they belong to a securitisation, not a loan purchase).
Nor is the buyer bound by the securitisation's legal final date: recoveries count up to
settings ``bid_horizon_months`` (default 240) after closing, which replaces
legal_final_months for pricing (payment dates every payment_months up to the horizon).
The rating stresses cap_at_expected and timing_stress are not applied unless settings
``bid_with_stresses`` is TRUE: a buyer prices the base case, an agency stresses the notes.
price_to_claim is the price over the claims (principal + interest + fees, 收购价格占债权本息
比例), not a discount on principal (本金折扣率). When the tape has a principal column (未偿本金,
every loan), price_to_principal = price / the sum of the principal is added (本金折扣率 is 1
minus it).

On each path the IRR (effective annual) is at least ``target_irr`` exactly when the path's
cash flows discounted at target_irr are worth at least the price. So the price with
P(IRR >= target_irr) = confidence is the (1 - confidence) quantile of that discounted value
over the paths: no root search is needed. ``irr_at_price_mean`` is the mean over paths of
the IRR at that price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npl_xl.inputs.deal import parse_settings
from npl_xl.engine.pool import as_pool
from npl_xl.engine.simulate import mc_mean, simulate_collections
from npl_xl.engine.waterfall import irr_paths
from npl_xl.errors import DomainError

__all__ = ["BidResult", "BidCollections", "bid_price", "bid_collections",
           "price_from_collections"]


@dataclass(frozen=True)
class BidResult:
    """price (currency), price_to_claim (decimal), irr_at_price_mean (effective annual
    decimal), their Monte Carlo standard errors, the paths' PV at the target (currency),
    n_paths and price_to_principal (decimal: price / the loans' principal; NaN when the tape
    has no principal column, and then not in the rows)."""

    price: float
    price_to_claim: float
    irr_at_price_mean: float
    irr_stderr: float
    pv_at_target: np.ndarray
    n_paths: int
    price_stderr: float = float("nan")
    price_to_principal: float = float("nan")

    @property
    def has_principal(self) -> bool:
        """Whether price_to_principal is known (the tape has a principal column)."""
        return bool(np.isfinite(self.price_to_principal))

    def as_row(self) -> list[float]:
        """price, price_to_claim, irr_at_price_mean, and price_to_principal when the tape
        has a principal column."""
        row = [self.price, self.price_to_claim, self.irr_at_price_mean]
        return row + [self.price_to_principal] if self.has_principal else row

    def stderr_row(self) -> list[float]:
        """Standard errors of :meth:`as_row`'s figures, in the same units."""
        ratio = self.price_to_claim / self.price if self.price else float("nan")
        row = [self.price_stderr, self.price_stderr * ratio, self.irr_stderr]
        if self.has_principal:
            row.append(self.price_stderr * self.price_to_principal / self.price
                       if self.price else float("nan"))
        return row


#: Interleaved batches for the standard error of the price (a quantile).
PRICE_BATCHES = 20


def quantile_stderr(values: np.ndarray, level: float, antithetic: bool,
                    batches: int = PRICE_BATCHES) -> float:
    """Standard error of ``np.quantile(values, level)`` by interleaved batches.

    Paths (antithetic pairs, when ``antithetic``) are dealt to ``batches`` batches in turn,
    so each batch spans every stratum of the systematic factor; the batch quantiles are then
    close to independent replications, and the standard error of the full-sample quantile is
    their standard deviation over sqrt(batches). NaN when fewer than two batches can be formed.
    """
    unit = 2 if antithetic else 1
    groups = values.shape[0] // unit
    b = min(batches, groups)
    if b < 2:
        return float("nan")
    owner = np.repeat(np.arange(groups) % b, unit)
    estimates = [np.quantile(values[owner == k], level) for k in range(b)]
    return float(np.std(estimates, ddof=1) / np.sqrt(b))


@dataclass(frozen=True)
class BidCollections:
    """The buyer's simulated cash: ``cash`` (n_paths, n_periods; currency, net of servicing
    when bid_net_of_servicing) paid at ``dates`` (months after closing, up to
    bid_horizon_months), the pool's ``total_claim`` (currency) and whether the paths are
    antithetic pairs (for the standard error)."""

    cash: np.ndarray
    dates: np.ndarray
    total_claim: float
    antithetic: bool
    total_principal: float = float("nan")   # currency; NaN: the tape has no principal


def bid_collections(pool, settings=None, n_sims: int | None = None,
                    seed: int | None = None) -> BidCollections:
    """Simulate the package's collections once, as the buyer receives them; price them at
    any target and confidence with :func:`price_from_collections`.

    pool : npl_xl.engine.Pool or valued-tape DataFrame; settings, n_sims, seed: as for
    :func:`npl_xl.engine.simulate_deal` (legal_final_months replaced by bid_horizon_months).

    Examples
    --------
    Simulate once, then price at several targets (a higher target, a lower price):

    >>> from npl_xl import bid_collections, pool_from_tape, price_from_collections
    >>> tape = [["loan_id", "claim", "province", "collateral_type", "collateral_value",
    ...          "stage", "guarantor_recovery"],
    ...         ["L1", 1_000_000, "浙江", "住宅", 900_000, "auction_1", None],
    ...         ["L2", 400_000, "Jiangsu", "none", None, "judgment", 100_000]]
    >>> paths = bid_collections(pool_from_tape(tape), n_sims=400, seed=7)
    >>> low, high = (price_from_collections(paths, r, 0.5).price for r in (0.08, 0.15))
    >>> bool(low > high)
    True
    """
    pool = as_pool(pool)
    settings = parse_settings(settings).with_overrides(n_sims=n_sims, seed=seed).for_bid()
    coll = simulate_collections(pool, settings)
    if settings.bid_net_of_servicing:
        coll = coll * (1.0 - settings.servicer_fee_rate)
    return BidCollections(coll, settings.period_dates, pool.total_claim,
                          settings.variance_reduction, pool.total_principal)


def _check_target(target_irr: float, confidence: float) -> None:
    if not target_irr > -1.0:
        raise DomainError(f"must be an annual decimal > -1, got {target_irr:g}", argument="target_irr")
    if not 0.0 < confidence < 1.0:
        raise DomainError(f"must be a probability strictly between 0 and 1, got {confidence:g}",
                          argument="confidence")


def price_from_collections(collections: BidCollections, target_irr: float,
                           confidence: float = 0.5) -> BidResult:
    """The price at which P(IRR >= target_irr) = confidence for simulated ``collections``
    (see the module docstring); target_irr annual effective decimal > -1, confidence a
    decimal strictly between 0 and 1.

    Examples
    --------
    >>> from npl_xl import bid_collections, pool_from_tape, price_from_collections
    >>> tape = [["loan_id", "claim", "province", "collateral_type", "collateral_value",
    ...          "stage", "guarantor_recovery"],
    ...         ["L1", 1_000_000, "浙江", "住宅", 900_000, "auction_1", None],
    ...         ["L2", 400_000, "Jiangsu", "none", None, "judgment", 100_000]]
    >>> paths = bid_collections(pool_from_tape(tape), n_sims=400, seed=7)
    >>> median, prudent = (price_from_collections(paths, 0.12, c).price for c in (0.5, 0.9))
    >>> bool(prudent < median)   # 90% sure of 12% costs more than even odds: a lower price
    True
    """
    _check_target(target_irr, confidence)
    coll, dates = collections.cash, collections.dates
    pv = coll @ (1.0 + target_irr) ** (-dates / 12.0)
    price = float(np.quantile(pv, 1.0 - confidence))
    if not price > 0.0:
        raise DomainError(
            f"the simulated collections are worth nothing at the {confidence:g} level "
            "(no recoveries before bid_horizon_months)", argument="tape")
    irr = irr_paths(coll, dates, price)
    mean, se_given_price = mc_mean(irr, collections.antithetic)
    total_claim = collections.total_claim
    price_se = quantile_stderr(pv, 1.0 - confidence, collections.antithetic)
    # the mean IRR is taken at the estimated price, so the price's own error moves it too
    # (delta method; the slope by a 0.1% change in price)
    bumped, _ = mc_mean(irr_paths(coll, dates, price * 1.001), collections.antithetic)
    slope = (bumped - mean) / (0.001 * price)
    se = float(np.hypot(se_given_price, slope * price_se)) if np.isfinite(price_se) \
        else float(se_given_price)
    principal = collections.total_principal
    return BidResult(price, price / total_claim if total_claim > 0 else float("nan"),
                     float(mean), se, pv, coll.shape[0], price_se,
                     price / principal if principal > 0 else float("nan"))


def bid_price(pool, target_irr: float, confidence: float = 0.5, settings=None,
              n_sims: int | None = None, seed: int | None = None) -> BidResult:
    """The package price at which P(IRR >= target_irr) = confidence (NPL_BID_PRICE):
    :func:`bid_collections` then :func:`price_from_collections`.

    Parameters
    ----------
    pool : npl_xl.engine.Pool or valued-tape DataFrame
    target_irr : float
        Annual effective decimal, > -1.
    confidence : float
        Decimal strictly between 0 and 1; default 0.5 (the median IRR equals the target).
    settings, n_sims, seed :
        As for :func:`npl_xl.engine.simulate_deal`.

    Examples
    --------
    The price at which the median IRR is 12% a year:

    >>> from npl_xl import bid_price, pool_from_tape
    >>> tape = [["loan_id", "claim", "province", "collateral_type", "collateral_value",
    ...          "stage", "guarantor_recovery"],
    ...         ["L1", 1_000_000, "浙江", "住宅", 900_000, "auction_1", None],
    ...         ["L2", 400_000, "Jiangsu", "none", None, "judgment", 100_000]]
    >>> bid = bid_price(pool_from_tape(tape), target_irr=0.12, confidence=0.5, n_sims=400, seed=7)
    >>> bool(0 < bid.price < 730_724.32)   # below the undiscounted expected recovery
    True
    >>> len(bid.as_row()), len(bid.stderr_row())   # price, price_to_claim, irr_at_price_mean
    (3, 3)
    """
    _check_target(target_irr, confidence)
    return price_from_collections(bid_collections(pool, settings, n_sims, seed), target_irr,
                                  confidence)
