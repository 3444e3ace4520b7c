"""The waterfall audit: the base case by hand, and a simulated path's rows reproduce that
path's tranche figures."""

import numpy as np
import pytest

from npl_xl.analysis.audit import BASE_CASE, audit_frames, base_case_collections, parse_paths
from npl_xl.engine import Pool, simulate_deal
from npl_xl.engine.waterfall import N_FLOW, path_metrics
from npl_xl.errors import InputTypeError
from npl_xl.inputs.deal import parse_settings


def test_base_case_collects_each_expected_recovery_on_the_next_payment_date():
    # recoveries 10 at month 0, 20 at 6, 30 at 7, 40 at 59, 50 at 61; payment every 6
    # months to a 60-month legal final: periods 1 (month 0 and 6), 2 (7), 10 (59); 61 is lost
    pool = Pool.from_arrays(np.full(5, 100.0), [10.0, 20.0, 30.0, 40.0, 50.0],
                            [0.0, 6.0, 7.0, 59.0, 61.0], np.zeros(5))
    out = base_case_collections(pool, parse_settings(None))
    want = np.zeros(10)
    want[0], want[1], want[9] = 30.0, 30.0, 40.0
    np.testing.assert_allclose(out, want)


def _run():
    rs = np.random.default_rng(4)
    n = 200
    claim = rs.uniform(1, 5, n)
    pool = Pool.from_arrays(claim, claim * rs.uniform(0.2, 0.6, n), rs.uniform(3, 40, n),
                            rs.uniform(0.05, 0.25, n))
    er = pool.expected_recovery.sum()
    tranches = [["name", "kind", "balance", "coupon", "pari_group"],
                ["A1", "senior", 0.3 * er, 0.03, "A"], ["A2", "senior", 0.2 * er, 0.04, "A"],
                ["B", "mezzanine", 0.1 * er, 0.06, None], ["S", "subordinated", 0.2 * er, None, None]]
    settings = {"n_sims": 40, "legal_final_months": 57, "reserve_multiple": 1.5,
                "liquidity_limit": 0.02 * er, "liquidity_rate": 0.05, "ccr_trigger": 0.9,
                "deferred_fee_share": 0.5, "servicer_fee_rate": 0.01,
                "mezz_interest": "before_senior_principal", "sub_return_rate": 0.05}
    return simulate_deal(pool, tranches, settings)


def test_a_paths_audit_reproduces_its_simulated_figures():
    result = _run()
    frames = audit_frames(result, [0, 7])
    assert list(frames) == [BASE_CASE, "path_0", "path_7"]
    tranches = result.extras["tranches"]
    kind, bal0, _, price = tranches.arrays()
    disc = tranches.discount_rates(result.settings.sub_return_rate)
    dates = result.settings.period_dates.astype(float)  # the last period ends at month 57
    for p in (0, 7):
        frame = frames[f"path_{p}"]
        assert list(frame["month"]) == list(dates) and dates[-1] == 57.0
        np.testing.assert_allclose(frame["collections"], result.path_collections[p])
        # rebuild the kernel's flow array from the audit's columns and measure the path
        flows = np.zeros((len(frame), N_FLOW + 3 * len(kind)))
        for j, name in enumerate(tranches.names):
            for c, column in enumerate(("interest", "principal", "balance")):
                flows[:, N_FLOW + 3 * j + c] = frame[f"{name}_{column}"]
        flows[:, 10] = frame["residual"]
        missed = np.array([frame[f"{n}_missed_payment"].iloc[0] for n in tranches.names])
        arrears = np.array([frame[f"{n}_arrears_at_end"].iloc[0] for n in tranches.names])
        out = [np.empty(len(kind)) for _ in range(5)]
        path_metrics(flows, dates, kind, bal0, disc, price, missed, arrears, *out)
        for j, name in enumerate(tranches.names):
            assert out[0][j] == pytest.approx(result.tranche_loss[name][p], abs=1e-12)
            assert out[3][j] == result.tranche_default[name][p]
        assert frame["liquidity_write_off"].sum() == pytest.approx(result.liquidity_loss[p])
    base = frames[BASE_CASE]
    assert {"event_of_default", "ccr", "ccr_breached", "mezz_subordinated",
            "reserve_target", "A1_interest", "S_balance"} <= set(base.columns)
    with pytest.raises(InputTypeError, match="--audit-paths"):
        audit_frames(result, [40])


def test_parse_paths():
    assert parse_paths(" 0, 17,25") == [0, 17, 25] and parse_paths(None) == []
    with pytest.raises(InputTypeError, match="--audit-paths"):
        parse_paths("1,x")
