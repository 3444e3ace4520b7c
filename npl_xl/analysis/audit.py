"""The audit trail: the period-by-period waterfall of the base case and of chosen paths.

For a committee that asks why a figure is what it is: every step of the priority of
payments (:mod:`npl_xl.engine.waterfall`), every account (reserve, liquidity facility,
deferred fees) and every trigger state (event of default, CCR, mezzanine subordinated), one
row per payment period, for

- the **base case**: each loan recovers its valued expected recovery at its expected month,
  collected on the first payment date on or after it, nothing after the legal final (the
  base case of NPL_BREAKEVEN); and
- any **simulated path** by its index (0 = the first path of the run): the path's own
  collections, exactly as the Monte Carlo ran them through the waterfall.

Both use the issuance forecast of the run (the simulation's expected collection curve) for
the CCR trigger and the reserve target, as the simulation does, so a path's rows reproduce
that path's tranche figures. ``npl-xl run --audit PATH`` writes them (CSV, or a workbook
with one sheet per case).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from npl_xl.analysis.cashflows import in_table_order
from npl_xl.engine.waterfall import FLOW_COLUMNS, deterministic_waterfall
from npl_xl.errors import InputTypeError

__all__ = ["base_case_collections", "audit_frames", "write_audit", "parse_paths", "BASE_CASE"]

#: The name of the base case in the audit.
BASE_CASE = "base_case"


def base_case_collections(pool, settings, taxable: bool = False) -> np.ndarray:
    """Collections per payment period (currency) when every loan recovers its expected
    recovery at its expected month: collected on the first payment date on or after it
    (month 0 on the first), lost after legal_final_months. Shape (n_periods,).

    taxable: instead, the part of them above each loan's principal (Settings tax_base =
    interest: max(0, expected recovery - principal) per loan, in the same period)."""
    dates = settings.period_dates
    months = np.asarray(pool.expected_months, dtype=np.float64)
    amount = np.asarray(pool.expected_recovery, dtype=np.float64)
    if taxable:
        amount = np.maximum(0.0, amount - pool.principal_for_tax())
    inside = months <= settings.legal_final_months + 1e-9
    period = np.clip(np.ceil(months / settings.payment_months - 1e-9).astype(np.int64), 1,
                     len(dates)) - 1
    out = np.zeros(len(dates))
    np.add.at(out, period[inside], amount[inside])
    return out


def _frame(collections, tranches, settings, forecast, taxable=None,
           tax_forecast=None) -> pd.DataFrame:
    flows, columns, missed, arrears = deterministic_waterfall(
        collections, tranches, settings, forecast=forecast,
        dates=settings.period_dates.astype(np.float64), taxable=taxable,
        tax_forecast=tax_forecast)
    frame = in_table_order(pd.DataFrame(flows, columns=columns), columns[len(FLOW_COLUMNS):])
    frame.insert(0, "month", settings.period_dates[:len(frame)])
    frame.insert(0, "period", np.arange(1, len(frame) + 1))
    for j, name in enumerate(tranches.names):
        frame[f"{name}_arrears_at_end"] = arrears[j]
        frame[f"{name}_missed_payment"] = missed[j]
    return frame


def audit_frames(result, paths=()) -> dict[str, pd.DataFrame]:
    """The audit of a :class:`~npl_xl.engine.simulate.DealResult`: case name -> one row per
    payment period (period, month, every waterfall column, per tranche interest, principal,
    balance; then arrears and the missed-payment flag at the end). Cases: the base case,
    then ``path_<i>`` for each index in ``paths``.

    Raises InputTypeError (naming --audit-paths) for a path index outside the run."""
    settings = result.settings
    tranches = result.extras["tranches"]
    forecast = result.extras["forecast"]
    pool = result.extras["pool"]
    taxed = getattr(settings, "tax_base", "collections") == "interest"
    tax_forecast = result.extras.get("tax_forecast") if taxed else None
    taxable = result.extras.get("taxable") if taxed else None
    frames = {BASE_CASE: _frame(base_case_collections(pool, settings), tranches, settings,
                                forecast,
                                base_case_collections(pool, settings, True) if taxed else None,
                                tax_forecast)}
    for p in paths:
        if not 0 <= int(p) < result.n_paths:
            raise InputTypeError(f"path {p} is not in the run (paths 0 to {result.n_paths - 1})",
                                 argument="--audit-paths")
        frames[f"path_{int(p)}"] = _frame(result.path_collections[int(p)], tranches, settings,
                                          forecast, None if taxable is None else taxable[int(p)],
                                          tax_forecast)
    return frames


def write_audit(path, frames: dict[str, pd.DataFrame]) -> Path:
    """Write the audit to ``path``: ``.csv`` one table with a leading ``case`` column;
    ``.xlsx`` one sheet per case. Written to a temporary file beside the target and
    renamed, so an existing file is replaced whole or not at all."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InputTypeError(f"{path.name}: the audit is written as .csv or .xlsx",
                             argument="--audit")
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=".npl-xl-audit-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        if suffix == ".csv":
            table = pd.concat([f.assign(case=name) for name, f in frames.items()],
                              ignore_index=True)
            table = table[["case"] + [c for c in table.columns if c != "case"]]
            table.to_csv(tmp, index=False, float_format="%.10g")
        else:
            with pd.ExcelWriter(tmp, engine="xlsxwriter") as writer:
                for name, frame in frames.items():
                    clean = frame.astype(object).where(frame.notna(), None)
                    clean.to_excel(writer, sheet_name=name[:31], index=False)
                    writer.sheets[name[:31]].freeze_panes(1, 2)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def parse_paths(text: str | None) -> list[int]:
    """``"0,17, 25"`` -> [0, 17, 25]; None or blank -> []."""
    if text is None or not str(text).strip():
        return []
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part.isdigit():
            raise InputTypeError(f"{part!r} is not a path index (whole numbers >= 0, "
                                 "separated by commas)", argument="--audit-paths")
        out.append(int(part))
    return out

