"""The registry as a whole: the contract's names and argument order, declarations that VBA
and Excel accept, and that no Excel-shaped input makes a function raise."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npl_xl.errors import ERROR_CODES, XlError
from npl_xl.sheet.registry import REQUIRED, load_all

REGISTRY = load_all()

# The worksheet contract (shared/spec/FUNCTIONS.md): names and argument order are fixed,
# workbooks depend on them. Extra optional trailing arguments are allowed.
CONTRACT = {
    "NPL_BETA_PARAMS": ["mean", "sd"],
    "NPL_BETA_FIT": ["data", "method", "tol"],
    "NPL_BETA_INV": ["p", "mean", "sd"],
    "NPL_BETA_DIST": ["x", "mean", "sd", "cumulative"],
    "NPL_BETA_DRAWS": ["mean", "sd", "n", "seed", "cap"],
    "NPL_COMPS_VALUE": ["area", "prices", "factors", "weights", "judicial", "market_discount"],
    "NPL_AUCTION_VALUE": ["appraisal", "start_ratio", "cut", "p_sell", "premium", "in_lieu"],
    "NPL_NET_RECOVERY": ["proceeds", "claim", "prior_claims", "cost_rate", "deduction"],
    "NPL_JUDICIAL_MONTHS": ["province", "stage", "collateral_type", "defects", "assumptions"],
    "NPL_JUDICIAL_SCHEDULE": ["province", "stage", "collateral_type", "defects", "assumptions"],
    "NPL_LOAN_RECOVERY": ["claim", "collateral_value", "collateral_type", "province", "stage",
                          "defects", "borrower", "guarantor", "other"],
    "NPL_STRAT": ["tape", "by", "measure"],
    "NPL_WATERFALL": ["collections", "tranches", "settings"],
    "NPL_TRANCHE_EL": ["tape", "tranches", "settings", "n_sims", "seed"],
    "NPL_RATING": ["el", "wal_years"],
    "NPL_BID_PRICE": ["tape", "target_irr", "confidence", "settings", "n_sims", "seed"],
    "NPL_RIGHTS_SPLIT": ["collections", "mode", "investor_cost", "amc_cost", "investor_rate",
                         "amc_rate", "share"],
    "NPL_TRANCHE_SIZE": ["tape", "tranches", "target_rating", "tranche", "settings", "n_sims",
                         "seed", "assumptions"],
    "NPL_BREAKEVEN": ["tape", "tranches", "tranche", "settings", "assumptions"],
    "NPL_SENSITIVITY": ["tape", "tranches", "variable", "shocks", "figure", "tranche", "settings",
                        "n_sims", "seed", "assumptions"],
    "NPL_PRICE_TABLE": ["tape", "prices", "settings", "n_sims", "seed", "assumptions"],
}
# Arguments the contract shows in brackets: optional.
REQUIRED_ARGS = {
    "NPL_BETA_PARAMS": 2, "NPL_BETA_FIT": 1, "NPL_BETA_INV": 3, "NPL_BETA_DIST": 3,
    "NPL_BETA_DRAWS": 3, "NPL_COMPS_VALUE": 3, "NPL_AUCTION_VALUE": 1, "NPL_NET_RECOVERY": 2,
    "NPL_JUDICIAL_MONTHS": 1, "NPL_JUDICIAL_SCHEDULE": 1, "NPL_LOAN_RECOVERY": 1,
    "NPL_STRAT": 2, "NPL_WATERFALL": 2, "NPL_TRANCHE_EL": 2, "NPL_RATING": 2,
    "NPL_BID_PRICE": 2, "NPL_RIGHTS_SPLIT": 4,
    "NPL_TRANCHE_SIZE": 3, "NPL_BREAKEVEN": 2, "NPL_SENSITIVITY": 4, "NPL_PRICE_TABLE": 2,
}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_contract_names_and_argument_order(name):
    assert name in REGISTRY, f"{name} is in the worksheet contract but not registered"
    declared = [arg.name for arg in REGISTRY[name].args]
    assert declared[:len(CONTRACT[name])] == CONTRACT[name]
    required = [arg.name for arg in REGISTRY[name].args if arg.required]
    assert required == CONTRACT[name][:REQUIRED_ARGS[name]]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_declarations_excel_and_vba_accept(name):
    function = REGISTRY[name]
    assert name.startswith("NPL_") and name.isupper()
    assert function.doc and len(function.doc) <= 255
    assert function.zh and len(function.zh) <= 255, f"{name} has no Chinese one-liner (zh=)"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in function.zh), name
    seen_optional = False
    for arg in function.args:
        assert arg.doc, f"{name}.{arg.name} has no help text"
        assert len(arg.doc) <= 255
        if arg.required:
            assert not seen_optional, f"{name}: required {arg.name} after an optional one"
        seen_optional |= not arg.required
    assert len({a.name for a in function.args}) == len(function.args)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_blank_required_argument_names_itself(name):
    function = REGISTRY[name]
    result = function(*[None] * len(function.args))
    first_required = next(a.name for a in function.args if a.required)
    assert isinstance(result, XlError) and result.code == "#VALUE!", result
    assert result.message.startswith(first_required + ":"), result.message


# Excel-shaped values: what a cell or a range can hand over.
scalars = st.one_of(
    st.none(), st.just(""), st.booleans(), st.sampled_from(ERROR_CODES),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.sampled_from([0.0, 1.0, 0.5, 0.35, 2.0, 1e-9, -1.0, 10000.0]),
    st.text(max_size=12), st.sampled_from(["浙江", "Jiangsu", "residential", "senior",
                                           "MLE", "filed", "lease,criminal", "claim"]),
)
ranges = st.integers(1, 4).flatmap(
    lambda width: st.lists(st.lists(scalars, min_size=width, max_size=width),
                           min_size=1, max_size=5))
values = st.one_of(scalars, ranges)


def is_plain(cell):
    return isinstance(cell, (str, bool, XlError)) or (
        isinstance(cell, float) and math.isfinite(cell))


@pytest.mark.parametrize("name", sorted(REGISTRY))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_never_raises_and_returns_excel_shapes(name, data):
    function = REGISTRY[name]
    raw = [data.draw(values, label=arg.name) for arg in function.args]
    result = function(*raw)
    if isinstance(result, list):
        assert result and all(isinstance(row, list) for row in result)
        assert len({len(row) for row in result}) == 1, "rectangular"
        assert all(is_plain(cell) for row in result for cell in row)
    else:
        assert is_plain(result), result
