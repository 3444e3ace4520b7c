"""Shared collateral and guarantees: hand-computed allocations, the Tape-only equivalence,
and properties over random many-to-many graphs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npl_xl.errors import TableError
from npl_xl.inputs.assumptions import Assumptions
from npl_xl.inputs.tape import read_collateral, read_guarantees, read_tape
from npl_xl.model.loans import case_arrays, value_tape
from npl_xl.model.shared import allocate, value_shared


def _allocate(amount, links, claims):
    """links: (item, loan, rank) triples; weight = capacity = claims."""
    item, loan, rank = (np.array(c, dtype=np.int64) for c in zip(*links))
    claims = np.array(claims, dtype=float)
    return allocate(np.array(amount, dtype=float), item, loan, rank, claims, claims)


def test_one_property_three_loans_two_ranks_by_hand():
    # Property P (net proceeds 1,000) secures A (rank 1, claim 300), B (rank 1, claim 900)
    # and C (rank 2, claim 500). Rank 1 claims 1,200 > 1,000: pro rata to claim,
    # A 1,000 x 300/1,200 = 250, B 1,000 x 900/1,200 = 750; nothing is left for rank 2.
    draw, surplus = _allocate([1000], [(0, 0, 1), (0, 1, 1), (0, 2, 2)], [300, 900, 500])
    np.testing.assert_allclose(draw, [250, 750, 0])
    assert surplus[0] == 0
    # Proceeds 1,500: rank 1 is paid in full (300 + 900), the 300 left goes to C (rank 2).
    draw, surplus = _allocate([1500], [(0, 0, 1), (0, 1, 1), (0, 2, 2)], [300, 900, 500])
    np.testing.assert_allclose(draw, [300, 900, 300])
    # A cap inside a rank: A's claim is 100. Pro rata A would get 1,500 x 100/1,000 = 150 >
    # 100, so A takes 100 and the 50 goes to B: B 1,350 x ... capped at its 900; rank 1 takes
    # 1,000 and the 500 left pays C's 500 in full. Surplus 0.
    draw, surplus = _allocate([1500], [(0, 0, 1), (0, 1, 1), (0, 2, 2)], [100, 900, 500])
    np.testing.assert_allclose(draw, [100, 900, 500])
    assert surplus[0] == pytest.approx(0)
    # Proceeds above every claim: the surplus (2,000 - 1,500) is returned, not recovered.
    draw, surplus = _allocate([2000], [(0, 0, 1), (0, 1, 1), (0, 2, 2)], [100, 900, 500])
    np.testing.assert_allclose(draw, [100, 900, 500])
    assert surplus[0] == pytest.approx(500)


def test_one_loan_two_properties_by_hand():
    # Loan L (claim 1,000) is secured by P1 (600) and P2 (700), both first lien. The offers
    # total 1,300 > 1,000, so each is cut by 1,000/1,300: P1 gives 461.54, P2 538.46, and
    # P1 keeps 138.46, P2 161.54 as surplus.
    draw, surplus = _allocate([600, 700], [(0, 0, 1), (1, 0, 1)], [1000])
    np.testing.assert_allclose(draw, [600 * 1000 / 1300, 700 * 1000 / 1300])
    np.testing.assert_allclose(surplus, [600 * 300 / 1300, 700 * 300 / 1300])
    # Claim 2,000: both properties go to L in full.
    draw, surplus = _allocate([600, 700], [(0, 0, 1), (1, 0, 1)], [2000])
    np.testing.assert_allclose(draw, [600, 700])


def test_guarantor_of_three_loans_pro_rata_to_unrecovered_by_hand():
    # Guarantor G expects to pay 600 over loans with unrecovered claims 100, 300, 600
    # (total 1,000): 60, 180 and 360. Paying 1,500 would exceed 1,000: each loan gets what is
    # unrecovered, 500 is left.
    unrecovered = np.array([100.0, 300.0, 600.0])
    item, loan, rank = np.zeros(3, np.int64), np.arange(3), np.ones(3, np.int64)
    draw, surplus = allocate(np.array([600.0]), item, loan, rank, unrecovered, unrecovered)
    np.testing.assert_allclose(draw, [60, 180, 360])
    draw, surplus = allocate(np.array([1500.0]), item, loan, rank, unrecovered, unrecovered)
    np.testing.assert_allclose(draw, [100, 300, 600])
    assert surplus[0] == pytest.approx(500)


TAPE = [["loan_id", "borrower", "province", "claim", "collateral_type", "collateral_value", "stage",
         "borrower_recovery"],
        ["A", "X", "浙江", 3_000_000.0, "none", None, "judgment", 0.0],
        ["B", "X", "浙江", 9_000_000.0, "none", None, "judgment", 0.0],
        ["C", "Y", "浙江", 5_000_000.0, "none", None, "judgment", 500_000.0],
        ["D", "Z", "江苏", 2_000_000.0, "none", None, "filed", 0.0]]


def test_value_shared_end_to_end_by_hand():
    # One property (residential, Zhejiang, at auction_1, 10m appraisal) secures A and B at
    # rank 1 and C at rank 2; its net proceeds N come from the same ladder as a loan's own
    # collateral (case_arrays). A guarantor promises 1m over C and D.
    tape = read_tape(TAPE)
    collateral = read_collateral([
        ["collateral_id", "loan_ids", "collateral_type", "province", "collateral_value", "lien_rank", "stage"],
        ["P1", "A, B", "住宅", "浙江", 10_000_000.0, 1, "一拍"],
        ["P1", "C", "住宅", "浙江", 10_000_000.0, 2, "一拍"]])
    guarantees = read_guarantees([["guarantor", "loan_ids", "expected_recovery"],
                                  ["G", "C；D", 1_000_000.0]])
    valued = value_shared(tape, collateral, guarantees)
    n = float(case_arrays(collateral.iloc[:1], Assumptions.default()).gross[0])
    assert 6e6 < n < 1e7  # the ladder's expected net proceeds of a 10m appraisal
    # rank 1 (A 3m, B 9m = 12m) > N: A = N x 3/12, B = N x 9/12, C nothing
    np.testing.assert_allclose(valued.collateral_recovery, [n * 3 / 12, n * 9 / 12, 0, 0], rtol=1e-12)
    assert valued.collateral_recovery.sum() == pytest.approx(n, rel=1e-12)  # conserved
    # guarantee: unrecovered C = 5m - 0.5m = 4.5m, D = 2m; 1m pro rata: 1m x 4.5/6.5, 1m x 2/6.5
    np.testing.assert_allclose(valued.guarantee_recovery, [0, 0, 1e6 * 4.5 / 6.5, 1e6 * 2 / 6.5])
    np.testing.assert_allclose(valued.expected_recovery,
                               [n * 3 / 12, n * 9 / 12, 0.5e6 + 1e6 * 4.5 / 6.5, 1e6 * 2 / 6.5])
    # the linked loans take the property's timeline (Zhejiang residential from auction_1)
    own = value_tape(read_tape([TAPE[0][:-1], ["A", "X", "浙江", 3e6, "住宅", 1e7, "一拍"]]))
    assert valued.expected_months[0] == pytest.approx(own.expected_months[0])
    assert list(valued.difficulty[:2]) == ["D1", "D1"]


def test_unknown_loan_and_disagreeing_rows_name_the_cells():
    tape = read_tape(TAPE)
    collateral = read_collateral([
        ["collateral_id", "loan_ids", "collateral_type", "province", "collateral_value"],
        ["P1", "A", "住宅", "浙江", 1e6], ["P1", "Q9", "住宅", "浙江", 2e6]])
    with pytest.raises(TableError) as info:
        value_shared(tape, collateral)
    text = "\n".join(info.value.problems)
    assert "Collateral!B3), column loan_ids: collateral 'P1' has collateral_value 2000000.0 here but 1000000.0" in text
    assert "Collateral!B3), column loan_ids: loan 'Q9' is not on the tape" in text


def test_one_collateral_row_per_loan_equals_the_tape_only_valuation():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workbooks"))
    import sample_pool

    tape, _ = sample_pool.calibrated_pool()
    tape = read_tape(tape)
    secured = tape[tape.collateral_type != "none"]
    collateral = read_collateral(pd.DataFrame({
        "collateral_id": "P" + secured.loan_id, "loan_ids": secured.loan_id,
        "collateral_type": secured.collateral_type, "province": secured.province,
        "collateral_value": secured.collateral_value, "lien_rank": secured.lien_rank,
        "prior_claims": secured.prior_claims, "stage": secured.stage, "defects": secured.defects}))
    alone, shared = value_tape(tape), value_tape(tape, collateral=collateral)
    for column in ("expected_recovery", "expected_months", "recovery_sd", "region_id"):
        np.testing.assert_allclose(shared[column].to_numpy(float), alone[column].to_numpy(float),
                                   rtol=1e-12, atol=1e-9, err_msg=column)
    assert list(shared.difficulty) == list(alone.difficulty)


@st.composite
def graphs(draw):
    n_loans = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 6))
    links = draw(st.lists(st.tuples(st.integers(0, n_items - 1), st.integers(0, n_loans - 1),
                                    st.integers(1, 3)), min_size=1, max_size=20,
                          unique_by=lambda t: (t[0], t[1])))
    amount = draw(st.lists(st.floats(0, 1000), min_size=n_items, max_size=n_items))
    claims = draw(st.lists(st.floats(1, 1000), min_size=n_loans, max_size=n_loans))
    return np.array(amount), links, np.array(claims)


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_allocation_properties_over_random_graphs(graph):
    amount, links, claims = graph
    item, loan, rank = (np.array(c, dtype=np.int64) for c in zip(*links))
    draw, surplus = allocate(amount, item, loan, rank, claims, claims)
    tol = 1e-9 * max(amount.max(), claims.max(), 1)
    assert (draw >= -tol).all() and (surplus >= -tol).all()
    per_loan = np.bincount(loan, draw, len(claims))
    assert (per_loan <= claims + tol).all()                                   # no loan above its claim
    np.testing.assert_allclose(np.bincount(item, draw, len(amount)) + surplus, amount, atol=1e-6)  # conserved
    for j in np.flatnonzero(surplus > 1e-6):  # surplus only when every linked loan is full
        full = per_loan[loan[item == j]] >= claims[loan[item == j]] - 1e-6
        assert full.all(), (j, surplus[j])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_value_shared_caps_loans_and_borrowers_over_random_graphs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    tape = read_tape(pd.DataFrame({
        "loan_id": [f"L{i}" for i in range(n)], "borrower": rng.choice(["X", "Y", "Z"], n),
        "province": rng.choice(["浙江", "辽宁", "福建"], n), "claim": rng.uniform(1e5, 5e6, n),
        "collateral_type": "none", "borrower_recovery": rng.uniform(0, 1e6, n)}))
    m = int(rng.integers(1, 6))
    collateral = read_collateral(pd.DataFrame({
        "collateral_id": [f"P{j}" for j in range(m)],
        "loan_ids": [",".join(rng.choice(tape.loan_id, int(rng.integers(1, n + 1)), replace=False))
                     for _ in range(m)],
        "collateral_type": rng.choice(["住宅", "商业", "土地"], m), "province": "江苏",
        "collateral_value": rng.uniform(0, 2e7, m), "prior_claims": rng.uniform(0, 1e6, m)}))
    guarantees = read_guarantees(pd.DataFrame({
        "guarantor": ["G1", "G2"], "loan_ids": [",".join(tape.loan_id[: n // 2 + 1]), ",".join(tape.loan_id)],
        "expected_recovery": rng.uniform(0, 5e6, 2)}))
    valued = value_shared(tape, collateral, guarantees)
    claim, recovery = valued.claim.to_numpy(), valued.expected_recovery.to_numpy()
    assert (recovery <= claim * (1 + 1e-12)).all() and (recovery >= 0).all()
    by_borrower = valued.groupby("borrower")[["expected_recovery", "claim"]].sum()
    assert (by_borrower.expected_recovery <= by_borrower.claim * (1 + 1e-12)).all()
    # without defects the value factor is 1: collateral drawn <= the items' net proceeds
    gross = case_arrays(collateral, Assumptions.default()).gross
    assert valued.collateral_recovery.sum() <= gross.sum() * (1 + 1e-12) + 1e-6
