"""``npl-xl run``: the ribbon's Run Simulation, headless, on a workbook file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from npl_xl.analysis.audit import audit_frames, parse_paths, write_audit
from npl_xl.errors import InputTypeError, WorkbookError
from npl_xl.macros import run_simulation
from npl_xl.workbook.safety import add_limit_arguments, limits_from_args, same_file, write_atomically

#: Suffixes an output workbook may have (it must match the package's content type).
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xltx", ".xltm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workbook", type=Path, help="the deal workbook (.xlsx/.xlsm): Tape, Tranches, Settings")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="output workbook (default: IN.run.xlsx beside the input; never the input)")
    parser.add_argument("--n-sims", type=int, default=None, help="Monte Carlo paths (overrides Settings n_sims)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (overrides Settings seed)")
    parser.add_argument("--no-png", action="store_true", help="do not write the PNG of the charts")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--audit", type=Path, default=None, metavar="PATH",
                        help="also write the period-by-period waterfall (every step, account "
                             "and trigger state) of the base case and of --audit-paths to PATH "
                             "(.csv: one table with a case column; .xlsx: one sheet per case)")
    parser.add_argument("--audit-paths", default=None, metavar="I,J,...",
                        help="simulated paths (0 = the first) to add to the audit")
    parser.add_argument("--json", action="store_true",
                        help="print the results as JSON on stdout (decimals, years, currency) "
                             "instead of the table; messages go to stderr")
    add_limit_arguments(parser)


def default_output(path: Path) -> Path:
    """IN.xlsx -> IN.run.xlsx (IN.xlsm -> IN.run.xlsm) beside the input; an input with
    another suffix (IN.png, IN) gives IN.run.xlsx."""
    suffix = path.suffix if path.suffix.lower() in WORKBOOK_SUFFIXES else ".xlsx"
    return path.with_name(f"{path.stem}.run{suffix}")


def png_path(out: Path) -> Path:
    """The chart image beside the output workbook: OUT.xlsx -> OUT.png."""
    return out.with_name(out.stem + ".png") if out.suffix else out.with_name(out.name + ".png")


def check_outputs(source: Path, outputs: list[Path]) -> None:
    """No output may be the input file (by path or inode) or another output."""
    for k, out in enumerate(outputs):
        if same_file(source, out):
            raise WorkbookError(f"refusing to overwrite the input file {source} (the output "
                                f"{out} is the same file); choose another output (-o)")
        for other in outputs[:k]:
            if same_file(other, out):
                raise WorkbookError(f"refusing to write {out} twice (the workbook and the "
                                    "chart image would be the same file); choose another -o")


def main(args: argparse.Namespace) -> int:
    """``npl-xl run``: Run Simulation headless; print the tranche table; exit 0."""
    from npl_xl.commands.report import to_json, tranche_report
    from npl_xl.workbook.book import FileBook
    from npl_xl.workbook.charts import render_png

    if args.n_sims is not None and args.n_sims < 1:
        raise InputTypeError(f"must be a whole number >= 1, got {args.n_sims}", argument="--n-sims")
    if args.seed is not None and args.seed < 0:
        raise InputTypeError(f"must be a whole number >= 0, got {args.seed}", argument="--seed")
    source = Path(args.workbook)
    limits = limits_from_args(args)
    out = Path(args.output) if args.output else default_output(source)
    audit = getattr(args, "audit", None)
    audit_paths = parse_paths(getattr(args, "audit_paths", None))
    if audit is not None and Path(audit).suffix.lower() not in (".csv", ".xlsx"):
        raise InputTypeError(f"{Path(audit).name}: the audit is written as .csv or .xlsx",
                             argument="--audit")
    if audit is not None and Path(audit).resolve() in (source.resolve(), out.resolve()):
        raise InputTypeError("must not be the input or the output workbook", argument="--audit")
    if audit_paths and audit is None:
        raise InputTypeError("needs --audit PATH", argument="--audit-paths")
    png = None if args.no_png else png_path(out)
    check_outputs(source, [out] + ([png] if png else []) + ([Path(audit)] if audit else []))
    book = FileBook(source, progress_stream=None if args.quiet else sys.stderr, limits=limits)
    result, spec = run_simulation(book, n_sims=args.n_sims, seed=args.seed)
    book.save(out)
    written = None
    if audit is not None:
        written = write_audit(audit, audit_frames(result, audit_paths))
    if png is not None:
        write_atomically(png, lambda handle: render_png(spec.charts, spec.frames(), handle,
                                                        title=f"npl-xl run: {source.name}"),
                         inputs=(source, out))
    if args.json:
        print(to_json(result, workbook=str(source), output=str(out),
                      png=None if png is None else str(png),
                      audit=None if written is None else str(written)))
        return 0
    print(tranche_report(result))
    print(f"\nwrote {out}")
    if written is not None:
        print(f"wrote {written} (waterfall audit: base case"
              + "".join(f", path {p}" for p in audit_paths) + ")")
    if png is not None:
        print(f"wrote {png}")
    return 0
