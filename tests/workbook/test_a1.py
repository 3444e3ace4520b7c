"""The one A1 convention: 0-based (row, col), row first."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from npl_xl.workbook.a1 import (MAX_COLS, MAX_ROWS, cell_address, column_index, column_letter,
                                parse_address, parse_range, parse_sheet_address, sheet_address)


def test_known_addresses():
    # A=0 ... Z=25, AA=26, AZ=51, BA=52, XFD = 16383 (Excel's last column)
    assert [column_letter(c) for c in (0, 25, 26, 51, 52, MAX_COLS - 1)] == \
        ["A", "Z", "AA", "AZ", "BA", "XFD"]
    assert column_index("xfd") == MAX_COLS - 1
    assert cell_address(0, 0) == "A1" and cell_address(MAX_ROWS - 1, 0) == "A1048576"
    assert parse_range("$C$9:A1") == (0, 0, 8, 2)
    assert sheet_address("", 0, 0) == "A1" and sheet_address("A1", 0, 0) == "'A1'!A1"
    assert parse_sheet_address("'It''s'!C2") == ("It's", 1, 2)
    assert parse_sheet_address("贷款!B2") == ("贷款", 1, 1)
    with pytest.raises(ValueError):
        parse_address("A")


@given(st.integers(0, MAX_ROWS - 1), st.integers(0, MAX_COLS - 1),
       st.text(alphabet="ab 贷款'!x", min_size=1, max_size=6).filter(lambda s: s.strip() == s and "!" not in s))
def test_round_trips(row, col, sheet):
    assert parse_address(cell_address(row, col)) == (row, col)
    assert column_index(column_letter(col)) == col
    assert parse_sheet_address(sheet_address(sheet, row, col)) == (sheet, row, col)
