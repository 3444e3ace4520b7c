"""The deal's Tranches and Settings tables, parsed and checked.

Tranches (workbook table ``Tranches``): one row per tranche with columns name, kind
(senior / mezzanine / subordinated, English or Chinese), balance (currency), coupon (annual
decimal, 0.0348 = 3.48%) and issue_price (currency paid for the tranche, default = balance;
a quote per 100 of face is accepted: issue_price <= 1,000 on a balance above 10,000 means
per 100, so 108 on 1,002m is 1,082.16m; any other price below a tenth of the balance is an
error naming the cell). Optional columns: pari_group (a label; adjacent rows of one kind with
the same label share interest pro rata to interest due) and principal (``sequential``,
default, or ``pro_rata``: how a pari-passu group shares principal). Rows must run from senior
to subordinated: the waterfall pays kinds in that order and, within a kind, tranches (groups)
in table order.

Settings (workbook table ``Settings``): two columns, key and value. Every key, its Chinese
alias, default and unit is in :data:`SETTINGS`; an unknown key is ``#N/A``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, fields, make_dataclass, replace
from typing import Any

import numpy as np

from npl_xl.checks import Interval, check_number, outside_message
from npl_xl.inputs.cells import rows_of_table
from npl_xl.inputs.codes import normalise
from npl_xl.errors import DomainError, InputTypeError, TableError, UnknownCodeError

__all__ = ["Tranche", "Tranches", "DealSettings", "SETTINGS", "KIND_SENIOR", "KIND_MEZZANINE",
           "KIND_SUBORDINATED", "parse_tranches", "parse_settings", "parse_scheduler"]

KIND_SENIOR, KIND_MEZZANINE, KIND_SUBORDINATED = 0, 1, 2
KIND_NAMES = ("senior", "mezzanine", "subordinated")

_KIND_ALIASES = {
    KIND_SENIOR: ["senior", "sen", "a", "class a", "优先", "优先档", "优先级", "优先a", "优先a档"],
    KIND_MEZZANINE: ["mezzanine", "mezz", "mez", "b", "class b", "中间", "中间档", "中间级",
                     "夹层", "夹层档", "优先b", "优先b档"],
    KIND_SUBORDINATED: ["subordinated", "sub", "junior", "equity", "c", "class c", "次级",
                        "次级档", "劣后", "劣后级", "权益"],
}


def _norm(text: Any) -> str:
    """Comparison key of a code or header: :func:`npl_xl.inputs.codes.normalise`."""
    return normalise(text)


_KIND_LOOKUP = {_norm(alias): kind for kind, names in _KIND_ALIASES.items() for alias in names}


def parse_kind(value: Any) -> int:
    """Tranche kind code (0 senior, 1 mezzanine, 2 subordinated) from English or Chinese text."""
    kind = _KIND_LOOKUP.get(_norm(value)) if isinstance(value, str) else None
    if kind is None:
        raise UnknownCodeError(
            f"unknown tranche kind {value!r}; use senior (优先), mezzanine (中间) or "
            "subordinated (次级)", argument="kind")
    return kind


@dataclass(frozen=True)
class Tranche:
    """One tranche: name, kind code, original balance B0 (currency), annual coupon (decimal),
    issue price (currency; the IRR is measured against it)."""

    name: str
    kind: int
    balance: float
    coupon: float
    issue_price: float
    #: pari-passu group label (None: a group of its own)
    pari_group: str | None = None
    #: TRUE: the pari-passu group shares principal pro rata to balance (else sequentially)
    pro_rata: bool = False
    #: TRUE when the coupon cell was blank (a subordinated tranche's PV then discounts at
    #: the settings' sub_return_rate)
    coupon_blank: bool = False

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[self.kind]

    def discount_rate(self, sub_return_rate: float) -> float:
        """Annual rate (decimal, compounded per payment period) at which the tranche's PV is
        taken: its coupon; for a subordinated tranche with a blank coupon, sub_return_rate."""
        if self.kind == KIND_SUBORDINATED and self.coupon_blank:
            return float(sub_return_rate)
        return self.coupon

    @property
    def rated(self) -> bool:
        """Subordinated tranches are not rated ("NR"), as Chinese agencies do not rate them."""
        return self.kind != KIND_SUBORDINATED


@dataclass(frozen=True)
class Tranches:
    """The tranche table in waterfall order, with array views for the kernels."""

    items: tuple[Tranche, ...]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.items]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """kind (int64), balance, coupon, issue_price (float64), each shape (n_tranches,)."""
        return (np.array([t.kind for t in self.items], dtype=np.int64),
                np.array([t.balance for t in self.items], dtype=np.float64),
                np.array([t.coupon for t in self.items], dtype=np.float64),
                np.array([t.issue_price for t in self.items], dtype=np.float64))

    def groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Pari-passu structure for the kernels: ``group`` (int64, per tranche the index of
        the first tranche of its group; groups are runs of adjacent rows) and ``pro_rata``
        (int64 0/1, per tranche its group's principal rule)."""
        group = np.arange(len(self.items), dtype=np.int64)
        for j in range(1, len(self.items)):
            here, before = self.items[j], self.items[j - 1]
            if here.pari_group is not None and here.pari_group == before.pari_group:
                group[j] = group[j - 1]
        pro_rata = np.array([int(self.items[g].pro_rata) for g in group], dtype=np.int64)
        return group, pro_rata

    def discount_rates(self, sub_return_rate: float) -> np.ndarray:
        """Per tranche the annual rate of its PV (see :meth:`Tranche.discount_rate`)."""
        return np.array([t.discount_rate(sub_return_rate) for t in self.items], dtype=np.float64)


_TRANCHE_COLUMNS = {
    "name": ["name", "tranche", "class", "名称", "档次", "证券名称", "分档"],
    "kind": ["kind", "type", "seniority", "类型", "级别", "层级", "偿付顺序"],
    "balance": ["balance", "amount", "principal", "size", "金额", "本金", "余额", "发行金额", "规模"],
    "coupon": ["coupon", "rate", "coupon rate", "票面利率", "利率", "票息"],
    "issue_price": ["issue price", "price", "发行价格", "价格", "认购价格"],
    "pari_group": ["pari group", "pari passu", "pari passu group", "同顺位", "同顺位组", "平行组"],
    "principal_rule": ["principal rule", "principal payment", "本金偿付方式", "本金分配"],
}
_TRANCHE_LOOKUP = {_norm(a): col for col, names in _TRANCHE_COLUMNS.items() for a in names}
_POSITIVE = Interval(0.0, low_open=True)
#: A tranche's coupon: an annual decimal (0.0348 = 3.48%).
_COUPON = Interval(0.0, 1.0, high_open=True)


def _cell_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_tranches(table: Any) -> Tranches:
    """Parse the Tranches table (header row, then one row per tranche).

    Accepts a list of rows (as the registry's ``table`` kind passes it), a pandas DataFrame,
    or a :class:`Tranches` (returned unchanged). All problems are reported at once: one
    problem raises its own error class (``#NUM!`` for an impossible number, ``#N/A`` for an
    unknown kind); several raise :class:`~npl_xl.errors.TableError` (``#VALUE!``).

    Examples
    --------
    >>> from npl_xl import parse_tranches
    >>> tranches = parse_tranches([["名称", "类型", "金额", "利率"],
    ...                            ["优先A", "优先", 400_000, 0.03], ["次级", "次级", 200_000, 0]])
    >>> tranches.names, [t.kind_name for t in tranches]
    (['优先A', '次级'], ['senior', 'subordinated'])
    """
    if isinstance(table, Tranches):
        return table
    if hasattr(table, "columns") and hasattr(table, "to_numpy"):
        table = rows_of_table(table)
    rows = [list(r) for r in (table or []) if any(c is not None and str(c).strip() != "" for c in r)]
    if len(rows) < 2:
        raise InputTypeError("needs a header row and at least one tranche", argument="tranches")
    header = rows[0]
    columns: dict[str, int] = {}
    problems: list[tuple[type, str]] = []
    principal_header = None
    for j, title in enumerate(header):
        if title is None:
            continue
        if _norm(title) == _norm("principal"):
            principal_header = j  # the balance, unless another column is (then the rule)
            continue
        col = _TRANCHE_LOOKUP.get(_norm(title))
        if col is not None and col not in columns:
            columns[col] = j
    if principal_header is not None:
        columns.setdefault("principal_rule" if "balance" in columns else "balance",
                           principal_header)
    for col in ("name", "kind", "balance"):
        if col not in columns:
            problems.append((InputTypeError, f"the header row has no {col!r} column"))
    if problems:
        _raise(problems)
    items = []
    seen: set[str] = set()
    last_kind = KIND_SENIOR
    for r, row in enumerate(rows[1:], start=2):
        def cell(col):
            j = columns.get(col)
            return row[j] if j is not None and j < len(row) else None

        name = cell("name")
        name = str(name).strip() if name is not None else ""
        label = f"row {r}" + (f" ({name})" if name else "")
        if not name:
            problems.append((InputTypeError, f"{label}: the name is blank"))
        elif name in seen:
            problems.append((InputTypeError, f"{label}: the name {name!r} is used twice"))
        seen.add(name)
        try:
            kind = parse_kind(cell("kind"))
        except UnknownCodeError as exc:
            problems.append((UnknownCodeError, f"{label}: {exc.detail}"))
            kind = None
        if kind is not None:
            if kind < last_kind:
                problems.append((TableError,
                                 f"{label}: a {KIND_NAMES[kind]} tranche after a "
                                 f"{KIND_NAMES[last_kind]} one; list tranches from senior to "
                                 "subordinated (the waterfall order)"))
            last_kind = max(last_kind, kind)
        balance = _cell_number(cell("balance"))
        if balance is None:
            problems.append((InputTypeError, f"{label}: balance {cell('balance')!r} is not a number"))
        elif balance not in _POSITIVE:
            problems.append((DomainError, f"{label}: balance {outside_message(balance, _POSITIVE)}"))
        raw_coupon = cell("coupon")
        coupon = 0.0 if raw_coupon is None else _cell_number(raw_coupon)
        if coupon is None:
            problems.append((InputTypeError, f"{label}: coupon {raw_coupon!r} is not a number"))
        elif coupon not in _COUPON:
            hint = f" (an annual decimal: for {coupon:g}% enter {coupon / 100:g})" if coupon >= 1 else ""
            problems.append((DomainError,
                             f"{label}: coupon {outside_message(coupon, _COUPON)}{hint}"))
        raw_price = cell("issue_price")
        price = balance if raw_price is None else _cell_number(raw_price)
        if raw_price is not None and price is None:
            problems.append((InputTypeError, f"{label}: issue_price {raw_price!r} is not a number"))
        elif raw_price is not None and price not in _POSITIVE:
            problems.append((DomainError, f"{label}: issue_price {outside_message(price, _POSITIVE)}"))
        elif raw_price is not None and balance is not None and balance > 0:
            price, problem = _issue_price(price, balance, label)
            if problem:
                problems.append((DomainError, problem))
        group = cell("pari_group")
        group = None if group is None or str(group).strip() == "" else _norm(str(group))
        rule = cell("principal_rule")
        rule_key = "" if rule is None else _norm(str(rule))
        if rule_key not in _PRINCIPAL_RULES:
            problems.append((DomainError, f"{label}: principal {rule!r} is not sequential or "
                                          "pro_rata"))
        if not problems:
            items.append(Tranche(name, kind, balance, coupon, price, pari_group=group,
                                 pro_rata=_PRINCIPAL_RULES.get(rule_key, False),
                                 coupon_blank=raw_coupon is None))
    if not problems:
        problems = _check_groups(items)
    if problems:
        _raise(problems)
    return Tranches(tuple(items))


_PRINCIPAL_RULES = {"": False, "sequential": False, "seq": False, "顺序": False,
                    "顺序偿付": False, "prorata": True, "按比例": True, "按比例偿付": True}

#: issue_price at or below this on a balance above PER_100_MIN_BALANCE is a quote per 100.
PER_100_MAX_QUOTE = 1000.0
PER_100_MIN_BALANCE = 10000.0


def _issue_price(price: float, balance: float, label: str) -> tuple[float, str | None]:
    """The issue price in currency: a quote per 100 of face (price <= 1,000 on a balance
    above 10,000) is converted; another price below a tenth of the balance is a problem."""
    if price <= PER_100_MAX_QUOTE and balance > PER_100_MIN_BALANCE:
        return price / 100.0 * balance, None
    if price < 0.1 * balance:
        return price, (f"{label}: issue_price {price:g} is below a tenth of the balance "
                       f"{balance:g}; enter the price in currency or per 100 of face")
    return price, None


def _check_groups(items: list[Tranche]) -> list[tuple[type, str]]:
    """A pari-passu group is a run of adjacent rows of one kind with one principal rule."""
    problems = []
    seen_closed: set[str] = set()
    for j, t in enumerate(items):
        if t.pari_group is None:
            continue
        before = items[j - 1] if j else None
        continuing = before is not None and before.pari_group == t.pari_group
        if not continuing and t.pari_group in seen_closed:
            problems.append((TableError, f"{t.name}: pari_group {t.pari_group!r} is not on "
                                         "adjacent rows; list a group's tranches together"))
        if continuing and before.kind != t.kind:
            problems.append((TableError, f"{t.name}: pari_group {t.pari_group!r} mixes "
                                         f"{before.kind_name} and {t.kind_name} tranches"))
        if continuing and before.pro_rata != t.pro_rata:
            problems.append((TableError, f"{t.name}: pari_group {t.pari_group!r} mixes "
                                         "sequential and pro_rata principal"))
        seen_closed.add(t.pari_group)
    return problems


def _raise(problems: list[tuple[type, str]], argument: str = "tranches"):
    if len(problems) == 1:
        cls, message = problems[0]
        if cls is TableError:
            raise TableError([message], argument=argument)
        raise cls(message, argument=argument)
    raise TableError([m for _, m in problems], argument=argument)


# --------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class _Key:
    name: str
    kind: str          # "int", "float", "bool", "choice" (one of ``choices``), "unit" (money unit: 元 per unit), "date" (Excel serial)
    default: Any
    low: float | None = None        # inclusive bounds
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    aliases: tuple[str, ...] = ()
    doc: str = ""
    choices: tuple[str, ...] = ()   # for kind "choice": the accepted values, default first

    @property
    def interval(self) -> Interval:
        """The values allowed (:mod:`npl_xl.checks`)."""
        return Interval(self.low, self.high, self.low_open, self.high_open)


#: Every settings key: type, default, allowed range, Chinese aliases and meaning (units).
SETTINGS: tuple[_Key, ...] = (
    _Key("n_sims", "int", 10000, 4, 2_000_000, aliases=("模拟次数", "模拟路径数"),
         doc="Monte Carlo paths (memory: 8 bytes x paths x periods); rounded up to a multiple "
             "of 4 with variance reduction"),
    _Key("seed", "int", 0, 0, 2**63 - 1, aliases=("随机种子", "种子"), doc="random seed, whole number >= 0"),
    _Key("rho", "float", 0.15, 0.0, 1.0, aliases=("相关系数", "系统相关性"),
         doc="asset correlation of the one-factor Gaussian copula, decimal"),
    _Key("region_weight", "float", 1.0, 0.0, 1.0, aliases=("全国因子权重", "区域权重"),
         doc="weight w of the national factor in M = sqrt(w) M_nat + sqrt(1-w) M_region; "
             "1 = national factor only"),
    _Key("cap_at_expected", "bool", False, aliases=("回收上限", "封顶预期回收"),
         doc="TRUE: each loan's recovery is min(simulated, expected)"),
    _Key("timing_sd_months", "float", 3.0, 0.0, 600.0, aliases=("回收时间标准差", "时间标准差"),
         doc="sd of each loan's recovery date, months; 0 = deterministic dates"),
    _Key("timing_stress", "float", 0.0, 0.0, 5.0, aliases=("时间压力系数", "时间压力"),
         doc="opt-in timing stress lambda, default 0 (off): each loan's expected months are "
             "multiplied by exp(lambda max(0, -M)), so bad systematic states are slower "
             "(0.25: a 1-sd bad state is 28% slower); with 0 and timing_sd_months 0 the "
             "dates are deterministic"),
    _Key("payment_months", "float", 6.0, 0.0, 120.0, low_open=True, aliases=("支付间隔", "支付频率月"),
         doc="months between payment dates"),
    _Key("legal_final_months", "float", 60.0, 0.0, 1200.0, low_open=True,
         aliases=("法定到期", "法定到期月"), doc="legal final maturity, months after closing"),
    _Key("tax_rate", "float", 0.0336, 0.0, 1.0, high_open=True, aliases=("税率", "税费率"),
         doc="trust taxes as a share of gross collections (3% VAT x 1.12 surcharges): tax on "
             "gross collections, a conservative simplification of the trust's taxable income; "
             "with tax_base interest, a share of the recoveries above principal only"),
    _Key("tax_base", "choice", "collections", aliases=("计税基础", "税基"),
         choices=("collections", "interest"),
         doc="what tax_rate is charged on: collections (default: all collections) or interest "
             "(needs the tape's principal column, 未偿本金: each loan's recoveries pay its "
             "principal first and only the part above principal is taxed)"),
    _Key("fixed_expenses", "float", 0.0, 0.0, None, aliases=("固定费用", "优先费用"),
         doc="senior fixed expenses per payment period, currency"),
    _Key("servicer_fee_rate", "float", 0.0, 0.0, 1.0, high_open=True,
         aliases=("服务费率", "基本服务费率"), doc="servicer base fee, share of collections"),
    _Key("reserve_multiple", "float", 1.5, 0.0, 100.0, aliases=("储备金倍数", "流动性储备倍数"),
         doc="target reserve = multiple x (next period's taxes and servicer fee on the "
             "forecast collections + fixed expenses + senior interest on the balances after "
             "this period's principal)"),
    _Key("initial_reserve", "float", 0.0, 0.0, None, aliases=("储备金初始金额", "初始储备金"),
         doc="reserve account balance funded at closing, currency"),
    _Key("liquidity_limit", "float", 0.0, 0.0, None, aliases=("流动性支持额度", "流动性额度"),
         doc="external liquidity facility limit, currency"),
    _Key("sub_return_rate", "float", 0.0, 0.0, 1.0, high_open=True,
         aliases=("次级期间收益率", "次级固定收益率"),
         doc="subordinated fixed return, annual decimal on the subordinated balance"),
    _Key("excess_fee_share", "float", 0.0, 0.0, 1.0, aliases=("超额奖励服务费比例", "超额服务费比例"),
         doc="excess servicing fee, share of what remains after the subordinated return"),
    _Key("discount_rate", "float", 0.10, -1.0, 10.0, low_open=True, aliases=("折现率",),
         doc="annual effective rate, two uses: the present value of the simulated pool "
             "collections on the Results sheet (Run Simulation), and a target IRR added to "
             "the Price Bid macro's grid (beside 8-20%); NPL_BID_PRICE does not use it (its "
             "target_irr is an argument)"),
    _Key("variance_reduction", "bool", True, aliases=("方差缩减",),
         doc="antithetic idiosyncratic draws and a stratified national factor"),
    _Key("bid_net_of_servicing", "bool", True, aliases=("报价扣除服务费",),
         doc="NPL_BID_PRICE: deduct servicer_fee_rate x collections from the buyer's cash"),
    _Key("bid_horizon_months", "float", 240.0, 0.0, 1200.0, low_open=True,
         aliases=("报价回收期限", "报价期限月"),
         doc="NPL_BID_PRICE and Price Bid: months after closing up to which the package buyer "
             "counts recoveries (replaces legal_final_months, which binds the ABS only)"),
    _Key("liquidity_rate", "float", 0.0, 0.0, 1.0, aliases=("流动性支持利率", "流动性利率"),
         doc="annual interest on liquidity-facility advances, decimal, accrued per payment "
             "period on the advances outstanding and paid before their repayment"),
    _Key("mezz_interest", "choice", "after_senior_principal", aliases=("中间档利息顺序",),
         choices=("after_senior_principal", "before_senior_principal"),
         doc="position of mezzanine interest: after_senior_principal (default) or "
             "before_senior_principal (after senior interest, before the reserve and senior "
             "principal); a CCR breach or, with eod_trigger, an event of default moves it back "
             "after senior principal"),
    _Key("eod_trigger", "bool", False, aliases=("违约事件触发", "违约触发"),
         doc="TRUE: after an event of default (senior interest missed) the post-default order "
             "applies: fees, senior interest and principal until repaid, then the rest "
             "(mezzanine interest, the deferred fees, the excess servicing fee wait)"),
    _Key("ccr_trigger", "float", 0.0, 0.0, 10.0, aliases=("累计回收率触发", "累计回收比例触发"),
         doc="cumulative collection ratio trigger, decimal (0.85), 0 = off: while cumulative "
             "collections / the issuance forecast to date is below it, mezzanine interest is "
             "paid after senior principal and deferred_fee_share of the servicer fee waits "
             "until the senior is repaid"),
    _Key("deferred_fee_share", "float", 0.0, 0.0, 1.0, aliases=("递延服务费比例",),
         doc="share of the servicer base fee deferred while the CCR trigger is breached, "
             "decimal; paid after senior principal once the seniors are repaid"),
    _Key("bid_with_stresses", "bool", False, aliases=("报价含压力",),
         doc="NPL_BID_PRICE and Price Bid: TRUE applies the rating stresses cap_at_expected "
             "and timing_stress to the buyer's collections; FALSE (default) prices the "
             "unstressed base case"),
    _Key("money_unit", "unit", 1.0, aliases=("金额单位", "货币单位"),
         doc="the workbook's currency unit: 元 (default), 千元, 万元, 百万元, 亿元, or the number of "
             "元 per unit; tape money columns whose header states a unit, (万元), are converted "
             "into it, the others are taken as already in it"),
    _Key("appraisal_haircut_per_year", "float", 0.0, 0.0, 1.0, high_open=True,
         aliases=("评估价值年折扣", "评估折扣率"),
         doc="opt-in ageing of old appraisals, decimal per year, default 0 (off): collateral_value "
             "x (1 - h) ^ (years from appraisal_date to cut_off_date)"),
    _Key("cut_off_date", "date", None, aliases=("封包日", "基准日"),
         doc="the pool's cut-off date (封包日; Excel date or 2024-03-05): the appraisals' age "
             "for appraisal_haircut_per_year and the data-quality report"),
    _Key("as_of_months", "float", 0.0, 0.0, 1200.0, aliases=("报告日", "跟踪月份", "报告月份"),
         doc="surveillance report date, months after closing; 0 = issuance; a re-projection "
             "from it needs a payment date (a multiple of payment_months)"),
    _Key("overdue_months", "float", 6.0, 0.0, 600.0, low_open=True, aliases=("逾期回收月数",),
         doc="surveillance: an open loan already past its expected month is expected within "
             "this many more months"),
    _Key("reserve_balance", "float", None, 0.0, None, aliases=("储备金余额", "报告日储备金余额"),
         doc="surveillance: the reserve account at the report date, currency; blank = the "
             "deterministic waterfall of the booked collections (initial_reserve at issuance)"),
    _Key("closing_date", "date", None, aliases=("信托生效日", "起算日", "成立日"),
         doc="the deal's closing date (Excel date or ISO text), to turn Collections dates "
             "into months after closing"),
    _Key("target_stderr", "float", None, 0.0, 1.0, low_open=True,
         aliases=("目标标准误", "目标标准误差"),
         doc="blank = off; else NPL_TRANCHE_EL, NPL_TRANCHE_SIZE, NPL_SENSITIVITY and Run "
             "Simulation use as many paths as it takes for the first senior tranche's "
             "el_stderr (decimal of par) to be at or below it, from n_sims up to max_sims"),
    _Key("max_sims", "int", 1_000_000, 4, 2_000_000, aliases=("最大模拟次数",),
         doc="most paths the target_stderr rule may use"),
    _Key("scheduler", "text", None, aliases=("调度器", "集群"),
         doc="where the paths are simulated: blank = in this process; local or local:N = a "
             "Dask LocalCluster of N worker processes on this machine (local = one per "
             "core); tcp://HOST:PORT = an existing Dask cluster (pip install npl-xl[cluster]; "
             "docs/CLUSTER.md); the figures are identical, bit for bit, whichever"),
    _Key("block_paths", "int", None, 4, 1_000_000, aliases=("分块路径数",),
         doc="paths per block (a unit of work and of progress; a task on a cluster), rounded "
             "up to a multiple of 4; blank = automatic (2048, or fewer on a cluster so every "
             "worker gets several blocks); the figures do not depend on it"),
    _Key("audit", "bool", False, aliases=("审计轨迹", "瀑布审计"),
         doc="TRUE: Run Simulation (ribbon and npl-xl run) also writes the Audit sheet: the "
             "period-by-period waterfall (every step, account and trigger state) of the base "
             "case and of audit_paths, as npl-xl run --audit does"),
    _Key("audit_paths", "text", None, aliases=("审计路径",),
         doc="simulated paths (0 = the first) added to the Audit sheet, e.g. 0,17; blank = "
             "the base case only"),
)
_KEY_LOOKUP = {}
for _k in SETTINGS:
    for _alias in (_k.name,) + _k.aliases:
        _KEY_LOOKUP[_norm(_alias)] = _k
_HEADER_WORDS = {"key", "keys", "setting", "settings", "name", "parameter", "参数", "项目", "键", "设置"}


class _SettingsMethods:
    """Behaviour of :class:`DealSettings`; its fields are generated from :data:`SETTINGS`."""

    def with_overrides(self, **values) -> "DealSettings":
        """A copy with the given keys replaced (None values ignored), checked."""
        given = {k: v for k, v in values.items() if v is not None}
        return parse_settings({**self.as_dict(), **given})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def period_dates(self) -> np.ndarray:
        """Payment dates in months after closing, shape (n_periods,): every payment_months,
        the last one on the legal final date."""
        n = int(math.ceil(self.legal_final_months / self.payment_months - 1e-9))
        dates = np.minimum(np.arange(1, n + 1) * self.payment_months, self.legal_final_months)
        return dates

    @property
    def n_periods(self) -> int:
        return len(self.period_dates)

    def for_bid(self) -> "DealSettings":
        """These settings as a whole-package buyer sees them: the collections run to
        bid_horizon_months instead of the securitisation's legal_final_months, and, unless
        bid_with_stresses, without the rating stresses cap_at_expected and timing_stress
        (the buyer prices the unstressed base case)."""
        if self.bid_with_stresses:
            return replace(self, legal_final_months=self.bid_horizon_months)
        return replace(self, legal_final_months=self.bid_horizon_months,
                       cap_at_expected=False, timing_stress=0.0)


_PY_TYPES = {"int": int, "float": float, "bool": bool, "choice": str, "unit": float, "date": float,
             "text": str}

#: The deal's settings, one field per :data:`SETTINGS` key with that key's default: the keys'
#: only source (add a key there and it is a field here, a row of the template's Settings table
#: and a line of docs/FUNCTIONS.md).
DealSettings = make_dataclass(
    "DealSettings",
    [(k.name, _PY_TYPES[k.kind] if k.default is not None else _PY_TYPES[k.kind] | None,
      field(default=k.default)) for k in SETTINGS],
    bases=(_SettingsMethods,), frozen=True)
DealSettings.__module__ = __name__
DealSettings.__doc__ = "Settings with defaults (see :data:`SETTINGS` for units and meaning)."


def _convert_setting(key: _Key, value: Any) -> Any:
    from npl_xl.inputs.cells import to_bool

    if key.kind == "bool":
        return to_bool(value, key.name)
    if key.kind == "choice":
        wanted = _norm(value) if isinstance(value, str) else None
        for choice in key.choices:
            if wanted == _norm(choice):
                return choice
        raise DomainError(f"must be one of {', '.join(key.choices)}, got {value!r}",
                          argument=key.name)
    if key.kind == "unit":
        from npl_xl.inputs.headers import money_unit_factor

        return money_unit_factor(value, key.name)
    if key.kind == "date":
        from npl_xl.inputs.tape import parse_date

        try:
            serial = (parse_date(value) - dt.datetime(1899, 12, 30)).total_seconds() / 86400.0
        except ValueError as exc:
            raise InputTypeError(str(exc), argument=key.name) from None
        return serial
    if key.kind == "text":
        return _convert_text_setting(key, value)
    number = _cell_number(value) if not isinstance(value, str) else None
    if number is None:
        if isinstance(value, str):
            text = value.strip()
            if not text.isascii():
                # float() reads full-width digits (１０), the Tape does not: neither does this
                raise InputTypeError(f"{value!r} where a number is required (type it with "
                                     "half-width digits 0-9, as a number)", argument=key.name)
            try:
                number = float(text.rstrip("%")) / (100.0 if text.endswith("%") else 1.0)
            except ValueError:
                number = None
            if number is not None and not math.isfinite(number):
                raise DomainError(f"{value!r} is not a finite number", argument=key.name)
        if number is None:
            raise InputTypeError(f"{value!r} where a number is required", argument=key.name)
    if key.kind == "int":
        if number != int(number):
            raise DomainError(f"must be a whole number, got {number:g}", argument=key.name)
        number = int(number)
    check_number(number, key.interval, key.name)
    return number


def _convert_text_setting(key: _Key, value: Any) -> str:
    if (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and float(value).is_integer()):
        value = str(int(value))  # a whole number typed in a text cell (audit_paths 17) is text
    if not isinstance(value, str):
        raise InputTypeError(f"{value!r} where text is required", argument=key.name)
    text = value.strip()
    if key.name == "scheduler":
        parse_scheduler(text)
    return text


def parse_scheduler(text: str | None) -> tuple[str, int | str | None]:
    """The ``scheduler`` setting (or ``--scheduler``) as (kind, detail).

    Returns ("", None) for blank (in this process); ("local", N) for ``local:N`` (N worker
    processes) and ("local", None) for ``local`` (one per core); ("tcp", "tcp://HOST:PORT")
    for an existing cluster. Raises DomainError naming ``scheduler`` for anything else.
    """
    raw = "" if text is None else str(text).strip()
    lowered = raw.lower()
    if lowered == "":
        return "", None
    if lowered == "local":
        return "local", None
    if lowered.startswith("local:"):
        count = lowered[len("local:"):].strip()
        if count.isdigit() and 1 <= int(count) <= 1024:
            return "local", int(count)
        raise DomainError(f"local:N needs a whole number of workers from 1 to 1024, got {raw!r}",
                          argument="scheduler")
    if lowered.startswith("tcp://"):
        host, sep, port = raw[len("tcp://"):].rpartition(":")
        if sep and host and port.isdigit() and 0 < int(port) < 65536:
            return "tcp", raw
        raise DomainError(f"a cluster address is tcp://HOST:PORT, got {raw!r}", argument="scheduler")
    raise DomainError(f"must be blank (in this process), local, local:N or tcp://HOST:PORT, "
                      f"got {raw!r}", argument="scheduler")


def parse_settings(table: Any = None) -> DealSettings:
    """Parse the Settings table into :class:`DealSettings`.

    ``table`` is None (all defaults), a mapping key -> value, a :class:`DealSettings`, or a
    two-column range (list of rows) of key and value; a first row whose key is a header word
    ("key", "setting", "参数", ...) is skipped; rows with a blank key are skipped; a blank value
    keeps the default. Keys are case-, width- and space-insensitive and may be Chinese.

    Raises
    ------
    UnknownCodeError
        ``#N/A`` for an unknown key (named in the message).
    TableError
        ``#VALUE!`` when a key is given twice (also as an alias: rho and 相关系数), naming
        both rows (1-based within the range) and both spellings.
    DomainError, InputTypeError
        A value outside its range or of the wrong type, naming the key.

    Examples
    --------
    >>> from npl_xl import parse_settings
    >>> settings = parse_settings([["key", "value"], ["rho", 0.2], ["模拟次数", 2000]])
    >>> settings.rho, settings.n_sims, settings.n_periods   # 60 months, paid every 6
    (0.2, 2000, 10)
    """
    if table is None:
        return DealSettings()
    if isinstance(table, DealSettings):
        return table
    if isinstance(table, dict):
        pairs = [(None, k, v) for k, v in table.items()]
    else:
        pairs = []
        for r, row in enumerate(table):
            row = list(row) if isinstance(row, (list, tuple)) else [row]
            if not row or row[0] is None or str(row[0]).strip() == "":
                continue
            if len(row) < 2:
                raise InputTypeError("must have two columns: key and value", argument="settings")
            if r == 0 and _norm(row[0]) in _HEADER_WORDS:
                continue
            pairs.append((r + 1, row[0], row[1]))
    values: dict[str, Any] = {}
    first: dict[str, tuple[int | None, Any]] = {}
    duplicates: list[str] = []
    for row_number, raw_key, value in pairs:
        key = _KEY_LOOKUP.get(_norm(raw_key))
        if key is None:
            raise UnknownCodeError(
                f"unknown settings key {raw_key!r}; known keys: "
                + ", ".join(k.name for k in SETTINGS), argument="settings")
        if key.name in first:
            earlier_row, earlier_key = first[key.name]
            where = f"rows {earlier_row} and {row_number}" if row_number else "two entries"
            duplicates.append(f"{where} both set {key.name} ({earlier_key!r} and {raw_key!r}); "
                              "keep one")
            continue
        first[key.name] = (row_number, raw_key)
        if value is None or (isinstance(value, str) and value.strip() == ""):
            continue
        values[key.name] = _convert_setting(key, value)
    if duplicates:
        raise TableError(duplicates, argument="settings")
    settings = DealSettings(**values)
    if settings.legal_final_months < settings.payment_months:
        raise DomainError(
            f"must be at least payment_months ({settings.payment_months:g}), got "
            f"{settings.legal_final_months:g}", argument="legal_final_months")
    if settings.bid_horizon_months < settings.payment_months:
        raise DomainError(
            f"must be at least payment_months ({settings.payment_months:g}), got "
            f"{settings.bid_horizon_months:g}", argument="bid_horizon_months")
    longest = max(settings.legal_final_months, settings.bid_horizon_months)
    if longest / settings.payment_months > MAX_PERIODS:
        raise DomainError(
            f"gives {math.ceil(longest / settings.payment_months):,} payment periods up to "
            f"{longest:g} months, over the limit of {MAX_PERIODS:,} (the simulation holds "
            f"paths x periods numbers); use at least {longest / MAX_PERIODS:g} months, got "
            f"{settings.payment_months:g}", argument="payment_months")
    return settings


#: Most payment periods a deal may have (monthly payments over the longest horizon allowed,
#: 1,200 months): the collections array is n_sims x periods x 8 bytes.
MAX_PERIODS = 1200
