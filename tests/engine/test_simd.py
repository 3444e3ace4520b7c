"""The kernels' vector table lookups (npl_xl.engine.simd) and batched exact tails against the
scalar code they replace, bit for bit; and the normal quantile's roundings not depending on
which function numba compiles first.

The scalar lookups (quantile.table_lookup, paths._table_ndtri) stay the definition: the
vector code must give their very numbers (same operations, same FMA contraction), on
random points and on the edges (below and above the grid, on nodes, infinities), at every
offset of a 4-lane block and for lengths that leave a scalar remainder.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numba as nb
import numpy as np
import pytest

from npl_xl import rng
from npl_xl.engine import Pool, paths, quantile
from npl_xl.engine.simulate import pool_tables


@nb.njit(fastmath=paths.CONTRACT)
def _scalar_rates(table, z, out):
    for j in range(z.shape[0]):
        out[j] = quantile.table_lookup(table, z[j])


@nb.njit(fastmath=paths.CONTRACT)
def _vector_rates(table, z, out):
    # z + 0 and z - 0 are z (but -0 + 0 is +0, which the table maps as -0): both of
    # _rates's vector lookups then see z
    zeros = np.zeros_like(z)
    partner = np.empty_like(z)
    paths._rates(table, z, z, zeros, True, out, partner)
    for j in range(z.shape[0]):
        if partner[j] != out[j]:
            out[j] = np.nan  # fails the comparison with the scalar lookup


@nb.njit(fastmath=paths.CONTRACT)  # as inlined into the kernels (with their FMA licence)
def _kernel_rates(table, sys_row, sys_partner_row, eps, rate, rate2):
    paths._rates(table, sys_row, sys_partner_row, eps, True, rate, rate2)


@nb.njit(fastmath=paths.CONTRACT)
def _scalar_pair_rates(table, a, b, rate, rate2):
    for j in range(a.shape[0]):
        rate[j] = quantile.table_lookup(table, a[j] + b[j])
        rate2[j] = quantile.table_lookup(table, a[j] - b[j])


@nb.njit(fastmath=paths.CONTRACT)
def _scalar_normals(u, table, scale, out):
    for j in range(u.shape[0]):
        if abs(u[j] - 0.5) > 0.5 - paths.NORMAL_P_LOW:
            out[j] = scale * rng.ndtri(u[j])
        else:
            out[j] = scale * paths._table_ndtri(u[j], table)


def _tables():
    rs = np.random.default_rng(3)
    n = 40
    mu = rs.uniform(0.02, 0.95, n)
    sd = rs.uniform(0.01, 0.3, n)
    pool = Pool.from_arrays(np.ones(n), mu, rs.uniform(1, 40, n), sd)
    return pool_tables(pool)


def _edge_z():
    h = 1.0 / quantile.INV_H
    nodes = quantile.Z_MIN + h * np.arange(quantile.N_INTERVALS + 1)
    return np.concatenate([
        nodes, nodes - 1e-12, nodes + 1e-12,
        [-np.inf, np.inf, -1e300, 1e300, -8.0, 8.0, -8.0 - 1e-15, 8.0 - 1e-15, 0.0, -0.0],
    ])


@pytest.mark.parametrize("length", [1, 3, 4, 5, 257, 1024])
def test_vector_beta_lookups_give_the_scalar_lookups_numbers(length):
    coef = _tables()
    rs = np.random.default_rng(length)
    for i in range(coef.shape[0]):
        z = np.concatenate([rs.standard_normal(length) * 3.0, _edge_z()])
        rs.shuffle(z)  # every edge value at every lane
        z = z[:max(length, 1) + (i % 4)]
        scalar, vector = np.empty_like(z), np.empty_like(z)
        _scalar_rates(coef[i], z, scalar)
        _vector_rates(coef[i], z, vector)
        assert np.array_equal(scalar, vector), i
        assert np.all((vector >= 0.0) & (vector <= 1.0))


@pytest.mark.parametrize("length", [1, 4, 6, 255, 512])
def test_rates_of_a_path_and_its_partner_are_the_scalar_lookups_of_the_sum_and_difference(length):
    coef = _tables()
    rs = np.random.default_rng(length + 50)
    sys_row = rs.standard_normal(length) * 0.4
    eps = rs.standard_normal(length) * 0.9
    eps[: min(length, 3)] = [np.inf, -np.inf, 9.0][: min(length, 3)]
    for i in (0, 9, 33):
        want, want2 = np.empty(length), np.empty(length)
        got, got2 = np.empty(length), np.empty(length)
        _scalar_pair_rates(coef[i], sys_row, eps, want, want2)
        _kernel_rates(coef[i], sys_row, -sys_row, eps, got, got2)
        _scalar_pair_rates(coef[i], sys_row, eps, want, np.empty(length))
        _scalar_pair_rates(coef[i], -sys_row, eps, np.empty(length), want2)
        assert np.array_equal(got, want) and np.array_equal(got2, want2), i


def test_vector_beta_lookups_on_every_lane_offset_of_the_edges():
    coef = _tables()
    z = _edge_z()
    for shift in range(4):  # each value passes through lanes 0..3
        zs = np.concatenate([np.zeros(shift), z])
        scalar, vector = np.empty_like(zs), np.empty_like(zs)
        _scalar_rates(coef[7], zs, scalar)
        _vector_rates(coef[7], zs, vector)
        assert np.array_equal(scalar, vector), shift


def test_vector_lookup_matches_a_hand_evaluation_of_the_cubic():
    # Independent of both numba paths: the Horner polynomial of row k at the fraction f,
    # evaluated in Python (no FMA: agreement to 1e-15 of the value, not bit-for-bit).
    coef = _tables()
    table = coef[11]
    z = np.array([-2.3, -0.17, 0.0, 0.5, 1.9, 3.3, 5.55, -6.1])
    out = np.empty_like(z)
    _vector_rates(table, z, out)
    for x, got in zip(z, out):
        t = min(max((x - quantile.Z_MIN) * quantile.INV_H, 0.0), quantile.T_TOP)
        k = int(t)
        f = t - k
        c0, c1, c2, c3 = table[k]
        want = min(max(c0 + f * (c1 + f * (c2 + f * c3)), 0.0), 1.0)
        assert got == pytest.approx(want, rel=1e-14, abs=1e-15)


@pytest.mark.parametrize("length", [1, 2, 3, 4, 7, 256, 1001])
def test_kernel_normals_give_the_scalar_table_and_exact_tails(length):
    rs = np.random.default_rng(100 + length)
    u = rs.random(length)
    edges = np.array([1e-300, 1e-16, 0.02, 0.02 + 1e-17, 0.5, 0.98, 0.98 - 1e-16, 1 - 1e-16,
                      1.0, np.nextafter(1.0, 0.0), 0.075, 0.925])
    for batch in (u, np.concatenate([edges, u]), rs.random(length) * 0.05):
        scalar, vector = np.empty_like(batch), np.empty_like(batch)
        _scalar_normals(batch, paths.NORMAL_TABLE, 0.93, scalar)
        paths._normals(batch, paths.NORMAL_TABLE, 0.93, vector,
                       np.empty(batch.size, np.int64), np.empty(batch.size))
        assert np.array_equal(scalar, vector)


def test_exact_tails_equal_as241_evaluated_in_python():
    # rng.ndtri.py_func is the AS241 source run by the interpreter: IEEE operations, no FMA,
    # libm's log through math.log (as the compiled code).
    rs = np.random.default_rng(5)
    u = np.concatenate([rs.random(20_000) * 0.02, 1.0 - rs.random(20_000) * 0.02,
                        10.0 ** -rs.uniform(5, 300, 2_000), [1.0]])
    out = np.full_like(u, np.nan)
    index = np.arange(u.size, dtype=np.int64)
    paths._exact_tails(u, 1.0, out, index, u.size, np.empty(u.size))
    want = np.array([rng.ndtri.py_func(x) for x in u])
    assert np.array_equal(out, want)
    assert out[-1] == math.inf


_ORDER_SCRIPT = """
import numpy as np
from npl_xl import rng
from npl_xl.engine import paths
u = np.random.default_rng(2).random(50_000)
u = u[np.abs(u - 0.5) > 0.48]
# the first compilation of rng.ndtri happens inside an FMA-licensed caller (the threshold
# search's quantile), as when thresholds are built before any simulation
first = np.array([paths._timing_ndtri(x, paths.NORMAL_TABLE) for x in u])
out = np.empty_like(u)
paths._normals(u, paths.NORMAL_TABLE, 1.0, out, np.empty(u.size, np.int64), np.empty(u.size))
direct = np.array([rng.ndtri(x) for x in u])
python = np.array([rng.ndtri.py_func(x) for x in u])
print(int((first != python).sum()), int((out != python).sum()), int((direct != python).sum()))
"""


def test_ndtri_rounds_the_same_whoever_compiles_it_first(tmp_path):
    # numba lets a callee that leaves fastmath unset inherit its caller's flags; an ndtri
    # first compiled from the kernels' FMA-licensed _normals then rounded its tails
    # differently (in about half of them) from one compiled elsewhere, and the on-disk
    # cache kept whichever came first. With fastmath=False set explicitly it cannot.
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    done = subprocess.run([sys.executable, "-c", _ORDER_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0", "0"]


@nb.njit(fastmath=paths.CONTRACT)
def _kernel_periods(bits, thresholds_i, period, period2):
    paths._periods_by_thresholds(bits, thresholds_i, True, period, period2)


def test_periods_by_thresholds_count_the_thresholds_reached_including_the_edges():
    # The skip of levels no draw straddles must not change a count: against the plain
    # definition, with thresholds at 0, at N_GRID (none), equal to the smallest and the
    # largest bits and to bits in between.
    rs = np.random.default_rng(9)
    for trial in range(200):
        m = int(rs.integers(1, 40))
        bits = rs.integers(0, paths.N_GRID, m)
        n_periods = int(rs.integers(1, 12))
        pool = np.concatenate([[0, paths.N_GRID, bits.min(), bits.max(), bits.min() + 1],
                               bits, rs.integers(0, paths.N_GRID, 8)])
        thresholds = np.sort(rs.choice(pool, (n_periods, 2)), axis=0).astype(np.int64)
        thresholds[:, 1] = thresholds[::-1, 1]  # the partner's: decreasing in the level
        period = np.empty(m, np.int64)
        period2 = np.empty(m, np.int64)
        _kernel_periods(bits, np.ascontiguousarray(thresholds), period, period2)
        want = (bits[:, None] >= thresholds[None, :, 0]).sum(axis=1)
        want2 = (bits[:, None] < thresholds[None, :, 1]).sum(axis=1)
        assert np.array_equal(period, want), trial
        assert np.array_equal(period2, want2), trial


@nb.njit(fastmath=paths.CONTRACT)
def _kernel_book(c, rate, period, rows):
    paths._book_rows(c, rate, period, rows)


@nb.njit(fastmath=paths.CONTRACT)
def _scattered_book(c, rate, period, rows):
    # the booking as the kernels did it before the dense pass (one add per draw)
    for j in range(rate.shape[0]):
        k = period[j]
        if 0 <= k < rows.shape[0]:
            rows[k, j] += c * rate[j]


@pytest.mark.parametrize("span", [1, 2, paths.DENSE_PERIODS, paths.DENSE_PERIODS + 1, 10])
def test_dense_and_scattered_bookings_give_the_same_sums(span):
    # Dense (a loan's draws in at most DENSE_PERIODS periods) or scattered, lost draws (-1
    # in the general kernel, n_periods in the fast one) booked nowhere, over many loans
    # added in turn, bit for bit against one scattered add per draw.
    rs = np.random.default_rng(span)
    n_periods, m = 10, 37
    dense_rows = np.zeros((n_periods, m))
    plain_rows = np.zeros((n_periods, m))
    for loan in range(300):
        low = int(rs.integers(-1, n_periods))
        period = rs.integers(low, low + span, m).astype(np.int64)
        period[rs.random(m) < 0.1] = -1
        period[rs.random(m) < 0.1] = n_periods
        rate = rs.random(m)
        c = float(rs.lognormal(10.0, 1.0))
        _kernel_book(c, rate, period, dense_rows)
        _scattered_book(c, rate, period, plain_rows)
    assert np.array_equal(dense_rows, plain_rows)
    assert dense_rows.sum() > 0


def test_no_idiosyncratic_term_gives_zeros_even_for_the_uniform_one():
    # rho = 1: scale 0. u = 1.0 (bits 2**53 - 1, probability 2**-53) has an infinite
    # quantile; 0 x inf is NaN, and a NaN position would index outside a loan's table.
    u = np.array([0.3, 1.0, 1e-300, 0.99, 0.5])
    out = np.full(u.size, np.nan)
    paths._normals(u, paths.NORMAL_TABLE, 0.0, out, np.empty(u.size, np.int64), np.empty(u.size))
    assert np.array_equal(out, np.zeros(u.size))
    assert rng.grid_uniform.py_func(2**53 - 1) == 1.0  # the uniform one is attainable
