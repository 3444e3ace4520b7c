"""NPL_RIGHTS_SPLIT: the four income-right modes of seed 004, by hand."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from npl_xl.analysis.rights import rights_split
from npl_xl.sheet.registry import load_all

REGISTRY = load_all()
C = [100.0, 100.0, 100.0]


def test_ordinary_is_pro_rata():
    out = rights_split(C, "普通", 60.0, 40.0)
    np.testing.assert_allclose(out, [[60, 40]] * 3)
    np.testing.assert_allclose(rights_split(C, "ordinary", 60.0, 40.0, share=0.3), [[30, 70]] * 3)


def test_senior_investor_first():
    # investor cost 150 at 10%: period 1 accrues 7.5 -> gets 100 (7.5 return + 92.5 cost);
    # period 2 accrues 0.1*0.5*57.5 = 2.875 -> claim 60.375; AMC gets the other 39.625
    out = rights_split(C, "senior", 150.0, 50.0, investor_rate=0.10)
    np.testing.assert_allclose(out, [[100, 0], [60.375, 39.625], [0, 100]])


def test_junior_amc_first():
    # AMC cost 120 at 8% (4.8 per half year): 100 | 24.8 + 0.04*24.8 = 25.792 ... rest investor
    out = rights_split(C, "劣后", 80.0, 120.0, amc_rate=0.08)
    # period 1: AMC 100 (4.8 return, 95.2 cost) -> cost left 24.8
    # period 2: return 0.04*24.8 = 0.992 -> AMC 25.792, investor 74.208
    np.testing.assert_allclose(out, [[0, 100], [74.208, 25.792], [100, 0]])


def test_semi_junior_tiers():
    # AMC 100 at 5%, investor 80 at 10%, share 80/180 of the excess
    out = rights_split([100.0, 100.0], "半劣后", 80.0, 100.0, 0.10, 0.05)
    # period 1: AMC claim 100 + 2.5 -> AMC takes all 100, 2.5 of cost left
    # period 2: AMC claim 2.5 + 0.0625 = 2.5625; investor 80 + 4 + 4 = 88; excess 9.4375 x 4/9
    assert out[0].tolist() == [0.0, 100.0]
    assert out[1, 0] == pytest.approx(88 + 9.4375 * 80 / 180)
    assert out[1, 1] == pytest.approx(2.5625 + 9.4375 * 100 / 180)


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=12),
       st.sampled_from(["ordinary", "senior", "junior", "semi-junior"]),
       st.floats(0, 1e6), st.floats(0, 1e6), st.floats(0, 0.3), st.floats(0, 0.3))
def test_rows_sum_to_collections_and_are_non_negative(c, mode, ic, ac, ir, ar):
    if ic + ac == 0:
        ic = 1.0
    out = rights_split(c, mode, ic, ac, ir, ar)
    np.testing.assert_allclose(out.sum(axis=1), c, rtol=1e-12, atol=1e-6)
    assert np.all(out >= -1e-9 * max(1.0, max(c)))


def test_registry_errors():
    assert REGISTRY["NPL_RIGHTS_SPLIT"]([[1.0]], "mystery", 1.0, 1.0).code == "#N/A"
    out = REGISTRY["NPL_RIGHTS_SPLIT"]([[1.0], [2.0]], "Senior", 1.0, 1.0, None, None, 1.5)
    assert out.code == "#NUM!" and "share" in out.message
    out = REGISTRY["NPL_RIGHTS_SPLIT"]([[10.0], [20.0]], "SEMI_JUNIOR", 10.0, 10.0)
    assert len(out) == 2 and len(out[0]) == 2
