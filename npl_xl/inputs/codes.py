"""Codes typed into cells — provinces, stages, collateral types, defects — in one normaliser.

Analysts type codes in English or Chinese, in any case, in half- or full-width characters,
with or without administrative suffixes: 浙江 = 浙江省 = Zhejiang = ZJ = ｚｊ. Every code
argument and tape column goes through :func:`normalise` and a :class:`CodeSet` here, so
the whole package accepts the same spellings and rejects the same typos with the same
message (:class:`~npl_xl.errors.UnknownCodeError`, ``#N/A`` in a cell).

Canonical codes are English: the province's English name ("Zhejiang"), and the snake-case
codes of the contract for stages ("auction_1"), collateral types ("residential") and
defects ("sole_residence").
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from npl_xl.errors import UnknownCodeError

__all__ = ["normalise", "CodeSet", "PROVINCES", "STAGES", "COLLATERAL_TYPES", "DEFECTS",
           "TIERS", "STAGE_CODES", "COLLATERAL_CODES", "DEFECT_CODES", "SECURED_TYPES",
           "CODE_SPLIT", "split_codes"]

#: The packaged assumption tables (UTF-8 CSV, one table per file).
DATA_DIR = Path(__file__).resolve().parent / "data"

_PUNCT = re.compile(r"[\s_\-\.'’·•()（）]+")

#: What separates several codes typed in one cell: , ; / | or a line break, half or full
#: width (，；、).
CODE_SPLIT = re.compile(r"[,;，；、/|\n]+")


def split_codes(text: str) -> list[str]:
    """The codes of one cell, stripped, blanks dropped: ``"a, b；c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in CODE_SPLIT.split(text) if part.strip()]


def normalise(text: object) -> str:
    """The comparison key of a code: NFKC (full width -> half width), case-folded, and
    without spaces, underscores, hyphens, dots, apostrophes and brackets."""
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    return _PUNCT.sub("", folded)


class CodeSet:
    """A closed set of canonical codes and the spellings accepted for each.

    Parameters
    ----------
    kind : str
        What the codes are ("province", "stage"...), used in error messages.
    aliases : dict
        canonical code -> iterable of accepted spellings (the canonical code is always
        accepted).
    hint : str
        A short description of the accepted spellings for error messages.
    suffixes : iterable of str
        Suffixes that may be stripped from an unknown spelling before trying again
        (administrative suffixes such as 省, 自治区, "province"), longest first.
    """

    def __init__(self, kind: str, aliases: dict[str, Iterable[str]], hint: str = "",
                 suffixes: Iterable[str] = ()):
        self.kind = kind
        self.codes: tuple[str, ...] = tuple(aliases)
        self.hint = hint
        self._suffixes = tuple(sorted((normalise(s) for s in suffixes), key=len, reverse=True))
        self._map: dict[str, str] = {}
        for code, spellings in aliases.items():
            for spelling in (code, *spellings):
                for key in {normalise(spelling), self._strip(normalise(spelling))}:
                    other = self._map.setdefault(key, code) if key else code
                    if other != code:
                        raise ValueError(f"{kind} spelling {spelling!r} means both {other} "
                                         f"and {code}")

    def _strip(self, key: str) -> str:
        """``key`` without its first matching administrative suffix."""
        for suffix in self._suffixes:
            if key.endswith(suffix) and len(key) > len(suffix):
                return key[: -len(suffix)]
        return key

    def find(self, value: object) -> str | None:
        """The canonical code for ``value``, or None when it is not a known spelling."""
        key = normalise(value)
        code = self._map.get(key)
        return code if code is not None else self._map.get(self._strip(key))

    def lookup(self, value: object, argument: str | None = None) -> str:
        """The canonical code for ``value``; UnknownCodeError (``#N/A``) when unknown."""
        code = self.find(value) if value is not None else None
        if code is None:
            raise UnknownCodeError(f"unknown {self.kind} {value!r}; {self.accepted()}",
                                   argument=argument or self.kind)
        return code

    def lookup_many(self, values: Iterable[object], argument: str | None = None) -> tuple[str, ...]:
        """Canonical codes for several values, without duplicates, in the order given."""
        out: list[str] = []
        for value in values:
            code = self.lookup(value, argument)
            if code not in out:
                out.append(code)
        return tuple(out)

    def accepted(self) -> str:
        """A brief list of accepted codes, for error messages."""
        if self.hint:
            return f"accepted: {self.hint}"
        return "accepted: " + ", ".join(self.codes)

    def __contains__(self, value: object) -> bool:
        return self.find(value) is not None


# --------------------------------------------------------------------------- provinces

def _province_aliases() -> dict[str, list[str]]:
    text = (DATA_DIR / "provinces.csv").read_text(encoding="utf-8")
    aliases: dict[str, list[str]] = {}
    for row in csv.DictReader(text.splitlines()):
        spellings = [row["code"], "CN-" + row["code"], row["name_zh"], row["pinyin"]]
        spellings += [s for s in row["short_zh"].split("|") if s]
        spellings += [s for s in row["aliases"].split("|") if s]
        aliases[row["name_en"]] = spellings
    return aliases


#: The 31 provincial divisions of mainland China. Canonical code: English name.
PROVINCES = CodeSet(
    "province", _province_aliases(),
    hint="the 31 mainland provinces in Chinese (浙江, 浙江省, 浙), English/pinyin "
         "(Zhejiang) or 2-letter code (ZJ)",
    suffixes=["维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市",
              "province", "municipality", "autonomousregion", "shi", "sheng"],
)

#: Disposal stages in process order (the contract's list).
STAGE_CODES = ("not_filed", "filed", "judgment", "enforcement", "appraisal", "auction_1",
               "auction_2", "sale", "in_lieu", "distribution")

STAGES = CodeSet("stage", {
    "not_filed": ["未诉", "未起诉", "诉前", "未立案", "not yet filed", "pre-litigation"],
    "filed": ["已起诉", "已立案", "立案", "起诉", "一审", "二审", "诉讼", "诉讼中", "审理",
              "litigation", "first instance", "trial"],
    "judgment": ["判决", "已判决", "生效", "判决生效", "已生效", "调解", "judgement"],
    "enforcement": ["执行", "强制执行", "执行立案", "执行中", "查封", "seizure"],
    "appraisal": ["评估", "询价", "参考价", "确定参考价", "valuation", "reference price"],
    "auction_1": ["一拍", "第一次拍卖", "首拍", "first auction", "auction"],
    "auction_2": ["二拍", "第二次拍卖", "再次拍卖", "second auction"],
    "sale": ["变卖", "sale by conversion", "conversion"],
    "in_lieu": ["以物抵债", "抵债", "in kind", "satisfaction in kind"],
    "distribution": ["分配", "案款分配", "分配方案", "成交", "已成交", "paid", "payment"],
}, hint=", ".join(STAGE_CODES) + " (or 未诉, 已起诉, 判决, 执行, 评估, 一拍, 二拍, 变卖, 以物抵债, 分配)")

#: Collateral types; "none" is unsecured (信用/保证).
COLLATERAL_CODES = ("residential", "commercial", "industrial", "land", "other", "none")
SECURED_TYPES = COLLATERAL_CODES[:-1]

COLLATERAL_TYPES = CodeSet("collateral type", {
    "residential": ["住宅", "住房", "居住用房", "个人住房", "residence", "housing", "house",
                    "home", "apartment"],
    "commercial": ["商业", "商铺", "商业用房", "商服", "办公", "写字楼", "商住", "office",
                   "retail", "shop"],
    "industrial": ["工业", "厂房", "工业用房", "工业厂房", "仓储", "factory", "warehouse"],
    "land": ["土地", "土地使用权", "国有土地使用权"],
    "other": ["其他", "其它", "车位", "设备", "机器设备"],
    "none": ["无", "信用", "纯信用", "无抵押", "保证", "unsecured", "credit", "guarantee"],
}, hint=", ".join(COLLATERAL_CODES) + " (or 住宅, 商业/商铺/办公, 工业/厂房, 土地, 其他, 无/信用)")

#: Legal defects (docs/MODEL.md; the rules behind each in docs/SOURCES.md).
DEFECT_CODES = ("waiting_seizure", "pre_registration", "sole_residence", "lease",
                "debtor_missing", "criminal", "bankruptcy")

DEFECTS = CodeSet("defect", {
    "waiting_seizure": ["轮候查封", "轮候", "非首封", "waiting seizure"],
    "pre_registration": ["预告抵押登记", "预告登记", "预抵押", "预告抵押", "pre-registration"],
    "sole_residence": ["唯一住房", "唯一住宅", "sole residence"],
    "lease": ["租赁", "租赁占用", "带租约", "出租", "tenancy"],
    "debtor_missing": ["失联", "下落不明", "借款人失联", "debtor missing", "missing"],
    "criminal": ["涉刑", "刑民交叉", "涉案", "crime"],
    "bankruptcy": ["破产", "重整", "破产重整", "insolvency", "reorganisation"],
}, hint=", ".join(DEFECT_CODES) + " (or 轮候查封, 预告抵押登记, 唯一住房, 租赁, 失联, 涉刑, 破产)")

#: Region tiers of judicial efficiency ([CBR-Mortgage], [Regional]): A fastest, C slowest.
TIERS = CodeSet("region tier", {"A": ["tier a", "a类"], "B": ["tier b", "b类"],
                                "C": ["tier c", "c类"]}, hint="A, B or C")
