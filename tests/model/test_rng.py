"""Philox4x32-10 and the normal quantile behind every random number in npl-xl."""

import numpy as np
import pytest
from scipy import special, stats

from npl_xl import rng


# Known-answer vectors of the reference implementation: Random123 1.09,
# examples/kat_vectors, lines "philox4x32 10 <ctr x4> <key x2> <expected x4>".
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", KAT)
def test_philox_known_answers(counter, key, expected):
    assert tuple(int(x) for x in rng.philox4x32(*counter, *key)) == expected


def test_ndtri_matches_scipy_to_rounding():
    p = np.concatenate([np.logspace(-300, -1, 200), np.linspace(0.01, 0.99, 99),
                        1 - np.logspace(-15, -2, 50)])
    ours = np.array([rng.ndtri(x) for x in p])
    np.testing.assert_allclose(ours, special.ndtri(p), rtol=2e-15, atol=1e-15)
    assert rng.ndtri(0.0) == -np.inf and rng.ndtri(1.0) == np.inf


def test_uniforms_are_uniform_and_prefix_stable():
    u = rng.uniforms(7, rng.STREAM_BETA_DRAWS, 200_000)
    assert 0.0 < u.min() and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # pairs from one Philox block are independent of each other
    assert abs(np.corrcoef(u[0::2], u[1::2])[0, 1]) < 4 / np.sqrt(u.size / 2)
    np.testing.assert_array_equal(rng.uniforms(7, rng.STREAM_BETA_DRAWS, 11), u[:11])


def test_streams_seeds_and_counters_give_different_numbers():
    base = rng.uniforms(1, rng.STREAM_BETA_DRAWS, 1000)
    assert not np.array_equal(base, rng.uniforms(2, rng.STREAM_BETA_DRAWS, 1000))
    assert not np.array_equal(base, rng.uniforms(1, rng.STREAM_IDIOSYNCRATIC, 1000))
    assert not np.array_equal(base, rng.uniforms(1, rng.STREAM_BETA_DRAWS, 1000, j=1))
    # a seed above 2**32 uses the second key word
    assert not np.array_equal(rng.uniforms(1 + 2**32, 1, 10), rng.uniforms(1, 1, 10))


def test_seed_key_rejects_bad_seeds():
    assert rng.seed_key(2**32 + 5) == (5, 1)
    for bad in (-1, 2**64):
        with pytest.raises(ValueError):
            rng.seed_key(bad)


def test_normal_pair_moments():
    k0, k1 = rng.seed_key(3)
    z = np.array([rng.normal_pair(k0, k1, rng.STREAM_IDIOSYNCRATIC, i, 0) for i in range(50_000)])
    assert abs(z.mean()) < 4 / np.sqrt(z.size)
    assert abs(z.std() - 1) < 4 * np.sqrt(0.5 / z.size)
    assert stats.kstest(z[:, 1], "norm").pvalue > 1e-3
