"""Pool stratification: count, sum and share of a measure per group of loans.

``by`` is a tape column (English or Chinese header; extra columns too), ``region_tier`` /
``difficulty`` (from the valuation), or ``balance`` for claim buckets:

    < 1m, 1m–5m, 5m–10m, 10m–50m, >= 50m   (claim in currency units; "m" = million)

Groups are listed largest sum first, except balance buckets, which keep bucket order.
share = the group's sum / the pool's sum of the measure (decimal).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from npl_xl.inputs.assumptions import Assumptions
from npl_xl.inputs.codes import normalise
from npl_xl.errors import DomainError, InputTypeError
from npl_xl.model.loans import VALUED_COLUMNS, value_tape
from npl_xl.inputs.tape import column_name

__all__ = ["stratify", "BALANCE_EDGES", "BALANCE_LABELS"]

#: Upper edges of the balance buckets (currency units).
BALANCE_EDGES = (1e6, 5e6, 10e6, 50e6)
BALANCE_LABELS = ("<1m", "1m-5m", "5m-10m", "10m-50m", ">=50m")


def _resolve(tape: pd.DataFrame, name: str, argument: str) -> str:
    canonical = column_name(name)
    if canonical is not None:
        return canonical
    key = normalise(name)
    for column in list(tape.columns) + list(VALUED_COLUMNS):
        if normalise(column) == key:
            return column
    if key in ("balance", "余额", "balancebucket"):
        return "balance"
    raise InputTypeError(f"{name!r} is not a tape column (nor balance, region_tier, difficulty)",
                         argument=argument)


def stratify(tape: pd.DataFrame, by: str, measure: str = "claim",
             assumptions: Assumptions | None = None, collateral: pd.DataFrame | None = None,
             guarantees: pd.DataFrame | None = None) -> pd.DataFrame:
    """Header [by, count, sum_<measure>, share] and one row per group (see module doc).
    collateral, guarantees: the shared Collateral and Guarantees tables (read), used when
    the measure or grouping needs the valuation.

    Examples
    --------
    >>> from npl_xl import read_tape, stratify
    >>> tape = [["loan_id", "claim", "province", "collateral_type", "collateral_value",
    ...          "stage", "guarantor_recovery"],
    ...         ["L1", 1_000_000, "浙江", "住宅", 900_000, "auction_1", None],
    ...         ["L2", 400_000, "Jiangsu", "none", None, "judgment", 100_000]]
    >>> stratify(read_tape(tape), "province").round(4)
       province  count  sum_claim   share
    0  Zhejiang    1.0  1000000.0  0.7143
    1   Jiangsu    1.0   400000.0  0.2857
    """
    by_column = _resolve(tape, by, "by")
    measure_column = _resolve(tape, measure, "measure")
    if measure_column == "balance":
        measure_column = "claim"
    needs_value = any(c in VALUED_COLUMNS and (c not in tape.columns or tape[c].isna().any()
                                               or collateral is not None or guarantees is not None)
                      for c in (by_column, measure_column))
    frame = value_tape(tape, assumptions, collateral, guarantees) if needs_value else tape
    raw = frame[measure_column]
    values = pd.to_numeric(raw, errors="coerce")
    text = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if text.any():  # blank cells count as 0; text is an error
        example = raw[text].iloc[0]
        raise InputTypeError(f"column {measure_column} holds text ({example!r} in loan "
                             f"{text.to_numpy().nonzero()[0][0] + 1}); a numeric column is "
                             "required", argument="measure")
    values = values.fillna(0.0).to_numpy(dtype=float)
    total = values.sum()
    if by_column == "balance":
        bucket = np.searchsorted(np.array(BALANCE_EDGES), frame["claim"].to_numpy(float), side="right")
        keys = pd.Categorical.from_codes(bucket, categories=list(BALANCE_LABELS))
        grouped = pd.DataFrame({"group": keys, "value": values}).groupby("group", observed=False)
    else:
        keys = frame[by_column].astype(object).where(frame[by_column].notna(), "(blank)")
        grouped = pd.DataFrame({"group": keys.astype(str), "value": values}).groupby("group", sort=False)
    table = grouped["value"].agg(["count", "sum"]).reset_index()
    if by_column != "balance":
        table = table.sort_values("sum", ascending=False, kind="stable")
    if total == 0 and len(table):
        raise DomainError(f"the pool's sum of {measure_column} is 0: shares are undefined",
                          argument="measure")
    table["share"] = table["sum"] / total if len(table) else []
    table.columns = [by_column, "count", f"sum_{measure_column}", "share"]
    table["count"] = table["count"].astype(float)
    return table.reset_index(drop=True)
