"""``npl-xl run``: the ribbon's Run Simulation, headless, on a workbook file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from npl_xl.analysis.audit import audit_frames, parse_paths, write_audit
from npl_xl.errors import DomainError, InputTypeError, NplError, WorkbookError
from npl_xl.inputs.deal import parse_scheduler
from npl_xl.macros import run_simulation
from npl_xl.workbook.safety import add_limit_arguments, limits_from_args, same_file, write_atomically

#: Suffixes an output workbook may have (it must match the package's content type).
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xltx", ".xltm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workbook", type=Path, nargs="+", metavar="IN.xlsx",
                        help="the deal workbook(s) (.xlsx/.xlsm): Tape, Tranches, Settings; several "
                             "are run one after the other (on one cluster with --scheduler)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="output workbook (default: IN.run.xlsx beside the input; never the "
                             "input); with several inputs, or an existing folder, the folder that "
                             "receives each IN.run.xlsx (created if missing)")
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
    parser.add_argument("--scheduler", default=None, metavar="WHERE",
                        help="where to simulate (overrides Settings scheduler): '' = this process, "
                             "local or local:N = N worker processes here, tcp://HOST:PORT = a Dask "
                             "cluster (pip install npl-xl[cluster]); the figures are identical")
    add_limit_arguments(parser)


def output_paths(sources: list[Path], output: Path | None) -> list[Path]:
    """Where each input's results go: IN.run.xlsx beside it; ``output`` itself for one input
    that is not a folder; else output/IN.run.xlsx (two inputs may not share a name there)."""
    if output is None:
        return [default_output(source) for source in sources]
    if len(sources) == 1 and not output.is_dir():
        return [output]
    outs = [output / default_output(source).name for source in sources]
    seen: dict[Path, Path] = {}
    for source, out in zip(sources, outs):
        if out in seen:
            raise InputTypeError(f"{seen[out]} and {source} would both be written to {out}; run "
                                 "them with different -o folders", argument="-o")
        seen[out] = source
    return outs


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
    """``npl-xl run``: Run Simulation headless on each workbook; print each tranche table;
    exit 0, or 2 when some workbook could not be run (each named on one line)."""
    if args.n_sims is not None and args.n_sims < 1:
        raise InputTypeError(f"must be a whole number >= 1, got {args.n_sims}", argument="--n-sims")
    if args.seed is not None and args.seed < 0:
        raise InputTypeError(f"must be a whole number >= 0, got {args.seed}", argument="--seed")
    if args.scheduler is not None:
        try:
            parse_scheduler(args.scheduler)
        except DomainError as exc:
            raise DomainError(exc.detail, argument="--scheduler") from None
    sources = [Path(p) for p in args.workbook]
    limits = limits_from_args(args)
    outs = output_paths(sources, Path(args.output) if args.output else None)
    audit = getattr(args, "audit", None)
    audit_paths = parse_paths(getattr(args, "audit_paths", None))
    if audit is not None and len(sources) > 1:
        raise InputTypeError("writes the audit of one workbook; run the others separately",
                             argument="--audit")
    if audit is not None and Path(audit).suffix.lower() not in (".csv", ".xlsx"):
        raise InputTypeError(f"{Path(audit).name}: the audit is written as .csv or .xlsx",
                             argument="--audit")
    if audit is not None and Path(audit).resolve() in (sources[0].resolve(), outs[0].resolve()):
        raise InputTypeError("must not be the input or the output workbook", argument="--audit")
    if audit_paths and audit is None:
        raise InputTypeError("needs --audit PATH", argument="--audit-paths")
    if len(sources) > 1 and args.output:
        Path(args.output).mkdir(parents=True, exist_ok=True)
    failed = 0
    try:
        for number, (source, out) in enumerate(zip(sources, outs), 1):
            if len(sources) == 1:
                run_workbook(args, source, out, audit, audit_paths, limits)
                continue
            print(f"== {source} ({number}/{len(sources)})", flush=True,
                  file=sys.stderr if getattr(args, "json", False) else sys.stdout)
            try:
                run_workbook(args, source, out, None, [], limits)
            except NplError as exc:
                print(f"npl-xl run: {source}: {exc}", file=sys.stderr)
                failed += 1
            except OSError as exc:
                where = f": {exc.filename}" if exc.filename else ""
                print(f"npl-xl run: {source}: {exc.strerror or exc}{where}", file=sys.stderr)
                failed += 1
    finally:
        cluster = sys.modules.get("npl_xl.engine.cluster")
        if cluster is not None:
            cluster.close_clients()
    if failed:
        print(f"npl-xl run: {failed} of {len(sources)} workbooks failed", file=sys.stderr)
    return 2 if failed else 0


def run_workbook(args: argparse.Namespace, source: Path, out: Path, audit, audit_paths,
                 limits=None) -> None:
    """Run Simulation on one workbook: write ``out`` (its PNG, and the audit when asked);
    print the tranche table (or the JSON with --json)."""
    from npl_xl.commands.report import to_json, tranche_report
    from npl_xl.workbook.book import FileBook
    from npl_xl.workbook.charts import render_png

    png = None if args.no_png else png_path(out)
    check_outputs(source, [out] + ([png] if png else []) + ([Path(audit)] if audit else []))
    book = FileBook(source, progress_stream=None if args.quiet else sys.stderr, limits=limits)
    result, spec = run_simulation(book, n_sims=args.n_sims, seed=args.seed,
                                  scheduler=args.scheduler)
    book.save(out)
    written = None
    if audit is not None:
        written = write_audit(audit, audit_frames(result, audit_paths))
    if png is not None:
        write_atomically(png, lambda handle: render_png(spec.charts, spec.frames(), handle,
                                                        title=f"npl-xl run: {source.name}"),
                         inputs=(source, out))
    if getattr(args, "json", False):
        print(to_json(result, workbook=str(source), output=str(out),
                      png=None if png is None else str(png),
                      audit=None if written is None else str(written)))
        return
    print(tranche_report(result))
    print(f"\nwrote {out}")
    if written is not None:
        print(f"wrote {written} (waterfall audit: base case"
              + "".join(f", path {p}" for p in audit_paths) + ")")
    if png is not None:
        print(f"wrote {png}")
