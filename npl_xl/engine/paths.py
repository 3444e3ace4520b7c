"""Simulated pool collections per path and payment period: the numba kernels.

Model (per loan i, path p; docs/MODEL.md, Simulation):

    M_p,r   = sqrt(w) M_p + sqrt(1 - w) M_p,r          systematic factor of region r
    Z_i,p   = sqrt(rho) M_p,r(i) + sqrt(1 - rho) eps_i,p
    R_i,p   = G_i(Z_i,p) = F^-1_Beta(Phi(Z_i,p); alpha_i, beta_i)   (table lookup)
              min(R_i,p, mu_i) when cap_at_expected
    T_i,p   = max(0, expected_months_i exp(lambda max(0, -M_p,r(i))) + timing_sd eta_i,p)

with lambda = settings.timing_stress (an opt-in stress, default 0). Loan i's recovery
claim_i R_i,p is collected on the first payment date on or after T_i,p
(a recovery at month 0 on the first payment date); a recovery after legal_final_months is
lost. Collections are summed per (path, period).

Random numbers come only from :mod:`npl_xl.rng`, as pure functions of (seed, stream, i, j):

- variance reduction on (default): paths come in antithetic pairs (2q, 2q+1) that share the
  factors and use (+eps, +eta) and (-eps, -eta); eps and eta of loan i in pair q are
  Phi^-1 of the two uniforms of counter (q, i, STREAM_IDIOSYNCRATIC) (the kernels'
  tabulated Phi^-1, within 1.5e-9 of the exact one). The national factor of pair q is
  stratified: M_q = Phi^-1((q + u_q) / Q) with Q pairs and u_q from (q, 0, STREAM_SYSTEMATIC).
  Regional factors: first normal of (q, r, STREAM_REGIONAL).
- variance reduction off (plain Monte Carlo): everything per path p with counter i = p.

So any block of paths can be computed alone, in any order and on any thread, and gives the
same numbers. Memory is O(loans + paths x periods): a kernel call loops
``for sub-chunk of paths (parallel): for loan: for path in sub-chunk``, keeping the loan's
table in cache while it adds the loan's recoveries into the sub-chunk's rows. Per loan and
sub-chunk the work runs in three simple loops that the compiler vectorises: the Philox
uniforms, the normal quantiles (table), then rates and payment periods; then the bookings.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from npl_xl import rng
from npl_xl.engine.quantile import table_lookup

__all__ = ["factors", "collect", "collect_scenarios"]

#: Paths per parallel work item of the collection kernel (a multiple of 2).
SUB_CHUNK = 512

#: The kernels' normal quantile Phi^-1(u): piecewise cubic Hermite on u in [P_LOW, 1 - P_LOW]
#: with NORMAL_INTERVALS intervals (max error 1.5e-9, tests/test_engine_quantile.py; 64 KB), the
#: exact AS241 (npl_xl.rng.ndtri) outside. A table lookup vectorises; AS241 with its
#: branches and logarithm does not, and was half the kernel's time.
NORMAL_INTERVALS = 2048
NORMAL_P_LOW = 0.02
_NORMAL_INV_H = NORMAL_INTERVALS / (1.0 - 2.0 * NORMAL_P_LOW)


def _normal_table() -> np.ndarray:
    from scipy import special

    u = np.linspace(NORMAL_P_LOW, 1.0 - NORMAL_P_LOW, NORMAL_INTERVALS + 1)
    h = u[1] - u[0]
    z = special.ndtri(u)
    d = h * np.sqrt(2.0 * np.pi) * np.exp(0.5 * z * z)  # h dz/du
    return np.ascontiguousarray(np.stack(
        [z[:-1], d[:-1], -3 * z[:-1] - 2 * d[:-1] + 3 * z[1:] - d[1:],
         2 * z[:-1] + d[:-1] - 2 * z[1:] + d[1:]], axis=1))


NORMAL_TABLE = _normal_table()


@nb.njit(cache=True)
def _factors(k0, k1, first_path, n_total, antithetic, sqrt_w, sqrt_1mw, sqrt_rho,
             timing_stress, sys_z, time_mult):
    n, n_regions = sys_z.shape
    n_pairs_total = n_total // 2
    for p in range(n):
        gp = first_path + p
        if antithetic:
            q = gp >> 1
            u, _ = rng.uniform_pair(k0, k1, rng.STREAM_SYSTEMATIC, q, 0)
            national = rng.ndtri((q + u) / n_pairs_total)
            counter = q
        else:
            u, _ = rng.uniform_pair(k0, k1, rng.STREAM_SYSTEMATIC, gp, 0)
            national = rng.ndtri(u)
            counter = gp
        for r in range(n_regions):
            m = national
            if sqrt_1mw > 0.0:
                regional, _ = rng.normal_pair(k0, k1, rng.STREAM_REGIONAL, counter, r)
                m = sqrt_w * national + sqrt_1mw * regional
            sys_z[p, r] = sqrt_rho * m
            time_mult[p, r] = math.exp(timing_stress * max(0.0, -m))


def factors(seed_words, first_path: int, n_paths: int, n_total: int, antithetic: bool,
            rho: float, region_weight: float, timing_stress: float, n_regions: int):
    """Systematic terms for paths first_path .. first_path + n_paths - 1.

    Returns
    -------
    sys_z : (n_paths, n_regions) array, sqrt(rho) M_p,r
    time_mult : (n_paths, n_regions) array, exp(timing_stress max(0, -M_p,r))
    """
    sys_z = np.empty((n_paths, n_regions))
    time_mult = np.empty((n_paths, n_regions))
    _factors(seed_words[0], seed_words[1], first_path, n_total, antithetic,
             math.sqrt(region_weight), math.sqrt(1.0 - region_weight), math.sqrt(rho),
             timing_stress, sys_z, time_mult)
    return sys_z, time_mult


@nb.njit(cache=True, inline="always")
def _period(months, payment_months, legal_final, n_periods):
    """Index of the payment period collecting a recovery at ``months`` (floored at 0; month 0
    goes to the first date), or -1 after the legal final date (lost)."""
    months = max(0.0, months)
    k = min(max(int(math.ceil(months / payment_months)), 1), n_periods) - 1
    return k if months <= legal_final else -1


@nb.njit(cache=True, inline="always")
def _table_ndtri(u, table):
    t = (u - NORMAL_P_LOW) * _NORMAL_INV_H
    t = min(max(t, 0.0), NORMAL_INTERVALS - 1e-9)
    k = int(t)
    f = t - k
    return table[k, 0] + f * (table[k, 1] + f * (table[k, 2] + f * table[k, 3]))


@nb.njit(cache=True)
def _normals(u, table, scale, out):
    """out[j] = scale x Phi^-1(u[j]): table lookup (vectorisable), exact AS241 in the tails."""
    m = u.shape[0]
    for j in range(m):
        out[j] = scale * _table_ndtri(u[j], table)
    for j in range(m):
        if abs(u[j] - 0.5) > 0.5 - NORMAL_P_LOW:
            out[j] = scale * rng.ndtri(u[j])


@nb.njit(cache=True, parallel=True)
def _collect(k0, k1, first_path, antithetic, coef, claim, mean, cap, months, region,
             sys_z, time_mult, s_idio, timing_sd, payment_months, legal_final, normal_table,
             first_loan, accumulate, out):
    n, n_periods = out.shape
    n_loans = claim.shape[0]
    n_sub = (n + SUB_CHUNK - 1) // SUB_CHUNK
    for s in nb.prange(n_sub):
        p0 = s * SUB_CHUNK
        p1 = min(n, p0 + SUB_CHUNK)
        if not accumulate:
            for p in range(p0, p1):
                for k in range(n_periods):
                    out[p, k] = 0.0
        # one (eps, eta) per antithetic pair, or per path without variance reduction
        m = (p1 - p0) // 2 if antithetic else p1 - p0
        first_counter = (first_path + p0) >> 1 if antithetic else first_path + p0
        u0 = np.empty(m)
        u1 = np.empty(m)
        eps = np.empty(m)
        eta = np.zeros(m)
        rate = np.empty(m)
        rate2 = np.zeros(m)
        period = np.empty(m, dtype=np.int64)
        period2 = np.empty(m, dtype=np.int64)
        for i in range(n_loans):
            c = claim[i]
            if c == 0.0:
                continue
            # stage 1: the loan's draws for the whole sub-chunk (simple loops that vectorise)
            for j in range(m):
                a, b = rng.uniform_pair(k0, k1, rng.STREAM_IDIOSYNCRATIC, first_counter + j,
                                        first_loan + i)
                u0[j] = a
                u1[j] = b
            _normals(u0, normal_table, s_idio, eps)
            if timing_sd > 0.0:
                _normals(u1, normal_table, timing_sd, eta)
            # stage 2: recovery rates and payment periods (vectorisable), then the bookings
            r = region[i]
            table = coef[i]
            mu = mean[i]
            em = months[i]
            for j in range(m):
                p = p0 + 2 * j if antithetic else p0 + j
                rate[j] = table_lookup(table, sys_z[p, r] + eps[j])
                period[j] = _period(em * time_mult[p, r] + eta[j], payment_months,
                                    legal_final, n_periods)
                if antithetic:
                    rate2[j] = table_lookup(table, sys_z[p + 1, r] - eps[j])
                    period2[j] = _period(em * time_mult[p + 1, r] - eta[j], payment_months,
                                         legal_final, n_periods)
            if cap:
                for j in range(m):
                    rate[j] = min(rate[j], mu)
                    rate2[j] = min(rate2[j], mu)
            for j in range(m):
                p = p0 + 2 * j if antithetic else p0 + j
                if period[j] >= 0:
                    out[p, period[j]] += c * rate[j]
                if antithetic and period2[j] >= 0:
                    out[p + 1, period2[j]] += c * rate2[j]


def collect(seed_words, first_path: int, n_paths: int, n_total: int, antithetic: bool,
            coef: np.ndarray, pool, settings, loans: slice | None = None,
            out: np.ndarray | None = None) -> np.ndarray:
    """Pool collections (currency) of paths first_path .. first_path + n_paths - 1 per
    payment period: array (n_paths, n_periods). With ``antithetic`` first_path and n_paths
    must be even (whole pairs).

    ``loans`` (a slice with step 1) restricts the sum to those loans, ``coef`` being their
    tables only; ``out`` given is added to instead of overwritten. Summing loan blocks in
    order into one ``out`` gives the very numbers of one call over all loans (the draws are
    keyed by the loan's index in the pool and the additions happen in the same order), so
    the per-loan tables need only exist for one block at a time."""
    if antithetic and (first_path % 2 or n_paths % 2):
        raise ValueError("antithetic blocks must start on an even path and hold whole pairs")
    loans = slice(0, len(pool.claim)) if loans is None else loans
    sys_z, time_mult = factors(seed_words, first_path, n_paths, n_total, antithetic,
                               settings.rho, settings.region_weight, settings.timing_stress,
                               pool.n_regions)
    accumulate = out is not None
    if out is None:
        out = np.empty((n_paths, settings.n_periods))
    _collect(seed_words[0], seed_words[1], first_path, antithetic, coef, pool.claim[loans],
             pool.mean[loans], settings.cap_at_expected, pool.expected_months[loans],
             pool.region_id[loans], sys_z, time_mult, math.sqrt(1.0 - settings.rho),
             settings.timing_sd_months, settings.payment_months, settings.legal_final_months,
             NORMAL_TABLE, int(loans.start or 0), accumulate, out)
    return out


# --- several scenarios on the same draws (common random numbers) ------------------------

@nb.njit(cache=True, parallel=True)
def _collect_scenarios(k0, k1, first_path, antithetic, coefs, coef_index, claim, mean, cap,
                       months, region, sys_z, time_mult, s_idio, rate_scale, delay, timing_sd,
                       payment_months, legal_final, normal_table, out):
    """:func:`_collect` for S scenarios at once, from one set of draws.

    Per scenario s: coefs[coef_index[s]] are the loans' quantile tables, sys_z[s] and
    s_idio[s] the systematic term sqrt(rho_s) M and the idiosyncratic scale
    sqrt(1 - rho_s), rate_scale[s] multiplies each recovery rate (capped at 1),
    delay[s] months are added to each expected month, timing_sd[s] scales the timing
    normal. The uniforms and normal quantiles are computed once per (loan, pair) and
    shared; every scenario's rates, periods and bookings are computed exactly as
    :func:`_collect` computes them (same operations in the same order), so a scenario
    equal to the settings gives bit-identical collections.
    """
    n_scen, n, n_periods = out.shape
    n_loans = claim.shape[0]
    n_sub = (n + SUB_CHUNK - 1) // SUB_CHUNK
    any_timing = False
    for s in range(n_scen):
        if timing_sd[s] > 0.0:
            any_timing = True
    for c in nb.prange(n_sub):
        p0 = c * SUB_CHUNK
        p1 = min(n, p0 + SUB_CHUNK)
        for s in range(n_scen):
            for p in range(p0, p1):
                for k in range(n_periods):
                    out[s, p, k] = 0.0
        m = (p1 - p0) // 2 if antithetic else p1 - p0
        first_counter = (first_path + p0) >> 1 if antithetic else first_path + p0
        u0 = np.empty(m)
        u1 = np.empty(m)
        z0 = np.empty(m)
        z1 = np.zeros(m)
        eps = np.empty(m)
        eta = np.zeros(m)
        rate = np.empty(m)
        rate2 = np.zeros(m)
        period = np.empty(m, dtype=np.int64)
        period2 = np.empty(m, dtype=np.int64)
        for i in range(n_loans):
            cl = claim[i]
            if cl == 0.0:
                continue
            for j in range(m):
                a, b = rng.uniform_pair(k0, k1, rng.STREAM_IDIOSYNCRATIC, first_counter + j, i)
                u0[j] = a
                u1[j] = b
            _normals(u0, normal_table, 1.0, z0)
            if any_timing:
                _normals(u1, normal_table, 1.0, z1)
            r = region[i]
            mu = mean[i]
            for s in range(n_scen):
                table = coefs[coef_index[s], i]
                em = months[i] + delay[s]
                scale = s_idio[s]
                for j in range(m):
                    eps[j] = scale * z0[j]
                if timing_sd[s] > 0.0:
                    tsd = timing_sd[s]
                    for j in range(m):
                        eta[j] = tsd * z1[j]
                else:
                    for j in range(m):
                        eta[j] = 0.0
                for j in range(m):
                    p = p0 + 2 * j if antithetic else p0 + j
                    rate[j] = table_lookup(table, sys_z[s, p, r] + eps[j])
                    period[j] = _period(em * time_mult[p, r] + eta[j], payment_months,
                                        legal_final, n_periods)
                    if antithetic:
                        rate2[j] = table_lookup(table, sys_z[s, p + 1, r] - eps[j])
                        period2[j] = _period(em * time_mult[p + 1, r] - eta[j],
                                             payment_months, legal_final, n_periods)
                if cap:
                    for j in range(m):
                        rate[j] = min(rate[j], mu)
                        rate2[j] = min(rate2[j], mu)
                if rate_scale[s] != 1.0:
                    f = rate_scale[s]
                    for j in range(m):
                        rate[j] = min(rate[j] * f, 1.0)
                        rate2[j] = min(rate2[j] * f, 1.0)
                for j in range(m):
                    p = p0 + 2 * j if antithetic else p0 + j
                    if period[j] >= 0:
                        out[s, p, period[j]] += cl * rate[j]
                    if antithetic and period2[j] >= 0:
                        out[s, p + 1, period2[j]] += cl * rate2[j]


def collect_scenarios(seed_words, first_path: int, n_paths: int, n_total: int,
                      antithetic: bool, coefs: np.ndarray, pool, settings, rho, coef_index,
                      rate_scale, delay, timing_sd) -> np.ndarray:
    """Collections of S scenarios on the same draws, paths first_path .. first_path +
    n_paths - 1: array (S, n_paths, n_periods), currency.

    coefs : (n_sets, n_loans, N_INTERVALS, 4) quantile tables (one set per recovery-sd
        scenario); coef_index (S,) picks each scenario's set.
    rho (S,) replaces settings.rho; rate_scale (S,) multiplies every recovery rate
    (capped at 1, after cap_at_expected); delay (S,) months are added to every loan's
    expected months; timing_sd (S,) replaces settings.timing_sd_months. Everything else
    (timing stress, regions, payment dates) is the settings'. A scenario with rho =
    settings.rho, the settings' tables, scale 1, delay 0 and timing_sd =
    settings.timing_sd_months gives exactly :func:`collect`'s numbers.
    """
    if antithetic and (first_path % 2 or n_paths % 2):
        raise ValueError("antithetic blocks must start on an even path and hold whole pairs")
    rho = np.ascontiguousarray(rho, dtype=np.float64)
    n_scen = rho.shape[0]
    sys_z = np.empty((n_scen, n_paths, pool.n_regions))
    time_mult = None
    for s in range(n_scen):
        sys_z[s], tm = factors(seed_words, first_path, n_paths, n_total, antithetic,
                               float(rho[s]), settings.region_weight, settings.timing_stress,
                               pool.n_regions)
        time_mult = tm if time_mult is None else time_mult  # the same for every rho
    out = np.empty((n_scen, n_paths, settings.n_periods))
    s_idio = np.sqrt(1.0 - rho)
    _collect_scenarios(seed_words[0], seed_words[1], first_path, antithetic, coefs,
                       np.ascontiguousarray(coef_index, dtype=np.int64), pool.claim, pool.mean,
                       settings.cap_at_expected, pool.expected_months, pool.region_id, sys_z,
                       time_mult, s_idio, np.ascontiguousarray(rate_scale, dtype=np.float64),
                       np.ascontiguousarray(delay, dtype=np.float64),
                       np.ascontiguousarray(timing_sd, dtype=np.float64),
                       settings.payment_months, settings.legal_final_months, NORMAL_TABLE, out)
    return out
