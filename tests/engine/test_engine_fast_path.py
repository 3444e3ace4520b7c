"""The collection kernel's fast path (payment periods from per-loan thresholds on the timing
draw's 53 bits) against the general kernel (normal quantile of eta for every draw).

The fast path is meant to give the very same numbers: its thresholds are found by searching
the general kernel's own period function over the 2**53 bit patterns of the timing draw. So the checks
are bit-for-bit (array_equal), on random deals with both designs, the cap, deterministic
loans, zero claims, a legal final that is not a payment date and timing sds from tiny to
huge, and across thread counts and block orders.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from npl_xl import rng
from npl_xl.engine import Pool, paths
from npl_xl.engine.simulate import BLOCK_PATHS, pool_tables, simulate_collections
from npl_xl.inputs.deal import parse_settings


def _random_deal(seed: int):
    rs = np.random.default_rng(seed)
    n = int(rs.integers(50, 300))
    claim = rs.lognormal(0.0, 1.0, n)
    claim[rs.integers(0, n)] = 0.0  # a loan with nothing owed is skipped
    mu = rs.uniform(0.05, 0.9, n)
    sd = rs.uniform(0.0, 0.3, n)
    sd[rs.integers(0, n)] = 0.0  # deterministic loan
    months = rs.uniform(0.0, 80.0, n)  # some beyond the legal final, some at 0
    months[0] = 0.0
    months[1] = 12.0  # exactly on a payment date
    pool = Pool.from_arrays(claim, claim * mu, months, sd, rs.integers(0, 5, n))
    settings = {
        "n_sims": int(rs.integers(2, 40)) * 4,
        "seed": int(rs.integers(0, 2**40)),
        "rho": float(rs.uniform(0.0, 0.9)),
        "region_weight": float(rs.uniform(0.2, 1.0)),
        "timing_sd_months": float(rs.choice([1e-6, 0.5, 3.0, 12.0, 200.0])),
        "payment_months": int(rs.choice([3, 6, 12])),
        "legal_final_months": int(rs.choice([36, 60, 61, 70])),
        "cap_at_expected": bool(rs.integers(0, 2)),
        "variance_reduction": bool(rs.integers(0, 2)),
    }
    return pool, parse_settings(settings)


def _both(pool, settings, first_path=0, n=None):
    n_total = simulate_n(settings) if n is None else n
    coef = pool_tables(pool)
    words = rng.seed_key(settings.seed)
    args = (words, first_path, n_total, n_total, settings.variance_reduction, coef, pool, settings)
    return paths.collect(*args, fast=True), paths.collect(*args, fast=False)


def simulate_n(settings):
    from npl_xl.engine.simulate import n_paths_for
    return n_paths_for(settings)


@pytest.mark.parametrize("seed", range(12))
def test_fast_path_gives_the_general_paths_numbers_on_random_deals(seed):
    pool, settings = _random_deal(seed)
    assert paths.uses_thresholds(settings)
    fast, general = _both(pool, settings)
    assert np.array_equal(fast, general)
    assert general.sum() > 0


def test_fast_path_is_not_used_with_timing_stress_or_without_timing_noise():
    base = {"n_sims": 40}
    assert paths.uses_thresholds(parse_settings(base))
    assert not paths.uses_thresholds(parse_settings({**base, "timing_stress": 0.2}))
    assert not paths.uses_thresholds(parse_settings({**base, "timing_sd_months": 0.0}))
    monthly = parse_settings({**base, "payment_months": 1, "legal_final_months": 60})
    assert monthly.n_periods > paths.FAST_PATH_MAX_PERIODS
    assert not paths.uses_thresholds(monthly)
    quarterly = parse_settings({**base, "payment_months": 3, "legal_final_months": 60})
    assert paths.uses_thresholds(quarterly)


def test_the_threshold_search_computes_the_kernels_normal_quantile_bit_for_bit():
    """The thresholds are found with _timing_ndtri; the general kernel's eta comes from
    _normals. Both must round alike (FMA contraction in both), else a draw whose
    expected month + eta falls on a payment date could be booked one period apart.
    Compiled without the kernels' FMA licence, about 1 value in 600 differed here."""
    u = np.random.default_rng(7).random(200_000)
    u[:4] = [1e-12, 0.02, 0.98, 1 - 1e-12]  # the table's edges and the exact tails
    scale = 3.0
    kernel = np.empty_like(u)
    paths._normals(u, paths.NORMAL_TABLE, scale, kernel, np.empty(u.size, np.int64),
                   np.empty(u.size))
    search = np.array([scale * paths._timing_ndtri(x, paths.NORMAL_TABLE) for x in u])
    assert np.array_equal(search, kernel)


def test_thresholds_book_the_draws_nearest_the_payment_dates_as_the_general_path():
    # Random draws land within 1e-9 of a threshold about once in 10^9: put them there. For
    # each threshold B (an integer: the timing draw's 53 bits), the general period function
    # (what the fast path must reproduce) gives level >= L (path) or < L (antithetic
    # partner) exactly for the bits from B up. (Above 0.5 the map from bits to uniforms
    # rounds two bit patterns to one double: the comparison is on the bits, so both sides
    # of such a pair must agree, which the search guarantees by taking the smallest.)
    pool = Pool.from_arrays(np.ones(3), np.full(3, 0.5), np.array([5.0, 12.0, 47.3]),
                            np.full(3, 0.2))
    settings = parse_settings({"n_sims": 40, "timing_sd_months": 3.0})
    thr = paths.period_thresholds(pool.expected_months, settings)
    assert thr.dtype == np.int64
    n_periods = settings.n_periods
    checked = 0
    for i, em in enumerate(pool.expected_months):
        for level in range(n_periods):
            for side, sign in ((0, 1), (1, -1)):
                b = int(thr[i, level, side])
                if b == paths.N_GRID:  # no draw reaches this level
                    continue
                for near in range(max(0, b - 4), min(paths.N_GRID, b + 5)):
                    u = (float(near) + 0.5) * 2.0**-53  # npl_xl.rng's 53-bit map
                    lv = paths._level(u, sign, em, 3.0, settings.payment_months,
                                      settings.legal_final_months, n_periods, paths.NORMAL_TABLE)
                    passed = lv >= level + 1 if sign > 0 else lv < level + 1
                    assert passed == (near >= b), (i, level, side, near)
                    checked += 1
    assert checked > 300


def test_thresholds_above_one_half_take_the_first_of_two_bit_patterns_with_one_uniform():
    # Above 0.5, bits 2k - 1 and 2k give the same double. A threshold there must be the
    # odd one (the smallest with that uniform), or the integer comparison would book the
    # odd pattern in another period than the general kernel, which sees only the double.
    settings = parse_settings({"n_sims": 40, "timing_sd_months": 3.0})
    months = np.linspace(1.0, 59.0, 400)
    thr = paths.period_thresholds(months, settings)
    upper = thr[(thr > 2**52) & (thr < paths.N_GRID)]
    assert upper.size > 100
    for b in upper[:200]:
        b = int(b)
        same = (float(b - 1) + 0.5) * 2.0**-53 == (float(b) + 0.5) * 2.0**-53
        assert not same, b  # b - 1 has a smaller uniform, so b is the first of its double


def test_fast_path_deterministic_across_threads_and_blocks():
    pool, settings = _random_deal(99)
    settings = settings.with_overrides(n_sims=2 * BLOCK_PATHS + 100)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = simulate_collections(pool, settings)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = simulate_collections(pool, settings)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, two)
    n_blocks = -(-one.shape[0] // BLOCK_PATHS)
    backward = simulate_collections(pool, settings, block_order=list(range(n_blocks))[::-1])
    assert np.array_equal(one, backward)
    _, general = _both(pool, settings)
    assert np.array_equal(one, general)


def test_a_block_in_the_middle_equals_the_same_rows_of_the_whole_run():
    pool, settings = _random_deal(5)
    settings = settings.with_overrides(n_sims=800)
    whole = simulate_collections(pool, settings)
    coef = pool_tables(pool)
    part = paths.collect(rng.seed_key(settings.seed), 256, 128, whole.shape[0],
                         settings.variance_reduction, coef, pool, settings)
    assert np.array_equal(part, whole[256:384])
