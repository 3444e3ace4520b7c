"""The deal's priority of payments for one path, and each tranche's figures on that path.

Order per payment period (domain.md §4.2, single collection account), from the period's
collections C (currency):

1. taxes = tax_rate x C
2. fixed senior expenses (fixed_expenses per period while any tranche is outstanding)
3. servicer base fee = servicer_fee_rate x C
4. repayment of liquidity-facility advances outstanding at the start of the period
   (from collections only; the facility charges no interest in this model)
5. senior interest = coupon x period years x balance at the start of the period, senior
   tranches in table order
   Shortfalls of 1, 2, 3 and 5 are covered from the reserve account, then by drawing the
   liquidity facility up to liquidity_limit; what is still unpaid is carried to the next
   period. A senior interest shortfall is an event of default (EoD).
6. reserve top-up to reserve_multiple x (next period's 1-3 estimated from this period's
   collections + next period's senior interest on the start-of-period senior balance);
   the reserve account starts at initial_reserve (funded at closing, default 0);
   an excess over the target is released; the target is 0 in the last period, after an EoD
   and once the senior tranches are repaid
7. senior principal, all remaining cash (pass-through), senior tranches in table order;
   when the seniors are repaid the reserve is released into the cash for steps 8-12
8. mezzanine tranches in table order: interest (coupon on the start-of-period balance plus
   unpaid interest; deferrable: a shortfall is not an EoD, but it is a missed payment for
   the tranche's PD) then principal
9. subordinated principal, in table order
10. subordinated fixed return = sub_return_rate x period years x start-of-period balance
    plus any unpaid return (deferrable; a shortfall is a missed payment, as in step 8)
11. excess servicing fee = excess_fee_share x what remains
12. residual to the subordinated tranches, pro rata to their original balances

After an EoD the reserve is no longer kept: it is released and, with all other cash after
step 5, goes to senior principal until the seniors are repaid (steps 8-12 get nothing while
any senior is outstanding, as step 7 absorbs all cash). A subordinated tranche's coupon is
used only to discount its interest (the fixed return of step 10) and principal for its PV
and loss; the residual of step 12 is neither, so it counts in the tranche's IRR only.

Tranche figures on a path (FUNCTIONS.md "Definitions of the tranche figures"):
PV of the interest and principal payments (not the residual) at the tranche's own coupon
compounded per payment period (period rate c x months/12);
loss = max(0, 1 - PV / B0); WAL = sum t principal_t / sum principal_t in years (NaN when
no principal is paid); default = interest (or the subordinated fixed return) due in some
period and not paid in full that period, or unpaid principal or deferred interest/return at
the legal final date (FUNCTIONS.md: "misses any interest due"; a deferred mezzanine interest
or subordinated return is a miss though not an EoD, and counts even when cured later);
IRR = the effective annual rate y with sum CF_t (1 + y)^(-t_years) = issue price, CF_t
every payment to the tranche, residual included (-1 when nothing is paid).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["FLOW_COLUMNS", "N_FLOW", "flow_columns", "run_waterfall", "path_metrics",
           "waterfall_paths", "period_years", "irr_paths", "deterministic_waterfall"]

#: Per-period columns of the flow array before the tranche columns.
FLOW_COLUMNS = ("collections", "taxes", "fixed_expenses", "servicer_fee", "liquidity_draw",
                "liquidity_repayment", "liquidity_balance", "reserve_draw", "reserve_balance",
                "excess_servicing_fee", "residual", "event_of_default")
(C_COLL, C_TAX, C_FIXED, C_SERV, C_LIQ_DRAW, C_LIQ_REPAY, C_LIQ_BAL, C_RES_DRAW, C_RES_BAL,
 C_EXCESS, C_RESIDUAL, C_EOD) = range(len(FLOW_COLUMNS))
N_FLOW = len(FLOW_COLUMNS)
#: Columns per tranche after the fixed ones: interest, principal, balance (end of period).
TRANCHE_COLUMNS = ("interest", "principal", "balance")


def flow_columns(names) -> list[str]:
    """Column names of the flow array for tranches ``names``."""
    return list(FLOW_COLUMNS) + [f"{n}_{c}" for n in names for c in TRANCHE_COLUMNS]


def period_years(dates_months: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length of each payment period and of the next one, in years."""
    tau = np.diff(np.concatenate([[0.0], dates_months])) / 12.0
    tau_next = np.concatenate([tau[1:], [0.0]])
    return tau, tau_next


@nb.njit(cache=True, inline="always")
def _pay(due, cash, reserve, headroom):
    """Pay ``due`` from cash, then the reserve, then the liquidity headroom.
    Returns (paid, cash, reserve, from_reserve, drawn)."""
    from_cash = min(cash, due)
    rest = due - from_cash
    from_reserve = min(reserve, rest)
    rest -= from_reserve
    drawn = min(headroom, rest)
    return from_cash + from_reserve + drawn, cash - from_cash, reserve - from_reserve, from_reserve, drawn


@nb.njit(cache=True, inline="always")
def _pay_principal(cash, j, bal, row):
    """Repay tranche j's principal from cash (currency); returns the cash left."""
    paid = min(cash, bal[j])
    bal[j] -= paid
    row[N_FLOW + 3 * j + 1] = paid
    return cash - paid


@nb.njit(cache=True, inline="always")
def _pay_deferrable(cash, j, accrued, arrears, missed, bal0, row):
    """Pay tranche j's deferrable interest (this period's ``accrued`` plus arrears) from cash
    only; what is unpaid is deferred and marks a miss for the PD. Returns the cash left."""
    due = accrued + arrears[j]
    paid = min(cash, due)
    arrears[j] = due - paid
    if arrears[j] > 1e-9 * max(1.0, bal0[j]):
        missed[j] = 1.0
    row[N_FLOW + 3 * j] = paid
    return cash - paid


@nb.njit(cache=True)
def run_waterfall(coll, tau, tau_next, kind, bal0, coupon, tax_rate, fixed_expenses,
                  servicer_rate, reserve_multiple, liquidity_limit, sub_rate, excess_share,
                  initial_reserve, flows, missed, arrears):
    """One path's waterfall. coll: collections per period (currency); tau, tau_next: period
    lengths in years; kind/bal0/coupon per tranche; initial_reserve is the reserve account's
    balance at closing (currency). Writes ``flows`` (n_periods, N_FLOW +
    3 n_tranches), ``missed`` (1 if in some period the tranche's interest, or the
    subordinated fixed return, due was not paid in full, else 0) and ``arrears`` (unpaid
    interest or return at the end, currency) per tranche."""
    n_periods = coll.shape[0]
    n_tr = kind.shape[0]
    flows[:, :] = 0.0
    bal = bal0.copy()
    start = bal0.copy()
    for j in range(n_tr):
        missed[j] = 0.0
        arrears[j] = 0.0
    reserve = initial_reserve
    liquidity = 0.0
    unpaid_tax = 0.0
    unpaid_fixed = 0.0
    unpaid_serv = 0.0
    eod = False
    for k in range(n_periods):
        row = flows[k]
        c = coll[k]
        cash = c
        live = False
        for j in range(n_tr):
            start[j] = bal[j]
            if bal[j] > 0.0:
                live = True
        liquidity_start = liquidity
        reserve_drawn = 0.0
        liquidity_drawn = 0.0
        # 1-3 taxes, fixed expenses, servicer base fee
        due = tax_rate * c + unpaid_tax
        paid, cash, reserve, fr, dr = _pay(due, cash, reserve, liquidity_limit - liquidity)
        reserve_drawn += fr
        liquidity_drawn += dr
        liquidity += dr
        unpaid_tax = due - paid
        row[C_TAX] = paid
        due = (fixed_expenses if live else 0.0) + unpaid_fixed
        paid, cash, reserve, fr, dr = _pay(due, cash, reserve, liquidity_limit - liquidity)
        reserve_drawn += fr
        liquidity_drawn += dr
        liquidity += dr
        unpaid_fixed = due - paid
        row[C_FIXED] = paid
        due = servicer_rate * c + unpaid_serv
        paid, cash, reserve, fr, dr = _pay(due, cash, reserve, liquidity_limit - liquidity)
        reserve_drawn += fr
        liquidity_drawn += dr
        liquidity += dr
        unpaid_serv = due - paid
        row[C_SERV] = paid
        # 4 repay liquidity advances outstanding at the start of the period
        repay = min(cash, liquidity_start)
        cash -= repay
        liquidity -= repay
        row[C_LIQ_REPAY] = repay
        # 5 senior interest
        senior_interest_next = 0.0
        for j in range(n_tr):
            if kind[j] != 0:
                continue
            due = start[j] * coupon[j] * tau[k] + arrears[j]
            senior_interest_next += start[j] * coupon[j] * tau_next[k]
            paid, cash, reserve, fr, dr = _pay(due, cash, reserve, liquidity_limit - liquidity)
            reserve_drawn += fr
            liquidity_drawn += dr
            liquidity += dr
            arrears[j] = due - paid
            if arrears[j] > 1e-9 * max(1.0, bal0[j]):
                missed[j] = 1.0
                eod = True
            row[N_FLOW + 3 * j] = paid
        # 6 reserve top-up or release
        senior_out = 0.0
        for j in range(n_tr):
            if kind[j] == 0:
                senior_out += start[j]
        if eod or k == n_periods - 1 or senior_out <= 0.0:
            target = 0.0
        else:
            target = reserve_multiple * ((tax_rate + servicer_rate) * c + fixed_expenses
                                         + senior_interest_next)
        if reserve > target:
            cash += reserve - target
            reserve = target
        else:
            top = min(cash, target - reserve)
            reserve += top
            cash -= top
        # 7 senior principal
        senior_left = 0.0
        for j in range(n_tr):
            if kind[j] != 0:
                continue
            cash = _pay_principal(cash, j, bal, row)
            senior_left += bal[j]
        if senior_left <= 0.0 and reserve > 0.0:
            cash += reserve
            reserve = 0.0
        # 8 mezzanine interest then principal, tranche by tranche
        for j in range(n_tr):
            if kind[j] != 1:
                continue
            # deferred, not an event of default, but a miss for the PD
            cash = _pay_deferrable(cash, j, start[j] * coupon[j] * tau[k], arrears, missed,
                                   bal0, row)
            cash = _pay_principal(cash, j, bal, row)
        # 9 subordinated principal
        for j in range(n_tr):
            if kind[j] == 2:
                cash = _pay_principal(cash, j, bal, row)
        # 10 subordinated fixed return
        for j in range(n_tr):
            if kind[j] == 2:
                cash = _pay_deferrable(cash, j, start[j] * sub_rate * tau[k], arrears, missed,
                                       bal0, row)
        # 11 excess servicing fee, 12 residual
        fee = excess_share * cash
        cash -= fee
        row[C_EXCESS] = fee
        row[C_RESIDUAL] = cash
        row[C_COLL] = c
        row[C_LIQ_DRAW] = liquidity_drawn
        row[C_LIQ_BAL] = liquidity
        row[C_RES_DRAW] = reserve_drawn
        row[C_RES_BAL] = reserve
        row[C_EOD] = 1.0 if eod else 0.0
        for j in range(n_tr):
            row[N_FLOW + 3 * j + 2] = bal[j]


@nb.njit(cache=True)
def _irr(cash, years, price):
    """Effective annual IRR y: sum cash_k (1 + y)^-years_k = price; -1 if nothing is paid.
    Newton in x = log(1 + y) from the left of the root (the PV is convex and decreasing in x,
    so the iterates rise monotonically to the root)."""
    total = 0.0
    t_min = np.inf
    for k in range(cash.shape[0]):
        if cash[k] > 0.0:
            total += cash[k]
            t_min = min(t_min, years[k])
    if total <= 0.0:
        return -1.0
    x = 0.0 if total >= price else math.log(total / price) / t_min
    for _ in range(200):
        f = -price
        df = 0.0
        for k in range(cash.shape[0]):
            if cash[k] != 0.0:
                v = cash[k] * math.exp(-x * years[k])
                f += v
                df -= years[k] * v
        if df == 0.0:
            break
        step = f / df
        x -= step
        if abs(step) < 1e-13:
            break
    return math.expm1(x)


@nb.njit(cache=True, parallel=True)
def _irr_paths(cash, years, price, out):
    for p in nb.prange(cash.shape[0]):
        out[p] = _irr(cash[p], years, price)


def irr_paths(cash: np.ndarray, dates_months: np.ndarray, price: float) -> np.ndarray:
    """Effective annual IRR per path of cash flows ``cash`` (n_paths, n_periods; currency)
    paid at ``dates_months`` against ``price`` paid at month 0; -1 where nothing is paid."""
    cash = np.ascontiguousarray(cash, dtype=np.float64)
    out = np.empty(cash.shape[0])
    _irr_paths(cash, np.asarray(dates_months, dtype=np.float64) / 12.0, float(price), out)
    return out


@nb.njit(cache=True)
def path_metrics(flows, dates, kind, bal0, coupon, price, missed, arrears, loss, wal, irr,
                 default, pv):
    """Per tranche on one path: loss (decimal), WAL (years, NaN if no principal), IRR
    (effective annual, on all payments including a subordinated tranche's residual share),
    default (0/1), PV (currency, interest and principal only). Outputs are rows of length
    n_tranches."""
    n_periods = flows.shape[0]
    n_tr = kind.shape[0]
    sub_total = 0.0
    for j in range(n_tr):
        if kind[j] == 2:
            sub_total += bal0[j]
    years = dates / 12.0
    cash = np.empty(n_periods)
    for j in range(n_tr):
        share = bal0[j] / sub_total if kind[j] == 2 else 0.0
        df = 1.0
        value = 0.0
        t_prin = 0.0
        prin = 0.0
        prev = 0.0
        for k in range(n_periods):
            df /= 1.0 + coupon[j] * (dates[k] - prev) / 12.0
            prev = dates[k]
            p = flows[k, N_FLOW + 3 * j + 1]
            promised = flows[k, N_FLOW + 3 * j] + p  # interest (or fixed return), principal
            cash[k] = promised + share * flows[k, C_RESIDUAL]
            value += promised * df
            prin += p
            t_prin += years[k] * p
        pv[j] = value
        loss[j] = max(0.0, 1.0 - value / bal0[j])
        wal[j] = t_prin / prin if prin > 0.0 else np.nan
        tol = 1e-9 * max(1.0, bal0[j])
        end_balance = flows[n_periods - 1, N_FLOW + 3 * j + 2]
        default[j] = 1.0 if (missed[j] > 0.0 or end_balance > tol or arrears[j] > tol) else 0.0
        irr[j] = _irr(cash, years, price[j])


@nb.njit(cache=True, parallel=True)
def _waterfall_paths(coll, dates, tau, tau_next, kind, bal0, coupon, price, tax_rate,
                     fixed_expenses, servicer_rate, reserve_multiple, liquidity_limit,
                     sub_rate, excess_share, initial_reserve, loss, wal, irr, default, pv):
    n_paths, n_periods = coll.shape
    n_tr = kind.shape[0]
    chunk = 256
    n_chunks = (n_paths + chunk - 1) // chunk
    for s in nb.prange(n_chunks):
        flows = np.empty((n_periods, N_FLOW + 3 * n_tr))
        missed = np.empty(n_tr)
        arrears = np.empty(n_tr)
        for p in range(s * chunk, min(n_paths, (s + 1) * chunk)):
            run_waterfall(coll[p], tau, tau_next, kind, bal0, coupon, tax_rate, fixed_expenses,
                          servicer_rate, reserve_multiple, liquidity_limit, sub_rate,
                          excess_share, initial_reserve, flows, missed, arrears)
            path_metrics(flows, dates, kind, bal0, coupon, price, missed, arrears, loss[p],
                         wal[p], irr[p], default[p], pv[p])


def _settings_args(settings):
    return (settings.tax_rate, settings.fixed_expenses, settings.servicer_fee_rate,
            settings.reserve_multiple, settings.liquidity_limit, settings.sub_return_rate,
            settings.excess_fee_share, settings.initial_reserve)


def waterfall_paths(collections: np.ndarray, tranches, settings) -> dict[str, np.ndarray]:
    """Run the waterfall on every path.

    Parameters
    ----------
    collections : array (n_paths, n_periods)
        Pool collections per path and payment period, currency.
    tranches : npl_xl.inputs.deal.Tranches
    settings : npl_xl.inputs.deal.DealSettings

    Returns
    -------
    dict of arrays (n_paths, n_tranches): loss, wal, irr, default, pv.
    """
    coll = np.ascontiguousarray(collections, dtype=np.float64)
    dates = settings.period_dates.astype(np.float64)
    tau, tau_next = period_years(dates)
    kind, bal0, coupon, price = tranches.arrays()
    shape = (coll.shape[0], len(kind))
    out = {name: np.empty(shape) for name in ("loss", "wal", "irr", "default", "pv")}
    _waterfall_paths(coll, dates, tau, tau_next, kind, bal0, coupon, price,
                     *_settings_args(settings), out["loss"], out["wal"], out["irr"],
                     out["default"], out["pv"])
    return out


def deterministic_waterfall(collections: np.ndarray, tranches, settings):
    """The waterfall of one vector of period collections (currency; period k paid at month
    k x payment_months, the last entry being the final period, whatever legal_final_months).

    Returns (flows (n_periods, columns), column names, missed, arrears) as in
    :func:`run_waterfall`."""
    coll = np.ascontiguousarray(collections, dtype=np.float64)
    dates = np.arange(1, coll.shape[0] + 1) * float(settings.payment_months)
    tau, tau_next = period_years(dates)
    kind, bal0, coupon, price = tranches.arrays()
    flows = np.empty((coll.shape[0], N_FLOW + 3 * len(kind)))
    missed = np.empty(len(kind))
    arrears = np.empty(len(kind))
    run_waterfall(coll, tau, tau_next, kind, bal0, coupon, *_settings_args(settings), flows,
                  missed, arrears)
    return flows, flow_columns(tranches.names), missed, arrears
