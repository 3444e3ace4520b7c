"""Assumption tables: packaged defaults with sources, workbook tables that win, errors at once."""

import re

import numpy as np
import pytest

from npl_xl.inputs.assumptions import TABLE_NAMES, Assumptions
from npl_xl.inputs.codes import PROVINCES
from npl_xl.errors import InputTypeError, TableError

A = Assumptions.default()


def test_every_default_number_has_a_source_tag_and_a_published_source():
    # [A] (an npl-xl assumption) needs no more; [S], [M], [P] must name the published source:
    # a key of docs/SOURCES.md such as [SPC-Auction], or the statute itself (法释〔2016〕18号)
    for name, table in A.to_tables().items():
        assert "source" in table.columns, name
        for source in table["source"]:
            assert re.search(r"\[(S|M|P|A)\]", source), (name, source)
            if re.search(r"\[(S|M|P)\]", source):
                assert re.search(r"\[[A-Z][A-Za-z]+-[A-Za-z0-9-]+\]|\[Regional\]|法释|执行异议|民法典|court practice",
                                 source), (name, source)


def test_default_tables_are_complete():
    tables = A.to_tables()
    assert tuple(tables) == TABLE_NAMES
    provinces = tables["ProvinceTiers"]
    assert len(provinces) == 31 and set(provinces["tier"]) == {"A", "B", "C"}
    assert sorted(provinces["region_id"]) == list(range(1, 32))
    # the published groups (domain.md §1.1, seed 003)
    tiers = dict(zip(provinces["province"], provinces["tier"]))
    assert {tiers[p] for p in ["Jiangsu", "Zhejiang", "Shanghai"]} == {"A"}
    assert tiers["Fujian"] == "B"
    assert {tiers[p] for p in ["Liaoning", "Jilin", "Heilongjiang", "Shaanxi", "Gansu",
                               "Qinghai", "Ningxia", "Xinjiang"]} == {"C"}
    assert A.ladder_array.shape == (5, 3, 8)
    assert np.all(A.ladder_array[..., 0] >= 0.70) and np.all(A.ladder_array[..., 1] <= 0.20)
    assert list(A.grade_sd_array) == [0.10, 0.15, 0.20, 0.25, 0.30]  # domain.md §2.3


def test_to_tables_from_tables_round_trip():
    rows = {name: [list(t.columns)] + t.astype(object).where(t.notna(), None).values.tolist()
            for name, t in A.to_tables().items()}
    back = Assumptions.from_tables(rows)
    for attr in ["durations_array", "ladder_array", "defect_delay_array", "cost_rate_array",
                 "grade_sd_array", "defect_value_factor_array", "defect_deduction_array"]:
        np.testing.assert_array_equal(getattr(back, attr), getattr(A, attr))
    assert (back.tier_index == A.tier_index).all()


def test_workbook_table_wins_and_unlisted_rows_keep_defaults():
    b = Assumptions.from_tables({
        "stagedurations": [["阶段名", "Stage", "A", "B", "C"], ["x", "一拍", 2.0, 3.0, 4.0]],
        "ProvinceTiers": [["省份", "tier"], ["福建省", "A"]],
    })
    np.testing.assert_array_equal(b.durations_array[:, 5], [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(b.durations_array[:, :5], A.durations_array[:, :5])
    assert b.tier_of("Fujian") == 0 and A.tier_of("Fujian") == 1
    assert b.tier_of("Zhejiang") == 0


def test_all_problems_reported_at_once():
    with pytest.raises(TableError) as info:
        Assumptions.from_tables({
            "StageDurations": [["stage", "A", "B", "C"], ["foo", 1.0, "x", -1.0]],
            "AuctionLadder": [["collateral_type", "tier", "start_ratio", "cut"],
                              ["住宅", "A", 0.6, 0.3]],
            "Nope": [["a"]],
        })
    text = str(info.value)
    assert len(info.value.problems) == 6
    # one wording for a number outside its interval (npl_xl.checks): "must be in [lo, hi], got x"
    for part in ["unknown stage row text 'foo'", "column B: text 'x'",
                 "column C: must be in [0, 240], got -1",
                 "column start_ratio: must be in [0.7, 1.5], got 0.6",
                 "column cut: must be in [0, 0.2], got 0.3", "unknown assumption table 'Nope'"]:
        assert part in text
    assert info.value.excel_code == "#VALUE!"


def test_from_range_recognises_the_table_by_its_header():
    b = Assumptions.from_range([["defect", "delay_A", "delay_B", "delay_C"], ["租赁", 10.0, 11.0, 12.0]])
    assert list(b.defect_delay_array[3]) == [10.0, 11.0, 12.0]
    with pytest.raises(InputTypeError, match="assumptions: is not one of the Assumptions tables"):
        Assumptions.from_range([["x", "y"], [1.0, 2.0]])


def test_missing_key_column_is_reported():
    with pytest.raises(TableError, match="column defect is missing"):
        Assumptions.from_tables({"Defects": [["delay_A"], [1.0]]})


def test_parameters_are_validated():
    with pytest.raises(TableError, match="sd_cap_factor"):
        Assumptions.from_tables({"Parameters": [["key", "value"], ["sd_cap_factor", 1.5]]})
    b = Assumptions.from_tables({"Parameters": [["key", "value"], ["blank_province_tier", "c"]]})
    assert b.tier_of(None) == 2 and A.tier_of(None) == 1
    assert all(p in PROVINCES for p in A.tier_index.index)
