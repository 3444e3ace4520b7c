"""The Surveillance sheet (跟踪报告): actual against expected, re-projection, re-rating."""

from __future__ import annotations

import numpy as np
import pandas as pd
from xlsxwriter.utility import xl_rowcol_to_cell

from npl_xl.workbook.charts import ChartSpec, Series
from npl_xl.workbook.results import FMT_MONEY, FMT_RATE, Block, SheetSpec

__all__ = ["surveillance_sheet", "group_table", "shortfall_table", "rating_change"]

_RATINGS = ("Aaa", "Aa1", "Aa2", "Aa3", "A1", "A2", "A3", "Baa1", "Baa2", "Baa3", "Ba1", "Ba2",
            "Ba3", "B1", "B2", "B3", "Caa1", "Caa2", "Caa3", "Ca", "C")


def rating_change(before: str, after: str) -> str:
    """"upgrade", "downgrade", "unchanged", or "" when either side is not rated."""
    if before not in _RATINGS or after not in _RATINGS:
        return "" if before == after else f"{before} → {after}"
    a, b = _RATINGS.index(before), _RATINGS.index(after)
    return "unchanged 维持" if a == b else ("upgrade 上调" if b < a else "downgrade 下调")


def group_table(valued: pd.DataFrame, expected_to_date: np.ndarray, collected: np.ndarray,
                by: str) -> pd.DataFrame:
    """Expected to date against collected per value of column ``by`` (currency), with the
    shares of the group's claims and the ratio actual / expected."""
    frame = pd.DataFrame({by: valued[by].astype(str).to_numpy(),
                          "claim": valued["claim"].to_numpy(float),
                          "expected_to_date": expected_to_date, "actual": collected})
    out = frame.groupby(by, sort=True, as_index=False).sum(numeric_only=True)
    out["expected_share"] = out["expected_to_date"] / out["claim"]
    out["actual_share"] = out["actual"] / out["claim"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = np.where(out["expected_to_date"] > 0,
                                out["actual"] / out["expected_to_date"].where(out["expected_to_date"] > 0, 1.0),
                                np.nan)
    return out


def shortfall_table(valued: pd.DataFrame, expected_to_date: np.ndarray, collected: np.ndarray,
                    status: np.ndarray, n: int = 20) -> pd.DataFrame:
    """The ``n`` loans with the largest shortfall of collections against their expectation
    to date (currency), largest first."""
    frame = pd.DataFrame({"loan_id": valued["loan_id"].astype(str).to_numpy(),
                          "province": valued["province"].astype(str).to_numpy(),
                          "collateral_type": valued["collateral_type"].astype(str).to_numpy(),
                          "claim": valued["claim"].to_numpy(float),
                          "expected_to_date": expected_to_date, "actual": collected,
                          "status": status})
    frame["shortfall"] = frame["expected_to_date"] - frame["actual"]
    frame = frame[frame["shortfall"] > 0].sort_values("shortfall", ascending=False, kind="stable")
    return frame.head(n).reset_index(drop=True)


def surveillance_sheet(avse: pd.DataFrame, by_province: pd.DataFrame, by_type: pd.DataFrame,
                       shortfalls: pd.DataFrame, reprojected: pd.DataFrame,
                       tranche_change: pd.DataFrame, run_info: list[tuple[str, object, str | None]],
                       sheet_name: str = "Surveillance") -> SheetSpec:
    """The sheet: run block, tranche table (issuance beside the report date), actual vs
    expected per period (with a line chart of the cumulative shares of the initial claims),
    by province, by collateral type, the largest shortfalls, the re-projected collections."""
    info = pd.DataFrame({"key": [r[0] for r in run_info], "value": [r[1] for r in run_info]})
    money = {c: FMT_MONEY for c in ("claim", "expected", "actual", "expected_to_date",
                                    "shortfall", "expected_collections", "stderr")}
    shares = {c: FMT_RATE for c in ("cumulative_expected_share", "cumulative_actual_share",
                                    "expected_share", "actual_share", "ratio",
                                    "issuance_EL", "report_EL", "cumulative_share_of_claims")}
    formats = {**money, **shares}
    blocks = [
        Block("SurvRun", "Report 报告信息", info, row_formats=[r[2] for r in run_info]),
        Block("SurvTranches", "Tranches at issuance and from the report date 发行时与报告日各档证券 "
              "(EL decimal of the balance then outstanding; WAL years; IRR effective annual)",
              tranche_change, formats=formats),
        Block("SurvActualExpected", "Actual against expected collections per payment period 实际与预测回收 "
              "(shares: cumulative, of the initial claims 占初始未偿本息)", avse, formats=formats),
        Block("SurvProvince", "By province 分省份: expected to date (expected recovery x P(recovered "
              "by the report date), no stresses) against collected", by_province, formats=formats),
        Block("SurvCollateral", "By collateral type 分抵押物类型", by_type, formats=formats),
        Block("SurvShortfalls", "Largest shortfalls against expectation to date 回收缺口最大的贷款",
              shortfalls, formats=formats),
        Block("SurvReprojected", "Re-projected collections after the report date 报告日后预计回收 "
              "(months after closing; standard error = Monte Carlo error)", reprojected,
              formats=formats),
    ]
    spec = SheetSpec(sheet_name, "npl-xl surveillance report 跟踪报告", blocks,
                     notes=["Written by Surveillance Report; Clear Results empties this sheet. "
                            "由“跟踪报告”生成，“清除结果”清空本表。"])
    spec.chart_band_rows = 18
    band = xl_rowcol_to_cell(spec.chart_band_row, 0)
    size = (560, 310)
    spec.charts = []
    if len(avse):
        spec.charts.append(ChartSpec(
            "Cumulative collections, share of initial claims 累计回收率", "line",
            "SurvActualExpected", "month",
            (Series("expected 预测", "SurvActualExpected", "cumulative_expected_share"),
             Series("actual 实际", "SurvActualExpected", "cumulative_actual_share")),
            x_title="month", y_title="share of initial claims", percent_axis=True,
            anchor=band, size=size))
    if len(reprojected):
        spec.charts.append(ChartSpec(
            "Re-projected collections (±1 s.e.) 预计回收", "column", "SurvReprojected", "month",
            (Series("expected collections", "SurvReprojected", "expected_collections", "stderr"),),
            x_title="month after closing", y_title="collections", value_format=FMT_MONEY,
            anchor=band, size=size, offset=(size[0] + 12, 0)))
    return spec
