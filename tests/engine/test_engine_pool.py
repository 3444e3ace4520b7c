"""The engine's pool: checks, Beta parameters, sd cap, DataFrame input."""

import numpy as np
import pandas as pd
import pytest

from npl_xl.engine import Pool, simulate_deal
from npl_xl.errors import DomainError, InputTypeError


def test_beta_parameters_by_moments_and_deterministic_loans():
    pool = Pool.from_arrays([10.0, 10.0, 10.0, 0.0], [4.0, 0.0, 4.0, 0.0], [12, 12, 12, 12],
                            [0.2, 0.2, 0.0, 0.3])
    # mean 0.4, sd 0.2: k = 0.24/0.04 - 1 = 5, alpha 2, beta 3 (domain.md §2.1)
    assert pool.alpha[0] == pytest.approx(2.0) and pool.beta[0] == pytest.approx(3.0)
    assert list(pool.alpha[1:]) == [0.0, 0.0, 0.0]  # mean 0, sd 0, claim 0: deterministic
    assert pool.n_sd_capped == 0


def test_sd_too_large_is_capped_at_090_of_the_maximum():
    pool = Pool.from_arrays([1.0], [0.5], [12.0], [0.6])
    # cap 0.9 * sqrt(0.25) = 0.45: k = 0.25 / 0.2025 - 1 = 0.2346
    assert pool.n_sd_capped == 1
    assert pool.alpha[0] == pytest.approx(0.5 * (0.25 / 0.2025 - 1))


@pytest.mark.parametrize("kwargs, name", [
    ({"expected_recovery": [12.0]}, "expected_recovery"),
    ({"claim": [-1.0]}, "claim"),
    ({"expected_months": [-3.0]}, "expected_months"),
    ({"recovery_sd": [-0.1]}, "recovery_sd"),
    ({"region_id": [1.5]}, "region_id"),
])
def test_bad_loans_name_the_array(kwargs, name):
    args = {"claim": [10.0], "expected_recovery": [4.0], "expected_months": [12.0],
            "recovery_sd": [0.2], "region_id": [0]}
    args.update(kwargs)
    with pytest.raises(DomainError, match=name):
        Pool.from_arrays(**args)


def test_lengths_and_non_numbers():
    with pytest.raises(InputTypeError, match="expected_months"):
        Pool.from_arrays([1.0, 2.0], [0.5, 0.5], [12.0], [0.1, 0.1])
    with pytest.raises(InputTypeError, match="claim"):
        Pool.from_arrays([np.nan], [0.5], [12.0], [0.1])


def test_simulate_deal_takes_the_valued_tape_frame():
    frame = pd.DataFrame({"claim": [10.0] * 8, "expected_recovery": [4.0] * 8,
                          "expected_months": [12.0] * 8, "recovery_sd": [0.2] * 8,
                          "region_id": [0, 1] * 4})
    r = simulate_deal(frame, [["name", "kind", "balance"], ["A", "senior", 20.0]], {"n_sims": 40})
    assert r.n_paths == 40 and r.total_claim == 80.0 and r.expected_recovery == 32.0
    assert list(r.collection_curve.columns) == ["period", "month", "expected_collections",
                                                "stderr", "cumulative_share_of_claims"]
    assert r.collection_curve["cumulative_share_of_claims"].iloc[-1] == pytest.approx(
        r.pool_collections.mean() / 80.0)
    assert set(r.tranche_loss) == {"A"} and r.tranche_irr["A"].shape == (40,)


def test_n_sims_rounded_up_to_whole_pairs_of_strata():
    pool = Pool.from_arrays([1.0] * 4, [0.5] * 4, [6.0] * 4, [0.1] * 4)
    r = simulate_deal(pool, [["name", "kind", "balance"], ["A", "senior", 1.0]], {"n_sims": 10})
    assert r.n_paths == 12
    r = simulate_deal(pool, [["name", "kind", "balance"], ["A", "senior", 1.0]],
                      {"n_sims": 10, "variance_reduction": False})
    assert r.n_paths == 10
