"""The Monte Carlo engine: correlated recoveries, timing, waterfall, tranche figures.

Public API::

    from npl_xl.engine import Pool, simulate_deal, DealResult
    pool = Pool.from_arrays(claim, expected_recovery, expected_months, recovery_sd, region_id)
    result = simulate_deal(pool, tranches_table, settings_table, n_sims=None, seed=None,
                           progress=None)
"""

from npl_xl.engine.pool import Pool, pool_from_frame, pool_from_tape
from npl_xl.engine.simulate import DealResult, mc_mean, simulate_collections, simulate_deal

__all__ = ["Pool", "pool_from_frame", "pool_from_tape", "DealResult", "simulate_deal", "simulate_collections",
           "mc_mean"]
