"""``npl-xl functions``: the worksheet functions and their arguments, from the registry."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")


def main(args: argparse.Namespace) -> int:
    """``npl-xl functions``: the registry, as the function wizard would show it."""
    from npl_xl.sheet.registry import load_all

    for fn in load_all().values():
        signature = ", ".join(a.name if a.required else f"[{a.name}]" for a in fn.args)
        if args.markdown:
            print(f"| `{fn.name}({signature})` | {fn.shape} | {fn.doc} |")
        else:
            print(f"{fn.name}({signature}) -> {fn.shape}\n    {fn.doc}")
    return 0
