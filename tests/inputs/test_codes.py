"""Code normalisation: one spelling rule for provinces, stages, collateral types and defects."""

import csv

import pytest

from npl_xl.inputs.codes import (COLLATERAL_TYPES, DATA_DIR, DEFECTS, PROVINCES, STAGES, CodeSet,
    normalise)
from npl_xl.errors import UnknownCodeError, to_xl_error

with open(DATA_DIR / "provinces.csv", encoding="utf-8") as f:
    PROVINCE_ROWS = list(csv.DictReader(f))


def test_the_contract_example_spellings_all_mean_zhejiang():
    # contract: 浙江 = 浙江省 = Zhejiang = ZJ, case- and width-insensitive
    for spelling in ["浙江", "浙江省", "Zhejiang", "ZJ", "zj", "ｚｊ", "ＺＪ", "ZHEJIANG",
                     " Zhejiang Province ", "浙", "CN-ZJ"]:
        assert PROVINCES.lookup(spelling) == "Zhejiang"


def test_all_31_provinces_by_every_listed_spelling():
    assert len(PROVINCE_ROWS) == 31 == len(PROVINCES.codes)
    codes = {r["code"] for r in PROVINCE_ROWS}
    assert len(codes) == 31
    for row in PROVINCE_ROWS:
        name = row["name_en"]
        spellings = [row["code"], row["code"].lower(), row["name_zh"], row["pinyin"], name,
                     name.upper(), *row["short_zh"].split("|")]
        # the name without its administrative suffix (浙江省 -> 浙江, 新疆维吾尔自治区 -> 新疆)
        for suffix in ("维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市"):
            if row["name_zh"].endswith(suffix):
                spellings.append(row["name_zh"][: -len(suffix)])
                break
        for spelling in spellings:
            assert PROVINCES.lookup(spelling) == name, spelling


def test_shanxi_and_shaanxi_are_different_provinces():
    assert PROVINCES.lookup("Shanxi") == PROVINCES.lookup("山西") == PROVINCES.lookup("SX") == "Shanxi"
    assert PROVINCES.lookup("Shaanxi") == PROVINCES.lookup("陕西省") == PROVINCES.lookup("SN") == "Shaanxi"


@pytest.mark.parametrize("code_set, spelling, code", [
    (STAGES, "一拍", "auction_1"), (STAGES, "Auction 1", "auction_1"), (STAGES, "AUCTION-2", "auction_2"),
    (STAGES, "变卖", "sale"), (STAGES, "以物抵债", "in_lieu"), (STAGES, "未诉", "not_filed"),
    (STAGES, "Not Filed", "not_filed"), (STAGES, "执行", "enforcement"),
    (COLLATERAL_TYPES, "住宅", "residential"), (COLLATERAL_TYPES, "商铺", "commercial"),
    (COLLATERAL_TYPES, "办公", "commercial"), (COLLATERAL_TYPES, "厂房", "industrial"),
    (COLLATERAL_TYPES, "土地", "land"), (COLLATERAL_TYPES, "其他", "other"),
    (COLLATERAL_TYPES, "信用", "none"), (COLLATERAL_TYPES, "无", "none"),
    (DEFECTS, "轮候查封", "waiting_seizure"), (DEFECTS, "预告抵押登记", "pre_registration"),
    (DEFECTS, "唯一住房", "sole_residence"), (DEFECTS, "租赁", "lease"),
    (DEFECTS, "失联", "debtor_missing"), (DEFECTS, "涉刑", "criminal"), (DEFECTS, "破产", "bankruptcy"),
    (DEFECTS, "Sole Residence", "sole_residence"), (DEFECTS, "ＬＥＡＳＥ", "lease"),
])
def test_chinese_and_english_codes(code_set, spelling, code):
    assert code_set.lookup(spelling) == code


def test_unknown_code_is_na_and_names_argument_and_lists_codes():
    with pytest.raises(UnknownCodeError) as info:
        STAGES.lookup("appeal", "stage")
    error = to_xl_error(info.value)
    assert error.code == "#N/A"
    assert error.message.startswith("stage: unknown stage 'appeal'")
    assert "auction_1" in error.message
    assert to_xl_error(_raises(lambda: PROVINCES.lookup("Hong Kong", "province"))).code == "#N/A"


def _raises(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        return exc
    raise AssertionError("did not raise")


def test_normalise_folds_width_case_and_separators():
    assert normalise("Ａｕｃｔｉｏｎ＿１") == normalise("auction 1") == "auction1"


def test_a_spelling_meaning_two_codes_is_refused():
    with pytest.raises(ValueError, match="means both"):
        CodeSet("thing", {"a": ["x"], "b": ["X"]})


def test_lookup_many_keeps_order_and_drops_duplicates():
    assert DEFECTS.lookup_many(["租赁", "lease", "轮候"]) == ("lease", "waiting_seizure")
