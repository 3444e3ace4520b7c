"""Convergence to a target standard error (Settings target_stderr and max_sims).

With ``target_stderr`` blank (the default) a run uses n_sims paths. With it set, the run
uses as many paths as it takes for the first senior tranche's el_stderr (the first tranche
when there is no senior) to be at or below it, by this deterministic rule:

    n_0 = min(n_sims, max_sims)
    simulate n_k paths; stop when el_stderr_k <= target_stderr or n_k = max_sims;
    else n_{k+1} = min(max_sims, round_up_4(max(ceil(1.1 n_k (se_k / target)^2), n_k + 4)))

(the standard error falls as 1 / sqrt(n), so 1.1 n_k (se_k / target)^2 is the path count
that should just meet the target, with 10 % to spare). Each run is a complete simulation
with its own n_k (the stratification of the national factor depends on the path count,
so paths of one run are not reused by the next); since every run is a pure function of
the inputs, the same inputs always give the same path count and the same numbers. When
max_sims is reached first, the figures at max_sims are returned with ``met`` False: not
an error; the Results run block says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from npl_xl.engine.simulate import DealResult, n_paths_for, simulate_deal
from npl_xl.inputs.deal import KIND_SENIOR, parse_settings, parse_tranches

__all__ = ["Convergence", "simulate_to_target", "converged_settings", "next_path_count",
           "SAFETY"]

#: Extra share of paths over the 1/sqrt(n) prediction.
SAFETY = 1.1


@dataclass(frozen=True)
class Convergence:
    """n_paths used; target (None = off); achieved el_stderr of the tranche watched;
    met (None when off); runs (simulations made); tranche watched."""

    n_paths: int
    target: float | None
    stderr: float
    met: bool | None
    runs: int
    tranche: str

    def run_info(self) -> list[tuple[str, object, str | None]]:
        """Rows for the Results run block."""
        if self.target is None:
            return [("target_stderr", "off (n_sims paths)", None)]
        return [("target_stderr (EL of " + self.tranche + ")", self.target, "0.0000%"),
                ("el_stderr achieved", self.stderr, "0.0000%"),
                ("paths used to reach the target", self.n_paths, "#,##0"),
                ("target met", "yes" if self.met else "no: max_sims reached", None),
                ("simulation runs", self.runs, "0")]


def watched_index(tranches) -> int:
    """The tranche whose el_stderr the target applies to: the first senior, else row 0."""
    return next((j for j, t in enumerate(tranches) if t.kind == KIND_SENIOR), 0)


def next_path_count(n: int, stderr: float, target: float, max_sims: int) -> int:
    """The path count of the next run (multiple of 4, at most max_sims, more than n)."""
    want = math.ceil(SAFETY * n * (stderr / target) ** 2)
    want = max(want, n + 4)
    want = -(-want // 4) * 4
    return int(min(max_sims, want))


def simulate_to_target(pool, tranches, settings=None, n_sims: int | None = None,
                       seed: int | None = None,
                       progress: Callable[[int, int], None] | None = None,
                       scheduler: str | None = None) -> tuple[DealResult, Convergence]:
    """simulate_deal with the target_stderr rule (module docstring). Returns the last
    run's DealResult and what the rule did. ``scheduler`` as for simulate_deal (blank = the
    settings' scheduler)."""
    tranches = parse_tranches(tranches)
    settings = parse_settings(settings).with_overrides(n_sims=n_sims, seed=seed)
    j = watched_index(tranches)
    name = tranches.items[j].name
    target = settings.target_stderr
    if target is None:
        result = simulate_deal(pool, tranches, settings, progress=progress, scheduler=scheduler)
        return result, Convergence(result.n_paths, None,
                                   float(result.tranche_table["el_stderr"].iloc[j]), None, 1, name)
    max_sims = int(settings.max_sims)
    n = min(int(settings.n_sims), max_sims)
    runs = 0
    while True:
        run_settings = settings.with_overrides(n_sims=n)
        result = simulate_deal(pool, tranches, run_settings, progress=progress,
                               scheduler=scheduler)
        runs += 1
        se = float(result.tranche_table["el_stderr"].iloc[j])
        n_done = n_paths_for(run_settings)
        if se <= target:
            return result, Convergence(result.n_paths, target, se, True, runs, name)
        if n_done >= max_sims:
            return result, Convergence(result.n_paths, target, se, False, runs, name)
        n = next_path_count(n_done, se, target, max_sims)


def converged_settings(pool, tranches, settings, progress=None):
    """(settings with n_sims set to the path count the target_stderr rule picks, its
    Convergence, the last run's DealResult); with target_stderr off the settings
    unchanged and (None, None): no simulation is made."""
    settings = parse_settings(settings)
    if settings.target_stderr is None:
        return settings, None, None
    result, info = simulate_to_target(pool, tranches, settings, progress=progress)
    return settings.with_overrides(n_sims=info.n_paths), info, result
