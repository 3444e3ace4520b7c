"""The tape-valuing worksheet functions take the optional trailing collateral and guarantees
ranges, and with them value the tape with shared collateral."""

from __future__ import annotations

import numpy as np
import pytest

from npl_xl.sheet.registry import load_all
from npl_xl.sheet.tapes import valued_tape

REGISTRY = load_all()
TAPE = [["贷款合同编号", "借款人名称", "所属地区", "未偿本金余额（万元）", "未偿利息（万元）", "抵押物类型"],
        ["A", "X", "浙江", 300.0, 0.0, "信用"], ["B", "X", "浙江", 900.0, 0.0, "信用"],
        ["C", "Y", "浙江", 500.0, 0.0, "信用"]]
COLLATERAL = [["抵押物编号", "担保贷款编号", "抵押物类型", "省份", "评估价值（万元）", "抵押顺位", "处置阶段"],
              ["P1", "A、B、C", "住宅", "浙江", 1000.0, "1;1;2", "一拍"]]
GUARANTEES = [["保证人", "担保贷款编号", "预计回收金额（万元）"], ["G", "C", 100.0]]


@pytest.mark.parametrize("name", ["NPL_STRAT", "NPL_TRANCHE_EL", "NPL_BID_PRICE"])
def test_collateral_and_guarantees_are_the_last_two_arguments(name):
    args = [a.name for a in REGISTRY[name].args]
    assert args[-2:] == ["collateral", "guarantees"]
    assert not any(a.required for a in REGISTRY[name].args[-2:])


def test_npl_strat_with_collateral_and_guarantees_ranges():
    blank = REGISTRY["NPL_STRAT"](TAPE, "borrower", "expected_recovery")  # nothing expected: shares undefined
    shared = REGISTRY["NPL_STRAT"](TAPE, "borrower", "expected_recovery", None, COLLATERAL, GUARANTEES)
    valued = valued_tape(TAPE, None, COLLATERAL, GUARANTEES)
    assert str(blank) == "#NUM!" and valued_tape(TAPE).expected_recovery.sum() == 0.0
    by = {row[0]: row[2] for row in shared[1:]}
    assert by["X"] == pytest.approx(valued.expected_recovery[:2].sum())
    assert by["Y"] == pytest.approx(valued.expected_recovery[2])
    # ranks: A and B (rank 1, 12m claims) share the property first; C gets the guarantee
    assert valued.collateral_recovery[0] / valued.collateral_recovery[1] == pytest.approx(1 / 3)
    assert valued.guarantee_recovery[2] == pytest.approx(1e6)


def test_npl_tranche_el_differs_with_collateral_and_is_reproducible():
    tranches = [["name", "kind", "balance", "coupon"], ["S", "senior", 5e6, 0.03], ["J", "sub", 1e6, 0.0]]
    plain = REGISTRY["NPL_TRANCHE_EL"](TAPE, tranches, None, 400, 1)
    shared = REGISTRY["NPL_TRANCHE_EL"](TAPE, tranches, None, 400, 1, None, False, None, COLLATERAL, GUARANTEES)
    again = REGISTRY["NPL_TRANCHE_EL"](TAPE, tranches, None, 400, 1, None, False, None, COLLATERAL, GUARANTEES)
    assert shared == again
    assert shared[1][1] < plain[1][1]  # the senior's EL falls once the property is counted
    bad = REGISTRY["NPL_TRANCHE_EL"](TAPE, tranches, None, 400, 1, None, False, None,
                                     [COLLATERAL[0], ["P1", "Q", "住宅", "浙江", 1.0, 1, None]])
    assert not isinstance(bad, list) and "loan 'Q' is not on the tape" in str(bad.message)
