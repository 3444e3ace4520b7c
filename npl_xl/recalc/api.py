"""Recalculate a workbook file: compute every formula and save the values as cached values."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from npl_xl.recalc.engine import CellError, address, evaluate_package
from npl_xl.recalc.writeback import write_values
from npl_xl.recalc.xlsx import WorkbookError, read_package
from npl_xl.workbook.safety import DEFAULT_LIMITS, Limits, same_file

__all__ = ["RecalcReport", "recalc_workbook", "default_output_path"]


@dataclass
class RecalcReport:
    """What :func:`recalc_workbook` did.

    ``values`` maps ``'Sheet!A1'`` to the computed value of every formula cell (every cell
    of an array formula's range): float, str, bool or :class:`npl_xl.errors.XlError`.
    ``errors`` maps the cells that end in an error value, or could not be computed, to a
    :class:`~npl_xl.recalc.engine.CellError` with the reason. ``seconds`` is wall time.
    """

    path_in: Path
    path_out: Path
    cells_computed: int
    errors: dict[str, CellError] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    def error_lines(self) -> list[str]:
        """``Sheet!A1: #NUM! — mean: must be strictly between 0 and 1, got 1.4``, one per cell."""
        return [f"{cell}: {error.describe()}" for cell, error in self.errors.items()]

    def summary(self) -> str:
        failed = sum(1 for e in self.errors.values() if not e.computed)
        text = (f"{self.cells_computed} formula cells computed, {len(self.errors)} in error"
                + (f" ({failed} could not be computed)" if failed else "")
                + f", {self.seconds:.2f} s -> {self.path_out}")
        return text


def default_output_path(path_in: str | Path) -> Path:
    """``book.xlsx`` -> ``book.recalc.xlsx`` beside it; the suffix (.xlsm, .xltx) is kept,
    since it must match the workbook's content type."""
    path_in = Path(path_in)
    return path_in.with_name(path_in.stem + ".recalc" + (path_in.suffix or ".xlsx"))


def recalc_workbook(path_in: str | Path, path_out: str | Path | None = None,
                    limits: Limits = DEFAULT_LIMITS) -> RecalcReport:
    """Recompute every formula of ``path_in`` and write the copy with cached values.

    Parameters
    ----------
    path_in : path
        An .xlsx/.xlsm workbook; only read, never modified.
    path_out : path, optional
        Where to write; default :func:`default_output_path`. Written through a temporary
        file in the same folder and renamed, so a failure leaves no half-written file.
    limits : Limits, optional
        Size limits on the package (:class:`npl_xl.workbook.safety.Limits`).

    Returns
    -------
    RecalcReport

    Raises
    ------
    WorkbookError
        Missing or unreadable input, or ``path_out`` is the input file.
    """
    started = time.perf_counter()
    path_in = Path(path_in)
    path_out = default_output_path(path_in) if path_out is None else Path(path_out)
    if same_file(path_in, path_out):
        raise WorkbookError(f"the output must not be the input file ({path_in}): "
                            "the input workbook is never modified")
    package = read_package(path_in, limits)
    evaluation = evaluate_package(package)
    parts = {sheet.name: sheet.part for sheet in package.sheets}
    sheet_values: dict[str, dict] = {}
    for (sheet, row, col), value in evaluation.values.items():
        sheet_values.setdefault(parts[sheet], {})[(row, col)] = value
    sheet_spills: dict[str, dict] = {}
    for (sheet, row, col), change in evaluation.spills.items():
        sheet_spills.setdefault(parts[sheet], {})[(row, col)] = change
    write_values(path_in, path_out, package.workbook_part, sheet_values, sheet_spills)
    sheet_order = {sheet.name: i for i, sheet in enumerate(package.sheets)}
    in_order = sorted(evaluation.errors, key=lambda k: (sheet_order[k[0]], k[1], k[2]))
    return RecalcReport(
        path_in=path_in,
        path_out=path_out,
        cells_computed=evaluation.cells_computed,
        errors={address(*key): evaluation.errors[key] for key in in_order},
        values=evaluation.by_address(),
        seconds=time.perf_counter() - started,
    )
