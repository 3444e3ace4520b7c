"""The deal's priority of payments for one path, and each tranche's figures on that path.

Order per payment period (single collection account), from the period's collections C
(currency); F_k is the issuance forecast of period k's collections (the simulation's expected
collection curve; for a deterministic waterfall without a forecast, the collections given):

1. taxes = tax_rate x C (tax on gross collections: a conservative simplification of the
   trust's taxable income); with Settings tax_base = interest, tax_rate x X instead, X the
   period's taxable collections: each loan's recoveries above its principal (the collection
   kernel books them, :func:`npl_xl.engine.paths.collect`)
2. fixed senior expenses (fixed_expenses per period while any tranche is outstanding)
3. servicer base fee = servicer_fee_rate x C; while the CCR trigger is breached and a senior
   tranche is outstanding, deferred_fee_share of it is deferred (paid at step 7b)
4. liquidity facility: interest on the advances outstanding at the start of the period
   (liquidity_rate x period years), then repayment of those advances, from collections only
5. senior interest = coupon x period years x balance at the start of the period, plus arrears;
   senior groups in table order, tranches of one pari-passu group pro rata to interest due
   Shortfalls of 1, 2, 3 and 5 are covered from the reserve account, then by drawing the
   liquidity facility up to liquidity_limit; what is still unpaid is carried to the next
   period. A senior interest shortfall is an event of default (EoD).
5b. with mezz_interest = before_senior_principal and the mezzanine not subordinated this
   period (no CCR breach; no EoD when eod_trigger): mezzanine interest (deferrable)
6+7. reserve and senior principal: target reserve = reserve_multiple x (next period's taxes
   and servicer fee on the forecast F_k+1 (taxes on the taxable forecast X_k+1 with
   tax_base = interest), + fixed_expenses, + next period's senior interest
   on the senior balances after this period's principal); the cash and the reserve together
   pay senior principal (pass-through; groups in table order, a pari-passu group sequentially
   or pro rata to balance) up to what leaves the target in the reserve. The target is 0 in
   the last period, after an EoD and once the seniors are repaid (the reserve is released;
   cash and reserve together repay the seniors in full whenever they cover them).
   The reserve account starts at initial_reserve (funded at closing, default 0).
7b. once the seniors are repaid: the deferred servicer fees (still unpaid at the legal final,
    they are the servicer's loss; like unpaid taxes and fees they are not carried further)
8. mezzanine groups in table order: interest (coupon on the start-of-period balance plus
   arrears; deferrable: a shortfall is not an EoD, but it is a missed payment for the
   tranche's PD) then principal
9. subordinated principal, by group
10. subordinated fixed return = sub_return_rate x period years x start-of-period balance
    plus any unpaid return (deferrable; a shortfall is a missed payment, as in step 8)
10b. in the last period (legal final): the facility's outstanding interest and advances are
    repaid from what is left; what is still outstanding is written off (the liquidity
    provider's loss)
11. excess servicing fee = excess_fee_share x what remains
12. residual to the subordinated tranches, pro rata to their original balances

Triggers. EoD (always recorded): the reserve is released, and all cash after step 5 goes to
senior principal until the seniors are repaid, so nothing is left for steps 7b-12 (no excess
servicing fee) while a senior is outstanding; with eod_trigger the mezzanine interest of step
5b also moves after senior principal. CCR trigger (ccr_trigger > 0): CCR_k = cumulative
collections / cumulative forecast to period k, tested every payment date (curable); below
ccr_trigger the mezzanine interest moves after senior principal and deferred_fee_share of the
servicer fee is deferred. Each trigger's state per period is a column of the flows.

A subordinated tranche's PV and loss take its interest (the fixed return of step 10) and
principal, discounted at its coupon, or at sub_return_rate when the coupon cell is blank; the
residual of step 12 is neither, so it counts in the tranche's IRR only.

Tranche figures on a path (FUNCTIONS.md "Definitions of the tranche figures"):
PV of the interest and principal payments (not the residual) at the tranche's discount rate
compounded per payment period (period rate r x months/12);
loss = max(0, 1 - PV / B0); WAL = sum t principal_t / sum principal_t in years (NaN when
no principal is paid); default = interest (or the subordinated fixed return) due in some
period and not paid in full that period, or unpaid principal or deferred interest/return at
the legal final date (a deferred mezzanine interest or subordinated return is a miss though
not an EoD, and counts even when cured later);
IRR = the effective annual rate y with sum CF_t (1 + y)^(-t_years) = issue price, CF_t
every payment to the tranche, residual included (-1 when nothing is paid).

Python entry points (stable; used by the analyses): :func:`waterfall_paths` (every path's
tranche figures) and :func:`deterministic_waterfall` (one vector's full flows). Both take an
optional ``forecast``, ``initial_balances`` (tranche balances at the start, currency; default
the original balances) and ``initial_reserve`` (default the settings' initial_reserve).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from npl_xl.inputs.deal import KIND_MEZZANINE, KIND_SENIOR, KIND_SUBORDINATED

__all__ = ["FLOW_COLUMNS", "N_FLOW", "LEGACY_FLOW_COLUMNS", "flow_columns", "run_waterfall",
           "path_metrics", "waterfall_paths", "period_years", "irr_paths",
           "deterministic_waterfall", "waterfall_params", "yield_at_coupon_basis",
           "PARAM_NAMES"]

#: Per-period columns of the flow array before the tranche columns. The first twelve are
#: NPL_WATERFALL's original columns (kept in place there); the rest are appended after the
#: tranche columns by NPL_WATERFALL. Trigger states: event_of_default, ccr_breached,
#: mezz_subordinated (1 when mezzanine interest ranks after senior principal that period).
LEGACY_FLOW_COLUMNS = ("collections", "taxes", "fixed_expenses", "servicer_fee",
                       "liquidity_draw", "liquidity_repayment", "liquidity_balance",
                       "reserve_draw", "reserve_balance", "excess_servicing_fee", "residual",
                       "event_of_default")
FLOW_COLUMNS = LEGACY_FLOW_COLUMNS + (
    "liquidity_interest", "liquidity_write_off", "reserve_target", "servicer_fee_deferred",
    "deferred_fee_paid", "cumulative_collections", "cumulative_forecast", "ccr",
    "ccr_breached", "mezz_subordinated")
(C_COLL, C_TAX, C_FIXED, C_SERV, C_LIQ_DRAW, C_LIQ_REPAY, C_LIQ_BAL, C_RES_DRAW, C_RES_BAL,
 C_EXCESS, C_RESIDUAL, C_EOD, C_LIQ_INT, C_LIQ_WRITE_OFF, C_RES_TARGET, C_SERV_DEFERRED,
 C_DEFERRED_PAID, C_CUM_COLL, C_CUM_FORECAST, C_CCR, C_CCR_BREACHED,
 C_MEZZ_SUB) = range(len(FLOW_COLUMNS))
N_FLOW = len(FLOW_COLUMNS)
#: Columns per tranche after the fixed ones: interest, principal, balance (end of period).
TRANCHE_COLUMNS = ("interest", "principal", "balance")

#: The kernel's scalar parameters (one float64 array, see :func:`waterfall_params`).
PARAM_NAMES = ("tax_rate", "fixed_expenses", "servicer_fee_rate", "reserve_multiple",
               "liquidity_limit", "sub_return_rate", "excess_fee_share", "initial_reserve",
               "liquidity_rate", "mezz_before_senior_principal", "eod_trigger", "ccr_trigger",
               "deferred_fee_share", "tax_on_interest")
(P_TAX, P_FIXED, P_SERV, P_RES_MULT, P_LIQ_LIMIT, P_SUB_RATE, P_EXCESS, P_INIT_RESERVE,
 P_LIQ_RATE, P_MEZZ_BEFORE, P_EOD_TRIGGER, P_CCR_TRIGGER, P_DEFERRED_SHARE,
 P_TAX_INTEREST) = range(len(PARAM_NAMES))


def flow_columns(names) -> list[str]:
    """Column names of the flow array for tranches ``names``."""
    return list(FLOW_COLUMNS) + [f"{n}_{c}" for n in names for c in TRANCHE_COLUMNS]


def period_years(dates_months: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length of each payment period and of the next one, in years."""
    tau = np.diff(np.concatenate([[0.0], dates_months])) / 12.0
    tau_next = np.concatenate([tau[1:], [0.0]])
    return tau, tau_next


def waterfall_params(settings, initial_reserve: float | None = None) -> np.ndarray:
    """The kernel's scalar parameters from :class:`~npl_xl.inputs.deal.DealSettings`, in the
    order of :data:`PARAM_NAMES` (rates decimal, amounts currency, flags 0/1)."""
    values = {name: getattr(settings, name, 0.0) for name in PARAM_NAMES}
    values["mezz_before_senior_principal"] = float(settings.mezz_interest == "before_senior_principal")
    values["eod_trigger"] = float(settings.eod_trigger)
    values["tax_on_interest"] = float(getattr(settings, "tax_base", "collections") == "interest")
    if initial_reserve is not None:
        values["initial_reserve"] = float(initial_reserve)
    return np.array([float(values[name]) for name in PARAM_NAMES], dtype=np.float64)


@nb.njit(cache=True, inline="always")
def _pay(due, cash, reserve, headroom):
    """Pay ``due`` from cash, then the reserve, then the liquidity headroom.
    Returns (paid, cash, reserve, from_reserve, drawn)."""
    from_cash = min(cash, due)
    rest = due - from_cash
    from_reserve = min(reserve, rest)
    rest -= from_reserve
    drawn = min(headroom, max(0.0, rest))
    return from_cash + from_reserve + drawn, cash - from_cash, reserve - from_reserve, from_reserve, drawn


@nb.njit(cache=True, inline="always")
def _group_end(group, j):
    """One past the last tranche of the pari-passu group whose first tranche is j."""
    end = j + 1
    while end < group.shape[0] and group[end] == j:
        end += 1
    return end


@nb.njit(cache=True)
def _pay_principal(cash, j0, j1, pro_rata, bal, row):
    """Repay the principal of group j0..j1-1 from cash (currency), sequentially or pro rata
    to balance; returns the cash left."""
    total = 0.0
    for j in range(j0, j1):
        total += bal[j]
    if total <= 0.0 or cash <= 0.0:
        return cash
    if pro_rata == 0 or cash >= total:
        for j in range(j0, j1):
            paid = min(cash, bal[j])
            bal[j] -= paid
            row[N_FLOW + 3 * j + 1] += paid
            cash -= paid
        return cash
    for j in range(j0, j1):
        paid = cash * bal[j] / total
        bal[j] -= paid
        row[N_FLOW + 3 * j + 1] += paid
    return 0.0


@nb.njit(cache=True)
def _pay_deferrable(cash, j0, j1, accrued, arrears, missed, bal0, row):
    """Pay the deferrable interest of group j0..j1-1 (``accrued[j]`` plus arrears) from cash
    only, pro rata to interest due; what is unpaid is deferred and marks a miss for the PD.
    Returns the cash left."""
    due_total = 0.0
    for j in range(j0, j1):
        due_total += accrued[j] + arrears[j]
    if due_total <= 0.0:
        return cash
    paid_total = min(cash, due_total)
    for j in range(j0, j1):
        due = accrued[j] + arrears[j]
        paid = paid_total * due / due_total
        arrears[j] = due - paid
        if arrears[j] > 1e-9 * max(1.0, bal0[j]):
            missed[j] = 1.0
        row[N_FLOW + 3 * j] += paid
    return cash - paid_total


@nb.njit(cache=True)
def run_waterfall(coll, forecast, taxable, tax_forecast, tau, tau_next, kind, group, pro_rata,
                  bal0, coupon, params, flows, missed, arrears):
    """One path's waterfall (module docstring for the order).

    coll, forecast: collections and their issuance forecast per period (currency); taxable,
    tax_forecast: the part of the collections taxes are charged on and its forecast
    (currency; coll and forecast themselves with tax_base = collections); tau,
    tau_next: period lengths in years; kind (KIND_*), group (index of the first tranche of
    the tranche's pari-passu group), pro_rata (0/1 per tranche), bal0 (balance at the start,
    currency), coupon (annual decimal) per tranche; params: :data:`PARAM_NAMES`. Writes
    ``flows`` (n_periods, N_FLOW + 3 n_tranches), ``missed`` (1 if in some period the
    tranche's interest, or the subordinated fixed return, due was not paid in full, else 0)
    and ``arrears`` (unpaid interest or return at the end, currency) per tranche."""
    n_periods = coll.shape[0]
    n_tr = kind.shape[0]
    tax_rate = params[P_TAX]
    fixed_expenses = params[P_FIXED]
    servicer_rate = params[P_SERV]
    reserve_multiple = params[P_RES_MULT]
    liquidity_limit = params[P_LIQ_LIMIT]
    sub_rate = params[P_SUB_RATE]
    excess_share = params[P_EXCESS]
    liquidity_rate = params[P_LIQ_RATE]
    mezz_before = params[P_MEZZ_BEFORE] > 0.0
    eod_trigger = params[P_EOD_TRIGGER] > 0.0
    ccr_trigger = params[P_CCR_TRIGGER]
    deferred_share = params[P_DEFERRED_SHARE]
    tax_on_interest = params[P_TAX_INTEREST] > 0.0
    flows[:, :] = 0.0
    bal = bal0.copy()
    start = bal0.copy()
    accrued = np.zeros(n_tr)
    for j in range(n_tr):
        missed[j] = 0.0
        arrears[j] = 0.0
    reserve = params[P_INIT_RESERVE]
    liquidity = 0.0
    liquidity_interest_due = 0.0
    unpaid_tax = 0.0
    unpaid_fixed = 0.0
    unpaid_serv = 0.0
    deferred_fees = 0.0
    cum_coll = 0.0
    cum_forecast = 0.0
    eod = False
    for k in range(n_periods):
        row = flows[k]
        c = coll[k]
        cash = c
        live = False
        senior_start = 0.0
        for j in range(n_tr):
            start[j] = bal[j]
            if bal[j] > 0.0:
                live = True
            if kind[j] == KIND_SENIOR:
                senior_start += bal[j]
        last = k == n_periods - 1
        cum_coll += c
        cum_forecast += forecast[k]
        # the very ratio the table shows (C_CCR) against the trigger: cum_coll < trigger x
        # cum_forecast rounds differently on the boundary (a shown CCR of 0.7999999999999999
        # under a 0.8 trigger was not a breach)
        ccr_breached = (ccr_trigger > 0.0 and cum_forecast > 0.0
                        and cum_coll / cum_forecast < ccr_trigger)
        liquidity_start = liquidity
        reserve_drawn = 0.0
        liquidity_drawn = 0.0
        # 1-3 taxes, fixed expenses, servicer base fee (part of it deferred under a CCR breach)
        due = tax_rate * taxable[k] + unpaid_tax
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
        fee = servicer_rate * c
        if ccr_breached and senior_start > 0.0:
            deferred_now = deferred_share * fee
            fee -= deferred_now
            deferred_fees += deferred_now
            row[C_SERV_DEFERRED] = deferred_now
        due = fee + unpaid_serv
        paid, cash, reserve, fr, dr = _pay(due, cash, reserve, liquidity_limit - liquidity)
        reserve_drawn += fr
        liquidity_drawn += dr
        liquidity += dr
        unpaid_serv = due - paid
        row[C_SERV] = paid
        # 4 the facility's interest on advances outstanding at the start, then their repayment
        liquidity_interest_due += liquidity_start * liquidity_rate * tau[k]
        paid = min(cash, liquidity_interest_due)
        cash -= paid
        liquidity_interest_due -= paid
        row[C_LIQ_INT] = paid
        repay = min(cash, liquidity_start)
        cash -= repay
        liquidity -= repay
        row[C_LIQ_REPAY] = repay
        # 5 senior interest, group by group, pro rata to interest due within a group
        for j in range(n_tr):
            if kind[j] != KIND_SENIOR or group[j] != j:
                continue
            j1 = _group_end(group, j)
            due = 0.0
            for m in range(j, j1):
                due += start[m] * coupon[m] * tau[k] + arrears[m]
            paid, cash, reserve, fr, dr = _pay(due, cash, reserve, liquidity_limit - liquidity)
            reserve_drawn += fr
            liquidity_drawn += dr
            liquidity += dr
            for m in range(j, j1):
                due_m = start[m] * coupon[m] * tau[k] + arrears[m]
                paid_m = paid * due_m / due if due > 0.0 else 0.0
                arrears[m] = due_m - paid_m
                if arrears[m] > 1e-9 * max(1.0, bal0[m]):
                    missed[m] = 1.0
                    eod = True
                row[N_FLOW + 3 * m] = paid_m
        # 5b mezzanine interest before senior principal, unless subordinated this period
        mezz_sub = (not mezz_before) or ccr_breached or (eod_trigger and eod)
        for j in range(n_tr):
            accrued[j] = start[j] * coupon[j] * tau[k] if kind[j] == KIND_MEZZANINE else 0.0
        if not mezz_sub:
            for j in range(n_tr):
                if kind[j] == KIND_MEZZANINE and group[j] == j:
                    cash = _pay_deferrable(cash, j, _group_end(group, j), accrued, arrears,
                                           missed, bal0, row)
            for j in range(n_tr):
                accrued[j] = 0.0  # paid or deferred; step 8 pays only arrears
        # 6+7 reserve target on the balances after this period's principal, senior principal
        available = cash + reserve
        if eod or last or senior_start <= 0.0 or available >= senior_start:
            target = 0.0
            for j in range(n_tr):
                if kind[j] == KIND_SENIOR and group[j] == j:
                    available = _pay_principal(available, j, _group_end(group, j),
                                               pro_rata[j], bal, row)
        else:
            next_forecast = forecast[k + 1]
            if tax_on_interest:
                base = reserve_multiple * (tax_rate * tax_forecast[k + 1]
                                           + servicer_rate * next_forecast + fixed_expenses)
            else:
                base = reserve_multiple * ((tax_rate + servicer_rate) * next_forecast
                                           + fixed_expenses)
            slope = reserve_multiple * tau_next[k]
            free = 1.0
            for j in range(n_tr):
                if kind[j] != KIND_SENIOR or group[j] != j:
                    continue
                j1 = _group_end(group, j)
                m0 = j
                while m0 < j1:
                    # the block paid next: the whole group pro rata, or its next tranche
                    m1 = j1 if pro_rata[j] != 0 else m0 + 1
                    target = base
                    for m in range(n_tr):
                        if kind[m] == KIND_SENIOR:
                            target += slope * coupon[m] * bal[m]
                    free = available - target
                    block = 0.0
                    block_coupon = 0.0
                    for m in range(m0, m1):
                        block += bal[m]
                        block_coupon += coupon[m] * bal[m]
                    if free <= 0.0:
                        break
                    if block > 0.0:
                        # paying x lowers the target by slope x coupon x x: pay x with
                        # x = free + slope x block coupon x x (all of it if that never binds)
                        s = slope * block_coupon / block
                        x = min(block, free / (1.0 - s)) if s < 1.0 else block
                        x = min(x, available)
                        left = _pay_principal(x, m0, m1, pro_rata[j], bal, row)
                        available -= x - left
                    m0 = m1
                if free <= 0.0:
                    break
            target = base
            senior_left = 0.0
            for m in range(n_tr):
                if kind[m] == KIND_SENIOR:
                    target += slope * coupon[m] * bal[m]
                    senior_left += bal[m]
            if senior_left <= 0.0:
                target = 0.0
            else:
                # a senior is still outstanding: the reserve holds the target or, short of
                # it, everything (not the rounding residue of the solve as cash for step 8)
                target = max(target, available)
        reserve = min(available, target)
        cash = available - reserve
        row[C_RES_TARGET] = target
        senior_left = 0.0
        for j in range(n_tr):
            if kind[j] == KIND_SENIOR:
                senior_left += bal[j]
        if senior_left <= 0.0:
            cash += reserve
            reserve = 0.0
            # 7b the deferred servicer fees, once the seniors are repaid
            paid = min(cash, deferred_fees)
            cash -= paid
            deferred_fees -= paid
            row[C_DEFERRED_PAID] = paid
        # 8 mezzanine groups: interest (arrears only when paid at 5b) then principal
        for j in range(n_tr):
            if kind[j] != KIND_MEZZANINE or group[j] != j:
                continue
            j1 = _group_end(group, j)
            cash = _pay_deferrable(cash, j, j1, accrued, arrears, missed, bal0, row)
            cash = _pay_principal(cash, j, j1, pro_rata[j], bal, row)
        # 9 subordinated principal, 10 subordinated fixed return
        for j in range(n_tr):
            if kind[j] == KIND_SUBORDINATED and group[j] == j:
                cash = _pay_principal(cash, j, _group_end(group, j), pro_rata[j], bal, row)
        for j in range(n_tr):
            accrued[j] = start[j] * sub_rate * tau[k] if kind[j] == KIND_SUBORDINATED else 0.0
        for j in range(n_tr):
            if kind[j] == KIND_SUBORDINATED and group[j] == j:
                cash = _pay_deferrable(cash, j, _group_end(group, j), accrued, arrears, missed,
                                       bal0, row)
        # 10b legal final: repay the facility from what is left, write off the rest
        if last:
            paid = min(cash, liquidity_interest_due)
            cash -= paid
            liquidity_interest_due -= paid
            row[C_LIQ_INT] += paid
            repay = min(cash, liquidity)
            cash -= repay
            liquidity -= repay
            row[C_LIQ_REPAY] += repay
            row[C_LIQ_WRITE_OFF] = liquidity + liquidity_interest_due
            liquidity = 0.0
            liquidity_interest_due = 0.0
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
        row[C_CUM_COLL] = cum_coll
        row[C_CUM_FORECAST] = cum_forecast
        row[C_CCR] = cum_coll / cum_forecast if cum_forecast > 0.0 else np.nan
        row[C_CCR_BREACHED] = 1.0 if ccr_breached else 0.0
        row[C_MEZZ_SUB] = 1.0 if mezz_sub else 0.0
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


def yield_at_coupon_basis(irr, payment_months: float):
    """The annual rate compounded every ``payment_months`` (the coupon's basis: period rate
    = rate x months/12) equivalent to an effective annual ``irr`` (decimals):
    ((1 + irr)^(months/12) - 1) x 12/months. A par tranche paid as promised yields its coupon."""
    fraction = float(payment_months) / 12.0
    with np.errstate(divide="ignore"):  # IRR -1 (nothing paid): log1p is -inf, the yield -12/months
        return np.expm1(np.log1p(np.asarray(irr, dtype=np.float64)) * fraction) / fraction


@nb.njit(cache=True)
def path_metrics(flows, dates, kind, bal0, disc, price, missed, arrears, loss, wal, irr,
                 default, pv):
    """Per tranche on one path: loss (decimal), WAL (years, NaN if no principal), IRR
    (effective annual, on all payments including a subordinated tranche's residual share),
    default (0/1), PV (currency, interest and principal only, at the annual rate ``disc``
    compounded per period). Outputs are rows of length n_tranches."""
    n_periods = flows.shape[0]
    n_tr = kind.shape[0]
    sub_total = 0.0
    for j in range(n_tr):
        if kind[j] == KIND_SUBORDINATED:
            sub_total += bal0[j]
    years = dates / 12.0
    cash = np.empty(n_periods)
    for j in range(n_tr):
        share = bal0[j] / sub_total if kind[j] == KIND_SUBORDINATED else 0.0
        df = 1.0
        value = 0.0
        t_prin = 0.0
        prin = 0.0
        prev = 0.0
        for k in range(n_periods):
            df /= 1.0 + disc[j] * (dates[k] - prev) / 12.0
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
def _waterfall_paths(coll, forecast, taxable, tax_forecast, dates, tau, tau_next, kind, group,
                     pro_rata, bal0, coupon, disc, price, params, loss, wal, irr, default, pv,
                     liquidity_loss):
    n_paths, n_periods = coll.shape
    n_tr = kind.shape[0]
    chunk = 256
    n_chunks = (n_paths + chunk - 1) // chunk
    for s in nb.prange(n_chunks):
        flows = np.empty((n_periods, N_FLOW + 3 * n_tr))
        missed = np.empty(n_tr)
        arrears = np.empty(n_tr)
        for p in range(s * chunk, min(n_paths, (s + 1) * chunk)):
            run_waterfall(coll[p], forecast, taxable[p], tax_forecast, tau, tau_next, kind,
                          group, pro_rata, bal0, coupon, params, flows, missed, arrears)
            path_metrics(flows, dates, kind, bal0, disc, price, missed, arrears, loss[p],
                         wal[p], irr[p], default[p], pv[p])
            liquidity_loss[p] = flows[n_periods - 1, C_LIQ_WRITE_OFF]


def _tranche_inputs(tranches, settings, initial_balances):
    kind, bal0, coupon, price = tranches.arrays()
    group, pro_rata = tranches.groups()
    if initial_balances is not None:
        bal0 = np.ascontiguousarray(initial_balances, dtype=np.float64)
        if bal0.shape != coupon.shape or np.any(bal0 < 0):
            raise ValueError("initial_balances must hold one balance >= 0 per tranche")
    disc = tranches.discount_rates(settings.sub_return_rate)
    return kind, group, pro_rata, bal0, coupon, disc, price


def _forecast(forecast, default, n_periods):
    if forecast is None:
        return np.ascontiguousarray(default, dtype=np.float64)
    forecast = np.ascontiguousarray(forecast, dtype=np.float64)
    if forecast.shape != (n_periods,):
        raise ValueError(f"forecast must hold one amount per period ({n_periods}), "
                         f"got shape {forecast.shape}")
    return forecast


def _tax_inputs(settings, coll, fc, taxable, tax_forecast, shape):
    """The taxed amounts and their forecast: the collections and their forecast with
    tax_base = collections; the given taxable amounts (checked) with tax_base = interest."""
    if getattr(settings, "tax_base", "collections") != "interest":
        return coll, fc
    if taxable is None:
        from npl_xl.errors import DomainError

        raise DomainError("interest taxes each loan's recoveries above its principal, which a "
                          "vector of pool collections does not show; this calculation supports "
                          "tax_base collections only (NPL_TRANCHE_EL and Run Simulation "
                          "support interest)", argument="tax_base")
    taxable = np.ascontiguousarray(taxable, dtype=np.float64)
    if taxable.shape != shape:
        raise ValueError(f"taxable must have the collections' shape {shape}, got {taxable.shape}")
    if tax_forecast is None:  # as the collections' forecast: the vector, or the paths' mean
        if taxable.ndim == 1:
            tax_forecast = taxable
        else:
            tax_forecast = taxable.mean(axis=0) if taxable.shape[0] else np.zeros(shape[-1])
    return taxable, _forecast(tax_forecast, None, shape[-1])


def waterfall_paths(collections: np.ndarray, tranches, settings, *, forecast=None,
                    initial_balances=None, initial_reserve=None, taxable=None,
                    tax_forecast=None) -> dict[str, np.ndarray]:
    """Run the waterfall on every path.

    Parameters
    ----------
    collections : array (n_paths, n_periods)
        Pool collections per path and payment period, currency.
    tranches : npl_xl.inputs.deal.Tranches
    settings : npl_xl.inputs.deal.DealSettings
    forecast : array (n_periods,), optional
        The issuance forecast of each period's collections (currency; the CCR trigger's
        denominator and the reserve target's next-period collections). Default: the mean of
        ``collections`` over the paths given (pass it explicitly when running paths in blocks).
    initial_balances : array (n_tranches,), optional
        Tranche balances at the start (currency); default the original balances.
    initial_reserve : float, optional
        Reserve account at the start (currency); default settings.initial_reserve.
    taxable, tax_forecast : arrays (n_paths, n_periods) and (n_periods,), optional
        With settings.tax_base = interest (required then): the taxable part of each path's
        collections (currency, each loan's recoveries above its principal) and its forecast
        (default: its mean over the paths given). Ignored with tax_base = collections.

    Returns
    -------
    dict of arrays (n_paths, n_tranches): loss, wal, irr, default, pv; and liquidity_loss
    (n_paths,): the facility's advances and interest written off at the legal final.
    """
    coll = np.ascontiguousarray(collections, dtype=np.float64)
    dates = settings.period_dates.astype(np.float64)
    tau, tau_next = period_years(dates)
    kind, group, pro_rata, bal0, coupon, disc, price = _tranche_inputs(tranches, settings,
                                                                      initial_balances)
    fc = _forecast(forecast, coll.mean(axis=0) if coll.shape[0] else np.zeros(coll.shape[1]),
                   coll.shape[1])
    tx, tx_fc = _tax_inputs(settings, coll, fc, taxable, tax_forecast, coll.shape)
    shape = (coll.shape[0], len(kind))
    out = {name: np.empty(shape) for name in ("loss", "wal", "irr", "default", "pv")}
    out["liquidity_loss"] = np.empty(coll.shape[0])
    _waterfall_paths(coll, fc, tx, tx_fc, dates, tau, tau_next, kind, group, pro_rata, bal0, coupon, disc,
                     price, waterfall_params(settings, initial_reserve), out["loss"],
                     out["wal"], out["irr"], out["default"], out["pv"], out["liquidity_loss"])
    return out


def deterministic_waterfall(collections: np.ndarray, tranches, settings, *, forecast=None,
                            initial_balances=None, initial_reserve=None, dates=None,
                            taxable=None, tax_forecast=None):
    """The waterfall of one vector of period collections (currency; period k paid at month
    k x payment_months, the last entry being the final period, whatever legal_final_months).
    ``forecast`` (default: the collections themselves), ``initial_balances`` and
    ``initial_reserve`` as in :func:`waterfall_paths`; ``dates`` (months after closing, one
    per period) replaces the every-payment_months dates (settings.period_dates reproduces a
    simulated path, whose last period ends at the legal final). ``taxable`` and
    ``tax_forecast`` (currency per period) as in :func:`waterfall_paths`, for one path.

    Returns (flows (n_periods, columns), column names, missed, arrears) as in
    :func:`run_waterfall`."""
    coll = np.ascontiguousarray(collections, dtype=np.float64)
    if dates is None:
        dates = np.arange(1, coll.shape[0] + 1) * float(settings.payment_months)
    dates = np.asarray(dates, dtype=np.float64)
    if dates.shape != coll.shape:
        raise ValueError("dates must hold one month per period")
    tau, tau_next = period_years(dates)
    kind, group, pro_rata, bal0, coupon, _, _ = _tranche_inputs(tranches, settings,
                                                               initial_balances)
    fc = _forecast(forecast, coll, coll.shape[0])
    tx, tx_fc = _tax_inputs(settings, coll, fc, taxable, tax_forecast, coll.shape)
    flows = np.empty((coll.shape[0], N_FLOW + 3 * len(kind)))
    missed = np.empty(len(kind))
    arrears = np.empty(len(kind))
    run_waterfall(coll, fc, tx, tx_fc, tau, tau_next, kind, group, pro_rata, bal0, coupon,
                  waterfall_params(settings, initial_reserve), flows, missed, arrears)
    return flows, flow_columns(tranches.names), missed, arrears
