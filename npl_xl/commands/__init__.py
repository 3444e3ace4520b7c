"""The ``npl-xl`` subcommands, one module each.

Each module exposes ``add_arguments(parser)`` and ``main(args) -> int``; :mod:`npl_xl.cli`
dispatches to them and turns expected failures into one-line messages.
"""
