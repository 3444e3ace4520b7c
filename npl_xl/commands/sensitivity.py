"""``npl-xl sensitivity``: the ribbon's Sensitivity, headless, on a workbook file."""

from __future__ import annotations

import argparse

from npl_xl.commands.size import book_arguments, run_book_macro


def add_arguments(parser: argparse.ArgumentParser) -> None:
    book_arguments(parser, "sensitivity")


def main(args: argparse.Namespace) -> int:
    """``npl-xl sensitivity``: tornadoes, stress grid and price table headless; exit 0."""
    from npl_xl.macros import sensitivity_analysis

    return run_book_macro(args, sensitivity_analysis, "sensitivity", "SensTornadoEL")
