"""The tape's data-quality report: which header went where, how full each field is, outliers.

From a :class:`~npl_xl.inputs.tape.TableReading` of the tape (``inspect_tape``):

- ``headers``: one row per header of the tape: header, cell, field (or "(ignored: kept as
  an extra column)"), the alias it matched, the unit read from it;
- ``fields``: one row per tape field: the header that filled it, share_filled (non-blank
  cells / loans), share_defaulted (blank cells that took the field's default / loans),
  share_missing (blank where required); collateral_value counts secured loans only;
- ``outliers``: LTV (claim ÷ collateral_value, the 当前抵押率 of Chinese NPL ABS
  reports) above 3, claims ≤ 0, appraisals older than 3 years at the Settings'
  cut_off_date (today when blank), each with loan and cell;
- ``completeness``: the mean share_filled over the fields the model uses
  (:data:`MODEL_FIELDS`; claim counts as filled when its parts are), a decimal in [0, 1].
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from npl_xl.inputs.tape import CLAIM_PARTS, TAPE_COLUMNS, TableReading, appraisal_age_years

__all__ = ["QualityReport", "quality_report", "MODEL_FIELDS", "LTV_LIMIT", "APPRAISAL_AGE_LIMIT"]

#: The tape fields the valuation uses (the completeness score's denominator).
MODEL_FIELDS = ("loan_id", "province", "claim", "collateral_type", "collateral_value", "lien_rank",
                "prior_claims", "stage", "defects", "appraisal_date")
#: Outlier thresholds: LTV = claim / collateral_value; appraisal age in years.
LTV_LIMIT = 3.0
APPRAISAL_AGE_LIMIT = 3.0


@dataclass
class QualityReport:
    """The report's tables (module docstring) and the completeness score (decimal)."""

    headers: pd.DataFrame
    fields: pd.DataFrame
    outliers: pd.DataFrame
    completeness: float
    n_loans: int
    as_of: str


def quality_report(reading: TableReading, cut_off: object = None) -> QualityReport:
    """The data-quality report of a tape reading; cut_off: the Settings' cut_off_date
    (Excel serial, date or text) or None for today."""
    from npl_xl.inputs.tape import parse_date
    from npl_xl.workbook.a1 import sheet_address

    mapping, frame, n = reading.mapping, reading.frame, len(reading.frame)
    header_rows = []
    for j, header, name, via in mapping.matched:
        unit = mapping.units.get(name)
        header_rows.append((j, header, name, via, "" if unit is None else f"{unit:g} 元"))
    for j, header in mapping.ignored:
        header_rows.append((j, header, "(ignored: kept as an extra column)", "", ""))
    header_rows.sort()
    headers = pd.DataFrame([{"header": h, "cell": sheet_address(reading.sheet, reading.row0, reading.col0 + j),
                             "field": f, "matched_alias": v, "unit": u} for j, h, f, v, u in header_rows],
                           columns=["header", "cell", "field", "matched_alias", "unit"])
    secured = (frame["collateral_type"].to_numpy(dtype=object) != "none") if n else np.zeros(0, bool)
    parts_filled = 0
    if n and any(p in mapping.fields for p in CLAIM_PARTS):
        parts = frame[[p for p in CLAIM_PARTS if p in mapping.fields]].to_numpy(dtype=float)
        parts_filled = int((~np.all(np.isnan(parts), axis=1)).sum())
    by_index = {j: h for j, h, *_ in header_rows}
    rows = []
    for column in TAPE_COLUMNS:
        filled = reading.filled.get(column.name, 0)
        base = int(secured.sum()) if column.name == "collateral_value" else n
        if column.name == "collateral_value" and n:
            filled = int(np.count_nonzero(secured & ~reading.blank[column.name]))
        if column.name == "claim" and filled < n:
            filled = max(filled, parts_filled) if "claim" not in mapping.fields else filled
        blank = max(base - filled, 0)
        has_default = not column.required
        rows.append({
            "field": column.name, "zh": column.zh,
            "header": by_index.get(mapping.fields.get(column.name), ""),
            "share_filled": filled / base if base else 1.0,
            "share_defaulted": blank / base if base and has_default else 0.0,
            "share_missing": blank / base if base and not has_default else 0.0,
            "default": "" if not has_default or (isinstance(column.default, float) and np.isnan(column.default))
            else column.default,
        })
    fields = pd.DataFrame(rows)
    used = fields[fields["field"].isin(MODEL_FIELDS)]
    completeness = float(used["share_filled"].mean()) if len(used) else 0.0

    as_of = dt.date.today().isoformat() if cut_off is None else parse_date(cut_off).date().isoformat()
    outliers = []
    ids = frame["loan_id"].to_numpy(dtype=object) if n else []
    if n:
        claim = frame["claim"].to_numpy(dtype=float)
        value = frame.get("appraised_value", frame["collateral_value"]).to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ltv = np.where(secured & (value > 0), claim / value, np.nan)
        for k in np.flatnonzero(ltv > LTV_LIMIT):
            outliers.append(("LTV > 3", ids[k], reading.cell(k, "collateral_value") or reading.cell(k, "claim"),
                             float(ltv[k]), f"claim {claim[k]:,.0f} is {ltv[k]:.2f} x the appraisal {value[k]:,.0f}"))
        for name in ("claim",) + CLAIM_PARTS:
            for k, cell in reading.rejected.get(name, []):
                if isinstance(cell, (int, float)) and not isinstance(cell, bool) and cell <= 0:
                    outliers.append(("claim <= 0", ids[k], reading.cell(k, name), float(cell),
                                     f"{name} {cell:g}: the claim must be > 0"))
        if "claim" not in mapping.fields and not any(reading.rejected.get(p) for p in CLAIM_PARTS):
            for k in np.flatnonzero(claim <= 0):
                outliers.append(("claim <= 0", ids[k], reading.cell(k, CLAIM_PARTS[0]), float(claim[k]),
                                 "principal + interest + fees must be > 0"))
        if "appraisal_date" in mapping.fields:
            age = appraisal_age_years(frame["appraisal_date"], as_of)
            for k in np.flatnonzero(np.nan_to_num(age) > APPRAISAL_AGE_LIMIT):
                outliers.append(("appraisal older than 3 years", ids[k], reading.cell(k, "appraisal_date"),
                                 float(age[k]), f"appraised {frame['appraisal_date'].iat[k].date()}, "
                                 f"{age[k]:.1f} years before {as_of}"))
    outlier_frame = pd.DataFrame(outliers, columns=["check", "loan_id", "cell", "value", "detail"])
    return QualityReport(headers, fields, outlier_frame, completeness, n, as_of)
