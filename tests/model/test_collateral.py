"""Collateral: auction ladder, comparables and net recovery against hand computations and
the published auction statistics."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npl_xl.inputs.assumptions import Assumptions
from npl_xl.inputs.codes import PROVINCES
from npl_xl.model.collateral import auction_value, comps_value, ladder_segment, net_recovery
from npl_xl.errors import DomainError
from npl_xl.sheet.registry import load_all

R = load_all()
A = Assumptions.default()


def test_auction_ladder_by_hand():
    # appraisal 100, start 0.70 -> start_1 70, start_2 = 0.8 x 70 = 56 = start_3
    # p_sell .5/.5/.5: P(sale in 1) .5, in 2 .25, in 3 .125, none .125
    # premiums .10/.05/0: prices 77, 58.8, 56; in kind at 56
    # proceeds = .5x77 + .25x58.8 + .125x56 + .125x56 = 38.5 + 14.7 + 7 + 7 = 67.2
    # p_sold = .875; rounds held = 1 + .5 + .25 = 1.75
    # months (tier B residential durations 2 / 2 / 3 / in_lieu 6): 2 + .5x2 + .25x3 + .125x6 = 4.5
    row = R["NPL_AUCTION_VALUE"](100.0, None, None, [[0.5, 0.5, 0.5]], [[0.1, 0.05, 0.0]])
    assert row == [[pytest.approx(67.2), pytest.approx(0.875), pytest.approx(1.75), pytest.approx(4.5)]]
    # in_lieu FALSE: the unsold property is worth 0 and no in-kind stage: 60.2, months 3.75
    row = R["NPL_AUCTION_VALUE"](100.0, 0.7, 0.2, [[0.5], [0.5], [0.5]], [[0.1, 0.05, 0.0]], False)
    assert row[0] == [pytest.approx(60.2), pytest.approx(0.875), pytest.approx(1.75), pytest.approx(3.75)]


def test_auction_statutory_ladder_70_56_56():
    # domain.md §1.2 worked ladder: start 0.70, cut 0.20 -> 70% -> 56% -> 56%.
    # Certain sale in round 3, none earlier: proceeds = 56
    out = auction_value(100.0, 0.70, 0.20, [0, 0, 1], [0, 0, 0])
    assert out.expected_proceeds == pytest.approx(56.0) and out.expected_round == 3


def sold_ratio(province, ctype="residential"):
    seg = ladder_segment(ctype, province)
    out = auction_value(1.0, seg["start_ratio"], seg["cut"], in_lieu=False,
                        collateral_type=ctype, province=province)
    return out.expected_proceeds / out.p_sold, out.p_sold


def test_sold_residential_hammer_near_published_74_to_77_percent():
    """domain.md §1.4: average 折价率 (hammer / appraisal) 74.1% (2025, CIA), 74.4% (Q1–Q3 2025),
    74.8% (Oct-2025), 77.32% (early 2024, 国信达); §1.5: tier A residential ≈ 0.74."""
    tier_a, p_a = sold_ratio("Zhejiang")
    # by hand: .45 x .75 x 1.15 + .2475 x .60 x 1.08 + .105875 x .60 = .612030; / .803375
    assert tier_a == pytest.approx(0.612030 / 0.803375, abs=1e-6)
    assert 0.74 <= tier_a <= 0.77
    ratios = np.array([sold_ratio(p) for p in PROVINCES.codes])
    national = np.average(ratios[:, 0], weights=ratios[:, 1])  # every province, sold-weighted
    assert 0.72 <= national <= 0.77  # 0.734 with the packaged ladder
    assert 0.73 <= sold_ratio("Fujian")[0] <= 0.77  # tier B: 0.740
    assert 0.68 <= sold_ratio("Xinjiang")[0] < sold_ratio("Fujian")[0]  # weaker markets lower


def test_residential_tier_a_clears_about_80_percent():
    # domain.md §1.5 check: residential tier A cumulative P(sold) ≈ 0.80
    assert sold_ratio("Shanghai")[1] == pytest.approx(0.803375)


def test_commercial_sells_less_and_cheaper_than_residential():
    for province in ["ZJ", "FJ", "XJ"]:
        assert sold_ratio(province, "commercial")[1] < sold_ratio(province)[1]
        assert sold_ratio(province, "commercial")[0] < sold_ratio(province)[0]


def test_later_round_value_conditional_on_failed_rounds():
    # starting at round 3 with p 1: only the sale by conversion, at start_2 = 56
    assert auction_value(100.0, 0.7, 0.2, [1, 1, 1], [0, 0, 0], first_round=3).expected_proceeds == pytest.approx(56)
    # round 4 = only acceptance in kind is left
    assert auction_value(100.0, 0.7, 0.2, first_round=4).expected_proceeds == pytest.approx(56)


@pytest.mark.parametrize("args, code, argument", [
    ((100.0, 0.69), "#NUM!", "start_ratio"),
    ((100.0, None, 0.21), "#NUM!", "cut"),
    ((100.0, None, -0.1), "#NUM!", "cut"),
    ((-1.0,), "#NUM!", "appraisal"),
    ((100.0, None, None, [[0.5, 1.2, 0.5]]), "#NUM!", "p_sell"),
    ((100.0, None, None, [[0.5, 0.5]]), "#VALUE!", "p_sell"),
    ((100.0, None, None, None, [[0.1, -0.1, 0.0]]), "#NUM!", "premium"),
    ((100.0, None, None, None, None, "maybe"), "#VALUE!", "in_lieu"),
    ((100.0, None, None, None, None, None, "boat"), "#N/A", "collateral_type"),
    ((100.0, None, None, None, None, None, "none"), "#NUM!", "collateral_type"),
    ((100.0, None, None, None, None, None, None, "Atlantis"), "#N/A", "province"),
    (("abc",), "#VALUE!", "appraisal"),
    ((None,), "#VALUE!", "appraisal"),
])
def test_auction_bad_inputs(args, code, argument):
    result = R["NPL_AUCTION_VALUE"](*args)
    assert result.code == code and result.message.startswith(argument), result


def test_auction_defaults_come_from_the_segment():
    # blank province -> tier B; commercial tier A ladder for ZJ
    seg_b = ladder_segment("residential", None)
    out = R["NPL_AUCTION_VALUE"](1.0)
    assert out[0][1] == pytest.approx(1 - (1 - seg_b["p_sell_1"]) * (1 - seg_b["p_sell_2"]) * (1 - seg_b["p_sell_3"]))
    out_zj = R["NPL_AUCTION_VALUE"](1.0, None, None, None, None, None, "商铺", "浙江")
    assert out_zj[0][1] == pytest.approx(1 - 0.75 * 0.65 * 0.75)


def test_comps_by_hand():
    # adjusted: 10 x 1.03 x 0.98 = 10.094 (court auction); 12 x 1 x 1 x (1 - 0.1) = 10.8 (market)
    # equal weights: (10.094 + 10.8) / 2 = 10.447; value = 10.447 x 100 = 1044.7
    out = R["NPL_COMPS_VALUE"](100.0, [[10.0], [12.0]], [[1.03, 0.98], [1.0, 1.0]], None,
                               [[True], [False]], 0.1)
    assert out == [[pytest.approx(10.447), pytest.approx(1044.7)]]
    # weights 3:1 -> (3 x 10.094 + 10.8) / 4 = 10.2705
    out = R["NPL_COMPS_VALUE"](100.0, [[10.0], [12.0]], [[1.03, 0.98], [1.0, 1.0]], [[3.0], [1.0]],
                               [["TRUE"], ["否"]], 0.1)
    assert out[0][0] == pytest.approx(10.2705)
    # blank judicial = all court auctions: no discount: (10.094 + 12) / 2 = 11.047
    assert R["NPL_COMPS_VALUE"](1.0, [[10.0, 12.0]], [[1.03, 0.98], [1.0, 1.0]])[0][0] == pytest.approx(11.047)
    # one factor per comparable entered as a row: 10 x 1.1 and 12 x 0.9 -> (11 + 10.8) / 2 = 10.9
    assert comps_value(1.0, [10.0, 12.0], [[1.1, 0.9]])[0] == pytest.approx(10.9)


@pytest.mark.parametrize("args, code, argument", [
    ((0.0, [[10.0]], [[1.0]]), "#NUM!", "area"),
    ((1.0, [[10.0], [-1.0]], [[1.0], [1.0]]), "#NUM!", "prices"),
    ((1.0, [[10.0], [11.0]], [[1.0], [1.0], [1.0]]), "#VALUE!", "factors"),
    ((1.0, [[10.0]], [[0.0]]), "#NUM!", "factors"),
    ((1.0, [[10.0], [11.0]], [[1.0], [1.0]], [[1.0]]), "#VALUE!", "weights"),
    ((1.0, [[10.0]], [[1.0]], [[-1.0]]), "#NUM!", "weights"),
    ((1.0, [[10.0]], [[1.0]], None, [["perhaps"]]), "#VALUE!", "judicial"),
    ((1.0, [[10.0]], [[1.0]], None, None, 1.0), "#NUM!", "market_discount"),
    ((1.0, [["x"]], [[1.0]]), "#VALUE!", "prices"),
])
def test_comps_bad_inputs(args, code, argument):
    result = R["NPL_COMPS_VALUE"](*args)
    assert result.code == code and result.message.startswith(argument), result


def test_net_recovery_by_hand():
    # 100 x (1 - 0.04 residential default) - 10 - 5 = 81 -> capped at the claim 80
    assert R["NPL_NET_RECOVERY"](100.0, 80.0, 10.0, None, 5.0) == pytest.approx(80.0)
    # 50 x (1 - 0.05) - 10 - 2 = 35.5
    assert R["NPL_NET_RECOVERY"](50.0, 80.0, 10.0, 0.05, 2.0) == pytest.approx(35.5)
    # commercial default cost 5%: 50 x .95 = 47.5
    assert R["NPL_NET_RECOVERY"](50.0, 80.0, None, None, None, "商铺") == pytest.approx(47.5)
    # prior claims exceed the proceeds: floor at 0
    assert R["NPL_NET_RECOVERY"](50.0, 80.0, 60.0) == 0.0


@pytest.mark.parametrize("args, code, argument", [
    ((-1.0, 80.0), "#NUM!", "proceeds"),
    ((1.0, -80.0), "#NUM!", "claim"),
    ((1.0, 80.0, -1.0), "#NUM!", "prior_claims"),
    ((1.0, 80.0, 0.0, 1.0), "#NUM!", "cost_rate"),
    ((1.0, 80.0, 0.0, None, -1.0), "#NUM!", "deduction"),
    ((1.0, None), "#VALUE!", "claim"),
    ((1.0, 80.0, 0.0, None, 0.0, "boat"), "#N/A", "collateral_type"),
])
def test_net_recovery_bad_inputs(args, code, argument):
    result = R["NPL_NET_RECOVERY"](*args)
    assert result.code == code and result.message.startswith(argument), result


money = st.floats(0.0, 1e9, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(money, money, money, money, st.floats(0.0, 0.5), money)
def test_prior_claims_never_raise_and_recovery_never_exceeds_claim(proceeds, claim, prior, extra, cost, deduction):
    base = net_recovery(proceeds, claim, prior, cost, deduction)
    assert 0.0 <= base <= claim
    assert net_recovery(proceeds, claim, prior + extra, cost, deduction) <= base
    assert net_recovery(proceeds, claim, prior, cost, deduction + extra) <= base


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 1e8), st.floats(0.70, 1.0), st.floats(0.0, 0.20),
       st.lists(st.floats(0, 1), min_size=3, max_size=3), st.lists(st.floats(0, 0.5), min_size=3, max_size=3))
def test_auction_bounds(appraisal, start, cut, p, prem):
    out = auction_value(appraisal, start, cut, p, prem)
    start_2 = (1 - cut) * start * appraisal
    # every outcome yields at least start_2 (in kind) and at most start_1 x (1 + max premium)
    assert start_2 - 1e-6 <= out.expected_proceeds <= start * appraisal * (1 + max(prem)) + 1e-6
    assert 0 <= out.p_sold <= 1 and 1 <= out.expected_round <= 3
    with pytest.raises(DomainError):
        auction_value(appraisal, start - 0.71, cut)


def test_assumptions_argument_of_the_collateral_functions():
    # CostRates range: residential 10% -> 100 x 0.9 = 90
    costs = [["collateral_type", "cost_rate"], ["住宅", 0.10]]
    assert R["NPL_NET_RECOVERY"](100.0, 200.0, None, None, None, None, costs) == pytest.approx(90.0)
    # AuctionLadder range: tier A residential sells for sure in round 1: 100 x 0.70 x 1.15 = 80.5,
    # months = auction_1 duration of tier A = 1.5
    ladder = [["collateral_type", "tier", "p_sell_1"], ["住宅", "A", 1.0]]
    row = R["NPL_AUCTION_VALUE"](100.0, None, None, None, None, None, None, "ZJ", ladder)
    assert row == [[pytest.approx(80.5), 1.0, 1.0, pytest.approx(1.5)]]
    bad = R["NPL_AUCTION_VALUE"](100.0, None, None, None, None, None, None, "ZJ", [["x"], [1.0]])
    assert bad.code == "#VALUE!" and bad.message.startswith("assumptions")
