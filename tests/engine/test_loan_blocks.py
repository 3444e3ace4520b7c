"""A large pool is simulated one block of loans at a time (the per-loan quantile tables of
only one block exist at once): the numbers must be those of a single pass, bit for bit."""

import numpy as np

from npl_xl.engine import simulate
from npl_xl.inputs.deal import parse_settings


def _pool(n, seed=3):
    from npl_xl.engine.pool import Pool

    rng = np.random.default_rng(seed)
    claim = rng.lognormal(12, 1, n)
    return Pool.from_arrays(claim, claim * rng.uniform(0.1, 0.8, n), rng.uniform(6, 48, n),
                            rng.uniform(0.02, 0.2, n), rng.integers(0, 3, n))


def test_loan_blocks_give_the_numbers_of_one_pass(monkeypatch):
    pool = _pool(301)
    settings = parse_settings({"n_sims": 64, "seed": 11, "timing_sd_months": 2.0})
    whole = simulate.simulate_collections(pool, settings)
    calls = []
    monkeypatch.setattr(simulate, "LOAN_BLOCK", 100)  # 4 blocks: 100, 100, 100, 1 loans
    blocked = simulate.simulate_collections(pool, settings,
                                            progress=lambda d, t: calls.append((d, t)))
    assert np.array_equal(whole, blocked)  # same additions in the same order
    assert calls and calls[-1][0] == calls[-1][1]  # progress reaches the total
    assert whole.sum() > 0
