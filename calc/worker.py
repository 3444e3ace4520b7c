"""The worker behind the Calc extension: ``python -m npl_xl_calc.worker functions|macros``.

soffice's component (``npl_calc.py`` in the .oxt) starts this module in the project's own
interpreter and talks to it over the worker's stdin and stdout (:mod:`npl_xl_calc.wire`),
so numba, numpy and any crash stay out of soffice's process and the two Pythons may differ.

Requests, one at a time:

- ``("call", name, args)``: evaluate worksheet function ``name`` through the registry with
  Calc's values (``None`` for an omitted argument, tuples of rows for ranges, ``""`` for a
  blank cell inside a range); answer ``("result", value)``, error cells as
  :func:`~npl_xl_calc.wire.error_value`.
- ``("macro", name)``: run ``npl_xl.macros.<name>`` on a :class:`~npl_xl_calc.book.CalcBook`,
  whose reads and writes go back to the component as ``("book", op, args)`` requests while
  the macro runs; answer ``("done", summary)``, ``("failed", message)`` for an expected
  failure (bad tape: its message names the cells), or ``("crashed", traceback)``.
- ``("ping",)``: answer ``("pong", npl-xl version)``.

Nothing is written to stdout but the protocol: print() and stray output go to stderr.
"""

from __future__ import annotations

import os
import sys
import traceback

from npl_xl_calc import wire

__all__ = ["encode", "call", "run_macro", "serve", "main"]


def encode(value):
    """A registry result as it travels: XlError -> error_value, rows as lists."""
    from npl_xl.errors import XlError

    if isinstance(value, XlError):
        return wire.error_value(value.code, value.message)
    if isinstance(value, list):
        return [encode(v) for v in value]
    return value


#: Argument kinds for which a number is never a valid value: there Calc's 0.0 for a blank
#: single-cell reference (Calc passes a blank cell to an add-in as 0, xlwings as None) is
#: read as the blank it was.
BLANK_IF_ZERO = frozenset({"text", "codes", "table"})


def calc_arguments(function, args) -> tuple:
    """Calc's argument values as the registry expects Excel's."""
    out = []
    for spec, value in zip(function.args, args):
        if spec.kind in BLANK_IF_ZERO and type(value) is float and value == 0.0:
            value = None
        out.append(value)
    return tuple(out) + tuple(args[len(function.args):])


def call(registry, name: str, args) -> object:
    function = registry.get(name)
    if function is None:
        return wire.error_value("#NAME?", f"{name} is not an npl-xl worksheet function")
    return encode(function(*calc_arguments(function, args)))


def macro_names() -> tuple[str, ...]:
    from npl_xl_udfs.ribbon import MACROS

    return tuple(MACROS)


def run_macro(name: str, request) -> tuple:
    """Run one ribbon macro on the open Calc document reached through ``request``."""
    from npl_xl import macros
    from npl_xl.errors import NplError
    from npl_xl_calc.book import CalcBook

    if name not in macro_names():
        return ("failed", f"npl-xl has no command {name!r}")
    book = CalcBook(request)
    try:
        result = getattr(macros, name)(book)
    except NplError as exc:
        return ("failed", str(exc))
    except Exception:
        return ("crashed", traceback.format_exc())
    summary = f"{name} wrote {', '.join(book.written) or 'nothing'}"
    if name == "validate_tape" and result:
        summary += f"; {len(result)} problem(s)"
    return ("done", summary)


def serve(role: str, inp, out) -> int:
    """Answer requests from ``inp`` on ``out`` until the component closes the pipe."""
    from npl_xl import __version__
    from npl_xl.sheet.registry import load_all

    registry = load_all()

    def request(op, *args):
        wire.send(out, ("book", op, args))
        status, value = wire.receive(inp)
        if status != "ok":
            raise RuntimeError(f"Calc could not {op}: {value}")
        return value

    while True:
        try:
            message = wire.receive(inp)
        except EOFError:
            return 0
        kind = message[0]
        if kind == "call":
            wire.send(out, ("result", call(registry, message[1], message[2])))
        elif kind == "macro":
            wire.send(out, run_macro(message[1], request))
        elif kind == "ping":
            wire.send(out, ("pong", __version__, role))
        else:
            wire.send(out, ("failed", f"unknown request {kind!r}"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    role = argv[0] if argv else "functions"
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints cannot corrupt the pipe
    sys.stdout = sys.stderr
    try:
        return serve(role, sys.stdin.buffer, out)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0


if __name__ == "__main__":
    sys.exit(main())
