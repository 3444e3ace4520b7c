"""Surveillance: the deal after issuance, actual against expected, re-projected and re-rated.

An NPL ABS is re-assessed every payment period from the trustee report: what has been
collected against the issuance forecast, which loans are resolved, what the open loans will
still bring and when, and whether the outstanding tranches still deserve their ratings.

Definitions (the worksheet contract, "Surveillance"; money in currency, time in months
after closing unless said):

- **Booking.** A collection at month m belongs to payment period k when
  t_k - payment_months < m <= t_k (t_k = k x payment_months; month 0 goes to period 1).
- **Collected** (per loan): the sum of its collections up to the report date as_of_months
  (later receipts are not known then and are left out). A loan is *resolved* when any of
  its Collections rows up to the report date says so, otherwise *open*.
- **Re-projection** (per loan): a resolved loan has remaining_expected 0; an open loan has
  remaining_expected = max(0, expected_recovery - collected) and remaining_months =
  expected_months - as_of_months when that is positive, otherwise overdue_months (already
  past its expected month). At issuance (as_of_months 0) remaining_months = expected_months.
- **Deal state at the report date.** The tranches' outstanding balances and the reserve
  account: the Tranches table's ``outstanding`` column and the Settings key
  reserve_balance when given (the trustee report's figures), otherwise the deterministic
  waterfall of the booked collections up to the report date.
- **The deal from the report date** (:func:`remaining_deal`): a deal whose month 0 is the
  report date. Its pool holds every loan of the tape in tape order (so each loan keeps its
  random-number stream): an open loan with claim (claim - collected), expected recovery
  remaining_expected and expected months remaining_months; its recovery sd keeps the
  issuance sd of the recovered *amount* scaled by remaining_expected / expected_recovery
  (the uncertainty shrinks with what is left to collect); a resolved loan has claim 0.
  Recovery dates are drawn as at issuance but from the report date, and a draw before it
  is collected on the first payment date after it, so no open loan is simulated to recover
  before as_of_months. Tranches start from their outstanding balances (their IRR is
  measured against that balance: an investor's position at par on the report date), the
  reserve from the state above, the legal final is legal_final_months - as_of_months.
  A tranche with outstanding 0 has EL 0, PD 0, WAL 0 and no IRR.
- With as_of_months 0 and no collections, every figure equals the issuance figure (the
  inputs are used unchanged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import special

from npl_xl.engine.pool import Pool, pool_from_frame
from npl_xl.errors import DomainError, InputTypeError
from npl_xl.inputs.codes import normalise
from npl_xl.inputs.collections import read_collections
from npl_xl.inputs.deal import DealSettings, KIND_SUBORDINATED, Tranches, parse_settings, parse_tranches

__all__ = ["OUTSTANDING_ALIASES", "book_collections", "loan_status", "reproject",
           "expected_to_date", "actual_vs_expected", "deal_state", "RemainingDeal",
           "remaining_deal", "tranche_figures", "read_outstanding", "up_to_report_date"]

#: Headers of the Tranches table's optional column ``outstanding`` (balance at the report date).
OUTSTANDING_ALIASES = ("outstanding", "outstanding balance", "current balance", "剩余本金",
                       "未偿本金", "未偿余额", "当前余额", "报告日余额", "期末余额")
_OUTSTANDING_KEYS = {normalise(a) for a in OUTSTANDING_ALIASES}
_NAME_KEYS = {normalise(a) for a in ("name", "tranche", "class", "名称", "档次", "证券名称", "分档")}

_TOL = 1e-9


def _collections_frame(collections, settings: DealSettings, loan_ids=None) -> pd.DataFrame:
    if isinstance(collections, pd.DataFrame) and {"loan_id", "month", "amount"} <= set(collections.columns):
        frame = collections.copy()
        if "resolved" not in frame.columns:
            frame["resolved"] = False
        if "row" not in frame.columns:
            frame["row"] = np.arange(1, len(frame) + 1)
        frame["loan_id"] = frame["loan_id"].astype(str)
        return frame
    return read_collections(collections, closing_date=settings.closing_date, loan_ids=loan_ids)


def up_to_report_date(frame: pd.DataFrame, settings: DealSettings) -> pd.DataFrame:
    """The collections up to the report date: receipts dated after as_of_months (and their
    resolved flags) are not known at the report date and are left out (the frame's
    ``attrs["n_after_report_date"]`` counts them)."""
    keep = frame["month"].to_numpy() <= settings.as_of_months + _TOL
    kept = frame[keep].reset_index(drop=True)
    kept.attrs["n_after_report_date"] = int((~keep).sum())
    return kept


def book_collections(months: np.ndarray, amounts: np.ndarray, period_dates: np.ndarray,
                     payment_months: float) -> np.ndarray:
    """Collections booked into payment periods, shape (n_periods,), currency.

    months : (n,) months after closing of each receipt; amounts : (n,) currency;
    period_dates : (n_periods,) payment dates t_k (months). A receipt at month m goes to the
    first period with t_k >= m (within 1e-9 months), i.e. t_k - payment_months < m <= t_k;
    a receipt after the last date is an error (ValueError: the caller checks first)."""
    months = np.asarray(months, dtype=float)
    k = np.searchsorted(np.asarray(period_dates, dtype=float), months - _TOL, side="left")
    if k.size and k.max() >= len(period_dates):
        raise ValueError("a receipt falls after the last payment date")
    return np.bincount(k, weights=np.asarray(amounts, dtype=float), minlength=len(period_dates))


def loan_status(valued: pd.DataFrame, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(collected per loan in tape order (currency), resolved flag per loan)."""
    index = {loan: i for i, loan in enumerate(valued["loan_id"].astype(str))}
    n = len(index)
    positions = np.array([index[x] for x in frame["loan_id"]], dtype=np.int64)
    collected = np.bincount(positions, weights=frame["amount"].to_numpy(dtype=float), minlength=n)
    resolved = np.zeros(n, dtype=bool)
    resolved[positions[frame["resolved"].to_numpy(dtype=bool)]] = True
    return collected, resolved


def _remaining(valued: pd.DataFrame, collected: np.ndarray, resolved: np.ndarray,
               settings: DealSettings) -> tuple[np.ndarray, np.ndarray]:
    expected = valued["expected_recovery"].to_numpy(dtype=float)
    months = valued["expected_months"].to_numpy(dtype=float)
    remaining = np.where(resolved, 0.0, np.maximum(0.0, expected - collected))
    as_of = settings.as_of_months
    if as_of > 0:
        left = months - as_of
        remaining_months = np.where(left > 0, left, settings.overdue_months)
    else:
        remaining_months = months.copy()
    remaining_months = np.where(resolved, 0.0, remaining_months)
    return remaining, remaining_months


def reproject(valued: pd.DataFrame, collections, settings=None) -> pd.DataFrame:
    """NPL_REPROJECT: one row per loan in tape order.

    Parameters
    ----------
    valued : DataFrame
        The valued tape (:func:`npl_xl.model.loans.value_tape`): loan_id, expected_recovery
        (currency), expected_months (months after closing).
    collections : Collections table rows with header, or a frame (loan_id, month, amount,
        resolved).
    settings : Settings (as_of_months, overdue_months, closing_date).

    Returns
    -------
    DataFrame: loan_id, collected (currency), remaining_expected (currency),
    remaining_months (months after the report date), status ("resolved" or "open").
    """
    settings = parse_settings(settings)
    frame = _collections_frame(collections, settings, list(valued["loan_id"].astype(str)))
    frame = up_to_report_date(frame, settings)
    collected, resolved = loan_status(valued, frame)
    remaining, remaining_months = _remaining(valued, collected, resolved, settings)
    return pd.DataFrame({"loan_id": valued["loan_id"].astype(str).to_numpy(),
                         "collected": collected, "remaining_expected": remaining,
                         "remaining_months": remaining_months,
                         "status": np.where(resolved, "resolved", "open")})


def expected_to_date(valued: pd.DataFrame, settings: DealSettings, months: float) -> np.ndarray:
    """Each loan's expected collections up to a payment date (currency), semi-analytic.

    A loan's recovery R (mean expected_recovery) is collected by payment date t iff its
    recovery month T = max(0, expected_months + timing_sd x eta) is <= t; with no timing
    stress R and T are independent, so E[R 1{T <= t}] = expected_recovery x
    Phi((t - expected_months) / timing_sd) (a step at expected_months when timing_sd is 0).
    cap_at_expected lowers the mean and timing_stress links R and T: the figure is then the
    unstressed expectation (the Results sheet's simulated curve has the stressed one)."""
    expected = valued["expected_recovery"].to_numpy(dtype=float)
    m = valued["expected_months"].to_numpy(dtype=float)
    sd = float(settings.timing_sd_months)
    if sd > 0:
        p = special.ndtr((months - m) / sd)
    else:
        p = (m <= months + _TOL).astype(float)
    return expected * p


@dataclass
class RemainingDeal:
    """The deal from the report date (see the module docstring).

    pool : the remaining pool (every loan, resolved ones with claim 0), month 0 = report date;
    tranches : the tranches with outstanding > 0, balances = outstanding;
    settings : legal final and reserve from the report date;
    outstanding : dict name -> balance at the report date (currency), every tranche;
    reserve : the reserve at the report date (currency);
    unchanged : True when the inputs were used as they are (issuance)."""

    pool: Pool
    tranches: Tranches | None
    settings: DealSettings
    outstanding: dict
    reserve: float
    unchanged: bool = False
    all_tranches: Tranches | None = None
    valued: pd.DataFrame | None = field(default=None, repr=False)


def read_outstanding(table) -> dict:
    """The Tranches table's ``outstanding`` column as name -> balance (currency); empty when
    the table has no such column or it is blank (then the waterfall's state is used)."""
    if table is None or isinstance(table, Tranches):
        return {}
    if hasattr(table, "columns") and hasattr(table, "to_numpy"):
        table = [list(table.columns)] + table.to_numpy(dtype=object).tolist()
    rows = [list(r) for r in table if any(c is not None and str(c).strip() != "" for c in r)]
    if len(rows) < 2:
        return {}
    header = [normalise(h) if isinstance(h, str) else "" for h in rows[0]]
    col = next((j for j, h in enumerate(header) if h in _OUTSTANDING_KEYS), None)
    name_col = next((j for j, h in enumerate(header) if h in _NAME_KEYS), None)
    if col is None or name_col is None:
        return {}
    out = {}
    for i, row in enumerate(rows[1:], start=1):
        value = row[col] if col < len(row) else None
        if value is None or (isinstance(value, str) and value.strip() == ""):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(value)) or float(value) < 0:
            raise InputTypeError(f"row {i}: outstanding {value!r} is not an amount >= 0",
                                 argument="tranches")
        out[str(row[name_col])] = float(value)
    return out


def deal_state(tranches: Tranches, settings: DealSettings, booked: np.ndarray,
               n_done: int) -> tuple[np.ndarray, float]:
    """Tranche balances and reserve after the first ``n_done`` payment periods of the
    deterministic waterfall of ``booked`` collections (currency per period, full length).
    Returns (balances (n_tranches,), reserve), currency."""
    from npl_xl.engine.waterfall import deterministic_waterfall

    _, balances0, _, _ = tranches.arrays()
    if n_done <= 0:
        return balances0.copy(), float(settings.initial_reserve)
    flows, columns, *_ = deterministic_waterfall(np.asarray(booked, dtype=float), tranches, settings)
    frame = pd.DataFrame(flows, columns=columns)
    row = frame.iloc[n_done - 1]
    balances = np.array([row[f"{t.name}_balance"] for t in tranches], dtype=float)
    return balances, float(row["reserve_balance"])


def _n_done(settings: DealSettings) -> int:
    dates = settings.period_dates
    return int(np.searchsorted(dates, settings.as_of_months + _TOL, side="right"))


def remaining_deal(valued: pd.DataFrame, tranches, settings=None, collections=None,
                   sd_cap_factor: float | None = None) -> RemainingDeal:
    """The deal from the report date: remaining pool, outstanding tranches, settings.

    valued : the valued tape; tranches : the Tranches table (an ``outstanding`` column is
    used when present) or :class:`Tranches`; settings : Settings with as_of_months,
    overdue_months, reserve_balance; collections : the Collections table or None.

    Raises DomainError (``#NUM!``) when the report date is not a payment date or is at or
    past the legal final."""
    outstanding_given = read_outstanding(tranches)
    tranches = parse_tranches(tranches)
    settings = parse_settings(settings)
    cap = sd_cap_factor if sd_cap_factor is not None else valued.attrs.get("sd_cap_factor")
    no_collections = collections is None or (isinstance(collections, (list, tuple)) and len(collections) <= 1)
    if settings.as_of_months == 0 and no_collections and not outstanding_given \
            and settings.reserve_balance is None:
        pool = pool_from_frame(valued, cap)
        return RemainingDeal(pool, tranches, settings, {t.name: t.balance for t in tranches},
                             float(settings.initial_reserve), True, tranches, valued)
    as_of = settings.as_of_months
    ratio = as_of / settings.payment_months
    if abs(ratio - round(ratio)) > 1e-9:
        raise DomainError(f"must be a payment date (a multiple of payment_months "
                          f"{settings.payment_months:g}) to re-project the deal, got {as_of:g}",
                          argument="as_of_months")
    if as_of >= settings.legal_final_months - _TOL:
        raise DomainError(f"the report date {as_of:g} is at or past the legal final "
                          f"({settings.legal_final_months:g} months)", argument="as_of_months")
    frame = _collections_frame(collections if collections is not None else None, settings,
                               list(valued["loan_id"].astype(str)))
    frame = up_to_report_date(frame, settings)
    collected, resolved = loan_status(valued, frame)
    remaining, remaining_months = _remaining(valued, collected, resolved, settings)
    # the deal state at the report date
    n_done = _n_done(settings)
    booked = book_collections(frame["month"].to_numpy(), frame["amount"].to_numpy(),
                              settings.period_dates, settings.payment_months)
    balances, reserve = deal_state(tranches, settings, booked, n_done)
    outstanding = {t.name: float(outstanding_given.get(t.name, balances[j]))
                   for j, t in enumerate(tranches)}
    unknown = set(outstanding_given) - set(outstanding)
    if unknown:
        raise InputTypeError(f"outstanding given for unknown tranche(s) {sorted(unknown)}",
                             argument="tranches")
    if settings.reserve_balance is not None:
        reserve = float(settings.reserve_balance)
    # the remaining pool: every loan, in tape order
    claim = valued["claim"].to_numpy(dtype=float)
    expected = valued["expected_recovery"].to_numpy(dtype=float)
    sd = valued["recovery_sd"].to_numpy(dtype=float)
    open_ = ~resolved
    claim_left = np.where(open_, np.maximum(claim - collected, 0.0), 0.0)
    remaining = np.minimum(remaining, claim_left)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where((expected > 0) & (claim_left > 0),
                         (remaining / np.where(expected > 0, expected, 1.0))
                         * (claim / np.where(claim_left > 0, claim_left, 1.0)), 0.0)
    sd_left = np.where(collected > 0, sd * scale, np.where(open_, sd, 0.0))
    frame_left = valued.copy()
    frame_left["claim"] = claim_left
    frame_left["expected_recovery"] = remaining
    frame_left["expected_months"] = remaining_months
    frame_left["recovery_sd"] = np.minimum(sd_left, 0.5)
    if "principal" in frame_left.columns:  # collections repay principal first (tax_base)
        principal = frame_left["principal"].to_numpy(dtype=float, na_value=np.nan)
        frame_left["principal"] = np.where(open_, np.maximum(principal - collected, 0.0), 0.0)
    pool = pool_from_frame(frame_left, cap)
    live = [replace(t, balance=outstanding[t.name], issue_price=outstanding[t.name])
            for t in tranches if outstanding[t.name] > 1e-9 * max(1.0, t.balance)]
    live_tranches = Tranches(tuple(live)) if live else None
    horizon = settings.legal_final_months - as_of
    settings_left = replace(settings, legal_final_months=horizon, initial_reserve=reserve,
                            as_of_months=0.0, reserve_balance=None,
                            bid_horizon_months=max(settings.bid_horizon_months - as_of,
                                                   settings.payment_months))
    return RemainingDeal(pool, live_tranches, settings_left, outstanding, reserve, False,
                         tranches, frame_left)


def tranche_figures(deal: RemainingDeal, n_sims=None, seed=None, progress=None,
                    with_stderr: bool = False):
    """NPL_TRANCHE_EL from the report date: (contract table, DealResult or None).

    Tranches repaid by the report date get EL 0, PD 0, WAL 0, no IRR (a blank cell), el_stderr 0
    and rating NPL_RATING(0, 0) ("NR" for a subordinated tranche)."""
    from npl_xl.engine.simulate import simulate_deal
    from npl_xl.model.rating import rating_from_el

    result = None
    rows = {}
    if deal.tranches is not None:
        result = simulate_deal(deal.pool, deal.tranches, deal.settings, n_sims=n_sims,
                               seed=seed, progress=progress)
        table = result.contract_table(with_stderr=with_stderr)
        rows = {r["name"]: r for r in table.to_dict("records")}
    out = []
    for t in deal.all_tranches:
        if t.name in rows:
            out.append(rows[t.name])
            continue
        row = {"name": t.name, "EL": 0.0, "PD": 0.0, "WAL": 0.0, "mean_irr": "",
               "rating": "NR" if t.kind == KIND_SUBORDINATED else rating_from_el(0.0, 0.0),
               "el_stderr": 0.0}
        if with_stderr:
            row.update({"pd_stderr": 0.0, "wal_stderr": 0.0, "irr_stderr": ""})
        out.append(row)
    columns = ["name", "EL", "PD", "WAL", "mean_irr", "rating", "el_stderr"]
    if with_stderr:
        columns += ["pd_stderr", "wal_stderr", "irr_stderr"]
    return pd.DataFrame(out, columns=columns), result


def actual_vs_expected(valued: pd.DataFrame, collections, settings=None,
                       expected_per_period: np.ndarray | None = None,
                       sd_cap_factor: float | None = None) -> pd.DataFrame:
    """NPL_ACTUAL_VS_EXPECTED: one row per payment period up to the report date.

    Columns: period (1..), month (the payment date, months after closing), expected (the
    issuance model's mean collections in the period, currency: the simulated expected
    collection curve with the settings' n_sims and seed, as on the Results sheet), actual
    (the collections booked into the period, currency), cumulative_expected_share and
    cumulative_actual_share (cumulative, decimal of the pool's total claim at issuance),
    ratio (cumulative actual / cumulative expected; blank while nothing was expected).

    When the report date falls inside a period, the last row is that partial period (month
    = as_of_months) with the expected collections pro rata to the elapsed time."""
    settings = parse_settings(settings)
    frame = _collections_frame(collections, settings, list(valued["loan_id"].astype(str)))
    frame = up_to_report_date(frame, settings)
    dates = settings.period_dates
    as_of = settings.as_of_months
    n_full = int(np.searchsorted(dates, as_of + _TOL, side="right"))
    partial = n_full < len(dates) and as_of > (dates[n_full - 1] if n_full else 0.0) + _TOL
    n_rows = n_full + (1 if partial else 0)
    columns = ["period", "month", "expected", "actual", "cumulative_expected_share",
               "cumulative_actual_share", "ratio"]
    if n_rows == 0:
        return pd.DataFrame(columns=columns)
    if expected_per_period is None:
        from npl_xl.engine.simulate import mc_mean, simulate_collections

        issuance = replace(settings, as_of_months=0.0)
        coll = simulate_collections(pool_from_frame(valued, sd_cap_factor), issuance)
        expected_per_period = mc_mean(coll, issuance.variance_reduction)[0]
    expected = np.asarray(expected_per_period, dtype=float)[:n_rows].copy()
    months = dates[:n_rows].copy()
    if partial:
        start = dates[n_full - 1] if n_full else 0.0
        expected[-1] *= (as_of - start) / (dates[n_full] - start)
        months[-1] = as_of
    actual = book_collections(frame["month"].to_numpy(), frame["amount"].to_numpy(), dates,
                              settings.payment_months)[:n_rows]
    total_claim = float(valued["claim"].sum())
    cum_e, cum_a = np.cumsum(expected), np.cumsum(actual)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(cum_e > 0, cum_a / np.where(cum_e > 0, cum_e, 1.0), np.nan)
    out = pd.DataFrame({"period": np.arange(1, n_rows + 1), "month": months,
                        "expected": expected, "actual": actual,
                        "cumulative_expected_share": cum_e / total_claim,
                        "cumulative_actual_share": cum_a / total_claim, "ratio": ratio})
    out["ratio"] = out["ratio"].astype(object).where(~np.isnan(ratio), None)
    return out
