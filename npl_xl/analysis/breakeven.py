"""Break-evens (NPL_BREAKEVEN): how much recovery shortfall and delay a tranche absorbs.

Deterministic, no simulation. The base case: each loan recovers its valued expected
recovery (currency) at its expected month, collected on the first payment date on or
after that month (month 0 on the first date); nothing after legal_final_months. The
tranche's *miss* is the PD event of the simulation (FUNCTIONS.md: interest due not paid in
full in some period, or principal or deferred interest unpaid at the legal final), judged
by the same waterfall (:func:`npl_xl.engine.waterfall.waterfall_paths` on one path).

- recovery_haircut h: the smallest h in [0, 1] with a miss when every recovery is
  multiplied by (1 - h); found by bisection to 1e-4. The waterfall's cash is monotone in
  h in every period, so the miss is monotone in h for a senior tranche (less cash never
  pays more); for a mezzanine or subordinated tranche the reserve release and the
  senior's pass-through could in principle make it non-monotone: bisection then returns
  one haircut at which the tranche misses while h - 1e-4 does not.
- delay_months d: the smallest d >= 0 added to every recovery month with a miss (h = 0),
  by bisection to 0.01 months. The miss as a function of d is a step function (a loan
  changes payment date at discrete delays), monotone as long as paying later never pays
  more, true of interest due on a larger outstanding balance.
- breakeven_collections: the pool's total collections at h, (1 - h) x the base case's.

The issuance forecast the waterfall compares collections with (the CCR trigger, the reserve
target) stays the base case under every haircut and delay: the stressed deal is measured
against the plan it was issued on.

Both are 0 when the base case already misses; h is 1 (d the legal final) when no haircut
(delay) makes the tranche miss.
"""

from __future__ import annotations


import numpy as np

from npl_xl.analysis.sizing import tranche_index
from npl_xl.engine.pool import as_pool
from npl_xl.engine.waterfall import waterfall_paths
from npl_xl.inputs.deal import parse_settings, parse_tranches

__all__ = ["base_collections", "misses", "breakeven", "HAIRCUT_TOL", "DELAY_TOL"]

HAIRCUT_TOL = 1e-4
DELAY_TOL = 0.01


def base_collections(pool, settings, delay: float = 0.0) -> np.ndarray:
    """Collections per payment period (currency) when every loan recovers its expected
    recovery at its expected month + ``delay``: shape (n_periods,)."""
    pool = as_pool(pool)
    settings = parse_settings(settings)
    dates = settings.period_dates
    months = np.maximum(0.0, pool.expected_months + float(delay))
    k = np.clip(np.ceil(months / settings.payment_months - 1e-12).astype(np.int64), 1,
                len(dates)) - 1
    inside = months <= settings.legal_final_months + 1e-12
    out = np.zeros(len(dates))
    np.add.at(out, k[inside], pool.expected_recovery[inside])
    return out


def misses(collections: np.ndarray, tranches, settings, j: int, forecast=None) -> bool:
    """Whether tranche j misses (the PD event) on one vector of period collections;
    ``forecast`` is the issuance forecast per period (the CCR trigger's denominator and the
    reserve target's next-period collections; default the collections themselves)."""
    metrics = waterfall_paths(np.asarray(collections, dtype=float)[None, :], tranches, settings,
                              forecast=forecast)
    return bool(metrics["default"][0, j] > 0.0)


def _bisect(miss, lo: float, hi: float, tol: float) -> float:
    """Smallest x in [lo, hi] with miss(x), to tol, given not miss(lo) and miss(hi)."""
    for _ in range(200):
        if hi - lo <= tol:
            break
        mid = 0.5 * (lo + hi)
        if miss(mid):
            hi = mid
        else:
            lo = mid
    return hi


def breakeven(pool, tranches, tranche=None, settings=None) -> tuple[float, float, float]:
    """(recovery_haircut, delay_months, breakeven_collections) of ``tranche`` (blank =
    the first senior); see the module docstring. Haircut a decimal, delay in months,
    collections in currency."""
    pool = as_pool(pool)
    tranches = parse_tranches(tranches)
    settings = parse_settings(settings)
    j = tranche_index(tranches, tranche)
    base = base_collections(pool, settings)
    total = float(base.sum())
    if misses(base, tranches, settings, j, base):
        return 0.0, 0.0, total
    if not misses(np.zeros_like(base), tranches, settings, j, base):
        haircut = 1.0
    else:
        haircut = _bisect(lambda h: misses(base * (1.0 - h), tranches, settings, j, base), 0.0, 1.0,
                          HAIRCUT_TOL)
    final = float(settings.legal_final_months)
    if not misses(base_collections(pool, settings, final), tranches, settings, j, base):
        delay = final
    else:
        delay = _bisect(lambda d: misses(base_collections(pool, settings, d), tranches, settings,
                                         j, base),
                        0.0, final, DELAY_TOL)
    return float(haircut), float(delay), float(total * (1.0 - haircut))
