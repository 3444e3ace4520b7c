"""target_stderr and max_sims: paths until the senior's el_stderr meets the target."""

import numpy as np
import pytest

from npl_xl.analysis.convergence import next_path_count, simulate_to_target
from npl_xl.analysis.sizing import tranche_size
from npl_xl.engine import Pool, simulate_deal
from npl_xl.sheet.registry import load_all

TRANCHES = [["name", "kind", "balance", "coupon"], ["Senior", "senior", 280.0, 0.035],
            ["Sub", "subordinated", 150.0, None]]


def pool():
    rs = np.random.default_rng(3)
    n = 300
    claim = rs.uniform(1, 4, n)
    return Pool.from_arrays(claim, claim * rs.uniform(0.2, 0.6, n), rs.uniform(3, 40, n),
                            rs.uniform(0.1, 0.3, n))


def test_target_met_deterministically():
    p = pool()
    plain = simulate_deal(p, TRANCHES, {"n_sims": 400}).tranche_table["el_stderr"].iloc[0]
    target = plain / 3  # needs about 9x the paths
    settings = {"n_sims": 400, "target_stderr": target}
    result, info = simulate_to_target(p, TRANCHES, settings)
    assert info.met and info.stderr <= target and info.runs >= 2
    assert result.tranche_table["el_stderr"].iloc[0] == info.stderr
    assert info.n_paths == result.n_paths > 400
    again, info2 = simulate_to_target(p, TRANCHES, settings)
    assert info2 == info and again.tranche_table.equals(result.tranche_table)
    # the figures are NPL_TRANCHE_EL's at that path count
    direct = simulate_deal(p, TRANCHES, {"n_sims": info.n_paths}).tranche_table
    assert direct.equals(result.tranche_table)
    # the worksheet function follows the setting
    tape = [["loan_id", "province", "claim", "collateral_type", "expected_recovery",
             "expected_months", "recovery_sd"]] + [
        [f"L{i}", "江苏", float(c), "none", float(r), float(m), float(s)]
        for i, (c, r, m, s) in enumerate(zip(p.claim, p.expected_recovery, p.expected_months,
                                             p.recovery_sd))]
    rows = [["key", "value"], ["n_sims", 400], ["target_stderr", target]]
    out = load_all()["NPL_TRANCHE_EL"](tape, TRANCHES, rows)
    assert out[1][6] <= target


def test_max_sims_reached_is_not_an_error():
    p = pool()
    result, info = simulate_to_target(p, TRANCHES, {"n_sims": 400, "target_stderr": 1e-9,
                                                    "max_sims": 1000})
    assert not info.met and info.n_paths == 1000 and result.n_paths == 1000
    assert ("target met", "no: max_sims reached", None) in info.run_info()


def test_off_by_default_and_the_rule():
    result, info = simulate_to_target(pool(), TRANCHES, {"n_sims": 400})
    assert info.target is None and info.met is None and info.runs == 1 and result.n_paths == 400
    assert next_path_count(1000, 0.002, 0.001, 10**6) == 4400  # 1.1 x 1000 x 4
    assert next_path_count(1000, 0.00101, 0.001, 10**6) == 1124  # ceil(1.1 x 1000 x 1.0201) -> x4
    assert next_path_count(1000, 0.01, 0.001, 50_000) == 50_000


def test_sizing_uses_the_converged_paths():
    p = pool()
    plain = simulate_deal(p, TRANCHES, {"n_sims": 400}).tranche_table["el_stderr"].iloc[0]
    settings = {"n_sims": 400, "target_stderr": plain / 2}
    _, info = simulate_to_target(p, TRANCHES, settings)
    sized = tranche_size(p, TRANCHES, "Ba2", None, settings)
    assert sized.n_paths == info.n_paths
