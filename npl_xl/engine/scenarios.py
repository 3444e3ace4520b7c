"""Several scenarios of the pool's collections on the same random numbers.

A :class:`Scenario` changes what the analyses shock (FUNCTIONS.md "Structuring and
analysis"): rho, a multiplier of every loan's recovery rate, a multiplier of every loan's
recovery sd, months added to every loan's expected months, the timing sd. The scenarios
are simulated together, block by block of :data:`~npl_xl.engine.simulate.BLOCK_PATHS`
paths (:func:`npl_xl.engine.paths.collect_scenarios`): each (loan, path) draw is made once
and used by every scenario, so differences between scenarios are not Monte Carlo noise
(common random numbers), and a scenario equal to the settings gives bit for bit the
collections of :func:`~npl_xl.engine.simulate.simulate_collections` and hence the figures
of NPL_TRANCHE_EL.

How each shock uses the draws (loan i, path p, uniforms u, normals z = Phi^-1(u)):

- rho: Z = sqrt(rho') M + sqrt(1 - rho') z with the same M and z;
- recovery multiplier f: the rate R (after cap_at_expected) becomes min(1, f R), a
  per-loan scale of the same draw, so the loan's expected recovery is f times its own
  (less what the cap at the claim removes when f > 1);
- sd multiplier k: the loan's Beta is refitted with sd k x recovery_sd (capped at the
  pool's sd_cap_factor x sqrt(mu (1 - mu)) as usual) and read at the same Z;
- delay d: the recovery month is (expected_months + d) x timing multiplier + eta;
- timing sd: eta = timing_sd' x z_timing with the same z_timing.

The cost is one pass of draws plus, per scenario, a table lookup, a payment period and a
booking per (loan, path): eleven scenarios cost far less than eleven simulations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from npl_xl import rng
from npl_xl.engine import paths
from npl_xl.engine.pool import Pool
from npl_xl.engine.simulate import BLOCK_PATHS, n_paths_for, pool_tables
from npl_xl.errors import DomainError

__all__ = ["Scenario", "simulate_scenarios", "scenario_blocks", "VARIABLES"]

#: The variables a scenario can shock, as NPL_SENSITIVITY names them.
VARIABLES = ("rho", "recovery", "sd", "delay", "timing_sd")


@dataclass(frozen=True)
class Scenario:
    """Changes to the settings' model: None keeps the settings' value.

    rho : decimal in [0, 1], replaces settings.rho.
    recovery : multiplier (> 0) of every loan's recovery rate (0.9 = 10 % lower).
    sd : multiplier (>= 0) of every loan's recovery sd.
    delay : months (>= 0, or negative down to bring recoveries earlier; floored at month 0)
        added to every loan's expected months.
    timing_sd : months (>= 0), replaces settings.timing_sd_months.
    """

    rho: float | None = None
    recovery: float = 1.0
    sd: float = 1.0
    delay: float = 0.0
    timing_sd: float | None = None

    @classmethod
    def shock(cls, variable: str, value: float) -> "Scenario":
        """The scenario that sets one NPL_SENSITIVITY variable to ``value``."""
        name = str(variable).strip().lower()
        if name not in VARIABLES:
            raise DomainError(f"unknown variable {variable!r}; use one of {', '.join(VARIABLES)}",
                              argument="variable")
        value = float(value)
        if not np.isfinite(value):
            raise DomainError("a shock is not a finite number", argument="shocks")
        if name == "rho" and not 0.0 <= value <= 1.0:
            raise DomainError(f"rho must be in [0, 1], got {value:g}", argument="shocks")
        if name == "recovery" and not value > 0.0:
            raise DomainError(f"a recovery multiplier must be > 0, got {value:g}", argument="shocks")
        if name in ("sd", "timing_sd") and value < 0.0:
            raise DomainError(f"{name} must be >= 0, got {value:g}", argument="shocks")
        if name == "delay" and abs(value) > 1200.0:
            raise DomainError(f"a delay must be within ±1200 months, got {value:g}", argument="shocks")
        field = {"rho": "rho", "recovery": "recovery", "sd": "sd", "delay": "delay",
                 "timing_sd": "timing_sd"}[name]
        return cls(**{field: value})


def _sd_tables(pool: Pool, multipliers: Sequence[float]) -> tuple[np.ndarray, dict]:
    """Quantile tables per distinct sd multiplier, stacked (n_sets, n_loans, K, 4), and the
    index of each multiplier's set."""
    distinct = sorted(set(float(k) for k in multipliers), key=lambda k: (k != 1.0, k))
    tables = []
    for k in distinct:
        if k == 1.0:
            tables.append(pool_tables(pool))
        else:
            shocked = Pool.from_arrays(pool.claim, pool.expected_recovery,
                                       pool.expected_months, pool.recovery_sd * k,
                                       pool.region_id, pool.sd_cap_factor)
            tables.append(pool_tables(shocked))
    stacked = tables[0][None] if len(tables) == 1 else np.stack(tables)
    return stacked, {k: j for j, k in enumerate(distinct)}


def scenario_blocks(n_paths: int) -> list[tuple[int, int]]:
    """(first path, paths) of each block, in the fixed order the reductions use."""
    return [(start, min(n_paths, start + BLOCK_PATHS) - start)
            for start in range(0, n_paths, BLOCK_PATHS)]


def simulate_scenarios(pool: Pool, settings, scenarios: Sequence[Scenario],
                       progress: Callable[[int, int], None] | None = None,
                       block_order=None) -> np.ndarray:
    """Collections of every scenario on the same draws: array (S, n_paths, n_periods),
    currency per path and payment period.

    ``settings`` is a parsed DealSettings (n_sims and seed applied). ``block_order`` (a
    permutation of the block indices) computes the blocks in another order with identical
    results, as a distributed backend may. ``progress(done_paths, total_paths)`` is called
    after each block.
    """
    n = n_paths_for(settings)
    rho = np.array([settings.rho if s.rho is None else s.rho for s in scenarios], dtype=float)
    scale = np.array([s.recovery for s in scenarios], dtype=float)
    delay = np.array([s.delay for s in scenarios], dtype=float)
    timing = np.array([settings.timing_sd_months if s.timing_sd is None else s.timing_sd
                       for s in scenarios], dtype=float)
    coefs, index_of = _sd_tables(pool, [s.sd for s in scenarios])
    coef_index = np.array([index_of[float(s.sd)] for s in scenarios], dtype=np.int64)
    words = rng.seed_key(settings.seed)
    out = np.empty((len(scenarios), n, settings.n_periods))
    blocks = scenario_blocks(n)
    order = range(len(blocks)) if block_order is None else block_order
    done = 0
    for b in order:
        start, size = blocks[b]
        out[:, start:start + size] = paths.collect_scenarios(
            words, start, size, n, settings.variance_reduction, coefs, pool, settings, rho,
            coef_index, scale, delay, timing)
        done += size
        if progress is not None:
            progress(done, n)
    return out
