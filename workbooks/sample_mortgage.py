"""A synthetic personal residential-mortgage NPL pool (个人住房抵押不良贷款) of 15,000 loans.

Shaped by what China Bond Rating (中债资信) ABS team published about the 50 personal-mortgage
NPL ABS deals issued to 2021 (《证券化评级视角下个贷抵押类不良贷款回收影响因素分析》) and by the
建鑫 mortgage NPL ABS deals of China Construction Bank (deal pages on absbox.com.cn):

- residential property above 90 % of claims (pools with residential > 90 % recovered 60.70 %
  on average in that article); the rest commercial (商业用房);
- a national regional mix weighted to the large mortgage markets;
- weighted current LTV (当前抵押率 = claim ÷ appraisal) near 95 %: 2025 mortgage pre-sale
  reports show 83.6 %–106.2 %;
- legal defects named in the article: 预告抵押登记 (pre-registration only) on 25 % of the
  loans (the pre-sale reports: 23.6 %–26.5 % of properties without formal registration);
  唯一住房 (sole residence), 租赁 (lease) and 轮候查封 (waiting seizure) at the shares of
  DEFECT_SHARES below, which are assumptions (no published share was found);
- a senior/subordinated structure as in the 建鑫 mortgage deals: the senior about 50 % of the
  agency's expected recovery (17建鑫1 48.9–64.8 %, 20建鑫3 43.2–49.6 %, 21建鑫10 50.0–50.9 %,
  22建鑫9 46.3–52.6 %), the subordinated about 12 % (total issue 54–70 % of expected recovery).

Nothing is calibrated: the expected recovery and timing are what the packaged assumptions
give for this pool; docs/MODEL.md sets them beside the article's figures.

Everything random comes from ``numpy.random.default_rng(SEED)`` drawn in a fixed order, so
the script gives the same tape on every machine.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

# --- knobs ----------------------------------------------------------------------------
SEED = 20230630                    #: the pool's cut-off date
CUT_OFF = dt.date(2023, 6, 30)
N_LOANS = 15_000
CLAIM_MEDIAN = 280_000.0           #: 元; log-normal
CLAIM_SIGMA = 0.6
COMMERCIAL_SHARE_OF_LOANS = 0.05   #: 个人商用房 loans; larger, so about 7 % of claims
COMMERCIAL_SIZE = 1.5
LTV_MEDIAN, LTV_SIGMA = 0.98, 0.25  #: claim / appraisal, log-normal, clipped to [0.3, 2.5]
#: share of loans by province (national mortgage book, weighted to the large markets)
PROVINCE_SHARES = {
    "Guangdong": 0.12, "Jiangsu": 0.08, "Zhejiang": 0.06, "Shanghai": 0.03, "Beijing": 0.03,
    "Fujian": 0.06, "Shandong": 0.06, "Henan": 0.06, "Hubei": 0.05, "Sichuan": 0.06,
    "Hunan": 0.04, "Anhui": 0.04, "Hebei": 0.04, "Tianjin": 0.02, "Guangxi": 0.03,
    "Yunnan": 0.03, "Chongqing": 0.03, "Jiangxi": 0.02, "Liaoning": 0.04, "Jilin": 0.02,
    "Heilongjiang": 0.03, "Shaanxi": 0.02, "Xinjiang": 0.02, "Gansu": 0.01,
}
#: stage mix at cut-off (mortgage NPLs are mostly in litigation when pooled)
STAGE_MIX = {"not_filed": 0.22, "filed": 0.26, "judgment": 0.15, "enforcement": 0.15,
             "appraisal": 0.08, "auction_1": 0.07, "auction_2": 0.04, "sale": 0.03}
#: independent share of loans with each defect; pre_registration from the pre-sale reports,
#: the others assumptions
DEFECT_SHARES = {"pre_registration": 0.25, "sole_residence": 0.30, "lease": 0.08,
                 "waiting_seizure": 0.10}
APPRAISAL_AGE_YEARS = (0.0, 4.0)   #: appraisal dates uniform over this many years before cut-off
#: tranches as shares of the pool's valued expected recovery (建鑫 mortgage deals)
SENIOR_SHARE_OF_RECOVERY, SUB_SHARE_OF_RECOVERY = 0.50, 0.12
SENIOR_COUPON = 0.030
SETTINGS = {"fixed_expenses": 500_000, "servicer_fee_rate": 0.005, "reserve_multiple": 1.5,
            "cut_off_date": CUT_OFF}

#: The article's figures the pool is set beside (docs/MODEL.md).
PUBLISHED = {
    "recovery_residential_over_90pct": 0.6070,   # 居住用房占比90%以上的平均回收率
    "recovery_mortgage_npl_mean": 0.5803,        # 个人住房抵押NPAS回收率均值 (to end-2021)
    "cumulative_by_year": (0.2703, 0.4547, 0.5617, 0.6866, 0.7727),  # 第1~5年累计回收率均值
    "commercial_extra_months": (3, 6),           # 商业用房处置周期整体延长3~6个月
    "months_by_region": {"Jiangsu, Zhejiang, Shanghai": (12, 12), "Fujian": (18, 24),
                         "Northeast and Northwest": (30, 36)},
}
REGION_GROUPS = {"Jiangsu, Zhejiang, Shanghai": ("Jiangsu", "Zhejiang", "Shanghai"),
                 "Fujian": ("Fujian",),
                 "Northeast and Northwest": ("Liaoning", "Jilin", "Heilongjiang", "Shaanxi",
                                             "Xinjiang", "Gansu")}


def mortgage_pool(seed: int = SEED) -> pd.DataFrame:
    """The tape (canonical columns, 元)."""
    rng = np.random.default_rng(seed)
    n = N_LOANS
    provinces = list(PROVINCE_SHARES)
    weights = np.array(list(PROVINCE_SHARES.values()))
    province = rng.choice(provinces, n, p=weights / weights.sum())
    commercial = rng.random(n) < COMMERCIAL_SHARE_OF_LOANS
    claim = np.round(rng.lognormal(np.log(CLAIM_MEDIAN), CLAIM_SIGMA, n)
                     * np.where(commercial, COMMERCIAL_SIZE, 1.0), 2)
    ltv = np.clip(rng.lognormal(np.log(LTV_MEDIAN), LTV_SIGMA, n), 0.3, 2.5)
    value = np.round(claim / ltv, -2)
    stage = rng.choice(list(STAGE_MIX), n, p=list(STAGE_MIX.values()))
    flags = {d: rng.random(n) < share for d, share in DEFECT_SHARES.items()}
    flags["sole_residence"] &= ~commercial
    defects = [",".join(d for d in DEFECT_SHARES if flags[d][i]) for i in range(n)]
    age_days = rng.uniform(APPRAISAL_AGE_YEARS[0] * 365.25, APPRAISAL_AGE_YEARS[1] * 365.25, n)
    appraised = [CUT_OFF - dt.timedelta(days=int(d)) for d in age_days]
    return pd.DataFrame({
        "loan_id": [f"M{i + 1:05d}" for i in range(n)],
        "province": province, "claim": claim,
        "collateral_type": np.where(commercial, "commercial", "residential"),
        "collateral_value": value, "stage": stage, "defects": defects,
        "appraisal_date": pd.to_datetime(appraised),
    })


def tranches(expected_recovery: float) -> list[list]:
    """Senior and subordinated tranches sized on the valued expected recovery (rounded to
    1,000,000 元), as rows of the Tranches table."""
    senior = round(expected_recovery * SENIOR_SHARE_OF_RECOVERY, -6)
    sub = round(expected_recovery * SUB_SHARE_OF_RECOVERY, -6)
    return [["Senior 优先档", "senior", senior, SENIOR_COUPON, senior],
            ["Subordinated 次级档", "subordinated", sub, 0.0, sub]]


def pool_figures(tape: pd.DataFrame) -> dict:
    """The valued pool's figures beside the article's: expected recovery / claims, the
    cumulative share of claims expected by years 1-5 (undiscounted, at each loan's expected
    month), mean expected months (weighted by expected recovery) of residential and
    commercial loans, and of residential loans by region group from their stage at cut-off
    and from filing (stage not_filed)."""
    from npl_xl.inputs.tape import read_tape
    from npl_xl.model.loans import value_tape

    valued = value_tape(read_tape(tape))
    claim = valued["claim"].to_numpy(float)
    recovery = valued["expected_recovery"].to_numpy(float)
    months = valued["expected_months"].to_numpy(float)
    residential = (valued["collateral_type"] == "residential").to_numpy()
    by_type = {kind: float(np.average(months[mask], weights=recovery[mask]))
               for kind, mask in (("residential", residential), ("commercial", ~residential))}
    # commercial vs residential in the same provinces and stages: value each commercial
    # loan again as residential
    swapped = tape.loc[~residential].assign(collateral_type="residential")
    as_residential = value_tape(read_tape(swapped))["expected_months"].to_numpy(float)
    # the article's regional durations are whole procedures: value every loan from filing too
    from_filing = value_tape(read_tape(tape.assign(stage="not_filed")))["expected_months"].to_numpy(float)
    regions, regions_from_filing = {}, {}
    for name, members in REGION_GROUPS.items():
        mask = valued["province"].isin(members).to_numpy() & residential
        regions[name] = float(np.average(months[mask], weights=recovery[mask]))
        regions_from_filing[name] = float(np.average(from_filing[mask], weights=recovery[mask]))
    return {
        "loans": len(valued), "claims": float(claim.sum()),
        "residential_share_of_claims": float(claim[residential].sum() / claim.sum()),
        "weighted_ltv": float(claim.sum() / valued["collateral_value"].sum()),
        "expected_recovery": float(recovery.sum()),
        "recovery_rate": float(recovery.sum() / claim.sum()),
        "cumulative_by_year": tuple(float(recovery[months <= 12 * y].sum() / claim.sum())
                                    for y in range(1, 6)),
        "months_residential": by_type["residential"], "months_commercial": by_type["commercial"],
        "commercial_extra_months": float(np.mean(months[~residential] - as_residential)),
        "months_by_region": regions, "months_by_region_from_filing": regions_from_filing,
        "defect_shares": {d: float(valued["defects"].str.contains(d).mean()) for d in DEFECT_SHARES},
    }


if __name__ == "__main__":
    pool = mortgage_pool()
    figures = pool_figures(pool)
    for key, value in figures.items():
        print(key, value)
    print(tranches(figures["expected_recovery"]))
