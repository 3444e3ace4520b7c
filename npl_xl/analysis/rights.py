"""AMC income-right transfer modes: who gets each period's collections (NPL_RIGHTS_SPLIT).

The four modes described by 孙方 of China Orient AMC ([Sun-AMC] in docs/SOURCES.md). An asset management company (AMC) that bought
a package sells an investor an income right; each party has put in a cost (investor_cost,
amc_cost, currency) and may be promised a fixed annual return (investor_rate, amc_rate,
decimals). A party's *claim* is its unpaid return plus its unrecovered cost. Each period:

1. the return accrues: unpaid_return += rate x period_years x unrecovered cost at the start
   of the period (simple interest on the outstanding cost; not compounded), with
   period_years = period_months / 12 (default 6 months: collections are semi-annual, like the
   deal's payment_months);
2. the period's collections C_t (currency, net of agreed disposal costs) are distributed;
   paying a claim pays the unpaid return first and then the cost ("以净回收款先支付当期利息,
   余额冲减本金").

Modes (English or Chinese):

- ordinary (普通): investor share x C_t, AMC the rest; no priority.
- senior (优先): the investor's claim first, the rest to the AMC.
- junior (劣后): the AMC's claim first, the rest to the investor.
- semi-junior (半劣后): the AMC's claim, then the investor's claim, then the rest by share.

``share`` is the investor's share (decimal), default investor_cost / (investor_cost +
amc_cost), i.e. pro rata to what each put in.
"""

from __future__ import annotations


import numpy as np

from npl_xl.inputs.codes import normalise
from npl_xl.errors import DomainError, UnknownCodeError

__all__ = ["MODES", "parse_mode", "rights_split"]

MODES = ("ordinary", "senior", "junior", "semi-junior")
_ALIASES = {
    "ordinary": ["ordinary", "pari passu", "pro rata", "普通", "普通收益权", "普通级"],
    "senior": ["senior", "优先", "优先级", "优先级收益权", "优先收益权"],
    "junior": ["junior", "劣后", "劣后级", "劣后级收益权", "劣后收益权"],
    "semi-junior": ["semi-junior", "semi junior", "semijunior", "partially junior", "半劣后",
                    "半劣后级", "半劣后级收益权", "半劣后收益权"],
}
_LOOKUP = {normalise(a): m
           for m, names in _ALIASES.items() for a in names}


def parse_mode(mode: str) -> str:
    """Canonical mode name from English or Chinese text (case- and width-insensitive)."""
    key = normalise(mode)
    if key not in _LOOKUP:
        raise UnknownCodeError(
            f"unknown mode {mode!r}; use ordinary (普通), senior (优先), junior (劣后) or "
            "semi-junior (半劣后)", argument="mode")
    return _LOOKUP[key]


class _Claim:
    """A party's cost and fixed return, paid return first."""

    def __init__(self, cost: float, rate: float, period_years: float):
        self.cost = cost
        self.unpaid_return = 0.0
        self.rate = rate
        self.period_years = period_years

    def accrue(self) -> None:
        self.unpaid_return += self.rate * self.period_years * self.cost

    def pay(self, cash: float) -> float:
        """Pay as much of the claim as ``cash`` allows; return the amount paid."""
        to_return = min(cash, self.unpaid_return)
        self.unpaid_return -= to_return
        to_cost = min(cash - to_return, self.cost)
        self.cost -= to_cost
        return to_return + to_cost


def rights_split(collections, mode: str, investor_cost: float, amc_cost: float,
                 investor_rate: float = 0.0, amc_rate: float = 0.0, share: float | None = None,
                 period_months: float = 6.0) -> np.ndarray:
    """Split each period's collections between investor and AMC.

    Parameters
    ----------
    collections : array of float, shape (n_periods,)
        Net collections per period, currency, >= 0.
    mode : str
        ordinary, senior, junior, semi-junior (or 普通, 优先, 劣后, 半劣后).
    investor_cost, amc_cost : float
        What each party paid, currency, >= 0 (not both 0 when share is blank).
    investor_rate, amc_rate : float
        Fixed annual returns, decimals >= 0; default 0.
    share : float, optional
        Investor's share (decimal in [0, 1]) in ordinary mode and of the excess in
        semi-junior mode; default investor_cost / (investor_cost + amc_cost).
    period_months : float
        Length of one period, months > 0; default 6.

    Returns
    -------
    numpy.ndarray, shape (n_periods, 2): investor, amc (currency); each row sums to C_t.

    Examples
    --------
    Senior mode: the investor (cost 60, 8% a year) is paid first, the AMC takes the rest:

    >>> from npl_xl import rights_split
    >>> rights_split([100.0, 50.0], "senior", 60.0, 40.0, 0.08, 0.0)
    array([[62.4, 37.6],
           [ 0. , 50. ]])
    """
    chosen = parse_mode(mode)
    c = np.asarray(collections, dtype=float).ravel()
    bad = np.flatnonzero(~(c >= 0))
    if bad.size:
        raise DomainError(f"period {bad[0] + 1} is {c[bad[0]]:g}; collections must be >= 0",
                          argument="collections")
    for name, value in (("investor_cost", investor_cost), ("amc_cost", amc_cost),
                        ("investor_rate", investor_rate), ("amc_rate", amc_rate)):
        if not value >= 0:
            raise DomainError(f"must be >= 0, got {value:g}", argument=name)
    if not period_months > 0:
        raise DomainError(f"must be > 0 months, got {period_months:g}", argument="period_months")
    if share is None:
        if investor_cost + amc_cost <= 0:
            raise DomainError("give a share when both costs are 0", argument="share")
        share = investor_cost / (investor_cost + amc_cost)
    if not 0.0 <= share <= 1.0:
        raise DomainError(f"must be a decimal in [0, 1], got {share:g}", argument="share")
    years = period_months / 12.0
    investor = _Claim(investor_cost, investor_rate, years)
    amc = _Claim(amc_cost, amc_rate, years)
    out = np.zeros((c.shape[0], 2))
    for t, cash in enumerate(c):
        investor.accrue()
        amc.accrue()
        if chosen == "ordinary":
            to_investor = share * cash
        elif chosen == "senior":
            to_investor = investor.pay(cash)
        elif chosen == "junior":
            to_investor = cash - amc.pay(cash)
        else:  # semi-junior
            rest = cash - amc.pay(cash)
            paid = investor.pay(rest)
            to_investor = paid + share * (rest - paid)
        out[t, 0] = to_investor
        out[t, 1] = cash - to_investor
    return out
