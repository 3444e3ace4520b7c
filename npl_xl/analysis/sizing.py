"""Tranche sizing (分层测算, NPL_TRANCHE_SIZE): the largest balance that keeps a rating.

The pool's collections do not depend on the tranche structure, so they are simulated once
(:func:`npl_xl.engine.simulate.simulate_collections`, the paths NPL_TRANCHE_EL uses for
the same settings, n_sims and seed) and only the waterfall is re-run for each candidate
balance (:func:`npl_xl.engine.waterfall.waterfall_paths`, about 1/60 of a simulation on
10,000 loans). On these common random numbers the tranche's EL and WAL are continuous,
piecewise smooth functions of its balance B. For a target rating r the balance passes when
NPL_RATING(EL(B), WAL(B)) is r or better, i.e. when

    g_r(B) = EL(B) - idealized_el(r, WAL(B)) (1 + 1e-9) <= 0.

Search
------
1. hi = twice the largest total collections of any path: there every path loses at least
   half of the balance, more than any rating's idealized EL, so g_r(hi) > 0 for every r.
2. g is evaluated on a shared grid (:data:`GRID_SHARES` times the mean total collections
   per path, and hi); every evaluation serves every target rating, and the evaluations
   made for one target that fall in another's bracket narrow it.
3. For each target the bracket is the largest grid balance that passes and the next one
   (which fails); it is narrowed by the Illinois variant of regula falsi (a bracketing
   secant method, never leaving the bracket) until hi - lo <= 1e-4 lo (the contract's
   0.01 % of the balance). The result is lo, a balance that passes; lo (1 + 1e-4) fails.

Where monotonicity fails
------------------------
For a senior tranche under pass-through, EL rises with B on every path (more interest
and principal due from the same cash), but the rating threshold rises with the WAL, which
also rises with B, so g_r need not be monotone; and a mezzanine's EL as the *senior*
grows is not what is sized here (every other row of the tranches table is unchanged). If
g_r crosses zero more than once, the search returns the crossing after the largest
passing grid balance: the largest passing balance found to 0.01 %, except that a passing
island between two grid balances beyond it would be missed. When no
grid balance passes and even :data:`MIN_SHARE` x hi fails, no positive balance reaches
the target and the result is ``#NUM!``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from npl_xl.engine.pool import as_pool
from npl_xl.engine.simulate import mc_mean, simulate_collections, tranche_table
from npl_xl.engine.waterfall import waterfall_paths
from npl_xl.errors import DomainError, InputTypeError, UnknownCodeError
from npl_xl.inputs.deal import KIND_SENIOR, Tranches, parse_settings, parse_tranches
from npl_xl.model.rating import BELOW_TABLE, RATINGS, idealized_el, rating_from_el

__all__ = ["SizeResult", "tranche_size", "size_from_collections", "tranche_index",
           "parse_ratings", "with_balance", "GRID_SHARES", "BALANCE_TOL"]

#: Relative tolerance of the balance found (the contract's 0.01 %).
BALANCE_TOL = 1e-4
#: The smallest balance tried, as a share of hi, when no grid balance passes.
MIN_SHARE = 1e-6
#: Relative margin of NPL_RATING's comparison (an EL typed as a table figure rates in its band).
_RATING_MARGIN = 1e-9
#: EL below which a balance counts as loss-free in the search's log scale (decimal).
_EL_FLOOR = 1e-15
#: The shared first grid, as multiples of the mean total collections per path.
GRID_SHARES = (0.25, 0.5, 0.625, 0.75, 0.875, 1.0, 1.25, 1.5)


def tranche_index(tranches: Tranches, name) -> int:
    """Row of the tranches table named ``name`` (case- and space-insensitive); blank
    (None or "") = the first senior tranche. UnknownCodeError (#N/A) naming the choices."""
    if name is None or str(name).strip() == "":
        for j, t in enumerate(tranches):
            if t.kind == KIND_SENIOR:
                return j
        raise DomainError("the tranches table has no senior tranche; name one", argument="tranche")
    key = " ".join(str(name).split()).lower()
    for j, t in enumerate(tranches):
        if " ".join(t.name.split()).lower() == key:
            return j
    raise UnknownCodeError(f"no tranche named {name!r}; the tranches are "
                           + ", ".join(tranches.names), argument="tranche")


def parse_ratings(values) -> list[str]:
    """Rating names (Moody's spelling, from RATINGS) from text, case-insensitive; a list or
    a single value. UnknownCodeError (#N/A) for an unknown rating."""
    items = values if isinstance(values, (list, tuple)) else [values]
    lookup = {r.lower(): r for r in RATINGS}
    out = []
    for item in items:
        if item is None or str(item).strip() == "":
            continue
        rating = lookup.get(str(item).strip().lower())
        if rating is None:
            raise UnknownCodeError(f"unknown rating {item!r}; use one of {', '.join(RATINGS)}",
                                   argument="target_rating")
        out.append(rating)
    if not out:
        raise InputTypeError("holds no rating", argument="target_rating")
    return out


def with_balance(tranches: Tranches, j: int, balance: float) -> Tranches:
    """The tranches with row j's balance set to ``balance`` (currency); its issue price
    keeps its ratio to the balance (equal to it by default)."""
    items = list(tranches.items)
    t = items[j]
    items[j] = replace(t, balance=float(balance),
                       issue_price=float(balance) * t.issue_price / t.balance)
    return Tranches(tuple(items))


@dataclass
class SizeResult:
    """table: one row per target (target_rating, balance, share_of_expected_recovery, EL,
    WAL, el_stderr, evaluations); tranche: the tranche sized; n_paths; evaluations: the
    waterfall runs made (all targets together)."""

    table: pd.DataFrame
    tranche: str
    n_paths: int
    evaluations: int

    def contract_table(self) -> pd.DataFrame:
        return self.table[["target_rating", "balance", "share_of_expected_recovery", "EL", "WAL"]]


class _Evaluator:
    """EL and WAL of tranche j at a balance, on fixed collections, cached by balance."""

    def __init__(self, collections, tranches, j, settings, progress=None):
        self.collections = collections
        self.tranches = tranches
        self.j = j
        self.settings = settings
        self.cache: dict[float, pd.Series] = {}
        self.progress = progress
        # the issuance forecast (CCR trigger, reserve target), as simulate_deal computes it
        self.forecast = mc_mean(collections, settings.variance_reduction)[0]

    def row(self, balance: float) -> pd.Series:
        balance = float(balance)
        if balance not in self.cache:
            candidate = with_balance(self.tranches, self.j, balance)
            metrics = waterfall_paths(self.collections, candidate, self.settings,
                                      forecast=self.forecast)
            self.cache[balance] = tranche_table(metrics, candidate, self.settings).iloc[self.j]
            if self.progress is not None:
                self.progress(len(self.cache))
        return self.cache[balance]

    def g(self, balance: float, rating: str) -> float:
        """log EL - log threshold: <= 0 exactly when the balance passes; in logs because
        EL grows roughly exponentially in the balance, which the secant steps prefer."""
        row = self.row(balance)
        threshold = idealized_el(rating, float(row["WAL"])) * (1.0 + _RATING_MARGIN)
        return float(np.log(max(float(row["EL"]), _EL_FLOOR)) - np.log(threshold))

    def passes(self, balance: float, rating: str) -> bool:
        row = self.row(balance)
        got = rating_from_el(min(1.0, float(row["EL"])), float(row["WAL"]))
        return _rank(got) <= _rank(rating)


def _rank(rating: str) -> int:
    return len(RATINGS) if rating == BELOW_TABLE else RATINGS.index(rating)


def _illinois(f, lo: float, f_lo: float, hi: float, f_hi: float, tol: float):
    """Narrow a bracket (f(lo) <= 0 < f(hi)) by the Illinois method until hi - lo <= tol lo.
    Returns (lo, hi) with f(lo) <= 0 < f(hi)."""
    side = 0
    for _ in range(200):
        if hi - lo <= tol * lo:
            break
        x = hi - f_hi * (hi - lo) / (f_hi - f_lo) if f_hi != f_lo else 0.5 * (lo + hi)
        # stay strictly inside, at least a quarter-tolerance away from the ends
        margin = 0.25 * tol * lo
        x = min(max(x, lo + margin), hi - margin)
        fx = f(x)
        if fx <= 0.0:
            lo, f_lo = x, fx
            if side == -1:
                f_hi *= 0.5
            side = -1
        else:
            hi, f_hi = x, fx
            if side == 1:
                f_lo *= 0.5
            side = 1
    return lo, hi


def size_from_collections(collections: np.ndarray, tranches, targets: Sequence[str],
                          tranche=None, settings=None, expected_recovery: float | None = None,
                          progress: Callable[[int], None] | None = None) -> SizeResult:
    """Size ``tranche`` for each target rating on simulated ``collections`` (n_paths,
    n_periods; currency), see the module docstring.

    tranches : the Tranches table; targets : rating names (see :func:`parse_ratings`);
    tranche : name or blank (first senior); settings : the DealSettings the collections were
    simulated with; expected_recovery : the pool's valued expected recovery (currency), the
    denominator of share_of_expected_recovery.
    """
    tranches = parse_tranches(tranches)
    settings = parse_settings(settings)
    targets = parse_ratings(list(targets))
    j = tranche_index(tranches, tranche)
    if BELOW_TABLE in targets:
        raise DomainError(f"{BELOW_TABLE} is below every rating of the table: any balance "
                          "rates it", argument="target_rating")
    evaluator = _Evaluator(collections, tranches, j, settings, progress)
    hi_all = 2.0 * float(collections.sum(axis=1).max())
    if not hi_all > 0.0:
        raise DomainError("the simulated collections are zero on every path: no positive "
                          "balance reaches any rating", argument="tape")
    mean_total = float(collections.sum(axis=1).mean())
    grid = sorted({min(hi_all, share * mean_total) for share in GRID_SHARES} | {hi_all})
    rows = []
    for rating in targets:
        passing = [b for b in grid if evaluator.g(b, rating) <= 0.0]
        if passing:
            lo = max(passing)
            hi = min(b for b in grid if b > lo)  # hi_all fails for every rating (docstring)
        else:
            lo, hi = MIN_SHARE * hi_all, grid[0]
            if evaluator.g(lo, rating) > 0.0:
                raise DomainError(
                    f"no positive balance of {tranches.items[j].name} reaches {rating} (even "
                    f"{lo:,.0f} has EL {evaluator.row(lo)['EL']:.4%})", argument="target_rating")
        # earlier targets' evaluations inside the bracket narrow it for free
        inside = [b for b in evaluator.cache if lo < b < hi]
        lo = max([lo] + [b for b in inside if evaluator.g(b, rating) <= 0.0])
        hi = min([hi] + [b for b in inside if b > lo and evaluator.g(b, rating) > 0.0])
        lo, hi = _illinois(lambda b: evaluator.g(b, rating), lo, evaluator.g(lo, rating),
                           hi, evaluator.g(hi, rating), BALANCE_TOL)
        row = evaluator.row(lo)
        if not evaluator.passes(lo, rating):  # the continuous test and NPL_RATING agree up to
            raise DomainError(f"sizing for {rating} did not converge",  # pragma: no cover
                              argument="target_rating")
        rows.append({"target_rating": rating, "balance": lo,
                     "share_of_expected_recovery": (lo / expected_recovery
                                                    if expected_recovery else float("nan")),
                     "EL": float(row["EL"]), "WAL": float(row["WAL"]),
                     "el_stderr": float(row["el_stderr"]), "rating": row["rating"]})
    return SizeResult(pd.DataFrame(rows), tranches.items[j].name, collections.shape[0],
                      len(evaluator.cache))


def tranche_size(pool, tranches, targets, tranche=None, settings=None,
                 n_sims: int | None = None, seed: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> SizeResult:
    """NPL_TRANCHE_SIZE: simulate the pool's collections once, then size (see the module
    docstring).

    pool : engine Pool or valued tape; tranches : Tranches table; targets : a rating or a
    list of ratings; tranche : name or blank (first senior); settings, n_sims, seed : as for
    NPL_TRANCHE_EL (with target_stderr set, the path count is the one NPL_TRANCHE_EL's
    convergence rule picks for the tranches table as given).
    """
    from npl_xl.analysis.convergence import converged_settings

    pool = as_pool(pool)
    tranches = parse_tranches(tranches)
    targets = parse_ratings(targets)
    settings = parse_settings(settings).with_overrides(n_sims=n_sims, seed=seed)
    settings, _, result = converged_settings(pool, tranches, settings, progress)
    collections = (result.path_collections if result is not None
                   else simulate_collections(pool, settings, progress))
    return size_from_collections(collections, tranches, targets, tranche, settings,
                                 float(pool.expected_recovery.sum()))
