"""Ratings from expected loss and WAL: Moody's idealized expected-loss table
([Moodys-EL] in docs/SOURCES.md).

The table (``data/moodys_idealized_el.csv``, percent of par, horizons 1-10 years, with its
source in the file header) is read once. For a tranche with expected loss ``el`` (decimal:
0.001 = 0.1%) and weighted average life ``wal_years``, the rating is the highest rating whose
idealized EL at that WAL is >= el (docs/MODEL.md, Tranche figures); the idealized EL is interpolated linearly
between whole years, the 1-year column is used below one year and the 10-year column above
ten. An EL above the Caa threshold rates "Ca".
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

import numpy as np

from npl_xl.errors import DomainError

__all__ = ["idealized_el", "rating_from_el", "RATINGS", "BELOW_TABLE"]

#: Rating given when the EL exceeds the idealized EL of every rating in the table.
BELOW_TABLE = "Ca"


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    text = resources.files("npl_xl.inputs").joinpath("data/moodys_idealized_el.csv").read_text("utf-8")
    rows = [r for r in csv.reader(line for line in text.splitlines() if not line.startswith("#"))]
    years = np.array([float(y) for y in rows[0][1:]])
    names = tuple(r[0] for r in rows[1:])
    el = np.array([[float(v) / 100.0 for v in r[1:]] for r in rows[1:]])  # percent -> decimal
    return names, years, el


RATINGS: tuple[str, ...] = _table()[0]


def idealized_el(rating: str, wal_years: float) -> float:
    """Idealized EL (decimal) of ``rating`` at ``wal_years`` (interpolated, clamped to 1-10).

    Examples
    --------
    >>> from npl_xl import idealized_el
    >>> round(idealized_el("Baa3", 5.0), 6)   # 1.6775% of par at 5 years
    0.016775
    """
    names, years, el = _table()
    row = names.index(rating)
    return float(np.interp(min(max(wal_years, years[0]), years[-1]), years, el[row]))


def rating_from_el(el: float, wal_years: float) -> str:
    """The highest rating whose idealized EL at ``wal_years`` is >= ``el``.

    Parameters
    ----------
    el : float
        Expected loss, decimal of par in [0, 1] (0.001 = 0.1%).
    wal_years : float
        Weighted average life in years, >= 0.

    Raises
    ------
    DomainError
        ``#NUM!`` for el outside [0, 1] or a negative or non-finite WAL.

    Examples
    --------
    An EL of 0.1% over a 3-year WAL rates A2 on Moody's idealized table; a 20% EL is Caa
    (Caa's idealized EL at 3 years is 21.45%), a 25% EL below the table:

    >>> from npl_xl import rating_from_el
    >>> rating_from_el(0.001, 3.0), rating_from_el(0.20, 3.0), rating_from_el(0.25, 3.0)
    ('A2', 'Caa', 'Ca')
    """
    if not (0.0 <= el <= 1.0):
        raise DomainError(f"must be a decimal in [0, 1] (0.001 = 0.1%), got {el:g}", argument="el")
    if not (np.isfinite(wal_years) and wal_years >= 0.0):
        raise DomainError(f"must be a number of years >= 0, got {wal_years:g}", argument="wal_years")
    names, years, table = _table()
    wal = min(max(wal_years, years[0]), years[-1])
    for row, name in enumerate(names):
        # a relative 1e-9 so that an EL typed as the table's own figure falls in its band
        if float(np.interp(wal, years, table[row])) * (1.0 + 1e-9) >= el:
            return name
    return BELOW_TABLE
