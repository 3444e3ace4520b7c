"""Counter-based random numbers: the same draw for the same (seed, stream, i, j), anywhere.

npl-xl never keeps a sequential generator state. Every random number is a pure function of
``(seed, stream, i, j)`` computed with Philox4x32-10 (Salmon et al., "Parallel random
numbers: as easy as 1, 2, 3", SC'11; the generator behind numpy's, JAX's and cuRAND's
counter-based streams). ``i`` is typically the path index and ``j`` the loan index, so a
simulation split across threads, chunks of paths in any order, or machines, draws exactly
the numbers it would draw in one piece.

One Philox call yields 128 bits: two doubles in (0, 1), each from 53 random bits.

Streams in use (keep them distinct; add new ones at the end):
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = [
    "STREAM_BETA_DRAWS", "STREAM_IDIOSYNCRATIC", "STREAM_SYSTEMATIC", "STREAM_REGIONAL",
    "philox4x32", "uniform_pair", "uniform_and_bits", "grid_uniform", "uniforms", "normal_pair", "ndtri", "ndtri_tail", "seed_key",
]

STREAM_BETA_DRAWS = 1      #: NPL_BETA_DRAWS: counter i = draw index
STREAM_IDIOSYNCRATIC = 2   #: loan-level draws: i = path, j = loan
STREAM_SYSTEMATIC = 3      #: national factor: i = path (or stratum)
STREAM_REGIONAL = 4        #: regional factor: i = path, j = region

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


def seed_key(seed: int) -> tuple[int, int]:
    """Split a non-negative integer seed (< 2**64) into Philox's two 32-bit key words."""
    seed = int(seed)
    if seed < 0 or seed >= 2**64:
        raise ValueError("seed must be a whole number in [0, 2**64)")
    return seed & 0xFFFFFFFF, seed >> 32


@nb.njit(cache=True, inline="always")
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 block: four 32-bit counter words and two key words, as uint64 holding
    32-bit values. Returns four 32-bit outputs (as uint64). No checks on the inputs."""
    c0 = np.uint64(c0) & _MASK32
    c1 = np.uint64(c1) & _MASK32
    c2 = np.uint64(c2) & _MASK32
    c3 = np.uint64(c3) & _MASK32
    k0 = np.uint64(k0) & _MASK32
    k1 = np.uint64(k1) & _MASK32
    for r in range(10):
        if r > 0:
            k0 = (k0 + _W0) & _MASK32
            k1 = (k1 + _W1) & _MASK32
        p0 = _M0 * c0
        p1 = _M1 * c2
        hi0 = p0 >> _S32
        lo0 = p0 & _MASK32
        hi1 = p1 >> _S32
        lo1 = p1 & _MASK32
        c0 = hi1 ^ c1 ^ k0
        c1 = lo1
        c2 = hi0 ^ c3 ^ k1
        c3 = lo0
    return c0, c1, c2, c3


_TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53


@nb.njit(cache=True, inline="always")
def _bits53(hi, lo):
    """53 random bits from two 32-bit words (as uint64), as an int64 in [0, 2**53)."""
    return np.int64(((hi << np.uint64(21)) ^ (lo >> np.uint64(11)))
                    & np.uint64(0x1FFFFFFFFFFFFF))


@nb.njit(cache=True, inline="always")
def grid_uniform(bits):
    """The uniform of 53 random bits b: (b + 0.5) 2**-53, the centre of b's cell. Increasing
    in b (non-strictly above 0.5, where doubles are 2**-53 apart and the half rounds to
    even); in (0, 1), except 1.0 for b = 2**53 - 1 (probability 2**-53)."""
    return (float(bits) + 0.5) * _TWO_M53


@nb.njit(cache=True, inline="always")
def uniform_pair(k0, k1, stream, i, j):
    """Two independent uniforms in (0, 1) for counter (i, j, stream) under key (k0, k1)."""
    x0, x1, x2, x3 = philox4x32(i, j, stream, 0, k0, k1)
    return grid_uniform(_bits53(x0, x1)), grid_uniform(_bits53(x2, x3))


@nb.njit(cache=True, inline="always")
def uniform_and_bits(k0, k1, stream, i, j):
    """:func:`uniform_pair` with its second uniform left as its 53 bits b (int64; the
    uniform is grid_uniform(b)): a kernel that only compares that uniform with thresholds
    compares integers and skips the conversion to a double."""
    x0, x1, x2, x3 = philox4x32(i, j, stream, 0, k0, k1)
    return grid_uniform(_bits53(x0, x1)), _bits53(x2, x3)


# fastmath=False explicitly: numba lets a callee inherit its caller's fast-math flags when it
# leaves them unset, so an ndtri first compiled from an FMA-licensed kernel would round
# differently (and be cached so) from one first compiled elsewhere
# (tests/engine/test_simd.py::test_ndtri_rounds_the_same_whoever_compiles_it_first).
@nb.njit(cache=True, fastmath=False)
def ndtri(p):
    """Standard normal quantile, Wichura's AS241 (PPND16), relative accuracy about 1e-16.
    p in (0, 1); returns -inf/inf at 0/1. No other checks.
    """
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        num = (((((((2509.0809287301226727 * r + 33430.575583588128105) * r
                    + 67265.770927008700853) * r + 45921.953931549871457) * r
                  + 13731.693765509461125) * r + 1971.5909503065514427) * r
                + 133.14166789178437745) * r + 3.387132872796366608)
        den = (((((((5226.495278852545925 * r + 28729.085735721942674) * r
                    + 39307.89580009271061) * r + 21213.794301586595867) * r
                  + 5394.1960214247511077) * r + 687.1870074920579083) * r
                + 42.313330701600911252) * r + 1.0)
        return q * num / den
    r = p if q < 0.0 else 1.0 - p
    if r <= 0.0:
        return -np.inf if q < 0.0 else np.inf
    value = ndtri_tail(math.sqrt(-math.log(r)))  # libm's log, compiled or interpreted
    return -value if q < 0.0 else value


@nb.njit(cache=True, inline="always")
def ndtri_tail(r):
    """AS241's tail branch: |Phi^-1(p)| (positive) from r = sqrt(-log(min(p, 1 - p))) for
    |p - 0.5| > 0.425. Pure arithmetic with one select, so a loop of it vectorises; compile
    callers without fast-math flags to keep :func:`ndtri`'s roundings."""
    if r <= 5.0:
        r -= 1.6
        num = (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r
                    + 0.24178072517745061177) * r + 1.27045825245236838258) * r
                  + 3.64784832476320460504) * r + 5.7694972214606914055) * r
                + 4.6303378461565452959) * r + 1.42343711074968357734)
        den = (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r
                    + 0.0151986665636164571966) * r + 0.14810397642748007459) * r
                  + 0.68976733498510000455) * r + 1.6763848301838038494) * r
                + 2.05319162663775882187) * r + 1.0)
    else:
        r -= 5.0
        num = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
                    + 0.0012426609473880784386) * r + 0.026532189526576123093) * r
                  + 0.29656057182850489123) * r + 1.7848265399172913358) * r
                + 5.4637849111641143699) * r + 6.6579046435011037772)
        den = (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r
                    + 1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r
                  + 0.0148753612908506148525) * r + 0.13692988092273580531) * r
                + 0.59983220655588793769) * r + 1.0)
    return num / den


@nb.njit(cache=True, inline="always")
def normal_pair(k0, k1, stream, i, j):
    """Two independent standard normals for counter (i, j, stream) under key (k0, k1)."""
    u0, u1 = uniform_pair(k0, k1, stream, i, j)
    return ndtri(u0), ndtri(u1)


@nb.njit(cache=True)
def _fill_uniforms(k0, k1, stream, j, out):
    n = out.shape[0]
    for i in range((n + 1) // 2):
        u0, u1 = uniform_pair(k0, k1, stream, i, j)
        out[2 * i] = u0
        if 2 * i + 1 < n:
            out[2 * i + 1] = u1


def uniforms(seed: int, stream: int, n: int, j: int = 0) -> np.ndarray:
    """``n`` uniforms in (0, 1): element ``m`` comes from counter ``(m // 2, j, stream)``.

    The first ``n`` draws do not depend on how many are asked for: ``uniforms(s, t, 10)``
    is a prefix of ``uniforms(s, t, 1000)``.
    """
    k0, k1 = seed_key(seed)
    out = np.empty(int(n), dtype=np.float64)
    _fill_uniforms(k0, k1, stream, j, out)
    return out
