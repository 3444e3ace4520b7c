"""``npl-xl functions``: the worksheet functions and their arguments, from the registry."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", action="store_true",
                        help="print the full reference (docs/FUNCTIONS.md) as Markdown")
    parser.add_argument("--lang", choices=("en", "zh"), default="en",
                        help="language of the one-line descriptions (zh: 中文)")


def main(args: argparse.Namespace) -> int:
    """``npl-xl functions``: the registry, as the function wizard would show it."""
    from npl_xl.sheet.docs import render_function_list, render_functions_md

    print(render_functions_md() if args.markdown else render_function_list(args.lang))
    return 0
