"""A synthetic loan tape shaped like the published 16农盈1 pool ([ABC-16NY1], [CCXI-16NY1] in docs/SOURCES.md).

Published facts it reproduces by construction: 107.27亿 CNY of claims (未偿本息余额) over
1,199 corporate loans to 204 borrowers; Jiangsu + Zhejiang 79.82% of claims, the rest in
Shandong; 77.92% of claims secured, mainly by land use rights and buildings; 85% of claims
in litigation (any stage after not_filed).

Published facts it is *calibrated* to through the valuation model (npl_xl.model.loans.value_tape
with the packaged assumptions): expected recovery 37.90% of claims (中诚信 40.65亿) — the
appraisal level of the collateral is solved for by bisection — and 79.71% of expected
recoveries within three years (32.41亿 of 40.65亿) — the incidence of slow legal defects
(bankruptcy, criminal, waiting seizure) is solved for by bisection.

Everything random comes from ``numpy.random.default_rng(SEED)``, drawn in a fixed order,
so the same script gives the same tape on every machine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# --- knobs ----------------------------------------------------------------------------
SEED = 20160729                   #: issue date of 16农盈1 (2016-07-29)
POOL_CLAIMS = 10_727_000_000.0    #: 107.27亿 CNY of claims
N_LOANS = 1199
N_BORROWERS = 204
BORROWER_SIZE_SIGMA = 0.8         #: log-sd of borrower size (claims)
LOAN_SIZE_SIGMA = 0.7             #: log-sd of loan size within a borrower
PROVINCE_SHARES = {"Jiangsu": 0.4300, "Zhejiang": 0.3682, "Shandong": 0.2018}  #: JS+ZJ 79.82%
SECURED_SHARE = 0.7792            #: secured share of claims
#: collateral mix of the secured claims: land use rights and buildings dominate
COLLATERAL_MIX = {"industrial": 0.40, "commercial": 0.27, "land": 0.23, "residential": 0.10}
LITIGATION_SHARE = 0.85           #: share of claims past not_filed (诉讼率 85%)
#: stage mix of the litigated claims
STAGE_MIX = {"filed": 0.22, "judgment": 0.18, "enforcement": 0.22, "appraisal": 0.14,
             "auction_1": 0.12, "auction_2": 0.07, "sale": 0.05}
APPRAISAL_SIGMA = 0.45            #: log-sd of appraisal / claim across secured loans
SECOND_LIEN_SHARE = 0.08          #: secured loans behind a prior lender
UNSECURED_RECOVERY = (0.06, 0.05)  #: mean and sd of (borrower + guarantor) / claim, unsecured
SECURED_GUARANTOR = 0.03          #: mean guarantor recovery / claim on secured loans
#: legal defects: borrower-level (bankruptcy, criminal case) and loan-level incidence
BORROWER_DEFECTS = {"bankruptcy": 0.20, "criminal": 0.08}
LOAN_DEFECTS = {"waiting_seizure": 0.15, "lease": 0.06, "debtor_missing": 0.03}
#: loans in a negotiated workout (restructuring / bankruptcy reorganisation payment plan)
#: carry an expected_months override drawn uniformly in this range (months); their share
#: of the loans is solved for so that 79.71% of expected recoveries fall within 36 months;
#: plans end by month 46 so that little is lost past the 60-month legal final
WORKOUT_MONTHS = (37.0, 46.0)
TARGET_RECOVERY = 0.3790          #: expected recovery / claims (中诚信: 40.65 / 107.27)
TARGET_THREE_YEAR_SHARE = 0.7971  #: expected recoveries within 36 months / all (32.41 / 40.65)
CITIES = {"Jiangsu": ["南京", "苏州", "无锡", "常州", "南通", "徐州", "扬州", "泰州"],
          "Zhejiang": ["杭州", "宁波", "温州", "绍兴", "台州", "金华", "嘉兴", "湖州"],
          "Shandong": ["济南", "青岛", "烟台", "潍坊", "临沂", "淄博"]}


def _allocate(total: float, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` in proportion to ``weights``, rounded to whole CNY, exact sum."""
    raw = total * weights / weights.sum()
    out = np.floor(raw)
    out[np.argsort(raw - out)[::-1][: int(round(total - out.sum()))]] += 1
    return out


def _pick_by_claims(rng, claims: np.ndarray, mix: dict, eligible: np.ndarray) -> np.ndarray:
    """Assign the keys of ``mix`` to eligible loans (random order) so that each key's share
    of the eligible claims is close to its weight."""
    out = np.full(claims.size, None, dtype=object)
    order = rng.permutation(np.flatnonzero(eligible))
    cumulative = np.cumsum(claims[order]) / claims[order].sum()
    edges = np.cumsum(list(mix.values()))
    keys = list(mix)
    for k, i in zip(np.searchsorted(edges, cumulative - 1e-12), order):
        out[i] = keys[min(k, len(keys) - 1)]
    _rebalance(out, claims, mix, eligible)
    return out


def _rebalance(assigned: np.ndarray, claims: np.ndarray, mix: dict, movable: np.ndarray) -> None:
    """Move single items between keys while that brings each key's share of the claims
    closer to its weight (borrower-level picks are coarse: a few borrowers are large)."""
    keys = list(mix)
    total = claims[movable].sum()
    for _ in range(500):
        share = np.array([claims[movable & (assigned == k)].sum() for k in keys]) / total
        gap = share - np.array([mix[k] for k in keys])
        over, under = int(np.argmax(gap)), int(np.argmin(gap))
        amount = min(gap[over], -gap[under]) * total
        candidates = np.flatnonzero(movable & (assigned == keys[over]))
        if not candidates.size:
            return
        best = candidates[np.argmin(np.abs(claims[candidates] - amount))]
        if claims[best] >= 2 * min(gap[over], -gap[under]) * total:
            return  # no move reduces the error
        assigned[best] = keys[under]


def raw_pool(seed: int = SEED) -> tuple[pd.DataFrame, dict]:
    """The tape before calibration: collateral values at appraisal/claim of median 1 and
    the random draws the calibration reuses (defect uniforms)."""
    rng = np.random.default_rng(seed)
    # borrowers: province by claims share, size heavy-tailed, 1-20+ loans each
    borrower_size = rng.lognormal(0.0, BORROWER_SIZE_SIGMA, N_BORROWERS)
    borrower_loans = 1 + rng.poisson(borrower_size / borrower_size.mean() * (N_LOANS / N_BORROWERS - 1))
    while borrower_loans.sum() != N_LOANS:  # adjust to exactly N_LOANS loans
        k = rng.integers(N_BORROWERS)
        step = 1 if borrower_loans.sum() < N_LOANS else -1
        if borrower_loans[k] + step >= 1:
            borrower_loans[k] += step
    borrower_of_loan = np.repeat(np.arange(N_BORROWERS), borrower_loans)
    loan_weight = (rng.lognormal(0.0, LOAN_SIZE_SIGMA, N_LOANS)
                   * (borrower_size / borrower_loans)[borrower_of_loan])
    claims = _allocate(POOL_CLAIMS, loan_weight)
    borrower_claims = np.bincount(borrower_of_loan, claims)
    provinces = _pick_by_claims(rng, borrower_claims, PROVINCE_SHARES, np.ones(N_BORROWERS, bool))
    province = provinces[borrower_of_loan]
    city = np.array([CITIES[p][rng.integers(len(CITIES[p]))] for p in provinces])[borrower_of_loan]

    secured = _pick_by_claims(rng, claims, {True: SECURED_SHARE, False: 1 - SECURED_SHARE},
                              np.ones(N_LOANS, bool)).astype(bool)
    collateral = np.where(secured, _pick_by_claims(rng, claims, COLLATERAL_MIX, secured), "none")
    litigated = _pick_by_claims(rng, claims, {True: LITIGATION_SHARE, False: 1 - LITIGATION_SHARE},
                                np.ones(N_LOANS, bool)).astype(bool)
    stage = np.where(litigated, _pick_by_claims(rng, claims, STAGE_MIX, litigated), "not_filed")
    appraisal_ratio = np.where(secured, rng.lognormal(-APPRAISAL_SIGMA ** 2 / 2, APPRAISAL_SIGMA, N_LOANS), 0.0)
    second_lien = secured & (rng.uniform(size=N_LOANS) < SECOND_LIEN_SHARE)
    prior_ratio = np.where(second_lien, rng.uniform(0.2, 0.6, N_LOANS), 0.0)
    m, s = UNSECURED_RECOVERY
    k = m * (1 - m) / s ** 2 - 1
    unsecured_rate = np.where(secured, 0.0, rng.beta(m * k, (1 - m) * k, N_LOANS))
    guarantor_rate = np.where(secured, rng.exponential(SECURED_GUARANTOR, N_LOANS).clip(0, 0.3), 0.0)
    split = rng.uniform(0.2, 0.8, N_LOANS)
    defects = [[] for _ in range(N_LOANS)]
    for name, rate in BORROWER_DEFECTS.items():
        hit = (rng.uniform(size=N_BORROWERS) < rate)[borrower_of_loan]
        for i in np.flatnonzero(hit):
            defects[i].append(name)
    for name, rate in LOAN_DEFECTS.items():
        hit = rng.uniform(size=N_LOANS) < rate
        if name == "lease":
            hit &= secured
        for i in np.flatnonzero(hit):
            defects[i].append(name)
    workout_u = rng.uniform(size=N_LOANS)
    workout_months = np.round(rng.uniform(*WORKOUT_MONTHS, N_LOANS), 0)
    tape = pd.DataFrame({
        "loan_id": [f"NY16-{i + 1:04d}" for i in range(N_LOANS)],
        "borrower": [f"B{b + 1:03d}" for b in borrower_of_loan],
        "province": province, "city": city, "claim": claims,
        "collateral_type": collateral,
        "lien_rank": np.where(second_lien, 2, 1),
        "stage": stage,
    })
    draws = {"appraisal_ratio": appraisal_ratio, "prior_ratio": prior_ratio,
             "unsecured_rate": unsecured_rate, "guarantor_rate": guarantor_rate, "split": split,
             "secured": secured, "workout_u": workout_u, "workout_months": workout_months}
    tape["defects"] = [",".join(d) for d in defects]
    return tape, draws


def finish(tape: pd.DataFrame, draws: dict, appraisal_scale: float, workout_rate: float) -> pd.DataFrame:
    """The tape with collateral values, recoveries and workout months for the two
    calibration knobs: appraisal / claim scale and the share of loans in a workout."""
    claims = tape["claim"].to_numpy(float)
    secured = draws["secured"]
    out = tape.copy()
    value = np.round(claims * draws["appraisal_ratio"] * appraisal_scale, -3)
    out["collateral_value"] = np.where(secured, value, np.nan)
    out["prior_claims"] = np.where(secured, np.round(value * draws["prior_ratio"], -3), 0.0)
    unsecured = np.round(claims * draws["unsecured_rate"], -2)
    out["borrower_recovery"] = np.round(unsecured * draws["split"], -2)
    out["guarantor_recovery"] = (unsecured - out["borrower_recovery"]
                                 + np.round(claims * draws["guarantor_rate"], -2))
    out["expected_months"] = np.where(draws["workout_u"] < workout_rate, draws["workout_months"], np.nan)
    return out[["loan_id", "borrower", "province", "city", "claim", "collateral_type",
                "collateral_value", "lien_rank", "prior_claims", "stage", "defects",
                "borrower_recovery", "guarantor_recovery", "expected_months"]]


def pool_figures(tape: pd.DataFrame) -> dict:
    """Expected recovery / claims and the share of expected recovery within 36 months,
    from the loan-by-loan valuation (undiscounted, as the agency reports them)."""
    from npl_xl.model.loans import value_tape
    from npl_xl.inputs.tape import read_tape

    rows = [list(tape.columns)] + tape.astype(object).where(tape.notna(), None).values.tolist()
    valued = value_tape(read_tape(rows))
    recovery = valued["expected_recovery"].to_numpy(float)
    months = valued["expected_months"].to_numpy(float)
    return {"recovery_rate": recovery.sum() / valued["claim"].sum(),
            "three_year_share": recovery[months <= 36].sum() / recovery.sum(),
            "expected_recovery": recovery.sum()}


def _bisect(f, lo: float, hi: float, target: float, increasing: bool, steps: int = 40) -> float:
    for _ in range(steps):
        mid = (lo + hi) / 2
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def calibrated_pool(seed: int = SEED) -> tuple[pd.DataFrame, dict]:
    """The calibrated tape and a record of the calibration (knob values and figures)."""
    tape, draws = raw_pool(seed)
    scale = _bisect(lambda s: pool_figures(finish(tape, draws, s, 0.0))["recovery_rate"],
                    0.05, 5.0, TARGET_RECOVERY, increasing=True, steps=30)
    # workout months do not change amounts, so the second knob leaves the first in place
    workout = _bisect(lambda w: pool_figures(finish(tape, draws, scale, w))["three_year_share"],
                      0.0, 1.0, TARGET_THREE_YEAR_SHARE, increasing=False, steps=20)
    final = finish(tape, draws, scale, workout)
    figures = pool_figures(final)
    figures.update({"appraisal_scale": scale, "workout_share_of_loans": workout, "seed": seed})
    return final, figures


if __name__ == "__main__":
    tape, figures = calibrated_pool()
    print(figures)
    print(tape.groupby("province")["claim"].sum() / tape["claim"].sum())
    print(tape.groupby("collateral_type")["claim"].sum() / tape["claim"].sum())
    print(tape.groupby("stage")["claim"].sum() / tape["claim"].sum())
