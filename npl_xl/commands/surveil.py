"""``npl-xl surveil``: the ribbon's Surveillance Report, headless, on a workbook file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from npl_xl.errors import InputTypeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workbook", type=Path,
                        help="the deal workbook (.xlsx/.xlsm): Tape, Tranches, Settings, Collections")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="output workbook (default: IN.surveil.xlsx beside the input; never the input)")
    parser.add_argument("--as-of", type=float, default=None, dest="as_of",
                        help="report date, months after closing (default: Settings as_of_months, "
                             "else the payment date after the latest collection)")
    parser.add_argument("--n-sims", type=int, default=None, help="Monte Carlo paths (overrides Settings n_sims)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (overrides Settings seed)")
    parser.add_argument("--no-png", action="store_true", help="do not write the PNG of the charts")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def main(args: argparse.Namespace) -> int:
    """Write the Surveillance sheet into a copy of the workbook; print the re-rating."""
    from npl_xl.macros import surveillance_report
    from npl_xl.workbook.book import FileBook
    from npl_xl.workbook.charts import render_png

    if args.n_sims is not None and args.n_sims < 1:
        raise InputTypeError(f"must be a whole number >= 1, got {args.n_sims}", argument="--n-sims")
    if args.seed is not None and args.seed < 0:
        raise InputTypeError(f"must be a whole number >= 0, got {args.seed}", argument="--seed")
    if args.as_of is not None and not 0 <= args.as_of <= 1200:
        raise InputTypeError(f"must be months after closing in [0, 1200], got {args.as_of:g}",
                             argument="--as-of")
    source = Path(args.workbook)
    if not source.is_file():
        raise FileNotFoundError(2, "No such file", str(source))
    out = Path(args.output) if args.output else source.with_name(f"{source.stem}.surveil{source.suffix}")
    book = FileBook(source, progress_stream=None if args.quiet else sys.stderr)
    _, _, spec = surveillance_report(book, n_sims=args.n_sims, seed=args.seed, as_of=args.as_of)
    book.save(out)
    run = spec.block("SurvRun").frame
    as_of = float(run.loc[run["key"] == "report date (as_of_months)", "value"].iloc[0])
    print(f"report date: month {as_of:g} after closing")
    table = spec.block("SurvTranches").frame
    width = max(len(str(n)) for n in table["name"])
    for row in table.itertuples(index=False):
        print(f"  {str(row.name):<{width}}  EL {row.issuance_EL:8.4%} {row.issuance_rating:>5} -> "
              f"{row.report_EL:8.4%} {row.report_rating:>5}  {row.rating_change}")
    print(f"wrote {out}")
    if not args.no_png:
        png = out.with_suffix(".png")
        render_png(spec.charts, spec.frames(), png, title=f"npl-xl surveil: {source.name}")
        print(f"wrote {png}")
    return 0
