"""The per-loan quantile tables against scipy.special.betaincinv."""

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st
from scipy import special

from npl_xl.engine import quantile


def _exact(a, b, z):
    # upper half through the complement so that scipy's reference keeps its precision near 1
    return np.where(z <= 0, special.betaincinv(a, b, special.ndtr(z)),
                    1.0 - special.betaincinv(b, a, special.ndtr(-z)))


def _params(mu, sd):
    k = mu * (1 - mu) / sd ** 2 - 1
    return mu * k, (1 - mu) * k


Z = np.linspace(-6.0, 6.0, 4001)


@pytest.mark.parametrize("mu, sd", [(0.4, 0.2), (0.3, 0.1), (0.05, 0.03), (0.5, 0.3),
                                    (0.02, 0.01), (0.9, 0.05), (0.4, 0.02), (0.001, 0.0009),
                                    (0.999, 0.0009)])
def test_table_matches_betaincinv_to_1e6(mu, sd):
    # tolerance stated in the module: < 1e-6 absolute on |z| <= 6 when alpha, beta >= 0.5
    a, b = _params(mu, sd)
    assert a >= 0.5 and b >= 0.5
    coef = quantile.build_tables(np.array([a]), np.array([b]), np.array([mu]))
    err = np.abs(quantile.table_values(coef, Z)[0] - _exact(a, b, Z))
    assert err.max() < 1e-6


@settings(max_examples=25, deadline=None)
@given(mu=st.floats(0.02, 0.98), ratio=st.floats(0.05, 0.6))
@example(mu=0.02, ratio=0.5703125)  # Beta(0.041, 2.03): its mirror's median is 1 - 2e-8
def test_table_property_random_shapes(mu, ratio):
    sd = ratio * np.sqrt(mu * (1 - mu))  # alpha, beta >= ~0.5 for ratio <= 0.6 except tiny means
    a, b = _params(mu, sd)
    coef = quantile.build_tables(np.array([a]), np.array([b]), np.array([mu]))
    got = quantile.table_values(coef, Z)[0]
    err = np.abs(got - _exact(a, b, Z)).max()
    assert err < (1e-6 if min(a, b) >= 0.5 else 1e-4)
    assert np.all(np.diff(got) >= -1e-9)  # monotone up to the interpolation error


def test_extreme_u_shaped_beta_is_finite_and_close():
    # the sd cap (0.9 sqrt(mu(1-mu))) allows alpha + beta ~ 0.23: steep in z, looser tolerance
    mu = 0.3
    a, b = _params(mu, 0.9 * np.sqrt(mu * (1 - mu)))
    coef = quantile.build_tables(np.array([a, 0.0131, 0.2214]), np.array([b, 0.2214, 0.0131]),
                                 np.array([mu, 0.056, 0.944]))
    assert np.all(np.isfinite(coef))
    err = np.abs(quantile.table_values(coef[:1], Z)[0] - _exact(a, b, Z)).max()
    assert err < 2e-3


def test_deterministic_loan_table_is_its_mean():
    coef = quantile.build_tables(np.array([0.0]), np.array([0.0]), np.array([0.37]))
    assert np.all(quantile.table_values(coef, np.array([-9.0, -1.0, 0.0, 3.0, 9.0])) == 0.37)


def test_clamped_outside_the_grid():
    a, b = 2.0, 3.0
    coef = quantile.build_tables(np.array([a]), np.array([b]), np.array([0.4]))
    v = quantile.table_values(coef, np.array([-50.0, -8.0, 8.0, 50.0]))[0]
    assert v[0] == pytest.approx(v[1], abs=1e-12) and v[2] == pytest.approx(v[3], abs=1e-9)
    # G(-8) and G(8) of Beta(2, 3): F^-1(Phi(-8) = 6.2e-16) = 1.0e-8, 1 - F3,2^-1(6.2e-16) = 1 - 5.4e-6
    np.testing.assert_allclose(v[[1, 2]], _exact(a, b, np.array([-8.0, 8.0])), rtol=1e-9)


def test_kernel_normal_quantile_table():
    from npl_xl.engine import paths

    u = np.concatenate([np.linspace(1e-12, 0.02, 5001), np.linspace(0.0, 1.0, 200001)[1:-1],
                        1.0 - np.linspace(1e-12, 0.02, 5001)])
    out = np.empty_like(u)
    paths._normals(u, paths.NORMAL_TABLE, 1.0, out, np.empty(u.size, np.int64), np.empty(u.size))
    # 1.5e-9 inside [P_LOW, 1 - P_LOW] (cubic Hermite); AS241 (1e-15) outside
    inside = np.abs(u - 0.5) <= 0.5 - paths.NORMAL_P_LOW
    assert np.abs(out - special.ndtri(u))[inside].max() < 2e-9
    np.testing.assert_allclose(out[~inside], special.ndtri(u[~inside]), rtol=1e-12)
