"""``npl-xl size``: the ribbon's Size Tranches, headless, on a workbook file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from npl_xl.errors import InputTypeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    book_arguments(parser, "size")


def book_arguments(parser: argparse.ArgumentParser, suffix: str) -> None:
    """The arguments of a command that runs one ribbon macro on a workbook file."""
    parser.add_argument("workbook", type=Path, help="the deal workbook (.xlsx/.xlsm): Tape, Tranches, Settings")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help=f"output workbook (default: IN.{suffix}.xlsx beside the input; never the input)")
    parser.add_argument("--n-sims", type=int, default=None, help="Monte Carlo paths (overrides Settings n_sims)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (overrides Settings seed)")
    parser.add_argument("--no-png", action="store_true", help="do not write the PNG of the charts")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def run_book_macro(args: argparse.Namespace, macro, suffix: str, shown: str) -> int:
    """Run ``macro(book, n_sims=, seed=)`` on the workbook of ``args``, save IN.<suffix>.xlsx
    (or -o), print block ``shown`` and write the charts' PNG beside the output, as
    ``npl-xl run`` does. Ctrl-C before the save leaves no output file (the CLI exits 130)."""
    from npl_xl.workbook.book import FileBook
    from npl_xl.workbook.charts import render_png

    if args.n_sims is not None and args.n_sims < 1:
        raise InputTypeError(f"must be a whole number >= 1, got {args.n_sims}", argument="--n-sims")
    if args.seed is not None and args.seed < 0:
        raise InputTypeError(f"must be a whole number >= 0, got {args.seed}", argument="--seed")
    source = Path(args.workbook)
    if not source.is_file():
        raise FileNotFoundError(2, "No such file", str(source))
    out = Path(args.output) if args.output else source.with_name(f"{source.stem}.{suffix}{source.suffix}")
    book = FileBook(source, progress_stream=None if args.quiet else sys.stderr)
    spec = macro(book, n_sims=args.n_sims, seed=args.seed)
    book.save(out)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(spec.block(shown).frame.to_string(index=False, float_format=lambda x: f"{x:.6g}"))
    print(f"wrote {out}")
    if not args.no_png:
        png = out.with_suffix(".png")
        render_png(spec.charts, spec.frames(), png, title=f"npl-xl {args.command}: {source.name}")
        print(f"wrote {png}")
    return 0


def main(args: argparse.Namespace) -> int:
    """``npl-xl size``: Size Tranches headless; print the sizes per rating; exit 0."""
    from npl_xl.macros import size_tranches

    return run_book_macro(args, size_tranches, "size", "StructSizes")
