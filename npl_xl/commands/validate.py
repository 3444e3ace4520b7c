"""``npl-xl validate``: Validate Tape headless: problems, header mapping and data quality."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workbook", type=Path, help="the deal workbook (.xlsx/.xlsm)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="also write a copy with the Problems sheet and bad cells in red "
                             "(never the input)")


def main(args: argparse.Namespace) -> int:
    """Print every problem, the header mapping and the data-quality report. Exit 0 when the
    workbook has no problems, 1 when it has some, 2 when it cannot be read."""
    from npl_xl.errors import InputTypeError
    from npl_xl.macros import inspect_book, validate_tape
    from npl_xl.workbook.book import FileBook

    source = Path(args.workbook)
    if not source.is_file():
        raise FileNotFoundError(2, "No such file", str(source))
    book = FileBook(source)
    if args.output is not None:
        if Path(args.output).resolve() == source.resolve():
            raise InputTypeError("must not be the input workbook", argument="--output")
        problems = validate_tape(book)
        book.save(args.output)
    problems, reading, report = inspect_book(book)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_rows", 500,
                           "display.max_colwidth", 80):
        if report is not None:
            print(f"{source.name}: {report.n_loans} loans; completeness score "
                  f"{report.completeness:.1%}; {len(report.outliers)} outlier(s)")
            print("\nheaders:")
            print(report.headers.to_string(index=False))
            print("\nfields:")
            shown = report.fields.copy()
            for c in ("share_filled", "share_defaulted", "share_missing"):
                shown[c] = shown[c].map(lambda x: f"{x:.1%}")
            print(shown.to_string(index=False))
            if len(report.outliers):
                print("\noutliers:")
                print(report.outliers.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
        print(f"\n{len(problems)} problem(s)" + (":" if problems else ""))
        for problem in problems:
            print(f"  {problem}")
    if args.output is not None:
        print(f"wrote {args.output}")
    return 1 if problems else 0
