"""Interval checks of input numbers, written once, with one message style.

Every range rule of a cell value (a Settings key, an assumption-table cell, a tape column,
a loan of the engine's pool, a worksheet argument) is an :class:`Interval`, and every
violation reads the same way: ``must be in [0, 1), got 1.5``, ``must be >= 0, got -2``, or
for arrays ``loan 3: must be >= 0, got -2 (4 loans in all)``. The argument, table cell or
key the value came from is named by the caller (the error's ``argument`` or the problem's
prefix).

Examples
--------
>>> from npl_xl.checks import Interval, check_number, outside_message
>>> rate = Interval(0, 1, high_open=True)
>>> str(rate), 0.5 in rate, 1.0 in rate
('in [0, 1)', True, False)
>>> outside_message(1.5, rate)
'must be in [0, 1), got 1.5'
>>> str(Interval(low=0, low_open=True))
'> 0'
>>> check_number(0.25, rate, "tax_rate")
0.25
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from npl_xl.errors import DomainError

__all__ = ["Interval", "outside_message", "check_number", "check_each"]


@dataclass(frozen=True)
class Interval:
    """Allowed values ``low <= x <= high`` (``<`` where open); None = unbounded on that side.
    NaN and infinities are never inside."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        x = float(value)
        if not math.isfinite(x):
            return False
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return False
        if self.high is not None and (x > self.high or (self.high_open and x == self.high)):
            return False
        return True

    def outside(self, values) -> np.ndarray:
        """Bool mask of the entries of ``values`` not in the interval (NaN is outside)."""
        x = np.asarray(values, dtype=float)
        bad = ~np.isfinite(x)
        with np.errstate(invalid="ignore"):
            if self.low is not None:
                bad |= (x <= self.low) if self.low_open else (x < self.low)
            if self.high is not None:
                bad |= (x >= self.high) if self.high_open else (x > self.high)
        return bad

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{self.low:g}, "
                    f"{self.high:g}{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return "a finite number"


def outside_message(value: float, interval: Interval) -> str:
    """``must be in [0, 1), got 1.5``: the one wording of a number outside its interval."""
    return f"must be {interval}, got {float(value):g}"


def check_number(value: float, interval: Interval, argument: str | None = None,
                 hint: str = "") -> float:
    """``value`` as a float if inside ``interval``, else :class:`~npl_xl.errors.DomainError`
    (``#NUM!``) naming ``argument``; ``hint`` is appended to the message (e.g. a unit
    reminder: " (for 5% enter 0.05)")."""
    if value not in interval:
        raise DomainError(outside_message(value, interval) + hint, argument=argument)
    return float(value)


def check_each(values, interval: Interval, argument: str, noun: str = "value") -> np.ndarray:
    """``values`` as a float array if every entry is inside ``interval``, else a
    :class:`~npl_xl.errors.DomainError` naming the first bad entry (1-based) and how many
    there are: ``loan 3: must be >= 0, got -2 (4 loans in all)``."""
    array = np.asarray(values, dtype=float)
    bad = np.flatnonzero(interval.outside(array).ravel())
    if bad.size:
        first = bad[0]
        more = f" ({bad.size} {noun}s in all)" if bad.size > 1 else ""
        raise DomainError(f"{noun} {first + 1}: {outside_message(array.ravel()[first], interval)}"
                          f"{more}", argument=argument)
    return array
