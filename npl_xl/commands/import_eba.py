"""``npl-xl import-eba``: EBA NPL data templates into a deal workbook (Tape, Collateral, Guarantees)."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import npl_xl

#: The template the deal workbook is built from (the repository's; --template for another).
DEFAULT_TEMPLATE = Path(npl_xl.__file__).resolve().parents[1] / "workbooks" / "npl_template.xlsx"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path,
                        help="a folder of EBA template tables (.csv or .xlsx files) or one .xlsx with a "
                             "sheet per table: counterparty, loan, collateral (property and other), links")
    parser.add_argument("--out", type=Path, required=True,
                        help="the deal workbook to write (.xlsx); never an existing file")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE,
                        help="template workbook (default: workbooks/npl_template.xlsx)")
    parser.add_argument("--province", default=None,
                        help="province for loans and properties whose own fields name none (浙江, Zhejiang)")
    parser.add_argument("--guarantee-rate", type=float, default=0.0,
                        help="expected recovery of a guarantee as a share of its Guarantee Amount (4.27); "
                             "default 0: fill Guarantees' expected_recovery in")


def read_sources(source: Path) -> list[tuple[str, list[list]]]:
    """(name, rows) of every table: each CSV file, each sheet of each .xlsx."""
    from python_calamine import CalamineWorkbook

    from npl_xl.errors import InputTypeError

    files = sorted(p for p in source.iterdir() if p.suffix.lower() in (".csv", ".xlsx", ".xlsm")
                   and not p.name.startswith((".", "~$"))) if source.is_dir() else [source]
    if not source.exists():
        raise FileNotFoundError(2, "No such file or folder", str(source))
    tables = []
    for path in files:
        if path.suffix.lower() == ".csv":
            text = path.read_text(encoding="utf-8-sig")
            tables.append((path.name, [[c if c != "" else None for c in row] for row in csv.reader(io.StringIO(text))]))
            continue
        try:
            book = CalamineWorkbook.from_path(str(path))
        except Exception as exc:  # calamine raises its own error types for unreadable files
            raise InputTypeError(f"{path} is not a readable workbook ({exc})", argument="source") from None
        for name in book.sheet_names:
            rows = book.get_sheet_by_name(name).to_python(skip_empty_area=True)
            tables.append((f"{path.name}:{name}", [[c if c != "" else None for c in r] for r in rows]))
    if not tables:
        raise InputTypeError(f"{source} holds no .csv or .xlsx tables", argument="source")
    return tables


def main(args: argparse.Namespace) -> int:
    """Import, check the three tables as Validate Tape would, write the workbook; exit 0."""
    from npl_xl.errors import InputTypeError
    from npl_xl.inputs.eba import classify, eba_to_deal
    from npl_xl.inputs.tape import COLLATERAL_COLUMNS, GUARANTEE_COLUMNS, TAPE_COLUMNS
    from npl_xl.model.loans import value_tape
    from npl_xl.sheet.tapes import read_tables
    from npl_xl.workbook.tables import TableSheet, write_from_template

    if Path(args.out).exists():
        raise InputTypeError(f"{args.out} exists; npl-xl never overwrites a file", argument="--out")
    if not 0 <= args.guarantee_rate <= 1:
        raise InputTypeError(f"must be in [0, 1], got {args.guarantee_rate:g}", argument="--guarantee-rate")
    tables = classify(read_sources(Path(args.source)))
    tape, collateral, guarantees = eba_to_deal(tables, args.province, args.guarantee_rate)
    frames = read_tables(tape, collateral if len(collateral) else None, guarantees if len(guarantees) else None)
    value_tape(frames[0], None, frames[1], frames[2])  # every link resolves, every value is usable
    zh = {c.name: c.zh for c in TAPE_COLUMNS + COLLATERAL_COLUMNS + GUARANTEE_COLUMNS}
    note = "Imported from EBA NPL data templates by npl-xl import-eba; unmapped fields kept as extra columns."
    sheets = [TableSheet("Tape", "LoanTape", tape, zh, note),
              TableSheet("Collateral", "CollateralTable", collateral, zh, note),
              TableSheet("Guarantees", "GuaranteeTable", guarantees, zh, note)]
    out = write_from_template(Path(args.template), Path(args.out), sheets,
                              "Summary: the template's formulas were sized for its example rows; after an "
                              "import, use Stratify Pool and Run Simulation (or npl-xl run). 汇总请重新生成。")
    print(f"read {len(tables.loans)} loan, {len(tables.counterparties)} counterparty, "
          f"{len(tables.protections)} protection and {len(tables.links)} link table(s)"
          + (f"; ignored {', '.join(tables.ignored)}" if tables.ignored else ""))
    print(f"Tape {len(tape)} loans, Collateral {len(collateral)} items, Guarantees {len(guarantees)}")
    print("fill Tranches and Settings, then: npl-xl validate / npl-xl run " + str(out))
    print(f"wrote {out}")
    return 0
