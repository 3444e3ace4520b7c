"""NPL_SENSITIVITY and the scenario engine: the base case exactly, monotone shocks, the
rho limits against independent references."""

import numpy as np
import pytest
from scipy import special

from npl_xl.analysis.sensitivity import (bid_tornado, scenario_tables, sensitivity,
                                         stress_grid, tornado)
from npl_xl.analysis import sensitivity as sensitivity_module
from npl_xl.engine import Pool, simulate_collections, simulate_deal
from npl_xl.engine.reference import reference_collections
from npl_xl.engine.scenarios import Scenario, simulate_scenarios
from npl_xl.engine.waterfall import waterfall_paths
from npl_xl.errors import DomainError
from npl_xl.inputs.deal import parse_settings, parse_tranches
from npl_xl.sheet.registry import load_all

TRANCHES = [["name", "kind", "balance", "coupon"], ["Senior", "senior", 260.0, 0.035],
            ["Mezz", "mezzanine", 60.0, 0.06], ["Sub", "subordinated", 100.0, None]]


def pool(n=300, seed=4):
    rs = np.random.default_rng(seed)
    claim = rs.uniform(1, 4, n)
    return Pool.from_arrays(claim, claim * rs.uniform(0.2, 0.6, n), rs.uniform(3, 40, n),
                            rs.uniform(0.1, 0.3, n), rs.integers(0, 3, n))


SETTINGS = {"n_sims": 2000, "rho": 0.2, "region_weight": 0.7, "timing_stress": 0.25}


def test_base_shocks_reproduce_npl_tranche_el_exactly():
    p = pool()
    settings = parse_settings(SETTINGS)
    base = simulate_deal(p, TRANCHES, settings).tranche_table
    for variable, value in (("rho", 0.2), ("recovery", 1.0), ("sd", 1.0), ("delay", 0.0),
                            ("timing_sd", 3.0)):
        for figure in ("EL", "PD", "WAL", "mean_irr", "rating"):
            table = sensitivity(p, TRANCHES, variable, [value], figure, None, settings)
            assert table.columns.tolist() == ["shock", "Senior", "Mezz", "Sub"]
            assert table.iloc[0, 1:].tolist() == base[figure].tolist(), (variable, figure)


def test_scenario_collections_equal_the_engine_whatever_the_block_order():
    p = pool()
    settings = parse_settings({**SETTINGS, "n_sims": 5000})
    coll = simulate_collections(p, settings)
    scenarios = [Scenario(recovery=0.9), Scenario(), Scenario(rho=0.5)]
    forward = simulate_scenarios(p, settings, scenarios)
    assert np.array_equal(forward[1], coll)
    backward = simulate_scenarios(p, settings, scenarios, block_order=[2, 1, 0])
    assert np.array_equal(forward, backward)
    # each scenario alone gives the same numbers as in company (the draws are shared, not
    # consumed)
    alone = simulate_scenarios(p, settings, [Scenario(rho=0.5)])
    assert np.array_equal(alone[0], forward[2])


def test_groups_bound_memory_without_changing_numbers(monkeypatch):
    p = pool()
    settings = parse_settings(SETTINGS)
    scenarios = [Scenario.shock("delay", d) for d in (0, 6, 12)]
    together = scenario_tables(p, TRANCHES, settings, scenarios)
    monkeypatch.setattr(sensitivity_module, "MAX_ELEMENTS", 1)  # one scenario per group
    apart = scenario_tables(p, TRANCHES, settings, scenarios)
    for a, b in zip(together, apart):
        assert a.equals(b)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_senior_el_monotone_in_delay_and_recovery(seed):
    p = pool(seed=seed + 10)
    settings = {**SETTINGS, "seed": seed}
    delay = sensitivity(p, TRANCHES, "delay", [0, 3, 6, 12, 24], "EL", "Senior", settings)
    assert np.all(np.diff(delay["Senior"]) >= 0) and delay["Senior"].iloc[-1] > delay["Senior"].iloc[0]
    recovery = sensitivity(p, TRANCHES, "recovery", [0.7, 0.8, 0.9, 1.0, 1.1], "EL", "Senior",
                           settings)
    assert np.all(np.diff(recovery["Senior"]) <= 0)
    assert recovery["Senior"].iloc[0] > recovery["Senior"].iloc[-1]


def test_rho_zero_matches_the_independent_reference():
    # the scipy twin of the model (scipy's exact Beta quantile, no tables) at rho = 0
    p = pool(60)
    settings = parse_settings({"n_sims": 40, "rho": 0.3, "timing_sd_months": 2.0})
    shocked = simulate_scenarios(p, settings, [Scenario(rho=0.0)])[0]
    reference = reference_collections(p, settings.with_overrides(rho=0.0))
    assert np.allclose(shocked, reference, rtol=0, atol=1e-4 * p.claim.max())


def test_rho_near_one_matches_the_comonotone_limit():
    # rho -> 1: every loan's rate is G_i(M), one systematic draw; with deterministic dates
    # the pool's collection per period is a function of M alone, and each tranche's EL is
    # integral loss(C(M)) phi(M) dM, here by the midpoint rule in u = Phi(M) on 10,000
    # points (the loss has kinks in M, where Gauss-Hermite converges slowly) with scipy's
    # exact Beta quantile
    p = pool(100)
    er = p.expected_recovery.sum()
    tranches = parse_tranches([TRANCHES[0], ["Senior", "senior", 0.6 * er, 0.035],
                               ["Mezz", "mezzanine", 0.15 * er, 0.06],
                               ["Sub", "subordinated", 0.3 * er, None]])
    settings = parse_settings({"n_sims": 4000, "rho": 0.15, "timing_sd_months": 0,
                               "timing_stress": 0})
    table = scenario_tables(p, tranches, settings, [Scenario(rho=1.0 - 1e-10)])[0]
    u = (np.arange(10_000) + 0.5) / 10_000
    random = p.alpha > 0
    rates = np.tile(p.mean, (u.size, 1))
    rates[:, random] = special.betaincinv(p.alpha[random][None, :], p.beta[random][None, :],
                                          u[:, None])
    coll = np.zeros((u.size, settings.n_periods))
    months = p.expected_months
    k = np.clip(np.ceil(months / settings.payment_months), 1, settings.n_periods).astype(int) - 1
    for i in range(p.n_loans):
        if months[i] <= settings.legal_final_months:
            coll[:, k[i]] += p.claim[i] * rates[:, i]
    limit = waterfall_paths(coll, tranches, settings)["loss"].mean(axis=0)
    for j in range(3):
        se = table["el_stderr"].iloc[j]
        # 4 s.e., plus 2e-5 for the kernel's Beta tables and the 10,000-point rule
        assert abs(table["EL"].iloc[j] - limit[j]) <= 4 * se + 2e-5, (j, table["EL"].iloc[j], limit[j], se)
    assert 0.0 < limit[0] < limit[1] < 0.5  # a test with losses in every tranche


def test_tornado_and_grid_on_common_numbers():
    p = pool()
    settings = parse_settings(SETTINGS)
    base = simulate_deal(p, TRANCHES, settings).tranche_table
    frame = tornado(p, TRANCHES, settings)
    assert set(frame["variable"]) == {"rho", "recovery", "sd", "delay", "timing_sd"}
    assert (frame["base"] == base["EL"].iloc[0]).all()
    assert frame["swing"].is_monotonic_decreasing
    bids = bid_tornado(p, settings)
    from npl_xl.analysis.pricing import bid_price
    assert bids["base"].iloc[0] == bid_price(p, settings.discount_rate, 0.5, settings).price
    grid = stress_grid(p, settings, recoveries=(0.8, 1.0), delays=(0.0, 12.0))
    assert grid.price[1, 0] == bids["base"].iloc[0]
    assert grid.price[0, 0] < grid.price[1, 0] and grid.price[1, 1] < grid.price[1, 0]


def test_registry_and_bad_input():
    tape = [["loan_id", "province", "claim", "collateral_type", "expected_recovery",
             "expected_months", "recovery_sd"]] + [
        [f"L{i}", "江苏", 100.0, "none", 40.0, 6.0 + i, 0.2] for i in range(20)]
    tranches = [["name", "kind", "balance", "coupon"], ["Senior", "senior", 500.0, 0.03],
                ["Sub", "subordinated", 300.0, None]]
    f = load_all()["NPL_SENSITIVITY"]
    out = f(tape, tranches, "delay", [[0.0, 12.0]], "EL", None, None, 400)
    assert out[0] == ["shock", "Senior", "Sub"] and [r[0] for r in out[1:]] == [0.0, 12.0]
    one = f(tape, tranches, "recovery", [[0.9], [1.0]], "rating", "sub", None, 400)
    assert one[0] == ["shock", "Sub"] and isinstance(one[1][1], str)
    assert f(tape, tranches, "beta", [[1.0]]).code == "#NUM!"
    assert "variable" in f(tape, tranches, "beta", [[1.0]]).message
    assert f(tape, tranches, "rho", [[1.5]]).code == "#NUM!"
    assert f(tape, tranches, "rho", [[0.1]], "IRR").code == "#NUM!"
    with pytest.raises(DomainError):
        sensitivity(pool(20), TRANCHES, "recovery", [0.0], settings={"n_sims": 8})
