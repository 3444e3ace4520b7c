"""Tranches and Settings tables: parsing, defaults, aliases, and errors through the registry."""

import pytest

from npl_xl.inputs.deal import DealSettings, parse_settings, parse_tranches
from npl_xl.errors import DomainError, TableError, UnknownCodeError
from npl_xl.sheet.registry import load_all

REGISTRY = load_all()
TAPE = [["loan_id", "province", "claim", "collateral_type", "expected_recovery",
         "expected_months", "recovery_sd"]] + [
    [f"L{i}", "浙江", 100.0, "none", 40.0, 12.0 + i, 0.2] for i in range(20)]
TRANCHES = [["name", "kind", "balance", "coupon"], ["A", "senior", 400.0, 0.0348],
            ["Sub", "subordinated", 200.0, 0.0]]


def test_defaults_and_chinese_aliases():
    s = parse_settings(None)
    assert s == DealSettings() and s.n_sims == 10000 and s.rho == 0.15 and s.reserve_multiple == 1.5
    s = parse_settings([["参数", "值"], ["模拟次数", 2000], ["相关系数", 0.3], ["Payment Months", 3],
                        ["税率", "3.36%"], ["cap_at_expected", "是"], ["", None]])
    assert (s.n_sims, s.rho, s.payment_months, s.cap_at_expected) == (2000, 0.3, 3.0, True)
    assert s.tax_rate == pytest.approx(0.0336)
    assert s.n_periods == 20 and s.period_dates[-1] == 60.0


def test_period_dates_end_on_the_legal_final():
    s = parse_settings({"payment_months": 7, "legal_final_months": 60})
    assert list(s.period_dates) == [7, 14, 21, 28, 35, 42, 49, 56, 60]


def test_tranches_kinds_in_chinese_and_issue_price_default():
    t = parse_tranches([["名称", "类型", "金额", "票面利率", "发行价格"], ["优先A", "优先档", 100.0, 0.03, None],
                        ["中间", "夹层", 10.0, 0.05, None], ["次级", "次级档", 20.0, None, 21.6]])
    assert [x.kind for x in t] == [0, 1, 2]
    assert t.items[0].issue_price == 100.0 and t.items[2].issue_price == 21.6
    assert t.items[2].coupon == 0.0


def test_unknown_settings_key_is_na_naming_the_key():
    with pytest.raises(UnknownCodeError, match="rhoo"):
        parse_settings([["rhoo", 0.2]])
    out = REGISTRY["NPL_TRANCHE_EL"](TAPE, TRANCHES, [["rhoo", 0.2]])
    assert out.code == "#N/A" and "rhoo" in out.message


def test_settings_out_of_range_names_the_key():
    for key, value in (("rho", 1.5), ("n_sims", 2.5), ("payment_months", 0), ("tax_rate", -0.1)):
        out = REGISTRY["NPL_TRANCHE_EL"](TAPE, TRANCHES, [[key, value]])
        assert out.code == "#NUM!" and key in out.message, (key, out.message)
    assert REGISTRY["NPL_TRANCHE_EL"](TAPE, TRANCHES, [["seed", "abc"]]).code == "#VALUE!"
    with pytest.raises(DomainError, match="legal_final_months"):
        parse_settings({"legal_final_months": 3})


def test_negative_balance_and_percent_coupon():
    out = REGISTRY["NPL_TRANCHE_EL"](TAPE, [["name", "kind", "balance", "coupon"],
                                            ["A", "senior", -5.0, 0.03]])
    assert out.code == "#NUM!" and "balance" in out.message and "tranches" in out.message
    out = REGISTRY["NPL_TRANCHE_EL"](TAPE, [["name", "kind", "balance", "coupon"],
                                            ["A", "senior", 100.0, 348]])
    assert out.code == "#NUM!" and "0.0348" in out.message.replace("3.48", "0.0348")


def test_tranches_out_of_order():
    bad = [["name", "kind", "balance", "coupon"], ["Sub", "subordinated", 20.0, 0.0],
           ["A", "senior", 100.0, 0.03]]
    with pytest.raises(TableError, match="senior to subordinated"):
        parse_tranches(bad)
    out = REGISTRY["NPL_TRANCHE_EL"](TAPE, bad)
    assert out.code == "#VALUE!" and "row 3 (A)" in out.message


def test_unknown_kind_and_several_problems_at_once():
    out = REGISTRY["NPL_WATERFALL"]([[1.0]], [["name", "kind", "balance"], ["A", "supersenior", 1.0]])
    assert out.code == "#N/A" and "supersenior" in out.message
    out = REGISTRY["NPL_WATERFALL"]([[1.0]], [["name", "kind", "balance"], ["A", "senior", -1.0],
                                              ["A", "junk", 1.0]])
    assert out.code == "#VALUE!" and "3 problem(s)" in out.message


def test_tranche_el_through_the_registry_and_cached(monkeypatch):
    # NPL_TRANCHE_EL simulates through the target_stderr rule (analysis.convergence)
    from npl_xl.analysis import convergence as structures

    calls = []
    real = structures.simulate_deal

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(structures, "simulate_deal", counting)
    fn = REGISTRY["NPL_TRANCHE_EL"]
    fn.clear_cache()
    first = fn(TAPE, TRANCHES, None, 400.0, 1.0)
    again = fn(TAPE, TRANCHES, None, 400.0, 1.0)
    assert first == again and len(calls) == 1  # the cache answered the second call
    other = fn(TAPE, TRANCHES, None, 400.0, 2.0)
    assert len(calls) == 2 and other != first
    assert first[0] == ["name", "EL", "PD", "WAL", "mean_irr", "rating", "el_stderr"]
    assert [r[0] for r in first[1:]] == ["A", "Sub"]
    assert 0.0 <= first[1][1] <= first[2][1] <= 1.0 and isinstance(first[1][5], str)
    assert REGISTRY["NPL_BID_PRICE"].cached and fn.cached


def test_a_settings_key_given_twice_is_an_error_naming_both_rows():
    # rho and its Chinese alias 相关系数 are the same key: which one wins must not be silent
    with pytest.raises(TableError) as info:
        parse_settings([["key", "value"], ["rho", 0.3], ["n_sims", 400], ["相关系数", 0.05]])
    message = str(info.value)
    assert info.value.argument == "settings"
    assert "rho" in message and "相关系数" in message and "rows 2 and 4" in message
    with pytest.raises(TableError, match="相关系数"):
        parse_settings({"rho": 0.3, "相关系数": 0.05})
    out = REGISTRY["NPL_TRANCHE_EL"](TAPE, TRANCHES, [["rho", 0.3], ["Rho", 0.3]])
    assert out.code == "#VALUE!" and "rows 1 and 2" in out.message


def test_issue_price_quoted_per_100_is_accepted_and_a_tiny_price_rejected():
    # 108 on a 1,002m tranche is the market's quote per 100 of face: 1,002m x 1.08
    table = [["name", "kind", "balance", "coupon", "issue_price"],
             ["A", "senior", 1_002_000_000.0, 0.0348, 108.0]]
    assert parse_tranches(table).items[0].issue_price == pytest.approx(1_082_160_000.0)
    # a price of 50m on 1,002m (below a tenth of the balance, and not a per-100 quote)
    table[1][4] = 50_000_000.0
    with pytest.raises(DomainError) as err:
        parse_tranches(table)
    assert "row 2 (A)" in str(err.value) and "issue_price" in str(err.value)
    # small balances (a test deal of 100) keep their prices in currency
    small = [["name", "kind", "balance", "issue_price"], ["A", "senior", 100.0, 108.0]]
    assert parse_tranches(small).items[0].issue_price == 108.0


def test_pari_group_and_principal_columns():
    table = [["name", "kind", "balance", "pari_group", "principal"],
             ["A1", "senior", 60.0, "A", "pro rata"], ["A2", "senior", 40.0, "A", "pro_rata"],
             ["S", "subordinated", 10.0, None, None]]
    tranches = parse_tranches(table)
    group, pro_rata = tranches.groups()
    assert list(group) == [0, 0, 2] and list(pro_rata) == [1, 1, 0]
    # "principal" is the balance when no other column is
    assert parse_tranches([["name", "kind", "principal"], ["A", "senior", 5.0]]).items[0].balance == 5.0
    bad = [r[:] for r in table]
    bad[2][4] = "sequential"
    with pytest.raises(TableError, match="mixes sequential and pro_rata"):
        parse_tranches(bad)
    bad = [["name", "kind", "balance", "pari_group"], ["A1", "senior", 60.0, "A"],
           ["B", "mezzanine", 40.0, "A"]]
    with pytest.raises(TableError, match="mixes senior and mezzanine"):
        parse_tranches(bad)
    with pytest.raises(DomainError, match="not sequential or pro_rata"):
        parse_tranches([["name", "kind", "balance", "principal rule"], ["A", "senior", 1.0, "x"]])


def test_choice_settings():
    assert parse_settings({"mezz_interest": "Before Senior Principal"}).mezz_interest == "before_senior_principal"
    assert parse_settings(None).mezz_interest == "after_senior_principal"
    with pytest.raises(DomainError, match="mezz_interest"):
        parse_settings({"mezz_interest": "first"})
