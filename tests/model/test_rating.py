"""NPL_RATING against the Moody's idealized EL table (domain.md §3.2-3.3)."""

import pytest

from npl_xl.model.rating import RATINGS, idealized_el, rating_from_el
from npl_xl.sheet.registry import load_all

REGISTRY = load_all()


def test_worked_example_of_the_domain_reference():
    # EL 0.10%, WAL 2.5: A2 threshold (0.0385+0.1221)/2 = 0.0803% < 0.10% <= A3 (0.0825+0.198)/2
    # = 0.14025%  -> A3
    assert rating_from_el(0.001, 2.5) == "A3"
    assert REGISTRY["NPL_RATING"](0.001, 2.5) == "A3"


def test_table_cells_in_percent_become_decimals():
    assert idealized_el("A3", 2.0) == pytest.approx(0.0825 / 100)
    assert idealized_el("Baa2", 10.0) == pytest.approx(1.98 / 100)
    assert idealized_el("Aaa", 1.0) == pytest.approx(0.00003 / 100)
    assert RATINGS[0] == "Aaa" and RATINGS[-1] == "Caa" and len(RATINGS) == 17


def test_band_edges_are_inclusive_at_the_top():
    # the band of A3 at 4 years is (A2 0.18975%, A3 0.297%]
    assert rating_from_el(0.00297, 4.0) == "A3"
    assert rating_from_el(0.00297 * 1.0001, 4.0) == "Baa1"
    assert rating_from_el(0.0018975, 4.0) == "A2"
    assert rating_from_el(0.0018975 * 1.0001, 4.0) == "A3"
    # Ba2 band at 4 years: (Ba1 2.32903%, Ba2 3.74%]
    assert rating_from_el(0.0374, 4.0) == "Ba2" and rating_from_el(0.0233, 4.0) == "Ba2"


def test_wal_below_one_year_uses_one_year_and_above_ten_is_capped():
    assert rating_from_el(0.000935, 0.3) == rating_from_el(0.000935, 1.0) == "Baa2"
    assert rating_from_el(0.0198, 25.0) == rating_from_el(0.0198, 10.0) == "Baa2"


def test_linear_interpolation_in_wal():
    # Baa2 at 2.25 y = 0.2585 + 0.25 (0.4565 - 0.2585) = 0.308%
    assert idealized_el("Baa2", 2.25) == pytest.approx(0.00308)
    assert rating_from_el(0.00308, 2.25) == "Baa2"
    assert rating_from_el(0.00309, 2.25) == "Baa3"


def test_extremes():
    assert rating_from_el(0.0, 3.0) == "Aaa"
    assert rating_from_el(0.5, 3.0) == "Ca"  # above the Caa row
    assert REGISTRY["NPL_RATING"](-0.01, 3.0).code == "#NUM!"
    assert "el" in REGISTRY["NPL_RATING"](1.5, 3.0).message
    assert REGISTRY["NPL_RATING"]("x", 3.0).code == "#VALUE!"


# Moody's published idealized cumulative expected loss at 10 years, percent of par, by
# rating (Moody's Investors Service, idealized cumulative expected loss rates, as printed in
# its methodology appendices, e.g. "Moody's Approach to Rating RMBS Using the MILAN
# Framework", Appendix 5; the Caa row is the idealized Caa default probabilities 26 ... 65 %
# x 55 %). Typed here from the published table, independently of the packaged csv.
PUBLISHED_10Y = {
    "Aaa": 0.0055, "Aa1": 0.055, "Aa2": 0.11, "Aa3": 0.22, "A1": 0.385, "A2": 0.66,
    "A3": 0.99, "Baa1": 1.43, "Baa2": 1.98, "Baa3": 3.355, "Ba1": 5.1875, "Ba2": 7.535,
    "Ba3": 10.373, "B1": 14.3, "B2": 17.655, "B3": 20.845, "Caa": 35.75,
}
# The published Caa row, years 1-10, percent.
PUBLISHED_CAA = [14.3, 17.875, 21.45, 24.134, 26.8125, 28.6, 30.3875, 32.175, 33.9625, 35.75]


def test_every_rows_ten_year_cell_is_the_published_one():
    assert list(PUBLISHED_10Y) == list(RATINGS)
    for rating, percent in PUBLISHED_10Y.items():
        # Ba1's published 5.18749 rounds to 5.1875 in the printed table: 1e-4 pp tolerance
        assert idealized_el(rating, 10.0) * 100 == pytest.approx(percent, abs=1.1e-4), rating


def test_the_caa_row_is_the_published_one():
    for year, percent in enumerate(PUBLISHED_CAA, start=1):
        assert idealized_el("Caa", float(year)) * 100 == pytest.approx(percent, abs=1e-9)
    # an EL of 30 % at 5 years (Caa 26.8125 %) is below the table; 25 % at 5 years is Caa
    assert rating_from_el(0.30, 5.0) == "Ca" and rating_from_el(0.25, 5.0) == "Caa"
