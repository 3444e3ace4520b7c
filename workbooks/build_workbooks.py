"""Generate workbooks/npl_template.xlsx and workbooks/sample_deal.xlsx.

    python workbooks/build_workbooks.py            # both, formulas computed and cached
    python workbooks/build_workbooks.py --no-recalc

The workbooks are written with xlsxwriter (fixed document dates and zip timestamps, so the
same script gives the same bytes) and then, unless --no-recalc, passed through
``npl_xl.recalc.recalc_workbook`` so every NPL_* formula carries its computed value for
readers without the add-in. Never edit the committed workbooks by hand or round-trip them
through openpyxl: change this script and run it again.

Layout decisions (the contract allows English or Chinese headers):
- every input table has ONE header row holding the English column key; the Chinese name
  sits in the row above the table (row 1), and each column's data validation carries an
  input message with the Chinese name, the meaning and the accepted codes;
- code columns (province, collateral_type, stage, tranche kind, booleans) validate against
  lists on the ``Lists`` sheet (English codes, then Chinese names) as *warnings*, so other
  accepted spellings (浙江省, ZJ) can still be typed; Validate Tape checks them for real;
- header rows are frozen; money is ``#,##0``, rates ``0.00%``, months ``0.0``;
- the ``Summary`` sheet shows the NPL functions at work as legacy array formulas
  (Ctrl+Shift+Enter) over ranges sized to their results, so the headless recalculation
  fills every cell.
Ribbon hook: the template is a plain .xlsx; the add-in (.xlam, built by the installer on
Windows) carries the ribbon. To ship a workbook-level ribbon instead, add customUI parts
and a root relationship at zip level (see npl_xl.workbook.graft.Package) - never via openpyxl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sample_collections  # noqa: E402  (the sample deal's collection history, beside this script)
import sample_mortgage  # noqa: E402  (the mortgage sample's generator, beside this script)
import sample_pool  # noqa: E402  (the sample deal's pool generator, beside this script)
from npl_xl.inputs.assumptions import Assumptions  # noqa: E402
from npl_xl.inputs.deal import SETTINGS as DEAL_SETTINGS  # noqa: E402
from npl_xl.inputs.codes import (COLLATERAL_CODES, COLLATERAL_TYPES, DEFECT_CODES,  # noqa: E402
                                 PROVINCES, STAGE_CODES, STAGES)
from npl_xl.inputs.deal import parse_settings  # noqa: E402
from npl_xl.inputs.tape import read_tape  # noqa: E402
from npl_xl.model.loans import value_tape  # noqa: E402
from npl_xl.sheet.registry import load_all  # noqa: E402

#: Document date written into both workbooks (keeps the bytes reproducible).
DOC_DATE = dt.datetime(2016, 7, 29)

FMT_MONEY, FMT_RATE, FMT_MONTHS = "#,##0", "0.00%", "0.0"

# (key, 中文, number format, validation list, help)
TAPE_COLUMNS = [
    ("loan_id", "贷款编号", None, None, "Unique loan id (required) 唯一编号（必填）"),
    ("borrower", "借款人", None, None, "Borrower name or id 借款人名称或编号"),
    ("province", "省份", None, "ProvinceList", "Province of the collateral (or of the borrower if unsecured); English or Chinese 抵押物所在省份"),
    ("city", "城市", None, None, "City 城市"),
    ("claim", "未偿本息", FMT_MONEY, None, "Outstanding principal + interest + fees, currency (required) 未偿本息费"),
    ("collateral_type", "抵押物类型", None, "CollateralList", "residential, commercial, industrial, land, other, none 住宅/商业/工业/土地/其他/无"),
    ("collateral_value", "评估价值", FMT_MONEY, None, "Latest appraisal, currency; required when secured 最新评估价值"),
    ("lien_rank", "抵押顺位", "0", None, "1 = first lien (default) 抵押顺位，默认1"),
    ("prior_claims", "优先债权", FMT_MONEY, None, "Claims paid before this lender from the collateral 优先受偿债权"),
    ("stage", "处置阶段", None, "StageList", "not_filed ... distribution (default not_filed) 处置阶段"),
    ("defects", "法律瑕疵", None, None, "Comma-separated: " + ", ".join(DEFECT_CODES) + " 法律瑕疵，逗号分隔"),
    ("borrower_recovery", "借款人回收", FMT_MONEY, None, "Expected undiscounted recovery from the borrower 借款人预期回收"),
    ("guarantor_recovery", "保证人回收", FMT_MONEY, None, "Expected undiscounted recovery from guarantors 保证人预期回收"),
    ("other_recovery", "其他回收", FMT_MONEY, None, "Other expected recoveries 其他回收"),
    ("expected_recovery", "预期回收", FMT_MONEY, None, "Override of the expected recovery amount; blank = valued 预期回收覆盖值"),
    ("expected_months", "预期回收时间", FMT_MONTHS, None, "Override of the months to recovery; blank = valued 预期回收月数覆盖值"),
    ("recovery_sd", "回收率标准差", FMT_RATE, None, "Override of the recovery-rate sd; blank = from difficulty 回收率标准差覆盖值"),
    ("appraisal_date", "评估日期", "yyyy-mm-dd", None, "Date of the latest appraisal (data-quality report; ageing with appraisal_haircut_per_year) 最新评估日期"),
]
TAPE_FORMULA_COLUMN = ("judicial_months", "司法处置月数(计算)", FMT_MONTHS,
                       "=NPL_JUDICIAL_MONTHS(Tape[[#This Row],[province]],Tape[[#This Row],[stage]],"
                       "Tape[[#This Row],[collateral_type]],Tape[[#This Row],[defects]])")

TRANCHE_COLUMNS = [("name", "名称", None), ("kind", "档次", None), ("balance", "发行金额", FMT_MONEY),
                   ("coupon", "票面利率", FMT_RATE), ("issue_price", "发行价格", FMT_MONEY)]

#: Number formats of the Settings table's values (presentation only: the keys, their order,
#: defaults and meanings come from npl_xl.inputs.deal.SETTINGS, so a key added there is a
#: row here; a key not listed is shown in the General format).
SETTINGS_FORMATS = {
    "n_sims": "#,##0", "seed": "0", "rho": "0.00", "region_weight": "0.00",
    "timing_sd_months": FMT_MONTHS, "timing_stress": "0.00", "payment_months": "0",
    "legal_final_months": "0", "tax_rate": FMT_RATE, "fixed_expenses": FMT_MONEY,
    "servicer_fee_rate": FMT_RATE, "reserve_multiple": "0.0", "initial_reserve": FMT_MONEY,
    "liquidity_limit": FMT_MONEY, "sub_return_rate": FMT_RATE, "excess_fee_share": FMT_RATE,
    "discount_rate": FMT_RATE, "bid_horizon_months": "0",
    "liquidity_rate": FMT_RATE, "ccr_trigger": "0.00", "deferred_fee_share": FMT_RATE,
    "appraisal_haircut_per_year": FMT_RATE, "cut_off_date": "yyyy-mm-dd",
    "target_stderr": "0.0000%", "max_sims": "#,##0",
}


def settings_rows() -> list[tuple[str, object, str | None, str]]:
    """(key, default, number format, 中文 meaning) of every Settings key, from SETTINGS."""
    return [(k.name, k.default, SETTINGS_FORMATS.get(k.name),
             (k.aliases[0] + " " if k.aliases else "") + k.doc) for k in DEAL_SETTINGS]


# Link tables (Loan tapes as they come): (table, workbook name, sheet note, columns (key, 中文, format))
LINK_TABLES = [
    ("Collateral", "CollateralTable",
     "Shared collateral 共享抵押物: one row per item (or per item and lien rank); loan_ids = loans it secures, "
     "separated by , 、 or ; ; lien_rank one value or one per loan (1;2). Linked loans ignore their Tape collateral columns.",
     [("collateral_id", "抵押物编号", None), ("loan_ids", "担保贷款编号", None), ("collateral_type", "抵押物类型", None),
      ("province", "省份", None), ("collateral_value", "评估价值", FMT_MONEY), ("lien_rank", "抵押顺位", None),
      ("prior_claims", "优先债权", FMT_MONEY), ("stage", "处置阶段", None), ("defects", "法律瑕疵", None),
      ("appraisal_date", "评估日期", "yyyy-mm-dd")]),
    ("Guarantees", "GuaranteeTable",
     "Guarantees 保证: the guarantor's expected payment, shared among its loans pro rata to what each still has unrecovered.",
     [("guarantor", "保证人", None), ("loan_ids", "担保贷款编号", None), ("expected_recovery", "预计回收金额", FMT_MONEY)]),
    ("HeaderMap", "HeaderMapTable",
     "Header map 表头映射: tape headers npl-xl does not know (docs/TAPES.md lists those it does) and the field each holds; "
     "table = tape (blank), collateral or guarantees.",
     [("source_header", "原表头", None), ("field", "字段", None), ("table", "表", None)]),
]

#: Systematic correlation of the sample deal, calibrated so that the senior rates near the
#: top of the scale as published (AAA): with 10,000 paths the senior is Aaa at rho 0.01,
#: Aa1 at 0.02, Aa2 at 0.03, A1 at 0.04-0.05, Baa1 at 0.10 and Baa3 at the package default
#: 0.15. The agency's correlation is not published ([CCXI-16NY1]: "一定的系统风险相关性").
SAMPLE_RHO = 0.02
#: The sample deal's settings where they differ from the template's: reserve 2x ([CCXI-16NY1]),
#: an external liquidity facility (ABC press release; amount not published: 1亿 assumed),
#: fees and the excess servicing fee share as assumptions (docs/MODEL.md); recovery
#: dates stressed in bad states of the systematic factor (timing_stress, docs/MODEL.md).
SAMPLE_SETTINGS = {"rho": SAMPLE_RHO, "reserve_multiple": 2.0, "liquidity_limit": 100_000_000,
                   "fixed_expenses": 1_500_000, "servicer_fee_rate": 0.005,
                   "excess_fee_share": 0.20, "timing_stress": 0.25}

TEMPLATE_TAPE = pd.DataFrame([
    ["L0001", "Borrower A", "Zhejiang", "Hangzhou", 12_000_000, "commercial", 15_000_000, 1, 0, "judgment", "", 0, 500_000, 0],
    ["L0002", "Borrower A", "浙江", "杭州", 3_500_000, "residential", 4_200_000, 1, 0, "auction_1", "lease", 0, 0, 0],
    ["L0003", "Borrower B", "Jiangsu", "Suzhou", 25_000_000, "industrial", 30_000_000, 1, 0, "enforcement", "waiting_seizure", 0, 1_000_000, 0],
    ["L0004", "Borrower C", "Shandong", "Qingdao", 8_000_000, "land", 9_500_000, 2, 2_000_000, "filed", "", 0, 0, 0],
    ["L0005", "Borrower D", "Fujian", "Xiamen", 5_000_000, "none", None, 1, 0, "not_filed", "debtor_missing", 200_000, 300_000, 0],
    ["L0006", "Borrower E", "Liaoning", "Shenyang", 6_000_000, "residential", 5_000_000, 1, 0, "appraisal", "sole_residence", 0, 0, 0],
], columns=[c[0] for c in TAPE_COLUMNS[:14]])

TEMPLATE_TRANCHES = [["Senior", "senior", 20_000_000, 0.035, 20_000_000],
                     ["Subordinated", "subordinated", 6_000_000, 0.0, 6_300_000]]
#: 16农盈1: senior 20.62亿 at 3.48%; subordinated 10.02亿 issued at 108 (ABC press release)
SAMPLE_TRANCHES = [["Senior 优先档", "senior", 2_062_000_000, 0.0348, 2_062_000_000],
                   ["Subordinated 次级档", "subordinated", 1_002_000_000, 0.0, 1_082_160_000]]

#: Historical recovery rates for Fit Recoveries (illustrative, not market data)
HISTORY_SEED = 7


class Formats:
    def __init__(self, wb):
        self.wb = wb
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self.bold = wb.add_format({"bold": True})
        self.zh = wb.add_format({"italic": True, "font_color": "#595959"})
        self.wrap = wb.add_format({"text_wrap": True, "valign": "top"})
        self._num = {}

    def num(self, code):
        if code is None:
            return None
        if code not in self._num:
            self._num[code] = self.wb.add_format({"num_format": code})
        return self._num[code]


def _lists(codeset, codes) -> list[str]:
    """Codes followed by their first Chinese spelling (for dropdowns)."""
    out = list(codes)
    for code in codes:
        zh = next((k for k, v in codeset._map.items() if v == code and any("\u4e00" <= ch <= "\u9fff" for ch in k)), None)
        if zh and zh not in out:
            out.append(zh)
    return out


def write_lists(wb, fmt) -> None:
    """The dropdown sources, with workbook names used by the validations."""
    ws = wb.add_worksheet("Lists")
    provinces = Assumptions.default().to_tables()["ProvinceTiers"]
    columns = {
        "ProvinceList": list(provinces["province"]) + list(provinces["name_zh"]),
        "CollateralList": _lists(COLLATERAL_TYPES, COLLATERAL_CODES),
        "StageList": _lists(STAGES, STAGE_CODES),
        "KindList": ["senior", "mezzanine", "subordinated", "优先", "中间", "次级"],
        "BoolList": ["TRUE", "FALSE"],
    }
    ws.write(0, 0, "Dropdown sources for data validation 下拉列表来源 (names ProvinceList, CollateralList, StageList, KindList, BoolList)", fmt.bold)
    for j, (name, values) in enumerate(columns.items()):
        ws.write(1, j, name, fmt.bold)
        ws.write_column(2, j, values)
        col = xl_col_to_name(j)
        wb.define_name(name, f"=Lists!${col}$3:${col}${2 + len(values)}")
        ws.set_column(j, j, 18)


def _validation(ws, first_row, col, last_row, list_name, help_text, title):
    options = {"input_title": title[:32], "input_message": help_text[:255]}
    if list_name:
        options.update({"validate": "list", "source": f"={list_name}", "error_type": "warning",
                        "error_title": "Unknown code 未知代码",
                        "error_message": "Not in the list. npl-xl also accepts other English/Chinese "
                                         "spellings; Validate Tape checks every cell. 列表外的值"})
    else:
        options.update({"validate": "any"})
    ws.data_validation(first_row, col, last_row, col, options)


def write_tape(wb, fmt, tape: pd.DataFrame, with_formula: bool, spare_rows: int) -> None:
    ws = wb.add_worksheet("Tape")
    columns = [c for c in TAPE_COLUMNS]
    n = len(tape)
    header_row = 1
    last_row = header_row + n
    specs = []
    for j, (key, zh, code, list_name, help_text) in enumerate(columns):
        ws.write(0, j, zh, fmt.zh)
        specs.append({"header": key, "format": fmt.num(code)})
        _validation(ws, header_row + 1, j, last_row + spare_rows, list_name, help_text, f"{key} {zh}")
        ws.set_column(j, j, max(12, len(key) + 3))
    if with_formula:
        key, zh, code, formula = TAPE_FORMULA_COLUMN
        ws.write(0, len(columns), zh, fmt.zh)
        specs.append({"header": key, "formula": formula, "format": fmt.num(code)})
        ws.set_column(len(columns), len(columns), 16)
    width = len(specs)
    ws.add_table(header_row, 0, last_row, width - 1,
                 {"name": "Tape", "columns": specs, "style": "Table Style Medium 2"})
    for i, row in enumerate(tape.itertuples(index=False)):
        for j, (key, *_rest) in enumerate(columns):
            value = getattr(row, key, None) if key in tape.columns else None
            if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
                continue
            ws.write(header_row + 1 + i, j, value.item() if isinstance(value, np.generic) else value,
                     specs[j]["format"])
    wb.define_name("LoanTape", f"=Tape!$A${header_row + 1}:${xl_col_to_name(width - 1)}${last_row + 1}")
    ws.freeze_panes(header_row + 1, 1)


def write_tranches(wb, fmt, tranches) -> None:
    ws = wb.add_worksheet("Tranches")
    for j, (key, zh, code) in enumerate(TRANCHE_COLUMNS):
        ws.write(0, j, zh, fmt.zh)
        ws.set_column(j, j, 22 if key == "name" else 16)
    ws.add_table(1, 0, 1 + len(tranches), len(TRANCHE_COLUMNS) - 1, {
        "name": "Tranches", "style": "Table Style Medium 2",
        "columns": [{"header": k, "format": fmt.num(c)} for k, _, c in TRANCHE_COLUMNS]})
    for i, row in enumerate(tranches):
        for j, value in enumerate(row):
            ws.write(2 + i, j, value, fmt.num(TRANCHE_COLUMNS[j][2]))
    _validation(ws, 2, 1, 21, "KindList", "senior, mezzanine or subordinated 优先/中间/次级", "kind 档次")
    ws.write(1 + len(tranches) + 2, 0, "issue_price blank = balance; a subordinated tranche issued at "
             "108 has issue_price = 1.08 x balance. 发行价格空白=面值。", fmt.zh)
    wb.define_name("TrancheTable", f"=Tranches!$A$2:$E${2 + len(tranches)}")
    ws.freeze_panes(2, 0)


def write_settings(wb, fmt, overrides: dict) -> None:
    ws = wb.add_worksheet("Settings")
    ws.write(0, 0, "键 key", fmt.zh)
    ws.write(0, 1, "值 value", fmt.zh)
    ws.write(1, 2, "说明 meaning", fmt.bold)
    rows = settings_rows()
    ws.add_table(1, 0, 1 + len(rows), 1, {"name": "Settings", "style": "Table Style Medium 2",
                                           "columns": [{"header": "key"}, {"header": "value"}]})
    for i, (key, default, code, meaning) in enumerate(rows):
        value = overrides.get(key, default)
        ws.write(2 + i, 0, key)
        if value is None:  # a key whose default is blank (off, or computed)
            ws.write_blank(2 + i, 1, None, fmt.num(code))
        elif isinstance(value, bool):
            ws.write_boolean(2 + i, 1, value)
            _validation(ws, 2 + i, 1, 2 + i, "BoolList", "TRUE or FALSE", key)
        elif value is None or value == "":  # blank = the key's default (scheduler, block_paths)
            ws.write_blank(2 + i, 1, None, fmt.num(code))
        elif isinstance(value, str):
            ws.write_string(2 + i, 1, value)
        elif isinstance(value, (dt.date, dt.datetime)):
            ws.write_datetime(2 + i, 1, dt.datetime(value.year, value.month, value.day), fmt.num(code))
        elif value is not None:
            ws.write_number(2 + i, 1, value, fmt.num(code))
        ws.write(2 + i, 2, meaning)
    ws.set_column(0, 0, 20)
    ws.set_column(1, 1, 16)
    ws.set_column(2, 2, 80)
    wb.define_name("DealSettings", f"=Settings!$A$2:$B${2 + len(rows)}")
    ws.freeze_panes(2, 0)


def write_assumptions(wb, fmt) -> None:
    ws = wb.add_worksheet("Assumptions")
    ws.write(0, 0, "Assumptions 假设参数: editable tables behind the packaged defaults (sources in "
             "each row; keys in docs/SOURCES.md). Functions given these tables use them.", fmt.bold)
    row = 2
    widths: dict[int, int] = {}
    last_row, last_col = row, 0
    for name, frame in Assumptions.default().to_tables().items():
        ws.write(row, 0, name, fmt.bold)
        columns = [str(c) for c in frame.columns]
        last_row, last_col = row + 1 + len(frame), max(last_col, len(columns) - 1)
        ws.add_table(row + 1, 0, row + 1 + len(frame), len(columns) - 1, {
            "name": name, "style": "Table Style Light 9",
            "columns": [{"header": c} for c in columns]})
        for i, values in enumerate(frame.itertuples(index=False)):
            for j, value in enumerate(values):
                if isinstance(value, np.generic):
                    value = value.item()
                if value is None or (isinstance(value, float) and np.isnan(value)):
                    continue
                ws.write(row + 2 + i, j, value)
                widths[j] = max(widths.get(j, 10), min(50, len(str(value)) + 2))
        row += len(frame) + 4
    for j, w in widths.items():
        ws.set_column(j, j, w)
    # every table with its title row: the assumptions argument of the NPL functions
    wb.define_name("AssumptionTables", f"=Assumptions!$A$3:${xl_col_to_name(last_col)}${last_row + 1}")


def write_link_tables(wb, fmt, tables: dict | None = None) -> None:
    """The Collateral, Guarantees and HeaderMap tables (empty unless ``tables`` gives rows)."""
    tables = tables or {}
    for name, range_name, note, columns in LINK_TABLES:
        ws = wb.add_worksheet(name)
        ws.write(0, 0, note, fmt.zh)
        for j, (key, zh, code) in enumerate(columns):
            ws.set_column(j, j, max(14, len(key) + 3))
        rows = tables.get(name, [])
        last = 1 + max(len(rows), 1)
        ws.add_table(1, 0, last, len(columns) - 1, {
            "name": name, "style": "Table Style Medium 2",
            "columns": [{"header": key, "format": fmt.num(code)} for key, _, code in columns]})
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if value is not None:
                    ws.write(2 + i, j, value, fmt.num(columns[j][2]))
        wb.define_name(range_name, f"={name}!$A$2:${xl_col_to_name(len(columns) - 1)}${last + 1}")
        ws.freeze_panes(2, 0)


def write_history(wb, fmt) -> None:
    """Historical recovery rates for Fit Recoveries (name HistRecoveries)."""
    rng = np.random.default_rng(HISTORY_SEED)
    rates = np.round(np.r_[rng.beta(1.6, 2.6, 46), [0.0, 0.0, 1.0, 0.0]], 4)
    ws = wb.add_worksheet("History")
    ws.write(0, 0, "回收率 (illustrative, numpy default_rng(7) Beta(1.6, 2.6) + 3 zeros + 1 full)", fmt.zh)
    ws.add_table(1, 0, 1 + len(rates), 0, {"name": "History", "columns": [{"header": "recovery_rate", "format": fmt.num(FMT_RATE)}]})
    ws.write_column(2, 0, rates.tolist(), fmt.num(FMT_RATE))
    wb.define_name("HistRecoveries", f"=History!$A$3:$A${2 + len(rates)}")
    ws.write(1, 2, "NPL_BETA_FIT(HistRecoveries)", fmt.bold)
    headers = ["alpha", "beta", "p_zero", "p_one", "loglik", "n"]
    ws.write_row(2, 2, headers, fmt.bold)
    ws.write_array_formula(3, 2, 3, 7, "{=NPL_BETA_FIT(HistRecoveries)}")
    ws.set_column(0, 0, 14)
    ws.set_column(2, 7, 11)
    ws.freeze_panes(2, 0)


COLLECTION_COLUMNS = [("loan_id", "贷款编号", None), ("month", "回收月份", "0.00"),
                      ("amount", "回收金额", FMT_MONEY), ("resolved", "已结清", None)]


def write_collections(wb, fmt, collections: pd.DataFrame | None) -> None:
    """The Collections table (name CollectionsTable over its range with the header; `npl-xl
    collections import` moves the name with the table): cash per loan after closing, for
    Surveillance Report."""
    ws = wb.add_worksheet("Collections")
    rows = [] if collections is None else list(collections.itertuples(index=False))
    for j, (key, zh, code) in enumerate(COLLECTION_COLUMNS):
        ws.write(0, j, zh, fmt.zh)
        ws.set_column(j, j, 14)
    ws.add_table(1, 0, 1 + max(1, len(rows)), len(COLLECTION_COLUMNS) - 1, {
        "name": "Collections", "style": "Table Style Medium 2",
        "columns": [{"header": k, "format": fmt.num(c)} for k, _, c in COLLECTION_COLUMNS]})
    for i, row in enumerate(rows):
        ws.write_row(2 + i, 0, [row.loan_id, float(row.month), float(row.amount), bool(row.resolved)])
    wb.define_name("CollectionsTable", f"=Collections!$A$2:$D${2 + max(1, len(rows))}")
    ws.write(0, len(COLLECTION_COLUMNS) + 1, "month = months after closing (or a date column 回收日期 "
             "with Settings closing_date); resolved TRUE once the workout is finished. "
             "回收月份为信托设立后月数。", fmt.zh)
    ws.freeze_panes(2, 0)


def _registered(name: str) -> bool:
    return name in load_all()


def _array_block(ws, fmt, row: int, title: str, formula: str, raw_args: list, function: str) -> int:
    """Write ``{=formula}`` over exactly the shape its result has for these inputs."""
    if not _registered(function):
        print(f"warning: {function} is not registered yet; Summary block '{title}' left out",
              file=sys.stderr)
        return row
    result = load_all()[function](*raw_args)
    if not isinstance(result, list):
        raise SystemExit(f"{function} fails on the workbook's own data: {getattr(result, 'message', result)}")
    rows, cols = len(result), len(result[0])
    if title:
        ws.write(row, 0, title, fmt.bold)
    ws.write_array_formula(row + 1, 0, row + rows, cols - 1, "{" + formula + "}")
    return row + rows + 3


def write_summary(wb, fmt, tape_rows: list, tranche_rows: list, settings_rows: list, n_sims: int) -> None:
    ws = wb.add_worksheet("Summary")
    ws.write(0, 0, "Summary 汇总: live NPL formulas over the tables (array formulas; the add-in or "
             "`npl-xl recalc` computes them)", fmt.title)
    row = 2
    for by, zh in (("province", "省份"), ("collateral_type", "抵押物类型"), ("stage", "处置阶段")):
        row = _array_block(ws, fmt, row, f"Pool by {by} 按{zh}分层: NPL_STRAT(LoanTape, \"{by}\", , AssumptionTables)",
                           f'=NPL_STRAT(LoanTape,"{by}",,AssumptionTables)', [tape_rows, by], "NPL_STRAT")
    first = dict(zip(tape_rows[0], tape_rows[1]))
    loan_args = [first.get(k) for k in ("claim", "collateral_value", "collateral_type", "province",
                                         "stage", "defects", "borrower_recovery",
                                         "guarantor_recovery", "other_recovery")]
    cells = ",".join(f"Tape!{xl_col_to_name([c[0] for c in TAPE_COLUMNS].index(k))}3" for k in (
        "claim", "collateral_value", "collateral_type", "province", "stage", "defects",
        "borrower_recovery", "guarantor_recovery", "other_recovery"))
    ws.write_row(row + 1, 0, ["expected_recovery", "expected_months", "recovery_sd"], fmt.bold)
    end = _array_block(ws, fmt, row + 1, "", f"=NPL_LOAN_RECOVERY({cells})",
                       [None if v == "" else v for v in loan_args], "NPL_LOAN_RECOVERY")
    ws.write(row, 0, f"First loan of the tape valued 首笔贷款估值: NPL_LOAN_RECOVERY(Tape row 3)", fmt.bold)
    row = end
    row = _array_block(ws, fmt, row, f"Tranches 各档证券: NPL_TRANCHE_EL(LoanTape, TrancheTable, DealSettings, {n_sims}, , AssumptionTables)",
                       f"=NPL_TRANCHE_EL(LoanTape,TrancheTable,DealSettings,{n_sims},,AssumptionTables)",
                       [tape_rows, tranche_rows, settings_rows, n_sims], "NPL_TRANCHE_EL")
    ws.set_column(0, 0, 22)
    ws.set_column(1, 8, 14)


def write_results_placeholder(wb, fmt) -> None:
    ws = wb.add_worksheet("Results")
    ws.write(0, 0, "Results 结果", fmt.title)
    ws.write(1, 0, "Run Simulation (ribbon) or `npl-xl run` writes the tranche table, the expected "
             "collection curve, loss and IRR distributions and their charts here. "
             "由“运行模拟”生成。")


def write_readme(wb, fmt, lines: list[str]) -> None:
    ws = wb.add_worksheet("README")
    ws.set_column(0, 0, 120)
    ws.write(0, 0, lines[0], fmt.title)
    for i, line in enumerate(lines[1:], start=2):
        ws.write(i, 0, line, fmt.wrap)


COMMON_README = [
    "Sheets 工作表:",
    "Tape 贷款清单 — the loan tape: Excel table `Tape`, workbook name `LoanTape` (headers included). "
    "English headers in the table's header row; Chinese names in row 1 above it. Required: loan_id, "
    "province, claim, collateral_type (and collateral_value when secured).",
    "Tranches 证券分层 — table `Tranches`, name `TrancheTable`: name, kind (senior/mezzanine/subordinated), "
    "balance, coupon (annual decimal), issue_price (blank = balance).",
    "Settings 参数 — two-column key/value table `Settings`, name `DealSettings`.",
    "Collateral 共享抵押物, Guarantees 保证 — optional tables `Collateral` (name `CollateralTable`) and "
    "`Guarantees` (name `GuaranteeTable`) for collateral and guarantors shared by several loans; "
    "HeaderMap 表头映射 — tape headers npl-xl does not know and their fields (docs/TAPES.md).",
    "Assumptions 假设 — the timeline, auction, cost and difficulty tables behind the defaults (editable).",
    "History 历史回收率 — recovery rates for Fit Recoveries (name `HistRecoveries`).",
    "Summary 汇总 — NPL_STRAT and NPL_TRANCHE_EL as array formulas over the named tables.",
    "Results 结果 — written by Run Simulation (ribbon) and by `npl-xl run IN.xlsx`.",
    "Structuring 分层测算 and Sensitivity 敏感性分析 — written by Size Tranches and Sensitivity (ribbon) and "
    "by `npl-xl size IN.xlsx` and `npl-xl sensitivity IN.xlsx` (the sample deal ships with its Structuring sheet).",
    "Lists 代码表 — dropdown sources; validations warn on other spellings, which npl-xl still accepts "
    "(浙江 = 浙江省 = Zhejiang = ZJ).",
    "Units 单位: money in one currency; rates, shares and recoveries as decimals (0.30 = 30%); time in months.",
    "This workbook is generated by workbooks/build_workbooks.py; do not edit the committed file by hand.",
]


def _rows(frame: pd.DataFrame) -> list[list]:
    return [list(frame.columns)] + frame.astype(object).where(frame.notna(), None).values.tolist()


def _settings_rows(overrides: dict) -> list[list]:
    return [["key", "value"]] + [[k, overrides.get(k, v)] for k, v, _, _ in settings_rows()]


def _tranche_rows(tranches) -> list[list]:
    return [[c[0] for c in TRANCHE_COLUMNS]] + [list(r) for r in tranches]


#: 16农盈1 as published: senior 20.62亿 against CCXI's expected recovery of 40.65亿
#: ([ABC-16NY1], [CCXI-16NY1] in docs/SOURCES.md).
PUBLISHED_SENIOR = 2_062_000_000
PUBLISHED_EXPECTED_RECOVERY = 4_065_000_000
#: Paths of the sample deal's Structuring sheet.
STRUCTURING_SIMS = 10_000


def write_structuring(wb, tape: pd.DataFrame, tranches, settings: dict) -> None:
    """The sample deal's Structuring sheet (what Size Tranches writes), with the published
    16农盈1 senior beside the sizes. Deterministic: no time stamp in the run block."""
    from npl_xl.analysis.convergence import simulate_to_target
    from npl_xl.inputs.deal import parse_settings, parse_tranches
    from npl_xl.inputs.tape import read_tape
    from npl_xl.macros import structuring_sheet
    from npl_xl.model.loans import value_tape
    from npl_xl.workbook.book import write_sheet_xlsxwriter
    from npl_xl.workbook.results import Block

    pool = value_tape(read_tape(_rows(tape)))
    parsed = parse_tranches(_tranche_rows(tranches))
    deal = parse_settings(_settings_rows(settings)).with_overrides(n_sims=STRUCTURING_SIMS)
    result, convergence = simulate_to_target(pool, parsed, deal)
    expected = float(pool["expected_recovery"].sum())
    info = [("n_sims (paths)", result.n_paths, "#,##0"), ("seed", deal.seed, "0"),
            ("rho", deal.rho, "0.00"), ("loans", len(pool), "#,##0"),
            ("expected_recovery (valued)", expected, "#,##0")] + convergence.run_info()
    published = pd.DataFrame([
        {"figure": "16农盈1 senior as issued (AAA, domestic scale)", "value": PUBLISHED_SENIOR},
        {"figure": "CCXI expected recovery of the pool", "value": PUBLISHED_EXPECTED_RECOVERY},
        {"figure": "published senior / expected recovery",
         "value": PUBLISHED_SENIOR / PUBLISHED_EXPECTED_RECOVERY},
        {"figure": "this model's expected recovery of the synthetic pool", "value": expected}])
    block = Block("StructPublished", "Published 16农盈1 senior 已发行优先档 (for comparison)",
                  published, formats={"value": "#,##0"}, row_formats=["#,##0", "#,##0", "0.00%", "#,##0"])
    spec = structuring_sheet(pool, parsed, result, info, extra_blocks=[block])
    write_sheet_xlsxwriter(wb, spec)


def build(path: Path, tape: pd.DataFrame, tranches, settings: dict, readme: list[str],
          with_formula_column: bool, summary_sims: int,
          collections: pd.DataFrame | None = None, structuring: bool = False) -> None:
    wb = xlsxwriter.Workbook(str(path))
    wb.set_properties({"title": readme[0], "author": "npl-xl", "created": DOC_DATE,
                       "comments": "Generated by workbooks/build_workbooks.py"})
    wb.set_calc_mode("auto")
    fmt = Formats(wb)
    write_readme(wb, fmt, readme)
    write_tape(wb, fmt, tape, with_formula_column, spare_rows=1000)
    write_tranches(wb, fmt, tranches)
    write_settings(wb, fmt, settings)
    write_assumptions(wb, fmt)
    write_history(wb, fmt)
    write_collections(wb, fmt, collections)
    write_summary(wb, fmt, _rows(tape), _tranche_rows(tranches), _settings_rows(settings), summary_sims)
    write_results_placeholder(wb, fmt)
    if structuring:
        write_structuring(wb, tape, tranches, settings)
    write_lists(wb, fmt)
    write_link_tables(wb, fmt)
    wb.worksheets()[1].activate()
    wb.close()


def _recalc(tmp: Path, out: Path) -> None:
    from npl_xl.recalc import recalc_workbook

    report = recalc_workbook(tmp, out)
    errors = getattr(report, "errors", None)
    if errors:
        raise SystemExit(f"recalculating {out.name} left errors: {errors}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-recalc", action="store_true", help="leave formula values uncomputed")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: workbooks/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    tape, figures = sample_pool.calibrated_pool()
    secured = tape["collateral_type"] != "none"
    share = lambda mask: tape.loc[mask, "claim"].sum() / tape["claim"].sum()  # noqa: E731
    sample_readme = [
        "16农盈1-like sample deal 样例交易 (synthetic) — npl-xl",
        "A SYNTHETIC pool shaped like the published 农盈2016年第一期不良资产支持证券 (16农盈1, Agricultural Bank "
        "of China, issued 2016-07-29). No loan here is real. 本表数据为模拟生成，非真实贷款。",
        f"Generated by workbooks/sample_pool.py with numpy.random.default_rng({sample_pool.SEED}); knobs are "
        "constants at the top of that script.",
        f"By construction: claims {tape['claim'].sum() / 1e8:.2f}亿 CNY over {len(tape)} loans to "
        f"{tape['borrower'].nunique()} borrowers; Jiangsu + Zhejiang {share(tape['province'] != 'Shandong'):.2%}, "
        f"Shandong the rest; secured {share(secured):.2%} (industrial, commercial, land, residential); "
        f"in litigation (past not_filed) {share(tape['stage'] != 'not_filed'):.2%}.",
        f"Calibrated (loan-by-loan valuation with the packaged assumptions): expected recovery "
        f"{figures['recovery_rate']:.2%} of claims (published 37.90%) by scaling the latest appraisals "
        f"(appraisal/claim x {figures['appraisal_scale']:.3f}; total appraisal "
        f"{tape['collateral_value'].sum() / 1e8:.2f}亿 vs 136.27亿 initial appraisal published); "
        f"{figures['three_year_share']:.2%} of expected recoveries within 36 months (published 79.71%) by "
        f"giving {figures['workout_share_of_loans']:.1%} of the loans a negotiated-workout expected_months "
        f"override of {sample_pool.WORKOUT_MONTHS[0]:.0f}-{sample_pool.WORKOUT_MONTHS[1]:.0f} months "
        "(the packaged judicial timeline alone collects about 99% within three years in Jiangsu/Zhejiang).",
        "Tranches as issued: senior 20.62亿 at 3.48% (AAA), subordinated 10.02亿 issued at 108 (issue_price = "
        "1.08 x balance); semiannual payments; legal final 60 months; reserve 2x next period's senior items "
        "(中诚信国际 analysis of 16农盈1); external liquidity facility (amount not published: 1亿 assumed).",
        f"Settings rho = {SAMPLE_RHO} is calibrated so the senior rates near the top of the scale as "
        "published (AAA); the agency's correlation is not published. With the package default rho 0.15 "
        "the same senior rates about Baa3: change rho in Settings to see it.",
        "",
    ] + COMMON_README
    template_readme = [
        "npl-xl deal template 不良资产证券化模板",
        "Fill in Tape, Tranches and Settings, then use the npl-xl ribbon (Run Simulation, Fit Recoveries, "
        "Validate Tape, Stratify Pool, Price Bid, Clear Results) or run `npl-xl run this.xlsx` headless.",
        "The example rows are illustrative; replace them with your tape. 示例数据仅供说明。",
        "",
    ] + COMMON_README

    history = sample_collections.collection_history(
        value_tape(read_tape(_rows(tape))), parse_settings(SAMPLE_SETTINGS))
    sample_readme.insert(-len(COMMON_README), (
        f"Collections: a synthetic {sample_collections.REPORT_MONTHS:.0f}-month history ({len(history)} "
        f"receipts, {history['amount'].sum() / 1e8:.2f}亿) drawn from one path of this deal's own model by "
        f"workbooks/sample_collections.py (numpy default_rng({sample_collections.SEED})), for the "
        "Surveillance Report button / `npl-xl surveil`; Settings as_of_months stays 0 (issuance), so the "
        "report date is the payment date after the latest receipt (month 24)."))
    mortgage = sample_mortgage.mortgage_pool()
    mfig = sample_mortgage.pool_figures(mortgage)
    mortgage_tranches = sample_mortgage.tranches(mfig["expected_recovery"])
    published = sample_mortgage.PUBLISHED
    by_year = ", ".join(f"{x:.1%}" for x in mfig["cumulative_by_year"])
    by_year_published = ", ".join(f"{x:.2%}" for x in published["cumulative_by_year"])
    regions = "; ".join(f"{k} {mfig['months_by_region_from_filing'][k]:.1f} months from filing "
                        f"(published {lo}-{hi})" if lo != hi else
                        f"{k} {mfig['months_by_region_from_filing'][k]:.1f} months from filing (published about {lo})"
                        for k, (lo, hi) in published["months_by_region"].items())
    mortgage_readme = [
        "Personal residential-mortgage NPL sample 个人住房抵押不良贷款样例 (synthetic) — npl-xl",
        "A SYNTHETIC pool shaped like China's personal-mortgage NPL ABS (the 建鑫 deals of China Construction "
        "Bank) and China Bond Rating's study of 50 such deals (中债资信ABS团队《证券化评级视角下个贷抵押类不良贷款"
        "回收影响因素分析》). No loan here is real. 本表数据为模拟生成，非真实贷款。",
        f"Generated by workbooks/sample_mortgage.py with numpy.random.default_rng({sample_mortgage.SEED}); knobs are "
        "constants at the top of that script; workbooks/build_workbooks.py writes this workbook.",
        f"By construction: {mfig['loans']:,} loans, claims {mfig['claims'] / 1e8:.2f}亿 CNY, residential "
        f"{mfig['residential_share_of_claims']:.1%} of claims (rest commercial), weighted LTV (claim / appraisal) "
        f"{mfig['weighted_ltv']:.1%} (published 83.6%-106.2%); defects on "
        + ", ".join(f"{d} {x:.1%}" for d, x in mfig["defect_shares"].items())
        + " of loans (pre_registration as published 23.6%-26.5%; the others assumed).",
        f"Not calibrated — what the packaged assumptions give: expected recovery {mfig['recovery_rate']:.1%} of "
        f"claims (published: 60.70% for pools over 90% residential, 58.03% for personal-mortgage NPL ABS); "
        f"cumulative by years 1-5 {by_year} (published {by_year_published}); commercial property "
        f"{mfig['commercial_extra_months']:.1f} months slower than the same loan as residential (published 3-6); "
        f"{regions}. docs/MODEL.md explains the differences.",
        f"Tranches as in the 建鑫 mortgage deals: senior {mortgage_tranches[0][2] / 1e8:.2f}亿 "
        f"({sample_mortgage.SENIOR_SHARE_OF_RECOVERY:.0%} of the valued expected recovery) at "
        f"{sample_mortgage.SENIOR_COUPON:.2%}, subordinated {mortgage_tranches[1][2] / 1e8:.2f}亿 "
        f"({sample_mortgage.SUB_SHARE_OF_RECOVERY:.0%}).",
        "Run it: npl-xl run workbooks/sample_mortgage.xlsx ; data quality: npl-xl validate workbooks/sample_mortgage.xlsx",
        "",
    ] + COMMON_README

    jobs = [
        ("npl_template.xlsx", TEMPLATE_TAPE, TEMPLATE_TRANCHES, {}, template_readme, True, 1000, None),
        ("sample_deal.xlsx", tape, SAMPLE_TRANCHES, SAMPLE_SETTINGS, sample_readme, False, 2000,
         history),
        ("sample_mortgage.xlsx", mortgage, mortgage_tranches, sample_mortgage.SETTINGS, mortgage_readme,
         False, 1000, None),
    ]
    for name, job_tape, tranches, settings, readme, with_formula, sims, collections in jobs:
        out = args.out / name
        structuring = name == "sample_deal.xlsx"
        if args.no_recalc:
            build(out, job_tape, tranches, settings, readme, with_formula, sims, collections, structuring)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                raw = Path(tmp) / name
                build(raw, job_tape, tranches, settings, readme, with_formula, sims, collections, structuring)
                _recalc(raw, out)
        print(f"wrote {out}")
    print(f"sample pool calibration: {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
