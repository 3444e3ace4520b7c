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


def reference_waterfall(coll, tranches, settings, dates=None) -> dict:
    """Plain-Python waterfall (same rules as :mod:`npl_xl.engine.waterfall`) for one path.

    Returns dict with per tranche lists 'interest', 'principal', 'residual' (per period),
    and 'missed' (interest or fixed return due in some period not paid in full that period),
    'arrears', 'end_balance' per tranche.
    """
    dates = settings.period_dates if dates is None else np.asarray(dates, float)
    taus = np.diff(np.concatenate([[0.0], dates])) / 12.0
    K = len(coll)
    tr = list(tranches)
    bal = [t.balance for t in tr]
    arrears = [0.0] * len(tr)
    missed = [False] * len(tr)
    interest = [[0.0] * K for _ in tr]
    principal = [[0.0] * K for _ in tr]
    residual = [[0.0] * K for _ in tr]
    sub_total = sum(t.balance for t in tr if t.kind == 2)
    s = settings
    reserve, liquidity = s.initial_reserve, 0.0
    unpaid = {"tax": 0.0, "fixed": 0.0, "serv": 0.0}
    eod = False
    for k in range(K):
        c = coll[k]
        cash = c
        start = list(bal)
        live = any(b > 0 for b in start)
        liquidity_start = liquidity

        def senior_pay(due):
            nonlocal cash, reserve, liquidity
            a = min(cash, due); cash -= a
            b = min(reserve, due - a); reserve -= b
            d = min(s.liquidity_limit - liquidity, due - a - b); liquidity += d
            return a + b + d

        for item, due in (("tax", s.tax_rate * c), ("fixed", s.fixed_expenses if live else 0.0),
                          ("serv", s.servicer_fee_rate * c)):
            total = due + unpaid[item]
            unpaid[item] = total - senior_pay(total)
        repay = min(cash, liquidity_start); cash -= repay; liquidity -= repay
        tau = taus[k]
        tau_next = taus[k + 1] if k + 1 < K else 0.0
        for j, t in enumerate(tr):
            if t.kind == 0:
                due = start[j] * t.coupon * tau + arrears[j]
                paid = senior_pay(due)
                arrears[j] = due - paid
                interest[j][k] = paid
                if arrears[j] > 1e-9 * max(1.0, t.balance):
                    missed[j] = True
                    eod = True
        senior_start = sum(start[j] for j, t in enumerate(tr) if t.kind == 0)
        if eod or k == K - 1 or senior_start <= 0:
            target = 0.0
        else:
            target = s.reserve_multiple * ((s.tax_rate + s.servicer_fee_rate) * c + s.fixed_expenses
                                           + sum(start[j] * t.coupon * tau_next for j, t in enumerate(tr) if t.kind == 0))
        if reserve > target:
            cash += reserve - target; reserve = target
        else:
            top = min(cash, target - reserve); reserve += top; cash -= top
        for j, t in enumerate(tr):
            if t.kind == 0:
                p = min(cash, bal[j]); bal[j] -= p; cash -= p; principal[j][k] = p
        if sum(bal[j] for j, t in enumerate(tr) if t.kind == 0) <= 0:
            cash += reserve; reserve = 0.0
        for j, t in enumerate(tr):
            if t.kind == 1:
                due = start[j] * t.coupon * tau + arrears[j]
                paid = min(cash, due); cash -= paid; arrears[j] = due - paid; interest[j][k] = paid
                missed[j] = missed[j] or arrears[j] > 1e-9 * max(1.0, t.balance)
                p = min(cash, bal[j]); bal[j] -= p; cash -= p; principal[j][k] = p
        for j, t in enumerate(tr):
            if t.kind == 2:
                p = min(cash, bal[j]); bal[j] -= p; cash -= p; principal[j][k] = p
        for j, t in enumerate(tr):
            if t.kind == 2:
                due = start[j] * s.sub_return_rate * tau + arrears[j]
                paid = min(cash, due); cash -= paid; arrears[j] = due - paid; interest[j][k] = paid
                missed[j] = missed[j] or arrears[j] > 1e-9 * max(1.0, t.balance)
        cash -= s.excess_fee_share * cash
        for j, t in enumerate(tr):
            if t.kind == 2:
                residual[j][k] = cash * t.balance / sub_total
    return {"interest": interest, "principal": principal, "residual": residual,
            "missed": missed, "arrears": arrears, "end_balance": bal}


def reference_metrics(coll, tranches, settings) -> dict:
    """Per tranche loss, WAL, IRR, default for one path, by the contract's definitions
    (loss from the PV of interest and principal; the IRR on every payment, residual included)."""
    dates = settings.period_dates
    flows = reference_waterfall(coll, tranches, settings)
    years = dates / 12.0
    taus = np.diff(np.concatenate([[0.0], dates])) / 12.0
    out = {"loss": [], "wal": [], "irr": [], "default": []}
    for j, t in enumerate(tranches):
        promised = np.array(flows["interest"][j]) + np.array(flows["principal"][j])
        cash = promised + np.array(flows["residual"][j])
        prin = np.array(flows["principal"][j])
        discount = np.cumprod(1.0 / (1.0 + t.coupon * taus))
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
