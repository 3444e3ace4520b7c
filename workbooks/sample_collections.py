"""A synthetic 24-month collection history for the sample deal, from one path of its own model.

The loans are valued with the packaged assumptions (npl_xl.model.loans.value_tape) and one
path is drawn with the engine's equations (one-factor Gaussian copula on the national
factor, Beta recovery rates by their quantile, recovery month max(0, m + timing_sd eta),
the timing stress of the Settings on the systematic factor): a loan whose month falls on or
before REPORT_MONTHS is collected then, in one receipt (or, for one loan in four, a partial
payment a few months earlier and the rest on its month), and marked resolved. numpy's
default_rng(SEED) draws everything; nothing here is a real collection.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

SEED = 20160729
REPORT_MONTHS = 24.0


def collection_history(valued: pd.DataFrame, settings, seed: int = SEED,
                       report_months: float = REPORT_MONTHS) -> pd.DataFrame:
    """Collections table rows (loan_id, month, amount, resolved) of one simulated path up to
    ``report_months`` (months after closing), in month order."""
    from npl_xl.engine.pool import pool_from_frame

    pool = pool_from_frame(valued)
    rng = np.random.default_rng(seed)
    n = pool.n_loans
    m_nat = rng.standard_normal()
    eps, eta = rng.standard_normal(n), rng.standard_normal(n)
    rho = settings.rho
    z = np.sqrt(rho) * m_nat + np.sqrt(1.0 - rho) * eps
    u = special.ndtr(z)
    random = pool.alpha > 0
    rate = np.where(random, special.betaincinv(np.where(random, pool.alpha, 1.0),
                                               np.where(random, pool.beta, 1.0), u), pool.mean)
    if settings.cap_at_expected:
        rate = np.minimum(rate, pool.mean)
    stress = np.exp(settings.timing_stress * max(0.0, -m_nat))
    month = np.maximum(0.0, pool.expected_months * stress + settings.timing_sd_months * eta)
    amount = rate * pool.claim
    due = (month <= report_months) & (amount > 0)
    rows = []
    partial = rng.random(n) < 0.25
    early = rng.uniform(1.0, 6.0, n)
    share = rng.uniform(0.2, 0.5, n)
    ids = valued["loan_id"].astype(str).to_numpy()
    for i in np.flatnonzero(due):
        m = round(float(month[i]), 2)
        x = round(float(amount[i]), 2)
        if partial[i] and m - early[i] > 0:
            first = round(x * share[i], 2)
            rows.append((ids[i], round(m - early[i], 2), first, False))
            rows.append((ids[i], m, round(x - first, 2), True))
        else:
            rows.append((ids[i], m, x, True))
    frame = pd.DataFrame(rows, columns=["loan_id", "month", "amount", "resolved"])
    return frame.sort_values(["month", "loan_id"], kind="stable").reset_index(drop=True)
