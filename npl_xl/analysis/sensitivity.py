"""What moves the numbers: NPL_SENSITIVITY, the tornado and the stress grid.

Every scenario is simulated on the same random numbers
(:func:`npl_xl.engine.scenarios.simulate_scenarios`: the pool's collections for blocks of
paths, every scenario from the same draws), then each scenario's waterfall figures are
computed per path and reduced in a fixed order (:func:`npl_xl.engine.simulate.tranche_table`,
as NPL_TRANCHE_EL reduces them). A shock equal to the base case therefore reproduces
NPL_TRANCHE_EL exactly, and differences between shocks are smooth where the model is:
on each path a larger recovery multiplier gives at least as much cash in every period
(the same draws scaled up), so the senior's loss cannot rise; a longer delay moves every
recovery to the same or a later payment date (or past the legal final).

Scenarios are run in groups of at most :data:`MAX_ELEMENTS` collection cells
(scenarios x paths x periods), so memory stays bounded whatever the number of shocks;
each group draws the same random numbers again (the draws are pure functions of the seed
and the path), so grouping changes nothing but the time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from npl_xl.analysis.convergence import converged_settings
from npl_xl.analysis.pricing import BidCollections, price_from_collections
from npl_xl.analysis.sizing import tranche_index
from npl_xl.engine.pool import as_pool
from npl_xl.engine.scenarios import VARIABLES, Scenario, simulate_scenarios
from npl_xl.engine.simulate import mc_mean, n_paths_for, tranche_table
from npl_xl.engine.waterfall import waterfall_paths
from npl_xl.errors import DomainError, InputTypeError
from npl_xl.inputs.deal import parse_settings, parse_tranches

__all__ = ["FIGURES", "scenario_tables", "sensitivity", "tornado", "bid_tornado",
           "stress_grid", "tornado_ranges", "MAX_ELEMENTS"]

#: Figures NPL_SENSITIVITY can return, as the tranche table names them.
FIGURES = ("EL", "PD", "WAL", "mean_irr", "rating")
#: Most collection cells (scenarios x paths x periods, 8 bytes each) held at once: 400 MB.
MAX_ELEMENTS = 50_000_000
#: Most shocks in one call.
MAX_SHOCKS = 256


def _groups(n_scenarios: int, n_paths: int, n_periods: int) -> list[range]:
    size = max(1, MAX_ELEMENTS // max(1, n_paths * n_periods))
    return [range(a, min(n_scenarios, a + size)) for a in range(0, n_scenarios, size)]


def scenario_collections(pool, settings, scenarios: Sequence[Scenario], each,
                         progress: Callable[[int, int], None] | None = None) -> list:
    """Call ``each(k, collections_k)`` for every scenario k (collections (n_paths,
    n_periods), currency), group by group (module docstring); returns the results in
    scenario order."""
    n = n_paths_for(settings)
    out = []
    groups = _groups(len(scenarios), n, settings.n_periods)
    total = n * len(groups)
    for g, group in enumerate(groups):
        report = None if progress is None else (lambda d, t, g=g: progress(g * n + d, total))
        coll = simulate_scenarios(pool, settings, [scenarios[k] for k in group], report)
        for local, k in enumerate(group):
            out.append(each(k, coll[local]))
        del coll
    return out


def scenario_tables(pool, tranches, settings, scenarios: Sequence[Scenario],
                    progress=None) -> list[pd.DataFrame]:
    """The tranche table (as simulate_deal's) of every scenario, on common random numbers."""
    tranches = parse_tranches(tranches)
    scenarios = list(scenarios)
    # the issuance forecast (CCR trigger, reserve target) is the base case's expected
    # collection curve for every scenario, as simulate_deal computes it: a stressed
    # scenario is measured against the plan the deal was issued on
    with_base = not scenarios or scenarios[0] != Scenario()
    runs = [Scenario()] + scenarios if with_base else scenarios
    forecast = []

    def each(k, coll):
        if k == 0:
            forecast.append(mc_mean(coll, settings.variance_reduction)[0])
            if with_base:
                return None
        metrics = waterfall_paths(coll, tranches, settings, forecast=forecast[0])
        return tranche_table(metrics, tranches, settings)

    tables = scenario_collections(as_pool(pool), settings, runs, each, progress)
    return tables[1:] if with_base else tables


def _check_figure(figure) -> str:
    if figure is None or str(figure).strip() == "":
        return "EL"
    lookup = {f.lower(): f for f in FIGURES}
    key = str(figure).strip().lower().replace(" ", "_")
    if key not in lookup:
        raise DomainError(f"unknown figure {figure!r}; use one of {', '.join(FIGURES)}",
                          argument="figure")
    return lookup[key]


def _shocks(shocks) -> list[float]:
    values = [float(v) for v in np.asarray(shocks, dtype=float).ravel()]
    if not values:
        raise InputTypeError("holds no shock", argument="shocks")
    if len(values) > MAX_SHOCKS:
        raise DomainError(f"at most {MAX_SHOCKS} shocks, got {len(values)}", argument="shocks")
    return values


def sensitivity(pool, tranches, variable: str, shocks, figure: str = "EL", tranche=None,
                settings=None, n_sims: int | None = None, seed: int | None = None,
                progress=None) -> pd.DataFrame:
    """NPL_SENSITIVITY: one row per shock: the shock, then ``figure`` of every tranche
    (blank ``tranche``) or of the named one.

    variable : rho (replaces the settings' rho), recovery (multiplier of every loan's
    recovery), sd (multiplier of every loan's recovery sd), delay (months added to every
    loan's expected months), timing_sd (replaces timing_sd_months); shocks : values;
    figure : EL (default), PD, WAL (years), mean_irr (annual) or rating.
    """
    pool = as_pool(pool)
    tranches = parse_tranches(tranches)
    figure = _check_figure(figure)
    values = _shocks(shocks)
    scenarios = [Scenario.shock(variable, v) for v in values]
    settings = parse_settings(settings).with_overrides(n_sims=n_sims, seed=seed)
    settings, _, _ = converged_settings(pool, tranches, settings)
    tables = scenario_tables(pool, tranches, settings, scenarios, progress)
    names = tranches.names
    columns = names if tranche is None or str(tranche).strip() == "" \
        else [names[tranche_index(tranches, tranche)]]
    rows = []
    for v, table in zip(values, tables):
        figures = dict(zip(table["name"], table[figure]))
        rows.append([v] + [figures[c] for c in columns])
    return pd.DataFrame(rows, columns=["shock"] + columns)


def tornado_ranges(settings) -> dict[str, tuple[float, float]]:
    """The (low, high) shock of each variable in the tornado: rho +-0.10 (within [0, 1]),
    recovery x0.9 / x1.1, sd x0.8 / x1.2, delay -6 / +6 months, timing sd 0 / twice the
    settings' (or 6 months when it is 0)."""
    rho = float(settings.rho)
    tsd = float(settings.timing_sd_months)
    return {"rho": (max(0.0, rho - 0.10), min(1.0, rho + 0.10)), "recovery": (0.9, 1.1),
            "sd": (0.8, 1.2), "delay": (-6.0, 6.0), "timing_sd": (0.0, 2.0 * tsd if tsd else 6.0)}


def _tornado_scenarios(ranges) -> tuple[list[Scenario], list[tuple[str, float, float]]]:
    scenarios = [Scenario()]
    spec = []
    for variable in VARIABLES:
        low, high = ranges[variable]
        scenarios += [Scenario.shock(variable, low), Scenario.shock(variable, high)]
        spec.append((variable, low, high))
    return scenarios, spec


def _tornado_frame(spec, base: float, values: list[float], label: str) -> pd.DataFrame:
    rows = []
    for k, (variable, low, high) in enumerate(spec):
        lo, hi = values[1 + 2 * k], values[2 + 2 * k]
        rows.append({"variable": variable, "low_shock": low, "high_shock": high,
                     "base": base, "low_value": lo, "high_value": hi,
                     "low_change": lo - base, "high_change": hi - base,
                     "swing": abs(hi - lo)})
    frame = pd.DataFrame(rows).sort_values("swing", ascending=False, kind="stable")
    frame.insert(0, "figure", label)
    return frame.reset_index(drop=True)


def tornado(pool, tranches, settings, figure: str = "EL", tranche=None, ranges=None,
            progress=None) -> pd.DataFrame:
    """Five variables at a low and a high shock each (eleven scenarios with the base, on
    common random numbers): one row per variable, the largest swing first: variable,
    low_shock, high_shock, base, low_value, high_value, low_change, high_change, swing."""
    pool = as_pool(pool)
    tranches = parse_tranches(tranches)
    settings = parse_settings(settings)
    figure = _check_figure(figure)
    if figure == "rating":
        raise DomainError("a tornado needs a numeric figure", argument="figure")
    j = tranche_index(tranches, tranche)
    scenarios, spec = _tornado_scenarios(ranges or tornado_ranges(settings))
    tables = scenario_tables(pool, tranches, settings, scenarios, progress)
    values = [float(t[figure].iloc[j]) for t in tables]
    return _tornado_frame(spec, values[0], values, f"{figure} of {tranches.items[j].name}")


def _bid_prices(pool, settings, scenarios, target_irr, confidence, progress=None):
    bid_settings = settings.for_bid()
    keep = (1.0 - settings.servicer_fee_rate) if settings.bid_net_of_servicing else 1.0

    def each(_k, coll):
        cash = coll * keep if keep != 1.0 else coll
        collections = BidCollections(cash, bid_settings.period_dates, pool.total_claim,
                                     bid_settings.variance_reduction)
        return price_from_collections(collections, target_irr, confidence)

    return scenario_collections(pool, bid_settings, scenarios, each, progress)


def bid_tornado(pool, settings, target_irr: float | None = None, confidence: float = 0.5,
                ranges=None, progress=None) -> pd.DataFrame:
    """The tornado of the package price (NPL_BID_PRICE at ``target_irr``, default the
    settings' discount_rate, and ``confidence``), currency; columns as :func:`tornado`."""
    pool = as_pool(pool)
    settings = parse_settings(settings)
    target = float(settings.discount_rate if target_irr is None else target_irr)
    scenarios, spec = _tornado_scenarios(ranges or tornado_ranges(settings))
    bids = _bid_prices(pool, settings, scenarios, target, confidence, progress)
    values = [b.price for b in bids]
    return _tornado_frame(spec, values[0], values, f"price at IRR {target:.1%}")


@dataclass
class StressGrid:
    """price[i, k] at recovery multiplier recoveries[i] and delay delays[k] (months)."""

    recoveries: tuple[float, ...]
    delays: tuple[float, ...]
    price: np.ndarray
    price_to_claim: np.ndarray
    target_irr: float

    def frame(self) -> pd.DataFrame:
        """One row per recovery multiplier, one column per delay ("+6m"): price."""
        frame = pd.DataFrame(self.price, columns=[f"delay_{d:g}m" for d in self.delays])
        frame.insert(0, "recovery", list(self.recoveries))
        return frame


def stress_grid(pool, settings, recoveries=(0.7, 0.8, 0.9, 1.0, 1.1),
                delays=(0.0, 6.0, 12.0, 18.0, 24.0), target_irr: float | None = None,
                confidence: float = 0.5, progress=None) -> StressGrid:
    """The package price (as NPL_BID_PRICE, at ``target_irr``, default the settings'
    discount_rate) over a grid of recovery multipliers and delays (months), every cell on
    the same random numbers."""
    pool = as_pool(pool)
    settings = parse_settings(settings)
    target = float(settings.discount_rate if target_irr is None else target_irr)
    scenarios = [Scenario(recovery=float(r), delay=float(d)) for r in recoveries for d in delays]
    bids = _bid_prices(pool, settings, scenarios, target, confidence, progress)
    shape = (len(recoveries), len(delays))
    price = np.array([b.price for b in bids]).reshape(shape)
    ratio = np.array([b.price_to_claim for b in bids]).reshape(shape)
    return StressGrid(tuple(recoveries), tuple(delays), price, ratio, target)
