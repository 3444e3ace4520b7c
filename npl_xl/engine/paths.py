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
sub-chunk the work runs in simple loops that vectorise: the Philox uniforms, the normal
quantiles (table lookups four at a time, :mod:`npl_xl.engine.simd`; the exact tails
gathered), the rates (lookups four at a time), the payment periods; then the bookings.
The layout and speed are measured in benchmarks/results/engine.md.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import numba as nb
import numpy as np

from npl_xl import rng
from npl_xl.engine import quantile
from npl_xl.engine.quantile import table_lookup
from npl_xl.engine.simd import normals4, rates4_difference, rates4_sum

__all__ = ["factors", "collect", "collect_scenarios", "period_thresholds", "uses_thresholds"]

#: The kernels let LLVM fuse a multiply and an add into one FMA instruction (one rounding
#: instead of two: results move by about 1e-16 relative; measured 4 % faster,
#: benchmarks/results/engine.md). No other fast-math licence: NaN, infinities, signed zeros
#: and the order of sums stay IEEE, so every path is still a pure function of (seed, path).
CONTRACT = {"contract"}

#: Paths per parallel work item of the collection kernel (a multiple of 2).
SUB_CHUNK = 512

#: A loan's draws of one sub-chunk falling in at most this many payment periods are booked
#: by one vectorised pass per period rather than one scattered add per draw (_book_rows).
DENSE_PERIODS = 4

#: The kernels' normal quantile Phi^-1(u): piecewise cubic Hermite on u in [P_LOW, 1 - P_LOW]
#: with NORMAL_INTERVALS intervals (max error 1.5e-9, tests/test_engine_quantile.py; 64 KB), the
#: exact AS241 (npl_xl.rng.ndtri) outside. A table lookup vectorises; AS241 with its
#: branches and logarithm does not, and was half the kernel's time.
NORMAL_INTERVALS = 2048
NORMAL_P_LOW = 0.02
_NORMAL_INV_H = NORMAL_INTERVALS / (1.0 - 2.0 * NORMAL_P_LOW)
NORMAL_TOP = NORMAL_INTERVALS - 1e-9  # the last position t of a lookup
_TAIL_Q = 0.5 - NORMAL_P_LOW          # |u - 0.5| beyond this: the exact AS241


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
    t = min(max(t, 0.0), NORMAL_TOP)
    k = int(t)
    f = t - k
    return table[k, 0] + f * (table[k, 1] + f * (table[k, 2] + f * table[k, 3]))


@nb.njit(cache=True, fastmath=CONTRACT)
def _normals(u, table, scale, out, index, work):
    """out[j] = scale x Phi^-1(u[j]) for uniforms u: the table four values at a time
    (simd.normals4, the very numbers of _table_ndtri), which also flags the draws in the
    tails; those get the exact AS241 (_exact_tails). ``index`` (int64) and ``work``
    (float64) are scratch of u's length. scale 0 (rho = 1: no idiosyncratic term) gives
    zeros, also for u = 1.0 (probability 2**-53), whose quantile is infinite: 0 x inf would
    be NaN, and a NaN position would index outside the loan's table."""
    m = u.shape[0]
    if scale == 0.0:
        for j in range(m):
            out[j] = 0.0
        return
    n_tails = 0
    for j in range(0, m - 3, 4):
        tails = normals4(table, u, out, j, NORMAL_P_LOW, _NORMAL_INV_H, NORMAL_TOP, _TAIL_Q)
        if tails:  # one group in seven: note its tail lanes, branch-free
            for lane in range(4):
                index[n_tails] = j + lane
                n_tails += (tails >> lane) & 1
    for j in range(m - m % 4, m):
        out[j] = _table_ndtri(u[j], table)
        index[n_tails] = j
        n_tails += 1 if abs(u[j] - 0.5) > _TAIL_Q else 0
    for j in range(m):
        out[j] = scale * out[j]
    _exact_tails(u, scale, out, index, n_tails, work)


@nb.njit(cache=True, fastmath=False)  # explicitly none (else inherited): rng.ndtri's roundings
def _exact_tails(u, scale, out, index, n_tails, work):
    """out[j] = scale x rng.ndtri(u[j]) for the draws j = index[0 .. n_tails - 1] (those
    with |u[j] - 0.5| > 0.5 - NORMAL_P_LOW, about 4 %, off the table): their logarithms,
    then AS241's tail arithmetic as one loop that vectorises; the very values of rng.ndtri
    (which shares rng.ndtri_tail)."""
    for t in range(n_tails):
        p = u[index[t]]
        work[t] = -math.log(p if p - 0.5 < 0.0 else 1.0 - p)
    for t in range(n_tails):
        work[t] = rng.ndtri_tail(math.sqrt(work[t]))
    for t in range(n_tails):
        j = index[t]
        p = u[j]
        q = p - 0.5
        if (p if q < 0.0 else 1.0 - p) <= 0.0:  # u = 1.0 (probability 2**-53): infinity
            out[j] = scale * rng.ndtri(p)
        else:
            out[j] = scale * (-work[t] if q < 0.0 else work[t])


@nb.njit(cache=True, inline="always")
def _sys_columns(sys_z, p0, m, antithetic, even, odd):
    """even[r, j] = sys_z[path of draw j, r] and odd[r, j] its antithetic partner's (path
    p0 + 2j + 1): a loan's region then reads one contiguous row."""
    n_regions = sys_z.shape[1]
    for j in range(m):
        p = p0 + 2 * j if antithetic else p0 + j
        for r in range(n_regions):
            even[r, j] = sys_z[p, r]
            if antithetic:
                odd[r, j] = sys_z[p + 1, r]


@nb.njit(cache=True, inline="always")
def _rates(table, sys_row, sys_partner_row, eps, antithetic, rate, rate2):
    """One loan's recovery rates on a sub-chunk, four at a time (simd.rates4_*, the very
    numbers of quantile.table_lookup): rate[j] = G(sqrt(rho) M + eps_j) on draw j's path,
    rate2[j] = G(sqrt(rho) M' - eps_j) on its antithetic partner."""
    m = eps.shape[0]
    for j in range(0, m - 3, 4):
        rates4_sum(table, sys_row, eps, rate, j, quantile.Z_MIN, quantile.INV_H, quantile.T_TOP)
    for j in range(m - m % 4, m):
        rate[j] = table_lookup(table, sys_row[j] + eps[j])
    if antithetic:
        for j in range(0, m - 3, 4):
            rates4_difference(table, sys_partner_row, eps, rate2, j, quantile.Z_MIN,
                              quantile.INV_H, quantile.T_TOP)
        for j in range(m - m % 4, m):
            rate2[j] = table_lookup(table, sys_partner_row[j] - eps[j])


#: Rows of a Beta table read into cache ahead of its loan (_touch_table): those of z in
#: [-5, 5], where all draws but about 6e-7 of them look up. Reading the whole table
#: measured slower with two threads (twice the memory traffic for rows hardly used).
_TOUCH_FIRST = int(round((-5.0 - quantile.Z_MIN) * quantile.INV_H))
_TOUCH_STOP = int(round((5.0 - quantile.Z_MIN) * quantile.INV_H))


@nb.njit(cache=True, inline="always")
def _touch_table(coef, i, sink):
    """Read one value per cache line of loan i's table rows for |z| <= 5 (if there is a loan
    i), so that they are in cache when its lookups start: a large pool's tables (4 KiB a
    loan) do not fit in the last-level cache, and the lookups would wait on memory.
    ``sink`` keeps the reads."""
    if i < coef.shape[0]:
        table = coef[i]
        acc = 0.0
        for k in range(_TOUCH_FIRST, _TOUCH_STOP, 2):  # two 32-byte rows per 64-byte line
            acc += table[k, 0]
        sink[0] += acc


@nb.njit(cache=True, inline="always")
def _span(values):
    """(smallest, largest) of a non-empty integer vector, in one vectorisable pass."""
    lowest = values[0]
    highest = values[0]
    for j in range(values.shape[0]):
        lowest = min(lowest, values[j])
        highest = max(highest, values[j])
    return lowest, highest


@nb.njit(cache=True, inline="always")
def _book_rows(c, rate, period, rows):
    """Add one loan's recoveries c x rate[j] (currency) into rows[period[j], j] (a
    sub-chunk's collections, period-major); a period outside 0 .. n_periods - 1 is lost.
    When the sub-chunk's draws fall in at most DENSE_PERIODS periods, one vectorised pass
    per period adds c x (rate or 0), else one scattered add per draw: the same sums
    (an FMA adding c x 0 leaves a row unchanged), so the choice never shows in the numbers."""
    m = rate.shape[0]
    n_periods = rows.shape[0]
    lowest, highest = _span(period)
    lowest = max(lowest, 0)
    highest = min(highest, n_periods - 1)
    if highest - lowest < DENSE_PERIODS:
        for k in range(lowest, highest + 1):
            row = rows[k]
            for j in range(m):
                row[j] += c * (rate[j] if period[j] == k else 0.0)
    else:
        for j in range(m):
            k = period[j]
            if 0 <= k < n_periods:
                rows[k, j] += c * rate[j]


@nb.njit(cache=True, inline="always")
def _rows_from(out, p0, m, antithetic, accumulate, even_rows, odd_rows):
    """The sub-chunk's collections so far, period-major: even_rows[k, j] for draw j's path,
    odd_rows[k, j] for its antithetic partner (zeros, or out's rows when accumulating)."""
    n_periods = out.shape[1]
    for j in range(m):
        p = p0 + 2 * j if antithetic else p0 + j
        for k in range(n_periods):
            even_rows[k, j] = out[p, k] if accumulate else 0.0
            if antithetic:
                odd_rows[k, j] = out[p + 1, k] if accumulate else 0.0


@nb.njit(cache=True, inline="always")
def _rows_to(out, p0, m, antithetic, even_rows, odd_rows):
    n_periods = out.shape[1]
    for j in range(m):
        p = p0 + 2 * j if antithetic else p0 + j
        for k in range(n_periods):
            out[p, k] = even_rows[k, j]
            if antithetic:
                out[p + 1, k] = odd_rows[k, j]


@nb.njit(cache=True, inline="always")
def _sub_chunk_buffers(sys_z, out, p0, m, antithetic, accumulate):
    """Scratch of one sub-chunk of m draws (antithetic pairs, or paths in plain Monte Carlo):
    the rates and payment periods of each draw's path and partner, the tail index and work
    of _normals, the systematic term's region rows (_sys_columns) and the sub-chunk's
    collections so far, period-major (_rows_from)."""
    n_regions = sys_z.shape[1]
    n_periods = out.shape[1]
    rate = np.empty(m)
    rate2 = np.zeros(m)
    period = np.empty(m, dtype=np.int64)
    period2 = np.empty(m, dtype=np.int64)
    index = np.empty(m, dtype=np.int64)
    work = np.empty(m)
    even = np.empty((n_regions, m))
    odd = np.empty((n_regions, m))
    _sys_columns(sys_z, p0, m, antithetic, even, odd)
    even_rows = np.empty((n_periods, m))
    odd_rows = np.empty((n_periods, m))
    _rows_from(out, p0, m, antithetic, accumulate, even_rows, odd_rows)
    return rate, rate2, period, period2, index, work, even, odd, even_rows, odd_rows


@nb.njit(cache=True, inline="always")
def _zero_rows(rows, p0, p1):
    for p in range(p0, p1):
        for k in range(rows.shape[1]):
            rows[p, k] = 0.0


@nb.njit(cache=True, parallel=True, fastmath=CONTRACT)
def _collect(k0, k1, first_path, antithetic, coef, claim, mean, cap, months, region,
             sys_z, time_mult, s_idio, timing_sd, payment_months, legal_final, normal_table,
             first_loan, accumulate, out, principal, taxable):
    n, n_periods = out.shape
    n_loans = claim.shape[0]
    n_sub = (n + SUB_CHUNK - 1) // SUB_CHUNK
    with_tax = taxable.shape[0] > 0
    sink = np.zeros((n_sub, 8))  # one cache line per sub-chunk
    for s in nb.prange(n_sub):
        p0 = s * SUB_CHUNK
        p1 = min(n, p0 + SUB_CHUNK)
        if with_tax and not accumulate:
            _zero_rows(taxable, p0, p1)
        # one (eps, eta) per antithetic pair, or per path without variance reduction
        m = (p1 - p0) // 2 if antithetic else p1 - p0
        if m == 0:
            continue
        first_counter = (first_path + p0) >> 1 if antithetic else first_path + p0
        u0 = np.empty(m)
        u1 = np.empty(m)
        eps = np.empty(m)
        eta = np.zeros(m)
        (rate, rate2, period, period2, index, work, even, odd, even_rows,
         odd_rows) = _sub_chunk_buffers(sys_z, out, p0, m, antithetic, accumulate)
        for i in range(n_loans):
            c = claim[i]
            if c == 0.0:
                continue
            # the loan's draws for the whole sub-chunk (simple loops that vectorise)
            for j in range(m):
                a, b = rng.uniform_pair(k0, k1, rng.STREAM_IDIOSYNCRATIC, first_counter + j,
                                        first_loan + i)
                u0[j] = a
                u1[j] = b
            _normals(u0, normal_table, s_idio, eps, index, work)
            if timing_sd > 0.0:
                _normals(u1, normal_table, timing_sd, eta, index, work)
            _touch_table(coef, i + 1, sink[s])
            r = region[i]
            em = months[i]
            _rates(coef[i], even[r], odd[r], eps, antithetic, rate, rate2)
            for j in range(m):
                p = p0 + 2 * j if antithetic else p0 + j
                period[j] = _period(em * time_mult[p, r] + eta[j], payment_months,
                                    legal_final, n_periods)
            if antithetic:
                for j in range(m):
                    period2[j] = _period(em * time_mult[p0 + 2 * j + 1, r] - eta[j],
                                         payment_months, legal_final, n_periods)
            if cap:
                mu = mean[i]
                for j in range(m):
                    rate[j] = min(rate[j], mu)
                    rate2[j] = min(rate2[j], mu)
            _book_rows(c, rate, period, even_rows)
            if antithetic:
                _book_rows(c, rate2, period2, odd_rows)
            if with_tax:
                _book_taxable(c, principal[i], rate, rate2, period, period2, p0, antithetic,
                              taxable)
        _rows_to(out, p0, m, antithetic, even_rows, odd_rows)


@nb.njit(cache=True, inline="always")
def _book_taxable(claim, principal, rate, rate2, period, period2, p0, antithetic, taxable):
    """Book one loan's taxable recoveries (Settings tax_base = interest) for a sub-chunk: the
    loan's one recovery claim x rate (currency) pays its principal first, so the part above
    principal, max(0, claim x rate - principal), is taxed in the recovery's period. A
    period outside 0 .. n_periods - 1 means lost after the legal final (-1 in the general
    kernel, n_periods in the fast one): nothing is booked. The amounts are those the kernels
    add to the collections (claim x rate), so both kernels book the same taxable amounts."""
    m = rate.shape[0]
    n_periods = taxable.shape[1]
    for j in range(m):
        p = p0 + 2 * j if antithetic else p0 + j
        k = period[j]
        if 0 <= k < n_periods:
            taxable[p, k] += max(0.0, claim * rate[j] - principal)
        if antithetic:
            k = period2[j]
            if 0 <= k < n_periods:
                taxable[p + 1, k] += max(0.0, claim * rate2[j] - principal)


@nb.njit(cache=True, fastmath=CONTRACT)
def _timing_ndtri(u, table):
    """Phi^-1(u) exactly as :func:`_normals` computes it (table, exact AS241 in the tails):
    compiled with the kernels' FMA licence, or one value in 600 would differ in its last
    bit and a threshold could sit one uniform off (tests/engine/test_engine_fast_path.py)."""
    if abs(u - 0.5) > _TAIL_Q:
        return rng.ndtri(u)
    return _table_ndtri(u, table)


@nb.njit(cache=True, fastmath=CONTRACT)  # as the kernels: the same roundings
def _level(u, sign, em, timing_sd, payment_months, legal_final, n_periods, table):
    """The general kernel's payment period of a draw with timing uniform u (sign +1: the path,
    -1: its antithetic partner), with 'lost' (-1) mapped to n_periods: monotone in u."""
    eta = timing_sd * _timing_ndtri(u, table)
    k = _period(em * 1.0 + eta if sign > 0 else em * 1.0 - eta, payment_months, legal_final,
                n_periods)
    return n_periods if k < 0 else k


#: Number of attainable timing bit patterns (53 bits); a threshold of N_GRID means "none".
N_GRID = 1 << 53


@nb.njit(cache=True, fastmath=CONTRACT)  # as the kernels: the same roundings
def _first_grid_index(level, sign, em, timing_sd, payment_months, legal_final, n_periods,
                      table, guess):
    """Smallest grid index b in [0, 2**53] whose uniform satisfies the predicate
    (sign +1: _level >= level; sign -1: _level < level), the predicate being monotone in b.
    Galloping search outwards from ``guess``, then bisection: about 30 evaluations."""
    lo = -1            # predicate false here (virtual)
    hi = N_GRID        # predicate true here (virtual)
    b = min(max(guess, 0), N_GRID - 1)
    step = 1 << 22
    # find a bracket (lo false, hi true) around the guess
    while True:
        lv = _level(rng.grid_uniform(b), sign, em, timing_sd, payment_months, legal_final,
                    n_periods, table)
        ok = lv >= level if sign > 0 else lv < level
        if ok:
            hi = b
            b = b - step
            if b <= lo:
                break
        else:
            lo = b
            b = b + step
            if b >= hi:
                break
        step *= 2
    while hi - lo > 1:
        mid = lo + (hi - lo) // 2
        lv = _level(rng.grid_uniform(mid), sign, em, timing_sd, payment_months, legal_final,
                    n_periods, table)
        ok = lv >= level if sign > 0 else lv < level
        if ok:
            hi = mid
        else:
            lo = mid
    return hi


@nb.njit(cache=True, parallel=True, fastmath=CONTRACT)
def _period_thresholds(months, timing_sd, payment_months, legal_final, table, out):
    n_loans, n_periods, _ = out.shape
    root2 = math.sqrt(2.0)
    for i in nb.prange(n_loans):
        em = months[i]
        for level in range(1, n_periods + 1):
            boundary = min(level * payment_months, legal_final)
            for side in range(2):
                sign = 1 if side == 0 else -1
                z = (boundary - em) / timing_sd if sign > 0 else (em - boundary) / timing_sd
                guess_u = 0.5 * math.erfc(-z / root2)
                guess = int(min(max(guess_u, 0.0), 1.0) * 9007199254740992.0)
                out[i, level - 1, side] = _first_grid_index(
                    level, sign, em, timing_sd, payment_months, legal_final, n_periods, table,
                    guess)


def period_thresholds(expected_months: np.ndarray, settings) -> np.ndarray:
    """Per-loan thresholds on the timing draw's 53 random bits, for the fast path of
    :func:`collect`.

    Without timing stress a draw's payment period depends on its loan and its timing
    uniform u = rng.grid_uniform(b) only, monotonically, so it is the number of thresholds
    its bits b have reached. Returns an int64 array (n_loans, n_periods, 2): ``[i, L-1, 0]``
    is the smallest b whose path has period >= L ('lost' counting as period n_periods),
    ``[i, L-1, 1]`` the smallest b whose antithetic partner (eta negated) has period < L;
    N_GRID (2**53) where there is none. Found by searching the general kernel's own period
    function over the 2**53 bit patterns (a guess from Phi((date - expected month) / timing
    sd), then bisection), so the fast path books every draw in the very period the general
    path does: b >= [i, L-1, 0] exactly when the general path's period is >= L.
    """
    months = np.ascontiguousarray(expected_months, dtype=np.float64)
    out = np.empty((months.shape[0], settings.n_periods, 2), dtype=np.int64)
    _period_thresholds(months, float(settings.timing_sd_months), float(settings.payment_months),
                       float(settings.legal_final_months), NORMAL_TABLE, out)
    return out


@nb.njit(cache=True, inline="always")
def _periods_by_thresholds(bits, thresholds_i, antithetic, period, period2):
    """period[j] = how many of the loan's thresholds [L, 0] draw j's timing bits have reached
    (the path's payment period, n_periods = lost); period2[j] = how many [L, 1] they are
    below (the partner's). A threshold that no draw of the sub-chunk straddles (below the
    smallest bits or above the largest) adds the same to every draw without a loop."""
    m = bits.shape[0]
    n_periods = thresholds_i.shape[0]
    lowest, highest = _span(bits)
    passed_by_all = 0
    below_for_all = 0
    for j in range(m):
        period[j] = 0
        period2[j] = 0
    for level in range(n_periods):
        t = thresholds_i[level, 0]
        if t <= lowest:
            passed_by_all += 1
        elif t <= highest:
            for j in range(m):
                period[j] += 1 if bits[j] >= t else 0
        if antithetic:
            t = thresholds_i[level, 1]
            if t > highest:
                below_for_all += 1
            elif t > lowest:
                for j in range(m):
                    period2[j] += 1 if bits[j] < t else 0
    for j in range(m):
        period[j] += passed_by_all
        period2[j] += below_for_all


@nb.njit(cache=True, parallel=True, fastmath=CONTRACT)
def _collect_by_thresholds(k0, k1, first_path, antithetic, coef, claim, mean, cap, region,
                           sys_z, s_idio, thresholds, normal_table, first_loan, accumulate,
                           out, principal, taxable):
    """The collection kernel's fast path (no timing stress, timing sd > 0): as _collect, but
    each draw's payment period is the count of the loan's thresholds its timing bits have
    reached (integers: no conversion to a uniform, no normal quantile of eta)."""
    n, n_periods = out.shape
    n_loans = claim.shape[0]
    n_sub = (n + SUB_CHUNK - 1) // SUB_CHUNK
    with_tax = taxable.shape[0] > 0
    sink = np.zeros((n_sub, 8))  # one cache line per sub-chunk
    for s in nb.prange(n_sub):
        p0 = s * SUB_CHUNK
        p1 = min(n, p0 + SUB_CHUNK)
        if with_tax and not accumulate:
            _zero_rows(taxable, p0, p1)
        m = (p1 - p0) // 2 if antithetic else p1 - p0
        if m == 0:
            continue
        first_counter = (first_path + p0) >> 1 if antithetic else first_path + p0
        u0 = np.empty(m)
        bits = np.empty(m, dtype=np.int64)
        eps = np.empty(m)
        (rate, rate2, period, period2, index, work, even, odd, even_rows,
         odd_rows) = _sub_chunk_buffers(sys_z, out, p0, m, antithetic, accumulate)
        for i in range(n_loans):
            c = claim[i]
            if c == 0.0:
                continue
            for j in range(m):
                a, b = rng.uniform_and_bits(k0, k1, rng.STREAM_IDIOSYNCRATIC,
                                            first_counter + j, first_loan + i)
                u0[j] = a
                bits[j] = b
            _normals(u0, normal_table, s_idio, eps, index, work)
            _touch_table(coef, i + 1, sink[s])
            r = region[i]
            _rates(coef[i], even[r], odd[r], eps, antithetic, rate, rate2)
            _periods_by_thresholds(bits, thresholds[i], antithetic, period, period2)
            if cap:
                mu = mean[i]
                for j in range(m):
                    rate[j] = min(rate[j], mu)
                    rate2[j] = min(rate2[j], mu)
            _book_rows(c, rate, period, even_rows)
            if antithetic:
                _book_rows(c, rate2, period2, odd_rows)
            if with_tax:
                _book_taxable(c, principal[i], rate, rate2, period, period2, p0, antithetic,
                              taxable)
        _rows_to(out, p0, m, antithetic, even_rows, odd_rows)


_THRESHOLD_CACHE: "OrderedDict[bytes, np.ndarray]" = OrderedDict()
_THRESHOLD_CACHE_SIZE = 4


def cached_period_thresholds(expected_months: np.ndarray, settings) -> np.ndarray:
    """:func:`period_thresholds`, remembered for the last few (months, timing) inputs: the
    blocks of one run share them."""
    digest = hashlib.blake2b(np.ascontiguousarray(expected_months, dtype=np.float64).tobytes())
    digest.update(np.array([settings.timing_sd_months, settings.payment_months,
                            settings.legal_final_months, settings.n_periods],
                           dtype=np.float64).tobytes())
    key = digest.digest()
    if key in _THRESHOLD_CACHE:
        _THRESHOLD_CACHE.move_to_end(key)
        return _THRESHOLD_CACHE[key]
    value = period_thresholds(expected_months, settings)
    _THRESHOLD_CACHE[key] = value
    while len(_THRESHOLD_CACHE) > _THRESHOLD_CACHE_SIZE:
        _THRESHOLD_CACHE.popitem(last=False)
    return value


#: The fast path compares each draw with one threshold per payment period: beyond this many
#: periods (monthly payments) the general path's one normal quantile is cheaper, and the
#: thresholds (16 bytes per loan and period) would take too much memory.
FAST_PATH_MAX_PERIODS = 24


def uses_thresholds(settings) -> bool:
    """Whether :func:`collect` takes the fast path: no timing stress, timing sd > 0 and at
    most FAST_PATH_MAX_PERIODS payment periods."""
    return (settings.timing_stress == 0.0 and settings.timing_sd_months > 0.0
            and settings.n_periods <= FAST_PATH_MAX_PERIODS)


def collect(seed_words, first_path: int, n_paths: int, n_total: int, antithetic: bool,
            coef: np.ndarray, pool, settings, loans: slice | None = None,
            out: np.ndarray | None = None, fast: bool = True,
            taxable: np.ndarray | None = None) -> np.ndarray:
    """Pool collections (currency) of paths first_path .. first_path + n_paths - 1 per
    payment period: array (n_paths, n_periods). With ``antithetic`` first_path and n_paths
    must be even (whole pairs).

    ``loans`` (a slice with step 1) restricts the sum to those loans, ``coef`` being their
    tables only; ``out`` given is added to instead of overwritten. Summing loan blocks in
    order into one ``out`` gives the very numbers of one call over all loans (the draws are
    keyed by the loan's index in the pool and the additions happen in the same order), so
    the per-loan tables need only exist for one block at a time.


    Without timing stress (and timing sd > 0) the fast kernel books each draw by comparing
    its timing draw's 53 bits with the loan's :func:`period_thresholds`; it gives the very numbers
    of the general kernel (tests/engine/test_engine_fast_path.py). ``fast=False`` forces the
    general kernel (for those tests and the benchmark).

    ``taxable`` (array (n_paths, n_periods), currency) receives, for Settings tax_base =
    interest, the taxable part of the collections: each loan's recovery above its principal
    (pool.principal_for_tax()), in the recovery's period; overwritten, or added to when
    ``out`` is given, like ``out``. Both kernels book the same amounts."""
    if antithetic and (first_path % 2 or n_paths % 2):
        raise ValueError("antithetic blocks must start on an even path and hold whole pairs")
    loans = slice(0, len(pool.claim)) if loans is None else loans
    sys_z, time_mult = factors(seed_words, first_path, n_paths, n_total, antithetic,
                               settings.rho, settings.region_weight, settings.timing_stress,
                               pool.n_regions)
    accumulate = out is not None
    if out is None:
        out = np.empty((n_paths, settings.n_periods))
    if taxable is None:
        principal = np.zeros(0)
        taxable = np.zeros((0, settings.n_periods))
    else:
        principal = np.ascontiguousarray(pool.principal_for_tax()[loans], dtype=np.float64)
        if taxable.shape != out.shape:
            raise ValueError(f"taxable must have the shape of the collections {out.shape}")
    if uses_thresholds(settings) and fast:
        thresholds = cached_period_thresholds(pool.expected_months[loans], settings)
        _collect_by_thresholds(seed_words[0], seed_words[1], first_path, antithetic, coef,
                               pool.claim[loans], pool.mean[loans], settings.cap_at_expected,
                               pool.region_id[loans], sys_z, math.sqrt(1.0 - settings.rho),
                               thresholds, NORMAL_TABLE, int(loans.start or 0), accumulate, out,
                               principal, taxable)
        return out
    _collect(seed_words[0], seed_words[1], first_path, antithetic, coef, pool.claim[loans],
             pool.mean[loans], settings.cap_at_expected, pool.expected_months[loans],
             pool.region_id[loans], sys_z, time_mult, math.sqrt(1.0 - settings.rho),
             settings.timing_sd_months, settings.payment_months, settings.legal_final_months,
             NORMAL_TABLE, int(loans.start or 0), accumulate, out, principal, taxable)
    return out


# --- several scenarios on the same draws (common random numbers) ------------------------

@nb.njit(cache=True, parallel=True, fastmath=CONTRACT)
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
        index = np.empty(m, dtype=np.int64)
        work = np.empty(m)
        sys_row = np.empty(m)
        sys_partner_row = np.zeros(m)
        for i in range(n_loans):
            cl = claim[i]
            if cl == 0.0:
                continue
            for j in range(m):
                a, b = rng.uniform_pair(k0, k1, rng.STREAM_IDIOSYNCRATIC, first_counter + j, i)
                u0[j] = a
                u1[j] = b
            _normals(u0, normal_table, 1.0, z0, index, work)
            if any_timing:
                _normals(u1, normal_table, 1.0, z1, index, work)
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
                    sys_row[j] = sys_z[s, p, r]
                    period[j] = _period(em * time_mult[p, r] + eta[j], payment_months,
                                        legal_final, n_periods)
                    if antithetic:
                        sys_partner_row[j] = sys_z[s, p + 1, r]
                        period2[j] = _period(em * time_mult[p + 1, r] - eta[j],
                                             payment_months, legal_final, n_periods)
                _rates(table, sys_row, sys_partner_row, eps, antithetic, rate, rate2)
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
