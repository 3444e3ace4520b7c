"""Judicial timeline: calibration to the published regional experience, hand-computed
schedules, and properties that catch a wrong sign."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npl_xl.inputs.assumptions import Assumptions
from npl_xl.inputs.codes import COLLATERAL_CODES, DEFECT_CODES, PROVINCES, STAGE_CODES
from npl_xl.sheet.registry import load_all
from npl_xl.model.timeline import case_of, judicial_months, judicial_schedule

R = load_all()


def months(province, stage=None, ctype=None, defects=(), assumptions=None):
    return judicial_months(case_of(province, stage, ctype, defects, assumptions), assumptions)


# --- calibration: seed 003 / FUNCTIONS.md "Judicial timeline" / domain.md §1.1 ------------
# "江浙沪等发达地区...平均在1年左右", "福建等南方沿海地区...1年半到2年",
# "东北、西北地区...回收周期以2年半到3年之间居多", "商业用房...处置周期整体延长3~6个月".

@pytest.mark.parametrize("province", ["Jiangsu", "Zhejiang", "Shanghai"])
def test_jiangsu_zhejiang_shanghai_about_12_months(province):
    assert 11.0 <= months(province) <= 13.0


def test_fujian_18_to_24_months():
    assert 18.0 <= months("Fujian") <= 24.0


@pytest.mark.parametrize("province", ["Liaoning", "Jilin", "Heilongjiang", "Shaanxi", "Gansu",
                                      "Qinghai", "Ningxia", "Xinjiang"])
def test_northeast_and_northwest_30_to_36_months(province):
    assert 30.0 <= months(province) <= 36.0


@pytest.mark.parametrize("province", PROVINCES.codes)
def test_commercial_property_3_to_6_months_longer(province):
    assert 3.0 <= months(province, ctype="commercial") - months(province) <= 6.0


def test_tier_a_residential_at_filing_by_hand():
    # StageDurations tier A: not_filed 1, filed 3.8 (= 3 + 0.2 x 4 appeal), judgment 0.5,
    # enforcement 0.5, appraisal 1; auction ladder (residential A: p_sell .45/.45/.35):
    # auction_1 1.5 + .55 x auction_2 1.5 + .55 x .55 x sale 2.5 + .55 x .55 x .65 x in_lieu 4
    # = 1.5 + 0.825 + 0.75625 + 0.7865 = 3.86775; distribution 1.5.
    # Total = 6.8 + 3.86775 + 1.5 = 12.16775
    assert months("ZJ") == pytest.approx(12.16775, abs=1e-12)
    # Tier C commercial (p_sell .12/.20/.15), add-on 2.5 on enforcement:
    # pre-auction 2 + 10 + 1.5 + (2 + 2.5) + 3 = 21; ladder 3 + .88 x 2.5 + .88 x .8 x 3.5
    # + .88 x .8 x .85 x 8 = 3 + 2.2 + 2.464 + 4.7872 = 12.4512; distribution 3 -> 36.4512
    assert months("新疆", ctype="商铺") == pytest.approx(36.4512, abs=1e-12)


def test_conditional_ladder_from_auction_2_by_hand():
    # Round 1 already failed: tier A residential auction_2 1.5 + .55 x (2.5 + .65 x 4)
    # + distribution 1.5 = 1.5 + 2.805 + 1.5 = 5.805
    assert months("SH", "二拍") == pytest.approx(5.805, abs=1e-12)
    assert months("SH", "变卖") == pytest.approx(2.5 + 0.65 * 4 + 1.5, abs=1e-12)
    assert months("SH", "以物抵债") == pytest.approx(4 + 1.5, abs=1e-12)
    assert months("SH", "distribution") == pytest.approx(1.5, abs=1e-12)


def test_unsecured_goes_from_judgment_through_enforcement_to_distribution():
    # tier B: 1.5 + 6.35 + 1 + unsecured_enforcement 6 + 2 = 16.85
    rows = judicial_schedule(case_of("FJ", collateral_type="none"))
    assert [r[0] for r in rows] == ["not_filed", "filed", "judgment", "enforcement", "distribution"]
    assert rows[-1][2] == pytest.approx(16.85, abs=1e-12)


def test_defect_delays_by_hand():
    # tier B residential, waiting_seizure +6 and lease +4 on enforcement: 19.96 + 10
    base = months("Fujian")
    assert months("Fujian", defects=["轮候查封", "租赁"]) == pytest.approx(base + 10, abs=1e-12)
    # bankruptcy delays distribution, so it applies even at the last stage (tier A +12)
    assert months("ZJ", "distribution", defects=["破产"]) == pytest.approx(1.5 + 12, abs=1e-12)
    # a delay held on a stage already passed no longer applies
    assert months("ZJ", "auction_1", defects=["waiting_seizure"]) == months("ZJ", "auction_1")


def test_schedule_rows_are_contiguous_and_end_at_the_months():
    for stage in STAGE_CODES:
        rows = judicial_schedule(case_of("Hubei", stage, "industrial", ["lease"]))
        assert rows[0][0] == stage and rows[0][1] == 0.0
        for before, after in zip(rows, rows[1:]):
            assert before[2] == after[1] and before[2] >= before[1]
        assert rows[-1][2] == months("Hubei", stage, "industrial", ["lease"])


# --- properties ------------------------------------------------------------------------
provinces = st.sampled_from(PROVINCES.codes)
types = st.sampled_from(COLLATERAL_CODES)
defect_sets = st.sets(st.sampled_from(DEFECT_CODES))
CERTAIN = [s for s in STAGE_CODES if s not in ("auction_2", "sale", "in_lieu")]


@settings(max_examples=200, deadline=None)
@given(provinces, st.sampled_from(STAGE_CODES), types, defect_sets, defect_sets)
def test_a_defect_never_shortens_the_timeline(province, stage, ctype, some, more):
    assert months(province, stage, ctype, some | more) >= months(province, stage, ctype, some) - 1e-12


durations = st.floats(0.0, 24.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(provinces, types, defect_sets,
       st.lists(st.tuples(durations, durations, durations), min_size=12, max_size=12),
       st.integers(0, len(CERTAIN) - 2))
def test_a_later_stage_never_takes_longer(province, ctype, defects, table, i):
    """Along the stages a case passes for certain (every stage up to auction_1, then
    distribution) a later stage never has more months ahead, for any duration table.
    Inside the ladder, auction_2/sale/in_lieu are conditional on failed rounds and may
    legitimately take longer than auction_1 (tested by hand above)."""
    rows = [["stage", "A", "B", "C"]] + [[s, *d] for s, d in zip(
        STAGE_CODES + ("commercial_addon", "unsecured_enforcement"), table)]
    a = Assumptions.from_tables({"StageDurations": rows})
    earlier, later = CERTAIN[i], CERTAIN[i + 1]
    assert months(province, later, ctype, defects, a) <= months(province, earlier, ctype, defects, a) + 1e-9
    for stage in STAGE_CODES:  # and nothing ever has less ahead than distribution alone
        assert months(province, stage, ctype, defects, a) >= months(province, "distribution", ctype, defects, a) - 1e-9


# --- worksheet functions through the registry -----------------------------------------

def test_registry_excel_shaped_inputs():
    assert R["NPL_JUDICIAL_MONTHS"]("ｚｊ") == pytest.approx(12.16775)
    assert R["NPL_JUDICIAL_MONTHS"]("浙江省", "", None, None, None) == pytest.approx(12.16775)
    # defects as a comma list or as a range with blanks
    a = R["NPL_JUDICIAL_MONTHS"]("Fujian", "filed", "住宅", "租赁，轮候查封")
    b = R["NPL_JUDICIAL_MONTHS"]("Fujian", "filed", "住宅", [["lease"], [None], ["waiting_seizure"]])
    assert a == b == pytest.approx(months("Fujian", "filed", defects=["lease", "waiting_seizure"]))
    schedule = R["NPL_JUDICIAL_SCHEDULE"]("XJ", "一拍")
    assert [r[0] for r in schedule] == ["auction_1", "auction_2", "sale", "in_lieu", "distribution"]
    assert schedule[-1][2] == pytest.approx(R["NPL_JUDICIAL_MONTHS"]("XJ", "一拍"))


def test_assumptions_argument_takes_a_stage_duration_range():
    table = [["stage", "A", "B", "C"], ["not_filed", 11.0, 1.5, 2.0]]
    assert R["NPL_JUDICIAL_MONTHS"]("ZJ", None, None, None, table) == pytest.approx(12.16775 + 10)
    defects = [["defect", "delay_A", "delay_B", "delay_C"], ["lease", 7.0, 8.0, 9.0]]
    assert R["NPL_JUDICIAL_MONTHS"]("ZJ", None, None, "lease", defects) == pytest.approx(12.16775 + 7)


@pytest.mark.parametrize("args, code, argument", [
    (("Hong Kong",), "#N/A", "province"),
    (("ZJ", "appeal"), "#N/A", "stage"),
    (("ZJ", None, "boat"), "#N/A", "collateral_type"),
    (("ZJ", None, None, "lease,flood"), "#N/A", "defects"),
    ((None,), "#VALUE!", "province"),
    ((3.0,), "#VALUE!", "province"),
    (("ZJ", None, None, None, [["x", "y"], [1.0, 2.0]]), "#VALUE!", "assumptions"),
    (("ZJ", None, None, None, [["stage", "A", "B", "C"], ["filed", -1.0, 1.0, 1.0]]), "#VALUE!", "assumptions"),
])
def test_bad_inputs_give_excel_errors_naming_the_argument(args, code, argument):
    for name in ("NPL_JUDICIAL_MONTHS", "NPL_JUDICIAL_SCHEDULE"):
        result = R[name](*args)
        assert result.code == code, result
        assert result.message.startswith(argument), result.message
