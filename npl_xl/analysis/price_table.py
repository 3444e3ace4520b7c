"""The buyer's price table (NPL_PRICE_TABLE): IRR range, multiple and chance of a loss per price.

The package's collections are simulated once, as NPL_BID_PRICE counts them
(:func:`npl_xl.analysis.pricing.bid_collections`: recoveries up to bid_horizon_months,
net of the servicer's fee when bid_net_of_servicing), and every price is evaluated on the
same paths. Per path with net cash CF_t at months t and price P paid at month 0:

- IRR: the effective annual y with sum CF_t (1 + y)^(-t/12) = P
  (:func:`npl_xl.engine.waterfall.irr_paths`; -1 when nothing is collected);
- multiple: sum CF_t / P.

Per price: mean_irr the mean IRR over paths, irr_p10 / irr_p50 / irr_p90 the 10th, 50th
and 90th percentiles over paths (numpy's linear interpolation), moic the mean multiple,
p_loss the share of paths with sum CF_t < P. On each path the IRR at P is >= r exactly when
the cash discounted at r is worth >= P, so at NPL_BID_PRICE's price for a target r at
confidence 0.5 the median IRR is r (up to the interpolation between two paths).
With ``stderr`` the Monte Carlo standard errors: of the means by the engine's
estimator (:func:`npl_xl.engine.simulate.mc_mean`), of the percentiles by interleaved
batches (:func:`npl_xl.analysis.pricing.quantile_stderr`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from npl_xl.analysis.pricing import BidCollections, bid_collections, quantile_stderr
from npl_xl.engine.pool import as_pool
from npl_xl.engine.simulate import mc_mean
from npl_xl.engine.waterfall import irr_paths
from npl_xl.errors import DomainError, InputTypeError

__all__ = ["PRICE_TABLE_COLUMNS", "price_table", "table_from_collections", "MAX_PRICES"]

PRICE_TABLE_COLUMNS = ("price", "price_to_claim", "mean_irr", "irr_p10", "irr_p50", "irr_p90",
                       "moic", "p_loss")
STDERR_COLUMNS = ("mean_irr_stderr", "irr_p10_stderr", "irr_p50_stderr", "irr_p90_stderr",
                  "moic_stderr", "p_loss_stderr")
MAX_PRICES = 500


def _prices(prices) -> np.ndarray:
    values = np.asarray(prices, dtype=float).ravel()
    if values.size == 0:
        raise InputTypeError("holds no price", argument="prices")
    if values.size > MAX_PRICES:
        raise DomainError(f"at most {MAX_PRICES} prices, got {values.size}", argument="prices")
    bad = np.flatnonzero(~(values > 0.0) | ~np.isfinite(values))
    if bad.size:
        raise DomainError(f"price {bad[0] + 1} must be a positive amount, got {values[bad[0]]:g}",
                          argument="prices")
    return values


def table_from_collections(collections: BidCollections, prices, stderr: bool = False
                           ) -> pd.DataFrame:
    """The price table (module docstring) of simulated buyer's ``collections``; prices in
    currency. With ``stderr``, six more columns of standard errors."""
    values = _prices(prices)
    cash, dates, anti = collections.cash, collections.dates, collections.antithetic
    total = cash.sum(axis=1)
    rows = []
    for price in values:
        irr = irr_paths(cash, dates, price)
        q10, q50, q90 = np.quantile(irr, [0.1, 0.5, 0.9])
        mean_irr, mean_se = mc_mean(irr, anti)
        moic, moic_se = mc_mean(total / price, anti)
        loss = (total < price).astype(float)
        p_loss, p_loss_se = mc_mean(loss, anti)
        row = {"price": price,
               "price_to_claim": price / collections.total_claim if collections.total_claim else np.nan,
               "mean_irr": float(mean_irr), "irr_p10": float(q10), "irr_p50": float(q50),
               "irr_p90": float(q90), "moic": float(moic), "p_loss": float(p_loss)}
        if stderr:
            row.update({"mean_irr_stderr": float(mean_se),
                        "irr_p10_stderr": quantile_stderr(irr, 0.1, anti),
                        "irr_p50_stderr": quantile_stderr(irr, 0.5, anti),
                        "irr_p90_stderr": quantile_stderr(irr, 0.9, anti),
                        "moic_stderr": float(moic_se), "p_loss_stderr": float(p_loss_se)})
        rows.append(row)
    columns = list(PRICE_TABLE_COLUMNS) + (list(STDERR_COLUMNS) if stderr else [])
    return pd.DataFrame(rows, columns=columns)


def price_table(pool, prices, settings=None, n_sims: int | None = None, seed: int | None = None,
                stderr: bool = False) -> pd.DataFrame:
    """NPL_PRICE_TABLE: simulate the buyer's collections once and evaluate every price.

    pool : engine Pool or valued tape; prices : amounts (currency) paid at month 0;
    settings, n_sims, seed : as for NPL_BID_PRICE.
    """
    return table_from_collections(bid_collections(as_pool(pool), settings, n_sims, seed),
                                  prices, stderr)
