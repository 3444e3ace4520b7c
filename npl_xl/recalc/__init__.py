"""Headless recalculation of workbooks: formulas, NPL functions, cached values written back.

Public API::

    from npl_xl.recalc import recalc_workbook, evaluate_workbook
    report = recalc_workbook("book.xlsx")          # writes book.recalc.xlsx
    report.values["Sheet1!B2"], report.errors      # 'Sheet!A1' -> value / CellError
    evaluate_workbook("book.xlsx")                 # {'Sheet1!B2': value}, nothing written
"""

from npl_xl.recalc.api import RecalcReport, default_output_path, recalc_workbook
from npl_xl.recalc.engine import CellError, evaluate_workbook
from npl_xl.recalc.xlsx import WorkbookError

__all__ = ["recalc_workbook", "evaluate_workbook", "default_output_path", "RecalcReport",
           "CellError", "WorkbookError"]
