"""simulate_deal: Monte Carlo of the pool's collections through the waterfall.

Estimators and their standard errors
------------------------------------
With variance reduction (the default) the n paths form Q = n/2 antithetic pairs and pair q
draws its national factor from stratum q of Q equal-probability strata. Paths within a pair
are dependent and the strata are not identically distributed, so the naive sd/sqrt(n) is
wrong. Each figure X (a tranche's loss, default flag, IRR; a period's collections) is first
averaged per pair, Y_q = (X_2q + X_2q+1)/2, an unbiased estimate with one draw per stratum.
The estimate is mean(Y). Its standard error uses collapsed strata: adjacent strata (2h,
2h+1) are treated as one stratum with two draws, so

    SE^2 = sum_h (Y_2h - Y_2h+1)^2 / Q^2,

which is unbiased when adjacent strata have the same mean and otherwise errs on the safe
(large) side. That is why n is rounded up to a multiple of 4. Without variance reduction
the paths are independent and SE = sd / sqrt(n).

Reproducibility: every path is a pure function of (seed, path index) (see
:mod:`npl_xl.engine.paths`); the per-path arrays and all reductions over them are done in a
fixed order, so the figures do not depend on the thread count or on the block order.

Blocks: the paths are cut into blocks (:func:`block_ranges`); :func:`simulate_block` is the
one computation of a block (collections, then a per-path function such as the waterfall),
called in this process or by a Dask task (:mod:`npl_xl.engine.backends`). The blocks'
per-path rows are copied into whole-run arrays in path order (:func:`assemble_blocks`) and
every figure is reduced from those arrays here, on the client, by the same code whatever ran
the blocks: that is why a cluster run is identical to an in-process one, bit for bit.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from npl_xl import rng
from npl_xl.inputs.deal import DealSettings, parse_settings, parse_tranches
from npl_xl.model.rating import rating_from_el
from npl_xl.engine import paths, quantile
from npl_xl.engine.pool import Pool, as_pool
from npl_xl.engine.waterfall import waterfall_paths, yield_at_coupon_basis

__all__ = ["NOT_RATED", "DealResult", "simulate_deal", "simulate_collections", "mc_mean", "pool_tables",
           "n_paths_for", "BLOCK_PATHS", "tranche_table", "block_ranges", "simulate_block",
           "assemble_blocks", "run_blocks", "WaterfallFigures", "ScenarioWaterfalls"]

#: The rating of a subordinated tranche: not rated (Chinese agencies do not rate them).
NOT_RATED = "NR"

#: Paths per block between progress reports (a multiple of 4).
BLOCK_PATHS = 2048

#: Loans whose quantile tables exist at one time (N_INTERVALS x 4 x 8 bytes = 4 KiB each, so
#: 128 MiB): a pool larger than this is simulated one block of loans after another, each
#: block's tables built once and dropped, with numbers identical to one pass (paths.collect).
#: Memory is then O(loans x 8 bytes x a few arrays + LOAN_BLOCK x 4 KiB + paths x periods x 8).
LOAN_BLOCK = 32_768


def n_paths_for(settings: DealSettings) -> int:
    """Paths actually simulated: n_sims, rounded up to a multiple of 4 with variance reduction."""
    n = int(settings.n_sims)
    return -(-n // 4) * 4 if settings.variance_reduction else n


def mc_mean(values: np.ndarray, antithetic: bool) -> tuple[float, float]:
    """Estimate and standard error of the mean of a per-path figure (see module docstring).

    values : array (n_paths,) or (n_paths, m); NaN entries are not allowed.
    Returns (mean, stderr), arrays of shape (m,) for 2-D input.
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[0]
    if antithetic:
        pairs = 0.5 * (x[0::2] + x[1::2])
        q = pairs.shape[0]
        diff = pairs[0::2] - pairs[1::2]
        return pairs.mean(axis=0), np.sqrt((diff * diff).sum(axis=0)) / q
    return x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(n)


_TABLE_CACHE: "OrderedDict[str, np.ndarray]" = OrderedDict()
_TABLE_CACHE_SIZE = 4


def pool_tables(pool: Pool) -> np.ndarray:
    """The pool's quantile tables, cached by the pool's Beta parameters (the tables do not
    depend on rho, timing or the structure, so re-running a deal does not rebuild them)."""
    digest = hashlib.sha256()
    for array in (pool.alpha, pool.beta, pool.mean):
        digest.update(np.ascontiguousarray(array).tobytes())
    key = digest.hexdigest()
    if key in _TABLE_CACHE:
        _TABLE_CACHE.move_to_end(key)
        return _TABLE_CACHE[key]
    coef = quantile.build_tables(pool.alpha, pool.beta, pool.mean)
    _TABLE_CACHE[key] = coef
    while len(_TABLE_CACHE) > _TABLE_CACHE_SIZE:
        _TABLE_CACHE.popitem(last=False)
    return coef


def block_ranges(n_paths: int, block_paths: int | None = None) -> list[tuple[int, int]]:
    """(first, stop) path indices of each block, in path order.

    block_paths is rounded up to a multiple of 4 (whole antithetic pairs, and whole pairs of
    pairs for the standard error); None = :data:`BLOCK_PATHS`.
    """
    size = BLOCK_PATHS if block_paths is None else max(4, -(-int(block_paths) // 4) * 4)
    return [(start, min(n_paths, start + size)) for start in range(0, n_paths, size)]


def simulate_block(pool: Pool, settings: DealSettings, first: int, stop: int,
                   per_path: Callable | None = None, keep_collections: bool = True,
                   coef: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The one computation of a block of paths, in this process or on a cluster worker.

    Paths first .. stop - 1 of the n_paths_for(settings) paths: their collections
    (currency, shape (stop - first, n_periods)), then ``per_path(collections, settings)``
    (a dict of arrays with one row per path, e.g. the waterfall's figures). Every path is a
    pure function of (seed, path index), so the block's numbers do not depend on where, when
    or how often it is computed.

    With settings.tax_base = interest the block also has its taxable collections (each
    loan's recoveries above its principal, currency, the collections' shape): returned as
    "taxable" (when keep_collections) and given to ``per_path`` as ``taxable=``.

    Returns a dict: "collections" (when keep_collections) and per_path's entries.
    """
    words = rng.seed_key(settings.seed)
    n_total = n_paths_for(settings)
    n_loans = pool.n_loans
    taxable = (np.empty((stop - first, settings.n_periods))
               if getattr(settings, "tax_base", "collections") == "interest" else None)
    if coef is not None or n_loans <= LOAN_BLOCK:
        coef = pool_tables(pool) if coef is None else coef
        collections = paths.collect(words, first, stop - first, n_total,
                                    settings.variance_reduction, coef, pool, settings,
                                    taxable=taxable)
    else:  # a large pool: one block of loans' tables at a time, never cached
        collections = None
        for first_loan in range(0, n_loans, LOAN_BLOCK):
            loans = slice(first_loan, min(n_loans, first_loan + LOAN_BLOCK))
            block_coef = quantile.build_tables(pool.alpha[loans], pool.beta[loans],
                                               pool.mean[loans])
            if collections is None:
                collections = paths.collect(words, first, stop - first, n_total,
                                            settings.variance_reduction, block_coef, pool,
                                            settings, loans=loans, taxable=taxable)
            else:  # add this block's loans to the earlier blocks' collections
                paths.collect(words, first, stop - first, n_total, settings.variance_reduction,
                              block_coef, pool, settings, loans=loans, out=collections,
                              taxable=taxable)
            del block_coef
    out = {"collections": collections} if keep_collections else {}
    if keep_collections and taxable is not None:
        out["taxable"] = taxable
    if per_path is not None:
        out.update(per_path(collections, settings) if taxable is None
                   else per_path(collections, settings, taxable=taxable))
    return out


def assemble_blocks(blocks: list[dict[str, np.ndarray]], n_paths: int) -> dict[str, np.ndarray]:
    """Per-path arrays of the whole run from its blocks, given in path order: each entry
    has shape (n_paths, ...), block b's rows at its paths. Pure copying: no arithmetic."""
    if not blocks:
        return {}
    out = {name: np.empty((n_paths,) + value.shape[1:], dtype=value.dtype)
           for name, value in blocks[0].items()}
    row = 0
    for block in blocks:
        size = next(iter(block.values())).shape[0]
        for name, value in block.items():
            out[name][row:row + size] = value
        row += size
    if row != n_paths:
        raise RuntimeError(f"the blocks hold {row} paths, expected {n_paths}")
    return out


def run_blocks(pool, settings, per_path: Callable | None = None, *,
               keep_collections: bool = True, scheduler: str | None = None,
               progress: Callable[[int, int], None] | None = None,
               block_order=None) -> dict[str, np.ndarray]:
    """Simulate every block of paths and apply ``per_path`` to each; the per-path results.

    This is the engine's one entry for "collections per block of paths, then figures per
    path", whichever backend runs the blocks (see :mod:`npl_xl.engine.backends`).

    Parameters
    ----------
    pool : Pool or valued-tape DataFrame
    settings : DealSettings or anything parse_settings accepts
        n_sims, seed, block_paths and scheduler are read from it.
    per_path : callable(collections, settings) -> dict of arrays, optional
        Called on each block (on the worker, for a cluster; must then be picklable: a
        module-level function or a dataclass instance with ``__call__``); each array has one
        row per path of the block.
    keep_collections : bool
        Return the per-path collections too (key "collections", currency, shape
        (n_paths, n_periods)); False saves their transfer when only per_path's figures
        are needed.
    scheduler : str, optional
        Overrides settings.scheduler (blank = this process; local, local:N, tcp://HOST:PORT).
    progress : callable(done_paths, total_paths), optional
        Called as blocks complete.
    block_order : permutation of the block indices, optional
        Compute the blocks in this order (in this process only; the result is identical).

    Returns
    -------
    dict name -> array (n_paths, ...), rows in path order, identical bit for bit whatever
    the backend, the worker count, the block size, the block order or retries.
    """
    from npl_xl.engine.backends import backend_for

    pool = as_pool(pool)
    settings = parse_settings(settings)
    n = n_paths_for(settings)
    backend = backend_for(settings.scheduler if scheduler is None else scheduler)
    ranges = block_ranges(n, backend.block_paths(n, settings.block_paths))
    blocks = backend.map_blocks(pool, settings, ranges, per_path, keep_collections,
                                progress=progress, block_order=block_order)
    return assemble_blocks(blocks, n)


def simulate_collections(pool, settings, progress: Callable[[int, int], None] | None = None,
                         block_order=None, scheduler: str | None = None) -> np.ndarray:
    """Pool collections per path and payment period, shape (n_paths, n_periods), currency.

    ``block_order`` (a permutation of the block indices) computes the blocks in another
    order; the result is identical (used by the determinism tests). ``scheduler`` overrides
    the settings' (see :func:`run_blocks`).

    Examples
    --------
    >>> from npl_xl import pool_from_tape, simulate_collections
    >>> tape = [["loan_id", "claim", "province", "collateral_type", "collateral_value",
    ...          "stage", "guarantor_recovery"],
    ...         ["L1", 1_000_000, "浙江", "住宅", 900_000, "auction_1", None],
    ...         ["L2", 400_000, "Jiangsu", "none", None, "judgment", 100_000]]
    >>> paths = simulate_collections(pool_from_tape(tape), {"n_sims": 400, "seed": 7})
    >>> paths.shape   # 400 paths x 10 half-yearly periods to the 60-month legal final
    (400, 10)
    """
    settings = parse_settings(settings)
    if settings.tax_base != "collections":  # the collections only, not the taxable part
        settings = replace(settings, tax_base="collections")
    return run_blocks(pool, settings, None, scheduler=scheduler, progress=progress,
                      block_order=block_order)["collections"]


@dataclass(frozen=True)
class ScenarioWaterfalls:
    """Per-path function for the analyses: the waterfall of several scenarios on the same
    simulated collections (common random numbers), one :func:`run_blocks` call for all.

    scenarios : tuple of (name, tranches, settings or None)
        Each scenario's Tranches and waterfall settings (None = the run's). Only the
        waterfall's keys (fees, taxes, reserve, liquidity, triggers, ...) may differ from
        the run's: the collections, and so the payment dates, are the run's.
    forecast : array (n_periods,)
        The issuance forecast (currency per period: the whole run's expected collection
        curve, as simulate_deal uses). Required: a block's own mean would differ from block
        to block. Get it from a first pass (:func:`simulate_collections` then
        :func:`mc_mean`), or from the deal's DealResult.extras["forecast"].

    Returns per block "{name}/loss", "{name}/wal", "{name}/irr", "{name}/default",
    "{name}/pv" (arrays (paths, tranches)) and "{name}/liquidity_loss" (paths,), as
    :func:`npl_xl.engine.waterfall.waterfall_paths`.
    """

    scenarios: tuple
    forecast: np.ndarray
    tax_forecast: np.ndarray | None = None   # tax_base = interest: the taxable forecast

    def __call__(self, collections: np.ndarray, settings: DealSettings,
                 taxable: np.ndarray | None = None) -> dict[str, np.ndarray]:
        out = {}
        for name, tranches, own_settings in self.scenarios:
            figures = waterfall_paths(collections, tranches, own_settings or settings,
                                      forecast=self.forecast, taxable=taxable,
                                      tax_forecast=_tax_forecast(self, taxable))
            out.update({f"{name}/{key}": value for key, value in figures.items()})
        return out


@dataclass(frozen=True)
class WaterfallFigures:
    """Per-path function: one structure's waterfall figures per path (see
    :class:`ScenarioWaterfalls`; ``forecast`` as there)."""

    tranches: object
    forecast: np.ndarray
    tax_forecast: np.ndarray | None = None   # tax_base = interest: the taxable forecast

    def __call__(self, collections: np.ndarray, settings: DealSettings,
                 taxable: np.ndarray | None = None) -> dict[str, np.ndarray]:
        return waterfall_paths(collections, self.tranches, settings, forecast=self.forecast,
                               taxable=taxable, tax_forecast=_tax_forecast(self, taxable))


def _tax_forecast(figures, taxable):
    """The per-path function's taxable forecast; required with taxable paths, since a
    block's own mean would differ from block to block."""
    if taxable is not None and figures.tax_forecast is None:
        raise ValueError("tax_base = interest: give the run's tax_forecast (the mean taxable "
                         "collections per period), as for forecast")
    return figures.tax_forecast


@dataclass
class DealResult:
    """What :func:`simulate_deal` returns.

    Attributes
    ----------
    tranche_table : DataFrame
        One row per tranche in table order: name, kind, balance, coupon, EL (decimal), PD
        (decimal), WAL (years), mean_irr (effective annual decimal), rating ("NR" for a
        subordinated tranche), el_stderr, pd_stderr, wal_stderr, irr_stderr, expected_pv
        (currency: the tranche's interest and principal, not the residual, discounted at its
        coupon, or for a subordinated tranche with a blank coupon at sub_return_rate),
        yield_at_coupon_basis and its yield_stderr (the mean over paths of the IRR restated
        as an annual rate compounded per payment period, the coupon's basis: a par tranche
        paid as promised yields its coupon).
    collection_curve : DataFrame
        One row per payment period: period (1..), month, expected_collections (currency),
        stderr, cumulative_share_of_claims (decimal of the pool's total claim).
    tranche_loss, tranche_irr : dict name -> array (n_paths,)
        Per-path loss (decimal of B0) and IRR (effective annual decimal; -1 = nothing paid).
    tranche_wal, tranche_default : dict name -> array (n_paths,)
        Per-path WAL (years; NaN when no principal paid) and default flag (0/1).
    pool_collections : array (n_paths,)
        Total collections of the pool per path (currency, undiscounted, within the legal final).
    path_collections : array (n_paths, n_periods)
        Collections per path and payment period (currency).
    period_months : array (n_periods,)
        Payment dates in months after closing.
    settings : DealSettings
        The settings used (n_sims and seed overrides applied).
    n_paths : int
        Paths simulated (n_sims rounded up to a multiple of 4 with variance reduction).
    total_claim, expected_recovery : float
        The pool's total claim and expected recovery (currency).
    pool_pv_mean, pool_pv_stderr : float
        Expected present value of the collections at settings.discount_rate (annual effective).
    n_sd_capped : int
        Loans whose recovery sd was capped at sd_cap_factor sqrt(mu (1 - mu)) (the
        assumptions' Parameters table, default 0.9).
    liquidity_loss_mean, liquidity_loss_stderr : float
        The liquidity provider's expected loss: advances and interest outstanding at the
        legal final and written off (currency), with its standard error.
    liquidity_loss : array (n_paths,)
        The write-off per path (currency).
    extras : dict
        "pool" (the Pool simulated), "tranches" (the parsed Tranches) and "forecast" (the
        expected collection curve the waterfall used as the issuance forecast, currency per
        period): what an audit of the waterfall needs to re-run it.
    """

    tranche_table: pd.DataFrame
    collection_curve: pd.DataFrame
    tranche_loss: dict[str, np.ndarray]
    tranche_irr: dict[str, np.ndarray]
    tranche_wal: dict[str, np.ndarray]
    tranche_default: dict[str, np.ndarray]
    pool_collections: np.ndarray
    path_collections: np.ndarray
    period_months: np.ndarray
    settings: DealSettings
    n_paths: int
    total_claim: float
    expected_recovery: float
    pool_pv_mean: float
    pool_pv_stderr: float
    n_sd_capped: int = 0
    extras: dict = field(default_factory=dict)
    liquidity_loss_mean: float = 0.0
    liquidity_loss_stderr: float = 0.0
    liquidity_loss: np.ndarray | None = None

    def contract_table(self, with_stderr: bool = False) -> pd.DataFrame:
        """The NPL_TRANCHE_EL table: name, EL, PD, WAL, mean_irr, rating, el_stderr; with
        ``with_stderr`` also pd_stderr, wal_stderr (years) and irr_stderr."""
        columns = ["name", "EL", "PD", "WAL", "mean_irr", "rating", "el_stderr"]
        if with_stderr:
            columns += ["pd_stderr", "wal_stderr", "irr_stderr"]
        return self.tranche_table[columns]


def _wal_stderr(wal_paths: np.ndarray, valid: np.ndarray, antithetic: bool) -> float:
    """Standard error of the WAL (years): the design's estimate when every path repays some
    principal; otherwise the plain one over the paths that do (conservative under variance
    reduction); NaN when fewer than two paths repay principal."""
    if valid.all():
        return float(mc_mean(wal_paths, antithetic)[1])
    if valid.sum() < 2:
        return float("nan")
    return float(wal_paths[valid].std(ddof=1) / np.sqrt(valid.sum()))


def tranche_table(metrics: dict[str, np.ndarray], tranches, settings: DealSettings) -> pd.DataFrame:
    """The tranche table of :class:`DealResult` from the waterfall's per-path figures.

    metrics : what :func:`npl_xl.engine.waterfall.waterfall_paths` returns (arrays
        (n_paths, n_tranches): loss, wal, irr, default, pv, ...); tranches : parsed Tranches;
        settings : the DealSettings of the run (variance_reduction, legal_final_months).
    One row per tranche: name, kind, balance, coupon, EL, PD, WAL (years), mean_irr,
    rating, el_stderr, pd_stderr, wal_stderr, irr_stderr, expected_pv,
    yield_at_coupon_basis, yield_stderr (see DealResult).
    The analyses (sizing, sensitivity) reduce their scenarios' paths with this function,
    so that their figures are NPL_TRANCHE_EL's to the last bit.
    """
    antithetic = settings.variance_reduction
    yields = yield_at_coupon_basis(metrics["irr"], settings.payment_months)
    rows = []
    for j, t in enumerate(tranches):
        el, el_se = mc_mean(metrics["loss"][:, j], antithetic)
        pd_, pd_se = mc_mean(metrics["default"][:, j], antithetic)
        irr, irr_se = mc_mean(metrics["irr"][:, j], antithetic)
        pv, _ = mc_mean(metrics["pv"][:, j], antithetic)
        wal_paths = metrics["wal"][:, j]
        valid = ~np.isnan(wal_paths)
        wal = float(wal_paths[valid].mean()) if valid.any() else settings.legal_final_months / 12.0
        wal_se = _wal_stderr(wal_paths, valid, antithetic)
        yld, yld_se = mc_mean(yields[:, j], antithetic)
        rating = rating_from_el(min(1.0, float(el)), wal) if t.rated else NOT_RATED
        rows.append({"name": t.name, "kind": t.kind_name, "balance": t.balance,
                     "coupon": t.coupon, "EL": float(el), "PD": float(pd_), "WAL": wal,
                     "mean_irr": float(irr), "rating": rating,
                     "el_stderr": float(el_se), "pd_stderr": float(pd_se),
                     "wal_stderr": wal_se, "irr_stderr": float(irr_se),
                     "expected_pv": float(pv), "yield_at_coupon_basis": float(yld),
                     "yield_stderr": float(yld_se)})
    return pd.DataFrame(rows)


def simulate_deal(pool, tranches, settings=None, n_sims: int | None = None,
                  seed: int | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  scheduler: str | None = None) -> DealResult:
    """Simulate the deal: correlated recoveries and dates, the waterfall, tranche figures.

    Parameters
    ----------
    pool : Pool or DataFrame
        :class:`npl_xl.engine.Pool`, or the valued tape (columns claim, expected_recovery,
        expected_months, recovery_sd, optional region_id).
    tranches : Tranches or table rows or DataFrame
        The Tranches table (see :func:`npl_xl.inputs.deal.parse_tranches`).
    settings : DealSettings, dict, table rows or None
        The Settings table (see :func:`npl_xl.inputs.deal.parse_settings`).
    n_sims, seed : int, optional
        Override the settings' values.
    progress : callable(done_paths, total_paths), optional
        Called after each block of paths.
    scheduler : str, optional
        Where the blocks of paths run; overrides settings.scheduler (blank = this process;
        local, local:N, tcp://HOST:PORT: :mod:`npl_xl.engine.cluster`). The figures are
        identical: the collections come back in path order and the waterfall and every
        reduction run here, on the whole run's arrays, as in process.

    Examples
    --------
    >>> from npl_xl import pool_from_tape, simulate_deal
    >>> tape = [["loan_id", "claim", "province", "collateral_type", "collateral_value",
    ...          "stage", "guarantor_recovery"],
    ...         ["L1", 1_000_000, "浙江", "住宅", 900_000, "auction_1", None],
    ...         ["L2", 400_000, "Jiangsu", "none", None, "judgment", 100_000]]
    >>> tranches = [["name", "kind", "balance", "coupon"],
    ...             ["优先A", "senior", 400_000, 0.03], ["次级", "subordinated", 200_000, 0.0]]
    >>> result = simulate_deal(pool_from_tape(tape), tranches, n_sims=400, seed=7)
    >>> table = result.contract_table()
    >>> list(table.columns)
    ['name', 'EL', 'PD', 'WAL', 'mean_irr', 'rating', 'el_stderr']
    >>> bool(table.EL[0] < table.EL[1])   # the senior loses less than the subordinated
    True
    >>> result.n_paths, result.settings.seed   # the same seed gives the same figures
    (400, 7)
    """
    pool = as_pool(pool)
    tranches = parse_tranches(tranches)
    settings = parse_settings(settings).with_overrides(n_sims=n_sims, seed=seed)
    antithetic = settings.variance_reduction
    if settings.tax_base == "interest":
        pool.principal_for_tax()  # the clear error before simulating, not in a block
    blocks = run_blocks(pool, settings, None, scheduler=scheduler, progress=progress)
    coll = blocks["collections"]
    taxable = blocks.get("taxable")  # tax_base = interest: recoveries above principal
    n = coll.shape[0]
    mean_k, se_k = mc_mean(coll, antithetic)
    tax_forecast = None if taxable is None else mc_mean(taxable, antithetic)[0]
    # the issuance forecast (CCR trigger, reserve target): the expected collection curve
    metrics = waterfall_paths(coll, tranches, settings, forecast=mean_k, taxable=taxable,
                              tax_forecast=tax_forecast)
    table = tranche_table(metrics, tranches, settings)
    dates = settings.period_dates
    liq_loss, liq_loss_se = mc_mean(metrics["liquidity_loss"], antithetic)
    total_claim = pool.total_claim
    curve = pd.DataFrame({
        "period": np.arange(1, len(dates) + 1), "month": dates,
        "expected_collections": mean_k, "stderr": se_k,
        "cumulative_share_of_claims": np.cumsum(mean_k) / total_claim if total_claim > 0 else 0.0,
    })
    discount = (1.0 + settings.discount_rate) ** (-dates / 12.0)
    pool_pv, pool_pv_se = mc_mean(coll @ discount, antithetic)
    names = tranches.names
    return DealResult(
        tranche_table=table, collection_curve=curve,
        tranche_loss={nm: metrics["loss"][:, j] for j, nm in enumerate(names)},
        tranche_irr={nm: metrics["irr"][:, j] for j, nm in enumerate(names)},
        tranche_wal={nm: metrics["wal"][:, j] for j, nm in enumerate(names)},
        tranche_default={nm: metrics["default"][:, j] for j, nm in enumerate(names)},
        pool_collections=coll.sum(axis=1), path_collections=coll, period_months=dates,
        settings=settings, n_paths=n, total_claim=total_claim,
        expected_recovery=float(pool.expected_recovery.sum()), pool_pv_mean=float(pool_pv),
        pool_pv_stderr=float(pool_pv_se), n_sd_capped=pool.n_sd_capped,
        liquidity_loss_mean=float(liq_loss), liquidity_loss_stderr=float(liq_loss_se),
        liquidity_loss=metrics["liquidity_loss"],
        extras={"pool": pool, "tranches": tranches, "forecast": mean_k, "taxable": taxable,
                "tax_forecast": tax_forecast})
