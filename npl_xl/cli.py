"""The ``npl-xl`` command: recalc, run, install, functions.

Each subcommand lives in its own module and exposes ``add_arguments(parser)`` and
``main(args) -> int``. This module only dispatches and turns an expected failure
(:class:`~npl_xl.errors.NplError`, a missing file) into a message and a non-zero exit
status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from npl_xl.errors import NplError

#: subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "recalc": ("npl_xl.commands.recalc", "recompute every formula of a workbook without Excel"),
    "run": ("npl_xl.commands.run", "headless Run Simulation: read Tape, Tranches, Settings; write Results"),
    "install": ("npl_xl_udfs.install", "set up Excel (Windows) or print the steps (elsewhere); --libreoffice: Calc"),
    "functions": ("npl_xl.commands.functions", "list the worksheet functions and their arguments"),
    "size": ("npl_xl.commands.size", "headless Size Tranches: senior size per rating and break-evens (Structuring sheet)"),
    "sensitivity": ("npl_xl.commands.sensitivity", "headless Sensitivity: tornadoes, stress grid, price table (Sensitivity sheet)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen subcommand's module is imported (start-up stays fast)."""
    from npl_xl import __version__

    parser = argparse.ArgumentParser(prog="npl-xl", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"npl-xl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(sub_parser)
            sub_parser.set_defaults(handler=module.main)
    return parser


def main_cli(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except NplError as exc:
        print(f"npl-xl {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a reader that stopped (npl-xl functions | head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a missing file, a folder where a file should be, no permission
        where = f": {exc.filename}" if exc.filename else ""
        print(f"npl-xl {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"npl-xl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main_cli())
