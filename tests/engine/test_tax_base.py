"""Settings tax_base: tax on all collections (default) or only on recoveries above principal.

With tax_base = interest each loan's recoveries pay its principal first and only the part of
its recoveries above its principal is taxed. A loan recovers once on a path (one amount, one
payment date), so its taxable amount is max(0, recovery - principal), booked in the period
the recovery is collected; the collection kernels (general and fast) book it beside the
collections.
"""

from __future__ import annotations

import numpy as np
import pytest

from npl_xl import rng
from npl_xl.engine import Pool, paths
from npl_xl.engine.simulate import pool_tables, simulate_block, simulate_deal
from npl_xl.engine.waterfall import C_RES_TARGET, C_TAX, deterministic_waterfall, waterfall_paths
from npl_xl.errors import DomainError
from npl_xl.inputs.deal import parse_settings, parse_tranches

# --- the hand-computed deal ------------------------------------------------------------
# Three loans, recovery sd 0 and timing sd 0 (every path recovers exactly the expected
# amount at the expected month) and payment
# every 6 months to a legal final of 36 (6 periods):
#   L1 claim 1,000,000, recovers 600,000 at month 5  -> period 1; principal 800,000:
#      600,000 does not repay the principal, taxable max(0, 600,000 - 800,000) = 0
#   L2 claim   500,000, recovers 450,000 at month 11 -> period 2; principal 300,000:
#      taxable 450,000 - 300,000 = 150,000
#   L3 claim   200,000, recovers 200,000 at month 20 -> period 4; principal 120,000:
#      taxable 200,000 - 120,000 = 80,000
# collections per period  C = [600,000, 450,000, 0, 200,000, 0, 0]   (sum 1,250,000)
# taxable per period      X = [0, 150,000, 0, 80,000, 0, 0]
CLAIM = [1_000_000.0, 500_000.0, 200_000.0]
RECOVERY = [600_000.0, 450_000.0, 200_000.0]
MONTHS = [5.0, 11.0, 20.0]
PRINCIPAL = [800_000.0, 300_000.0, 120_000.0]
HAND_COLLECTIONS = [600_000.0, 450_000.0, 0.0, 200_000.0, 0.0, 0.0]
HAND_TAXABLE = [0.0, 150_000.0, 0.0, 80_000.0, 0.0, 0.0]
# Tranches: a senior of 1,245,000 at coupon 0 (its PV is what it is paid, undiscounted) and
# a subordinated tranche. No fees, no reserve, no liquidity: the senior gets everything
# after taxes. tax_rate 0.0336:
#   collections: taxes 0.0336 x 1,250,000 = 42,000; senior paid 1,208,000;
#                EL = 1 - 1,208,000 / 1,245,000 = 37,000 / 1,245,000 = 0.029718875...
#   interest:    taxes 0.0336 x (150,000 + 80,000) = 7,728; senior paid 1,242,272;
#                EL = 2,728 / 1,245,000 = 0.0021911646...
TRANCHES = [["name", "kind", "balance", "coupon"], ["A", "senior", 1_245_000.0, 0.0],
            ["S", "subordinated", 100_000.0, 0.0]]
SETTINGS = {"tax_rate": 0.0336, "servicer_fee_rate": 0.0, "fixed_expenses": 0.0,
            "reserve_multiple": 0.0, "liquidity_limit": 0.0, "payment_months": 6,
            "legal_final_months": 36, "n_sims": 8, "seed": 1, "timing_sd_months": 0.0}


def _hand_pool(principal=PRINCIPAL):
    return Pool.from_arrays(CLAIM, RECOVERY, MONTHS, [0.0, 0.0, 0.0], principal=principal)


@pytest.mark.parametrize("timing_sd", [0.0, 1e-6])  # general kernel; fast (threshold) kernel
def test_hand_deal_taxable_collections_per_period(timing_sd):
    settings = parse_settings(dict(SETTINGS, tax_base="interest", timing_sd_months=timing_sd))
    block = simulate_block(_hand_pool(), settings, 0, 8)
    assert paths.uses_thresholds(settings) == (timing_sd > 0)
    for p in range(8):  # sd 0: every path is the hand computation
        np.testing.assert_allclose(block["collections"][p], HAND_COLLECTIONS, rtol=0, atol=1e-6)
        np.testing.assert_allclose(block["taxable"][p], HAND_TAXABLE, rtol=0, atol=1e-6)


@pytest.mark.parametrize("tax_base, el_senior", [("collections", 37_000 / 1_245_000),
                                                 ("interest", 2_728 / 1_245_000)])
def test_hand_deal_senior_el(tax_base, el_senior):
    result = simulate_deal(_hand_pool(), TRANCHES, dict(SETTINGS, tax_base=tax_base))
    assert result.tranche_table.EL[0] == pytest.approx(el_senior, rel=1e-9)


def test_hand_deal_deterministic_waterfall_taxes_and_reserve_target():
    # The taxes column: 0.0336 x X = [0, 5,040, 0, 2,688, 0, 0].
    tranches = parse_tranches(TRANCHES)
    settings = parse_settings(dict(SETTINGS, tax_base="interest"))
    flows, *_ = deterministic_waterfall(HAND_COLLECTIONS, tranches, settings,
                                        taxable=HAND_TAXABLE)
    np.testing.assert_allclose(flows[:, C_TAX], [0, 5_040, 0, 2_688, 0, 0], atol=1e-9)
    # The reserve target of period 1 (senior outstanding, coupon 0 so no interest term),
    # reserve_multiple 1, servicer_fee_rate 0.01, fixed_expenses 1,000: next period's taxes
    # on the taxable forecast X_2 = 150,000 plus the fee on the forecast F_2 = 450,000 plus
    # the fixed expenses: 0.0336 x 150,000 + 0.01 x 450,000 + 1,000 = 5,040 + 4,500 + 1,000
    # = 10,540. With tax_base collections: 0.0436 x 450,000 + 1,000 = 20,620.
    fees = dict(SETTINGS, reserve_multiple=1.0, servicer_fee_rate=0.01, fixed_expenses=1_000.0)
    for base, target in (("interest", 10_540.0), ("collections", 20_620.0)):
        flows, *_ = deterministic_waterfall(HAND_COLLECTIONS, tranches,
                                            parse_settings(dict(fees, tax_base=base)),
                                            taxable=HAND_TAXABLE)
        assert flows[0, C_RES_TARGET] == pytest.approx(target, rel=1e-12)


def test_collections_reproduces_the_numbers_before_tax_base():
    # tax_base = collections (the default) is the computation before the key existed: the
    # pool's collections (simulate_collections), the waterfall taxing them, the tranche
    # table; bit for bit, with or without a principal column on the tape. (Checked also
    # against main before this change, 91095f0 and 1e6faea: the same EL and IRR bits.)
    from npl_xl.engine.simulate import mc_mean, simulate_collections, tranche_table

    rs = np.random.default_rng(8)
    n = 60
    claim = rs.lognormal(11, 1, n)
    recovery = claim * rs.uniform(0.1, 0.8, n)
    months = rs.uniform(3, 50, n)
    region = rs.integers(0, 3, n)
    total = claim.sum() * 0.45
    tranches = parse_tranches([["name", "kind", "balance", "coupon"],
                               ["A", "senior", 0.4 * total, 0.035],
                               ["B", "mezzanine", 0.05 * total, 0.06],
                               ["S", "subordinated", 0.1 * total, 0.0]])
    settings = parse_settings({"n_sims": 2000, "seed": 3, "reserve_multiple": 1.0,
                               "tax_rate": 0.0336})
    plain = Pool.from_arrays(claim, recovery, months, np.full(n, 0.15), region)
    coll = simulate_collections(plain, settings)
    metrics = waterfall_paths(coll, tranches, settings, forecast=mc_mean(coll, True)[0])
    before = tranche_table(metrics, tranches, settings)
    for principal, extra in ((None, {}), (0.7 * claim, {"tax_base": "collections"})):
        pool = Pool.from_arrays(claim, recovery, months, np.full(n, 0.15), region,
                                principal=principal)
        result = simulate_deal(pool, tranches, settings.with_overrides(**extra))
        assert result.extras["taxable"] is None
        for column in ("EL", "PD", "WAL", "mean_irr", "el_stderr"):
            assert np.array_equal(result.tranche_table[column].to_numpy(),
                                  before[column].to_numpy(), equal_nan=True), column
    assert before.EL[0] > 0 and before.EL[2] > before.EL[0]  # the test has losses to compare


def _random_pool(seed):
    rs = np.random.default_rng(seed)
    n = int(rs.integers(50, 200))
    claim = rs.lognormal(0.0, 1.0, n)
    claim[0] = 0.0
    mu = rs.uniform(0.05, 0.95, n)
    sd = rs.uniform(0.0, 0.3, n)
    sd[1] = 0.0
    months = rs.uniform(0.0, 80.0, n)
    principal = claim * rs.uniform(0.2, 1.0, n)
    pool = Pool.from_arrays(claim, claim * mu, months, sd, rs.integers(0, 4, n),
                            principal=principal)
    settings = parse_settings({
        "n_sims": int(rs.integers(2, 30)) * 4, "seed": int(rs.integers(0, 2**40)),
        "rho": float(rs.uniform(0.0, 0.8)), "timing_sd_months": float(rs.choice([0.5, 3.0, 12.0])),
        "payment_months": int(rs.choice([3, 6, 12])),
        "legal_final_months": int(rs.choice([36, 60, 61])),
        "cap_at_expected": bool(rs.integers(0, 2)),
        "variance_reduction": bool(rs.integers(0, 2)), "tax_base": "interest"})
    return pool, settings


def _collect_both(pool, settings, principal=None):
    from npl_xl.engine.simulate import n_paths_for

    n = n_paths_for(settings)
    if principal is not None:
        pool = Pool.from_arrays(pool.claim, pool.expected_recovery, pool.expected_months,
                                pool.recovery_sd, pool.region_id, principal=principal)
    args = (rng.seed_key(settings.seed), 0, n, n, settings.variance_reduction, pool_tables(pool),
            pool, settings)
    out = []
    for fast in (True, False):
        taxable = np.empty((n, settings.n_periods))
        coll = paths.collect(*args, fast=fast, taxable=taxable)
        out.append((coll, taxable))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_fast_and_general_kernels_book_identical_taxable_amounts(seed):
    pool, settings = _random_pool(seed)
    assert paths.uses_thresholds(settings)
    (fast_c, fast_t), (gen_c, gen_t) = _collect_both(pool, settings)
    assert np.array_equal(fast_c, gen_c)
    assert np.array_equal(fast_t, gen_t)
    assert np.all(fast_t >= 0) and np.all(fast_t <= fast_c + 1e-12)
    # and the collections are those of a run without tax_base (bit for bit)
    n = fast_c.shape[0]
    plain = paths.collect(rng.seed_key(settings.seed), 0, n, n, settings.variance_reduction,
                          pool_tables(pool), pool, settings)
    assert np.array_equal(plain, fast_c)


def test_limiting_principals_zero_and_whole_claim():
    # principal 0: every recovery is above principal, so the taxable amounts are the
    # collections (the same additions in the same order; equal to rounding, as the kernels
    # may fuse a collection's multiply into its addition, FMA); principal = claim: a
    # recovery never exceeds the claim, so nothing is taxable.
    pool, settings = _random_pool(11)
    for (coll, taxable) in _collect_both(pool, settings, principal=np.zeros(pool.n_loans)):
        np.testing.assert_allclose(taxable, coll, rtol=1e-13, atol=0)
    for (coll, taxable) in _collect_both(pool, settings, principal=pool.claim.copy()):
        assert np.all(taxable == 0.0) and coll.sum() > 0


def test_loan_blocks_add_up_to_one_pass():
    pool, settings = _random_pool(5)
    from npl_xl.engine.simulate import n_paths_for

    n = n_paths_for(settings)
    words = rng.seed_key(settings.seed)
    coef = pool_tables(pool)
    whole_t = np.empty((n, settings.n_periods))
    whole = paths.collect(words, 0, n, n, settings.variance_reduction, coef, pool, settings,
                          taxable=whole_t)
    parts_t = np.empty((n, settings.n_periods))
    parts = None
    half = pool.n_loans // 2
    for loans in (slice(0, half), slice(half, pool.n_loans)):
        sub = coef[loans]
        if parts is None:
            parts = paths.collect(words, 0, n, n, settings.variance_reduction, sub, pool,
                                  settings, loans=loans, taxable=parts_t)
        else:
            paths.collect(words, 0, n, n, settings.variance_reduction, sub, pool, settings,
                          loans=loans, out=parts, taxable=parts_t)
    assert np.array_equal(whole, parts) and np.array_equal(whole_t, parts_t)


def test_interest_without_principal_is_a_clear_error():
    pool = Pool.from_arrays(CLAIM, RECOVERY, MONTHS, [0.0, 0.0, 0.0])
    with pytest.raises(DomainError) as info:
        simulate_deal(pool, TRANCHES, dict(SETTINGS, tax_base="interest"))
    text = str(info.value)
    assert "tax_base" in text and "principal" in text
    blank = Pool.from_arrays(CLAIM, RECOVERY, MONTHS, [0.0] * 3,
                             principal=[800_000.0, np.nan, 1.0])
    with pytest.raises(DomainError, match="loan 2"):
        simulate_deal(blank, TRANCHES, dict(SETTINGS, tax_base="interest"))
    # a waterfall of a collections vector alone cannot tax interest: the error names the key
    with pytest.raises(DomainError, match="tax_base"):
        waterfall_paths(np.ones((4, 6)), parse_tranches(TRANCHES),
                        parse_settings(dict(SETTINGS, tax_base="interest")))


def test_tranche_el_worksheet_function_with_tape_principal():
    # The tape's principal column (未偿本金) reaches the engine; without it, an Excel error
    # value whose message names tax_base and the column.
    from npl_xl.errors import XlError
    from npl_xl.sheet.registry import load_all

    tape = [["loan_id", "province", "collateral_type", "collateral_value", "stage",
             "principal", "interest"],
            ["L1", "浙江", "住宅", 900_000, "auction_1", 800_000, 200_000],
            ["L2", "Jiangsu", "none", None, "judgment", 300_000, 100_000]]
    fn = load_all()["NPL_TRANCHE_EL"]
    tranches = [["name", "kind", "balance", "coupon"], ["A", "senior", 500_000.0, 0.03],
                ["S", "subordinated", 100_000.0, 0.0]]
    table = {}
    for base in ("collections", "interest"):
        settings = [["key", "value"], ["tax_base", base], ["n_sims", 400]]
        table[base] = fn(tape, tranches, settings)
        assert not isinstance(table[base], XlError), table[base]
    # less tax, so the senior loses no more and the subordinated tranche loses less
    assert table["interest"][1][1] <= table["collections"][1][1]
    assert table["interest"][2][1] < table["collections"][2][1]
    no_principal = [["loan_id", "province", "collateral_type", "collateral_value", "stage",
                     "claim"]] + [r[:5] + [r[5] + r[6]] for r in tape[1:]]
    error = fn(no_principal, tranches, [["key", "value"], ["tax_base", "interest"]])
    assert isinstance(error, XlError)
    assert "tax_base" in error.message and "principal" in error.message


def test_audit_taxes_only_the_recoveries_above_principal():
    # The hand deal's base case (every loan at its expected recovery and month): the audit's
    # taxes are 0.0336 x X = [0, 5,040, 0, 2,688, 0, 0]; a simulated path's the same (sd 0).
    from npl_xl.analysis.audit import BASE_CASE, audit_frames

    result = simulate_deal(_hand_pool(), TRANCHES, dict(SETTINGS, tax_base="interest"))
    frames = audit_frames(result, [3])
    for case in (BASE_CASE, "path_3"):
        np.testing.assert_allclose(frames[case]["taxes"], [0, 5_040, 0, 2_688, 0, 0], atol=1e-6)
        np.testing.assert_allclose(frames[case]["A_principal"].sum(), 1_242_272.0, rtol=1e-12)


from hypothesis import given, settings as hyp_settings, strategies as st  # noqa: E402

from npl_xl.engine.reference import reference_waterfall  # noqa: E402


@hyp_settings(max_examples=200, deadline=None)
@given(coll=st.lists(st.floats(0, 200), min_size=2, max_size=10),
       share=st.lists(st.floats(0, 1), min_size=10, max_size=10),
       noise=st.lists(st.floats(0.3, 2.0), min_size=10, max_size=10),
       tax=st.floats(0, 0.2), serv=st.floats(0, 0.1), mult=st.floats(0, 3),
       fixed=st.floats(0, 5), liq=st.floats(0, 20))
def test_kernel_matches_the_plain_python_waterfall_with_tax_on_interest(
        coll, share, noise, tax, serv, mult, fixed, liq):
    # random taxable parts (0 to all of each period's collections) and forecasts: the
    # kernel's taxes, reserve and tranche payments against the plain-Python reference
    n = len(coll)
    coll = np.array(coll)
    taxable = coll * np.array(share[:n])
    forecast = coll * np.array(noise[:n])
    tax_forecast = taxable * np.array(noise[::-1][:n])
    tranches = parse_tranches([["name", "kind", "balance", "coupon"],
                               ["A", "senior", 300.0, 0.04], ["B", "mezzanine", 50.0, 0.08],
                               ["S", "subordinated", 80.0, None]])
    settings = parse_settings({"payment_months": 6, "legal_final_months": 6 * n,
                               "tax_rate": tax, "servicer_fee_rate": serv,
                               "reserve_multiple": mult, "fixed_expenses": fixed,
                               "liquidity_limit": liq, "tax_base": "interest"})
    flows, columns, missed, arrears = deterministic_waterfall(
        coll, tranches, settings, forecast=forecast, taxable=taxable, tax_forecast=tax_forecast)
    ref = reference_waterfall(coll, tranches, settings, forecast=forecast, taxable=taxable,
                              tax_forecast=tax_forecast)
    col = {c: k for k, c in enumerate(columns)}
    for j, name in enumerate(tranches.names):
        np.testing.assert_allclose(flows[:, col[f"{name}_interest"]], ref["interest"][j],
                                   atol=1e-7)
        np.testing.assert_allclose(flows[:, col[f"{name}_principal"]], ref["principal"][j],
                                   atol=1e-7)
    np.testing.assert_allclose(flows[:, col["reserve_balance"]], ref["reserve"], atol=1e-7)
    np.testing.assert_allclose(arrears, ref["arrears"], atol=1e-7)
    # the taxes never exceed tax_rate x the taxable amounts due so far
    assert flows[:, C_TAX].sum() <= tax * taxable.sum() + 1e-9
