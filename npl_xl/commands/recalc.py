"""``npl-xl recalc IN.xlsx [-o OUT.xlsx] [--allow-errors]``.

Exit status: 0 when every formula cell computed to a non-error value (or
``--allow-errors``), 1 when any cell ends in an error or could not be computed (the cells
and reasons go to stderr), 2 when the input is unusable, 3 on an unexpected failure (a bug: one line naming the
cell or part and the cause, see :func:`npl_xl.cli.unexpected_failure_line`). The output
is always written when the input could be read and nothing failed unexpectedly.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workbook", metavar="IN.xlsx", help="workbook to recalculate (.xlsx/.xlsm)")
    parser.add_argument("-o", "--output", metavar="OUT.xlsx",
                        help="where to write (default: IN.recalc.xlsx beside the input)")
    parser.add_argument("--allow-errors", action="store_true",
                        help="exit 0 even when formula cells end in errors")
    from npl_xl.workbook.safety import add_limit_arguments

    add_limit_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from npl_xl.recalc import recalc_workbook
    from npl_xl.workbook.safety import limits_from_args

    report = recalc_workbook(args.workbook, args.output, limits=limits_from_args(args))
    for line in report.error_lines():
        print(line, file=sys.stderr)
    print(report.summary())
    return 0 if report.ok or args.allow_errors else 1
