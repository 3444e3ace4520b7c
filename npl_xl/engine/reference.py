"""A slow, plain numpy/scipy implementation of the same model, to check the kernels.

Same Philox draws as the kernels (:mod:`npl_xl.rng` counters, streams and pairing), but
the normal quantile is scipy's ``ndtri``, the Beta quantile is ``scipy.special.betaincinv``
per draw (no tables), and the waterfall is written again as straightforward Python. Used by
tests/test_engine_reference.py on small pools and by benchmarks/engine_bench.py as the
"straightforward numpy/scipy implementation" the kernels are compared with.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from scipy import optimize, special

from npl_xl import rng
from npl_xl.inputs.deal import KIND_MEZZANINE, KIND_SENIOR, KIND_SUBORDINATED

__all__ = ["philox_uniforms", "reference_collections", "reference_waterfall",
           "reference_metrics"]


@nb.njit(cache=True)
def _uniforms(k0, k1, stream, counters, columns, out):
    for a in range(counters.shape[0]):
        for b in range(columns.shape[0]):
            u0, u1 = rng.uniform_pair(k0, k1, stream, counters[a], columns[b])
            out[a, b, 0] = u0
            out[a, b, 1] = u1


def philox_uniforms(seed: int, stream: int, counters, columns) -> np.ndarray:
    """The two Philox uniforms of counter (i, j, stream) for every i in counters and j in
    columns: array (len(counters), len(columns), 2)."""
    k0, k1 = rng.seed_key(seed)
    counters = np.asarray(counters, dtype=np.int64)
    columns = np.asarray(columns, dtype=np.int64)
    out = np.empty((counters.shape[0], columns.shape[0], 2))
    _uniforms(k0, k1, stream, counters, columns, out)
    return out


def reference_collections(pool, settings, n_paths: int | None = None, first_path: int = 0,
                          n_total: int | None = None) -> np.ndarray:
    """Collections (n_paths, n_periods) by scipy, draw by draw, for paths first_path ..."""
    from npl_xl.engine.simulate import n_paths_for

    n_total = n_paths_for(settings) if n_total is None else n_total
    n_paths = n_total if n_paths is None else n_paths
    anti = settings.variance_reduction
    seed = settings.seed
    loans = np.arange(pool.n_loans)
    regions = np.arange(pool.n_regions)
    dates = settings.period_dates
    out = np.zeros((n_paths, len(dates)))
    random = pool.alpha > 0
    w = settings.region_weight
    for p in range(n_paths):
        gp = first_path + p
        counter = gp // 2 if anti else gp
        sign = -1.0 if (anti and gp % 2) else 1.0
        u_sys = philox_uniforms(seed, rng.STREAM_SYSTEMATIC, [counter], [0])[0, 0, 0]
        national = special.ndtri((counter + u_sys) / (n_total // 2)) if anti else special.ndtri(u_sys)
        if w < 1.0:
            u_reg = philox_uniforms(seed, rng.STREAM_REGIONAL, [counter], regions)[0, :, 0]
            m_region = math.sqrt(w) * national + math.sqrt(1.0 - w) * special.ndtri(u_reg)
        else:
            m_region = np.full(pool.n_regions, national)
        m = m_region[pool.region_id]
        u = philox_uniforms(seed, rng.STREAM_IDIOSYNCRATIC, [counter], loans)[0]
        eps = sign * special.ndtri(u[:, 0])
        z = math.sqrt(settings.rho) * m + math.sqrt(1.0 - settings.rho) * eps
        rate = pool.mean.copy()
        rate[random] = special.betaincinv(pool.alpha[random], pool.beta[random],
                                          special.ndtr(z[random]))
        if settings.cap_at_expected:
            rate = np.minimum(rate, pool.mean)
        eta = sign * special.ndtri(u[:, 1]) * settings.timing_sd_months if settings.timing_sd_months > 0 else 0.0
        months = np.maximum(0.0, pool.expected_months * np.exp(settings.timing_stress * np.maximum(0.0, -m)) + eta)
        for i in range(pool.n_loans):
            if pool.claim[i] == 0 or months[i] > settings.legal_final_months:
                continue
            k = min(max(math.ceil(months[i] / settings.payment_months), 1), len(dates))
            out[p, k - 1] += pool.claim[i] * rate[i]
    return out


def _groups(tranches):
    """Runs of adjacent tranches with the same pari_group label (None: alone)."""
    groups = []
    for j, t in enumerate(tranches):
        if groups and t.pari_group is not None and tranches[groups[-1][0]].pari_group == t.pari_group:
            groups[-1].append(j)
        else:
            groups.append([j])
    return groups


def _allocate(amount, members, bal, pro_rata):
    """Principal per member of a group for ``amount`` (sequential or pro rata to balance)."""
    out = {}
    total = sum(bal[j] for j in members)
    if pro_rata and amount < total:
        for j in members:
            out[j] = amount * bal[j] / total
        return out
    for j in members:
        out[j] = min(amount, bal[j])
        amount -= out[j]
    return out


def reference_waterfall(coll, tranches, settings, dates=None, forecast=None, taxable=None,
                        tax_forecast=None) -> dict:
    """Plain-Python waterfall (same rules as :mod:`npl_xl.engine.waterfall`) for one path.

    taxable, tax_forecast (currency per period): with settings.tax_base = interest, the
    amounts taxes are charged on and their forecast (default taxable itself); otherwise
    the collections and their forecast.

    The reserve target on the balances after principal is found by a root search
    (scipy's brentq on the senior principal) instead of the kernel's piecewise solution.
    Returns dict with per tranche lists 'interest', 'principal', 'residual' (per period),
    'missed' (interest or fixed return due in some period not paid in full that period),
    'arrears', 'end_balance' per tranche; per period lists 'reserve', 'liquidity',
    'write_off', 'eod', 'ccr_breached', 'mezz_subordinated', 'deferred_fee_paid',
    'servicer_fee_deferred', 'paid_out' (every payment out of the account, currency).
    """
    dates = settings.period_dates if dates is None else np.asarray(dates, float)
    taus = np.diff(np.concatenate([[0.0], dates])) / 12.0
    K = len(coll)
    forecast = list(coll) if forecast is None else list(forecast)
    on_interest = getattr(settings, "tax_base", "collections") == "interest"
    taxed = list(taxable) if on_interest else list(coll)
    tax_fc = (list(taxed) if tax_forecast is None else list(tax_forecast)) if on_interest \
        else forecast
    tr = list(tranches)
    groups = _groups(tr)
    senior_groups = [g for g in groups if tr[g[0]].kind == KIND_SENIOR]
    mezz_groups = [g for g in groups if tr[g[0]].kind == KIND_MEZZANINE]
    sub_groups = [g for g in groups if tr[g[0]].kind == KIND_SUBORDINATED]
    bal = [t.balance for t in tr]
    arrears = [0.0] * len(tr)
    missed = [False] * len(tr)
    interest = [[0.0] * K for _ in tr]
    principal = [[0.0] * K for _ in tr]
    residual = [[0.0] * K for _ in tr]
    sub_total = sum(t.balance for t in tr if t.kind == KIND_SUBORDINATED)
    s = settings
    mezz_before = s.mezz_interest == "before_senior_principal"
    reserve, liquidity, liq_interest = s.initial_reserve, 0.0, 0.0
    unpaid = {"tax": 0.0, "fixed": 0.0, "serv": 0.0}
    deferred = 0.0
    eod = False
    cum_c = cum_f = 0.0
    log = {key: [0.0] * K for key in ("reserve", "liquidity", "write_off", "eod", "ccr_breached",
                                      "mezz_subordinated", "deferred_fee_paid",
                                      "servicer_fee_deferred", "paid_out")}
    for k in range(K):
        c = coll[k]
        cash = c
        out = 0.0  # every payment out of the account this period
        start = list(bal)
        live = any(b > 0 for b in start)
        last = k == K - 1
        cum_c += c
        cum_f += forecast[k]
        breached = s.ccr_trigger > 0 and cum_f > 0 and cum_c / cum_f < s.ccr_trigger
        senior_start = sum(start[j] for j, t in enumerate(tr) if t.kind == KIND_SENIOR)
        liquidity_start = liquidity

        def senior_pay(due):
            nonlocal cash, reserve, liquidity
            a = min(cash, due); cash -= a
            b = min(reserve, due - a); reserve -= b
            d = min(s.liquidity_limit - liquidity, due - a - b); liquidity += d
            return a + b + d

        fee = s.servicer_fee_rate * c
        if breached and senior_start > 0:
            log["servicer_fee_deferred"][k] = s.deferred_fee_share * fee
            deferred += s.deferred_fee_share * fee
            fee -= s.deferred_fee_share * fee
        for item, due in (("tax", s.tax_rate * taxed[k]), ("fixed", s.fixed_expenses if live else 0.0),
                          ("serv", fee)):
            total = due + unpaid[item]
            paid = senior_pay(total)
            out += paid
            unpaid[item] = total - paid
        liq_interest += liquidity_start * s.liquidity_rate * taus[k]
        paid = min(cash, liq_interest); cash -= paid; liq_interest -= paid; out += paid
        repay = min(cash, liquidity_start); cash -= repay; liquidity -= repay; out += repay
        for g in senior_groups:
            dues = {j: start[j] * tr[j].coupon * taus[k] + arrears[j] for j in g}
            total = sum(dues.values())
            paid = senior_pay(total)
            for j in g:
                share = paid * dues[j] / total if total > 0 else 0.0
                arrears[j] = dues[j] - share
                interest[j][k] += share
                out += share
                if arrears[j] > 1e-9 * max(1.0, tr[j].balance):
                    missed[j] = True
                    eod = True
        mezz_sub = not mezz_before or breached or (s.eod_trigger and eod)
        log["mezz_subordinated"][k] = float(mezz_sub)

        def pay_deferrable(g, accrued):
            nonlocal cash, out
            dues = {j: accrued[j] + arrears[j] for j in g}
            total = sum(dues.values())
            if total <= 0:
                return
            paid = min(cash, total); cash -= paid; out += paid
            for j in g:
                share = paid * dues[j] / total
                arrears[j] = dues[j] - share
                interest[j][k] += share
                missed[j] = missed[j] or arrears[j] > 1e-9 * max(1.0, tr[j].balance)

        mezz_accrued = {j: start[j] * t.coupon * taus[k] for j, t in enumerate(tr) if t.kind == KIND_MEZZANINE}
        if not mezz_sub:
            for g in mezz_groups:
                pay_deferrable(g, mezz_accrued)
            mezz_accrued = {j: 0.0 for j in mezz_accrued}

        def pay_senior_principal(amount):
            """Allocate ``amount`` of senior principal group by group; returns the left-over."""
            for g in senior_groups:
                part = _allocate(amount, g, bal, tr[g[0]].pro_rata)
                for j, x in part.items():
                    bal[j] -= x; principal[j][k] += x; amount -= x
            return amount

        available = cash + reserve
        if eod or last or senior_start <= 0 or available >= senior_start:
            available = pay_senior_principal(available)
            target = 0.0
        else:
            if on_interest:
                base = s.reserve_multiple * (s.tax_rate * tax_fc[k + 1]
                                             + s.servicer_fee_rate * forecast[k + 1]
                                             + s.fixed_expenses)
            else:
                base = s.reserve_multiple * ((s.tax_rate + s.servicer_fee_rate) * forecast[k + 1]
                                             + s.fixed_expenses)

            def target_after(amount):
                trial = list(bal)
                for g in senior_groups:
                    part = _allocate(amount, g, trial, tr[g[0]].pro_rata)
                    for j, x in part.items():
                        trial[j] -= x; amount -= x
                return base + s.reserve_multiple * taus[k + 1] * sum(
                    tr[j].coupon * trial[j] for g in senior_groups for j in g)

            def gap(amount):
                return amount + target_after(amount) - available

            if gap(0.0) >= 0:
                amount = 0.0
            else:
                amount = optimize.brentq(gap, 0.0, available, xtol=1e-13, rtol=1e-15)
            available -= amount - pay_senior_principal(amount)
            target = target_after(0.0)
            if sum(bal[j] for g in senior_groups for j in g) <= 0:
                target = 0.0
            else:
                target = max(target, available)  # all to the reserve while a senior is left
        reserve = min(available, target)
        cash = available - reserve
        out += sum(principal[j][k] for g in senior_groups for j in g)
        if sum(bal[j] for g in senior_groups for j in g) <= 0:
            cash += reserve; reserve = 0.0
            paid = min(cash, deferred); cash -= paid; deferred -= paid; out += paid
            log["deferred_fee_paid"][k] = paid
        for g in mezz_groups:
            pay_deferrable(g, mezz_accrued)
            part = _allocate(cash, g, bal, tr[g[0]].pro_rata)
            for j, x in part.items():
                bal[j] -= x; principal[j][k] += x; cash -= x; out += x
        for g in sub_groups:
            part = _allocate(cash, g, bal, tr[g[0]].pro_rata)
            for j, x in part.items():
                bal[j] -= x; principal[j][k] += x; cash -= x; out += x
        sub_accrued = {j: start[j] * s.sub_return_rate * taus[k] for j, t in enumerate(tr) if t.kind == KIND_SUBORDINATED}
        for g in sub_groups:
            pay_deferrable(g, sub_accrued)
        if last:
            paid = min(cash, liq_interest + liquidity); cash -= paid; out += paid
            log["write_off"][k] = liq_interest + liquidity - paid
            liquidity = liq_interest = 0.0
        fee = s.excess_fee_share * cash
        cash -= fee
        out += fee + cash  # excess fee and the residual
        for j, t in enumerate(tr):
            if t.kind == KIND_SUBORDINATED:
                residual[j][k] = cash * t.balance / sub_total
        log["reserve"][k] = reserve
        log["liquidity"][k] = liquidity
        log["eod"][k] = float(eod)
        log["ccr_breached"][k] = float(breached)
        log["paid_out"][k] = out
    return {"interest": interest, "principal": principal, "residual": residual,
            "missed": missed, "arrears": arrears, "end_balance": bal, **log}


def reference_metrics(coll, tranches, settings, forecast=None) -> dict:
    """Per tranche loss, WAL, IRR, default for one path, by the contract's definitions
    (loss from the PV of interest and principal; the IRR on every payment, residual included)."""
    dates = settings.period_dates
    flows = reference_waterfall(coll, tranches, settings, forecast=forecast)
    years = dates / 12.0
    taus = np.diff(np.concatenate([[0.0], dates])) / 12.0
    out = {"loss": [], "wal": [], "irr": [], "default": []}
    for j, t in enumerate(tranches):
        promised = np.array(flows["interest"][j]) + np.array(flows["principal"][j])
        cash = promised + np.array(flows["residual"][j])
        prin = np.array(flows["principal"][j])
        discount = np.cumprod(1.0 / (1.0 + t.discount_rate(settings.sub_return_rate) * taus))
        out["loss"].append(max(0.0, 1.0 - float(promised @ discount) / t.balance))
        out["wal"].append(float(years @ prin / prin.sum()) if prin.sum() > 0 else float("nan"))
        if cash.sum() <= 0:
            out["irr"].append(-1.0)
        else:
            f = lambda y: float(cash @ (1.0 + y) ** (-years)) - t.issue_price
            out["irr"].append(optimize.brentq(f, -0.999999, 100.0, xtol=1e-14))
        tol = 1e-9 * max(1.0, t.balance)
        out["default"].append(float(flows["missed"][j] or flows["end_balance"][j] > tol
                                    or flows["arrears"][j] > tol))
    return out
