"""The strongest plain numpy/scipy implementation of the engine's model we could write.

What a skilled numpy user would do instead of numba, for benchmarks/engine_bench.py:

- per-loan tables of G_i(z) = F^-1_Beta(Phi(z); alpha_i, beta_i) on the kernels' z grid
  (-8 .. 8, 128 intervals), as cubic Hermite pieces with the exact slopes
  phi(z) / f_Beta(G), built with ONE vectorised ``scipy.special.betaincinv`` call over
  (loans x nodes) (lower half only: the upper half by G_{a,b}(z) = 1 - G_{b,a}(-z));
- draws chunked over paths, all loans at once: (chunk x loans) arrays, numpy Generator
  normals (or, for the exactness check, the kernels' own Philox uniforms and scipy ndtri);
- the Beta table evaluated by one vectorised gather per coefficient (flat index
  loan x 128 + interval, np.take) and an in-place Horner step; payment periods by ``np.ceil``; bookings by one ``np.bincount`` per chunk.

Same model as npl_xl.engine.paths (antithetic pairs with a stratified national factor,
regional factors, cap, timing stress, legal final); it is checked against the kernel in
engine_bench.py (same Philox uniforms: equal to table accuracy; numpy Generator: equal
within Monte Carlo error).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from npl_xl.engine import quantile
from npl_xl.engine.reference import philox_uniforms
from npl_xl import rng

__all__ = ["numpy_tables", "numpy_collections"]

Z = np.linspace(quantile.Z_MIN, quantile.Z_MAX, quantile.N_INTERVALS + 1)
H = Z[1] - Z[0]
HALF = quantile.N_INTERVALS // 2


def numpy_tables(alpha, beta, mean) -> np.ndarray:
    """Hermite coefficients, shape (4, n_loans * N_INTERVALS): row c holds coefficient c of
    every (loan, interval), flat over loan x N_INTERVALS + interval."""
    alpha = np.asarray(alpha, float)
    beta = np.asarray(beta, float)
    n = alpha.shape[0]
    random = (alpha > 0) & (beta > 0)
    a = np.where(random, alpha, 1.0)[:, None]
    b = np.where(random, beta, 1.0)[:, None]
    z_low = Z[:HALF + 1]
    p = special.ndtr(z_low)[None, :]
    low = special.betaincinv(a, b, p)                    # G_{a,b}(z), z <= 0
    high = 1.0 - special.betaincinv(b, a, p)[:, ::-1]    # 1 - G_{b,a}(-z), z >= 0
    values = np.concatenate([low, high[:, 1:]], axis=1)
    lbeta = special.betaln(a, b)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_pdf = (a - 1) * np.log(values) + (b - 1) * np.log1p(-values) - lbeta
        slopes = np.exp(-0.5 * Z[None, :] ** 2 - 0.5 * math.log(2 * math.pi) - log_pdf)
    slopes = np.nan_to_num(slopes, nan=0.0, posinf=0.0)
    g0, g1 = values[:, :-1], values[:, 1:]
    d0, d1 = H * slopes[:, :-1], H * slopes[:, 1:]
    coef = np.stack([g0, d0, -3 * g0 - 2 * d0 + 3 * g1 - d1, 2 * g0 + d0 - 2 * g1 + d1], axis=2)
    mean = np.asarray(mean, float)
    coef[~random] = 0.0
    coef[~random, :, 0] = mean[~random, None]
    return np.ascontiguousarray(coef.reshape(n * quantile.N_INTERVALS, 4).T)


def _lookup(coef_flat, loan_base, z):
    """G(z) for z of shape (rows, loans): one flat index, np.take of each of the 4
    coefficient rows (2.5x faster than fancy-indexing (n, 4) rows) and an in-place Horner."""
    t = np.clip((z - quantile.Z_MIN) * (1.0 / H), 0.0, quantile.N_INTERVALS - 1e-9)
    k = t.astype(np.int64)
    f = t - k
    index = k + loan_base
    g = np.take(coef_flat[3], index)
    for c in (2, 1, 0):
        g *= f
        g += np.take(coef_flat[c], index)
    return np.clip(g, 0.0, 1.0, out=g)


def _factors(seed, counters, n_pairs_total, antithetic, n_regions, settings, gen):
    """sqrt(rho) M_p,r and the timing multipliers for the given counters (pairs or paths)."""
    if gen is None:
        u = philox_uniforms(seed, rng.STREAM_SYSTEMATIC, counters, [0])[:, 0, 0]
        national = special.ndtri((counters + u) / n_pairs_total) if antithetic else special.ndtri(u)
        regional = special.ndtri(philox_uniforms(seed, rng.STREAM_REGIONAL, counters,
                                                 np.arange(n_regions))[:, :, 0])
    else:
        u = gen.random(len(counters))
        national = special.ndtri((counters + u) / n_pairs_total) if antithetic else special.ndtri(u)
        regional = gen.standard_normal((len(counters), n_regions))
    w = settings.region_weight
    m = national[:, None] if w >= 1.0 else math.sqrt(w) * national[:, None] + math.sqrt(1 - w) * regional
    m = np.broadcast_to(m, (len(counters), n_regions))
    return math.sqrt(settings.rho) * m, np.exp(settings.timing_stress * np.maximum(0.0, -m))


def numpy_collections(pool, settings, coef_flat, n_paths: int, chunk_pairs: int = 64,
                      generator_seed: int | None = None) -> np.ndarray:
    """Collections (n_paths, n_periods), currency. ``generator_seed`` None: the kernels'
    Philox uniforms (same numbers as the kernel up to table accuracy); an int: numpy's
    Generator(Philox(seed)) normals (same distribution, other draws)."""
    antithetic = settings.variance_reduction
    n_loans = pool.n_loans
    n_periods = settings.n_periods
    gen = None if generator_seed is None else np.random.Generator(np.random.Philox(generator_seed))
    loan_base = np.arange(n_loans) * quantile.N_INTERVALS
    loans = np.arange(n_loans)
    s_idio = math.sqrt(1.0 - settings.rho)
    out = np.zeros((n_paths, n_periods))
    per = 2 if antithetic else 1
    n_counters = n_paths // per
    em, claim, region, mean = pool.expected_months, pool.claim, pool.region_id, pool.mean
    for c0 in range(0, n_counters, chunk_pairs):
        counters = np.arange(c0, min(n_counters, c0 + chunk_pairs))
        q = len(counters)
        sys_z, time_mult = _factors(settings.seed, counters, n_counters, antithetic,
                                    pool.n_regions, settings, gen)
        if gen is None:
            u = philox_uniforms(settings.seed, rng.STREAM_IDIOSYNCRATIC, counters, loans)
            eps = special.ndtri(u[:, :, 0])
            eta = special.ndtri(u[:, :, 1]) * settings.timing_sd_months
        else:
            eps = gen.standard_normal((q, n_loans))
            eta = gen.standard_normal((q, n_loans)) * settings.timing_sd_months
        eps *= s_idio
        index = []
        weights = []
        for sign, offset in ((1.0, 0), (-1.0, 1))[:per]:
            rate = _lookup(coef_flat, loan_base, sys_z[:, region] + sign * eps)
            if settings.cap_at_expected:
                np.minimum(rate, mean, out=rate)
            months = np.maximum(0.0, em * time_mult[:, region] + sign * eta)
            k = np.clip(np.ceil(months / settings.payment_months), 1, n_periods).astype(np.int64) - 1
            kept = months <= settings.legal_final_months
            row = (counters - c0) * per + offset
            index.append(((row[:, None] * n_periods + k))[kept])
            weights.append((claim * rate)[kept])
        booked = np.bincount(np.concatenate(index), np.concatenate(weights),
                             minlength=q * per * n_periods)
        out[c0 * per:(c0 + q) * per] = booked.reshape(q * per, n_periods)
    return out
