"""One interval rule and one wording for every range check of an input number."""

import math

import numpy as np
import pytest

from npl_xl.checks import Interval, check_each, check_number, outside_message
from npl_xl.errors import DomainError, TableError


def test_bounds_open_and_closed():
    unit = Interval(0, 1, high_open=True)
    assert 0 in unit and 0.999 in unit and 1 not in unit and -1e-12 not in unit
    assert math.nan not in Interval() and math.inf not in Interval(0)
    assert str(Interval(0, 1, low_open=True)) == "in (0, 1]"
    assert str(Interval(high=5, high_open=True)) == "< 5"
    assert list(unit.outside([0.0, 1.0, np.nan, 0.5])) == [False, True, True, False]


def test_scalar_and_array_errors_name_the_argument_and_the_entry():
    with pytest.raises(DomainError, match=r"rho: must be in \[0, 1\], got 1.5") as info:
        check_number(1.5, Interval(0, 1), "rho")
    assert info.value.excel_code == "#NUM!"
    with pytest.raises(DomainError, match=r"claim: loan 2: must be >= 0, got -3 \(2 loans in all\)"):
        check_each([1.0, -3.0, -4.0], Interval(0), "claim", noun="loan")


def test_every_layer_words_it_the_same():
    # a Settings key, an assumption cell, a tape column and an engine array: same wording
    from npl_xl.engine import Pool
    from npl_xl.inputs.assumptions import Assumptions
    from npl_xl.inputs.deal import parse_settings
    from npl_xl.inputs.tape import read_tape

    with pytest.raises(DomainError) as settings:
        parse_settings({"rho": 1.5})
    with pytest.raises(TableError) as assumptions:
        Assumptions.from_tables({"Parameters": [["key", "value"], ["sd_cap_factor", 1.5]]})
    with pytest.raises(TableError) as tape:
        read_tape([["loan_id", "claim", "province", "collateral_type"], ["L1", -1, "Zhejiang", "none"]])
    with pytest.raises(DomainError) as pool:
        Pool.from_arrays([-1.0], [0.0], [1.0], [0.0])
    assert outside_message(1.5, Interval(0, 1)) in str(settings.value)
    assert outside_message(1.5, Interval(0, 1, low_open=True)) in str(assumptions.value)
    assert outside_message(-1, Interval(0, low_open=True)) in str(tape.value)
    assert outside_message(-1, Interval(0)) in str(pool.value)
