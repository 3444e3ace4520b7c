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


def test_the_cap_factor_is_an_argument_with_the_assumptions_default():
    # factor 0.5: cap 0.5 * sqrt(0.25) = 0.25; k = 0.25 / 0.0625 - 1 = 3, alpha = 0.5 * 3
    pool = Pool.from_arrays([1.0], [0.5], [12.0], [0.6], sd_cap_factor=0.5)
    assert pool.n_sd_capped == 1 and pool.sd_cap_factor == 0.5
    assert pool.alpha[0] == pytest.approx(1.5) and pool.beta[0] == pytest.approx(1.5)
    # no factor: the packaged Assumptions' Parameters value (parameters.csv: 0.9)
    from npl_xl.inputs.assumptions import Assumptions

    assert Pool.from_arrays([1.0], [0.5], [12.0], [0.6]).sd_cap_factor == \
        Assumptions.default().sd_cap_factor == 0.9
    with pytest.raises(DomainError, match="sd_cap_factor"):
        Pool.from_arrays([1.0], [0.5], [12.0], [0.6], sd_cap_factor=1.5)


def test_pool_from_tape_caps_with_the_assumptions_factor():
    from npl_xl.engine.pool import pool_from_frame, pool_from_tape
    from npl_xl.inputs.assumptions import Assumptions

    tape = [["loan_id", "claim", "collateral_type", "collateral_value", "province", "stage",
             "recovery_sd"],
            ["L1", 100.0, "residential", 120.0, "Zhejiang", "auction_1", 0.35]]
    half = Assumptions.from_tables({"Parameters": [["key", "value"], ["sd_cap_factor", 0.5]]})
    default, capped = pool_from_tape(tape), pool_from_tape(tape, half)
    mu = default.mean[0]
    spread = np.sqrt(mu * (1 - mu))
    assert 0.9 * spread < 0.35 < spread  # the override is feasible but above both caps
    # alpha = mu k with k = mu (1 - mu) / sd^2 - 1 at the capped sd
    for pool, factor in ((default, 0.9), (capped, 0.5)):
        sd = min(0.35, factor * spread)
        assert pool.sd_cap_factor == factor
        assert pool.alpha[0] == pytest.approx(mu * (spread**2 / sd**2 - 1))
    # the valued tape carries the factor, so a frame handed to the engine keeps it
    from npl_xl.inputs.tape import read_tape
    from npl_xl.model.loans import value_tape

    assert pool_from_frame(value_tape(read_tape(tape), half)).sd_cap_factor == 0.5
