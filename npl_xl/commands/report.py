"""What the command line prints: tables an analyst reads and JSON a program reads.

Text tables are aligned by display width (:func:`wcwidth.wcswidth`), so Chinese tranche
names (two columns each in a terminal) line up with English ones. Units are in the headers:
EL in basis points of the tranche's balance, PD in percent, WAL in years, IRR in percent
effective annual, money with thousands separators in the workbook's currency. JSON keeps the
package's own units (decimals, years, currency) and writes NaN as null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wcwidth import wcswidth

__all__ = ["Column", "format_table", "tranche_report", "tranche_records", "pool_lines",
           "to_json", "TRANCHE_COLUMNS"]


@dataclass(frozen=True)
class Column:
    """One printed column: its title, the record key it shows and how (text left-aligned,
    numbers right-aligned)."""

    title: str
    key: str
    render: Callable[[object], str] = str
    numeric: bool = True


def _width(text: str) -> int:
    width = wcswidth(text)
    return len(text) if width < 0 else width


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(0, width - _width(text))
    return gap + text if right else text + gap


def format_table(records: Sequence[dict], columns: Sequence[Column], gap: str = "  ") -> str:
    """``records`` as an aligned text table under a title row and a rule."""
    cells = [[c.title for c in columns]] + [[c.render(r.get(c.key)) for c in columns] for r in records]
    widths = [max(_width(row[j]) for row in cells) for j in range(len(columns))]
    lines = []
    for i, row in enumerate(cells):
        lines.append(gap.join(_pad(text, widths[j], columns[j].numeric) for j, text in enumerate(row)).rstrip())
        if i == 0:
            lines.append(gap.join("-" * w for w in widths))
    return "\n".join(lines)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def bp(value) -> str:
    """Decimal -> basis points, two decimals: 0.000215 -> '2.15'."""
    return f"{value * 1e4:,.2f}" if _finite(value) else "-"


def percent(value, digits: int = 2) -> str:
    """Decimal -> percent: 0.0348 -> '3.48'."""
    return f"{value * 100:,.{digits}f}" if _finite(value) else "-"


def years(value) -> str:
    return f"{value:,.2f}" if _finite(value) else "-"


def money(value) -> str:
    """Currency with thousands separators, no decimals: 10727000000 -> '10,727,000,000'."""
    return f"{value:,.0f}" if _finite(value) else "-"


#: The contract's tranche columns (NPL_TRANCHE_EL), in the contract's order.
TRANCHE_COLUMNS = (
    Column("name", "name", str, numeric=False),
    Column("EL (bp)", "EL", bp),
    Column("PD (%)", "PD", percent),
    Column("WAL (years)", "WAL", years),
    Column("mean IRR (% p.a.)", "mean_irr", percent),
    Column("rating", "rating", str, numeric=False),
    Column("EL s.e. (bp)", "el_stderr", bp),
)
_STDERR_KEYS = ("pd_stderr", "wal_stderr", "irr_stderr")


def tranche_records(result) -> list[dict]:
    """One dict per tranche: the contract's columns and the three other standard errors, in
    the package's units (decimals, years)."""
    table = result.contract_table(with_stderr=True)
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in table.to_dict("records")]


def pool_lines(result) -> list[str]:
    """The pool's totals, money with thousands separators."""
    pv, se = result.pool_pv_mean, result.pool_pv_stderr
    share = result.expected_recovery / result.total_claim if result.total_claim else float("nan")
    rate = result.settings.discount_rate
    return [
        f"paths {result.n_paths:,}   seed {result.settings.seed}   "
        f"loans with sd capped {result.n_sd_capped:,}",
        f"claims {money(result.total_claim)}   expected recovery {money(result.expected_recovery)} "
        f"({percent(share, 1)}% of claims)",
        f"PV of collections at {percent(rate, 1)}% a year: {money(pv)} (s.e. {money(se)})",
    ]


def tranche_report(result) -> str:
    """The text ``npl-xl run`` prints: the pool's totals, then the tranche table."""
    return "\n".join(pool_lines(result)) + "\n\n" + format_table(tranche_records(result),
                                                                  TRANCHE_COLUMNS)


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(result, **extra) -> str:
    """The run as JSON: pool totals and tranches in the package's units (EL, PD, IRR decimals;
    WAL years; money in currency), NaN as null; ``extra`` keys first (file names)."""
    document = dict(extra)
    document.update({
        "n_paths": result.n_paths, "seed": result.settings.seed,
        "pool": {"total_claim": result.total_claim, "expected_recovery": result.expected_recovery,
                 "pv_mean": result.pool_pv_mean, "pv_stderr": result.pool_pv_stderr,
                 "discount_rate": result.settings.discount_rate,
                 "n_sd_capped": result.n_sd_capped},
        "tranches": tranche_records(result),
    })
    return json.dumps(_clean(document), ensure_ascii=False, indent=2)

