"""The ``npl-xl`` command: recalc, run, install, functions.

Each subcommand lives in its own module and exposes ``add_arguments(parser)`` and
``main(args) -> int``. This module only dispatches and turns an expected failure
(:class:`~npl_xl.errors.NplError`, a missing file) into a message and exit status 2, and
an unexpected failure (a bug) into one line naming where and why, exit status 3: never a
traceback.
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
    "validate": ("npl_xl.commands.validate", "Validate Tape headless: problems, header mapping, data quality"),
    "import-eba": ("npl_xl.commands.import_eba", "EBA NPL data templates into a deal workbook (Tape, Collateral, Guarantees)"),
    "size": ("npl_xl.commands.size", "headless Size Tranches: senior size per rating and break-evens (Structuring sheet)"),
    "sensitivity": ("npl_xl.commands.sensitivity", "headless Sensitivity: tornadoes, stress grid, price table (Sensitivity sheet)"),
}
SUBCOMMANDS["surveil"] = ("npl_xl.commands.surveil",
                          "headless Surveillance Report: Collections against the issuance model, re-rating")
SUBCOMMANDS["collections"] = ("npl_xl.commands.collections",
                              "collections import FILE --book BOOK: append a servicer export to Collections")


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
    except Exception as exc:  # a bug, not bad input: one line and its own status (3)
        print(unexpected_failure_line(args.command, exc), file=sys.stderr)
        return 3


def unexpected_failure_line(command: str, exc: BaseException) -> str:
    """``npl-xl recalc: unexpected failure at Sheet1!B7: ValueError: ...`` (one line).

    Where the failure happened comes from the exception's notes (``exc.add_note("at
    Sheet1!B7")``, added by the code that knows the cell or file part).
    """
    where = " ".join(note for note in getattr(exc, "__notes__", ()) if note)
    cause = " ".join(f"{type(exc).__name__}: {exc}".split())
    return (f"npl-xl {command}: unexpected failure{' ' + where if where else ''}: {cause[:300]}"
            " (a bug: please report it with the workbook)")


if __name__ == "__main__":
    sys.exit(main_cli())
