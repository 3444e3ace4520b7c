"""``npl-xl run`` on a tape at Excel's row limit: 1,048,575 loans (header in row 1).

Builds the workbook (the sample deal with its Tape sheet replaced by a generated one,
written part by part with zipfile streams so the generator itself stays small), then runs
``npl-xl run`` on it in a child process and records wall time and the child's peak
resident memory (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``), with the machine's
load average before and after (the machine is shared). Writes
benchmarks/results/tape_million.md.

Run: python benchmarks/tape_million_bench.py [--loans N] [--n-sims N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from npl_xl.workbook.a1 import column_letter as _letters
from machine import cpu_model  # benchmarks/machine.py

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "workbooks" / "sample_deal.xlsx"
RESULTS = ROOT / "benchmarks" / "results" / "tape_million.md"
EXCEL_ROWS = 1_048_576
HEADERS = ("loan_id", "borrower", "province", "city", "claim", "collateral_type",
           "collateral_value", "lien_rank", "prior_claims", "stage", "defects",
           "borrower_recovery", "guarantor_recovery", "other_recovery", "expected_recovery",
           "expected_months", "recovery_sd")
_NS = ('xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
       'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"')


def _inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def _tape_sheet_chunks(n: int, seed: int):
    """The Tape sheet XML in chunks: header row 1, loans in rows 2..n+1 (inline strings,
    as xlsxwriter's constant-memory mode writes them)."""
    from npl_xl.inputs.codes import COLLATERAL_CODES, DEFECT_CODES, PROVINCES, STAGE_CODES

    last = _letters(len(HEADERS) - 1)
    yield (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {_NS}>'
           f'<dimension ref="A1:{last}{n + 1}"/><sheetData><row r="1">')
    yield "".join(_inline(f"{_letters(j)}1", h) for j, h in enumerate(HEADERS)) + "</row>"
    rng = np.random.default_rng(seed)
    provinces = list(PROVINCES.codes)
    block = 50_000
    for start in range(0, n, block):
        m = min(block, n - start)
        claim = rng.lognormal(12, 1.0, m)
        kind = rng.choice(COLLATERAL_CODES, m, p=[0.6, 0.15, 0.05, 0.05, 0.05, 0.1])
        value = claim * rng.uniform(0.3, 2.0, m)
        prov = rng.integers(0, len(provinces), m)
        stage = rng.integers(0, len(STAGE_CODES), m)
        defect = rng.integers(-len(DEFECT_CODES) * 3, len(DEFECT_CODES), m)
        borrower = claim * rng.uniform(0, 0.05, m)
        rows = []
        for i in range(m):
            r = start + i + 2
            cells = [_inline(f"A{r}", f"L{start + i:07d}"), _inline(f"B{r}", f"B{start + i:07d}"),
                     _inline(f"C{r}", provinces[prov[i]]), _inline(f"D{r}", "city"),
                     f'<c r="E{r}"><v>{claim[i]:.2f}</v></c>', _inline(f"F{r}", kind[i])]
            if kind[i] != "none":
                cells.append(f'<c r="G{r}"><v>{value[i]:.2f}</v></c>')
            cells += [f'<c r="H{r}"><v>1</v></c>', f'<c r="I{r}"><v>0</v></c>',
                      _inline(f"J{r}", STAGE_CODES[stage[i]])]
            if defect[i] >= 0:
                cells.append(_inline(f"K{r}", DEFECT_CODES[defect[i]]))
            cells += [f'<c r="L{r}"><v>{borrower[i]:.2f}</v></c>', f'<c r="M{r}"><v>0</v></c>',
                      f'<c r="N{r}"><v>0</v></c>']
            rows.append(f'<row r="{r}">' + "".join(cells) + "</row>")
        yield "".join(rows)
    yield "</sheetData></worksheet>"


def build_workbook(path: Path, n: int, seed: int = 0) -> Path:
    """The sample deal with a Tape of ``n`` generated loans (header row 1, table A1:Q{n+1})."""
    last = _letters(len(HEADERS) - 1)
    ref = f"A1:{last}{n + 1}"
    with zipfile.ZipFile(SAMPLE) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        from lxml import etree

        workbook = etree.fromstring(source.read("xl/workbook.xml"))
        ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
        rid = workbook.find("m:sheets/m:sheet[@name='Tape']", ns).get(
            "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id")
        rels = source.read("xl/_rels/workbook.xml.rels").decode()
        target = re.search(rf'Id="{rid}"[^>]*Target="([^"]+)"|Target="([^"]+)"[^>]*Id="{rid}"',
                           rels)
        tape_part = "xl/" + (target.group(1) or target.group(2))
        tape_rels = tape_part.replace("worksheets/", "worksheets/_rels/") + ".rels"
        table_part = "xl/tables/" + re.search(r'Target="\.\./tables/([^"]+)"',
                                              source.read(tape_rels).decode()).group(1)
        for info in source.infolist():
            data = source.read(info)
            if info.filename == tape_part:
                entry = zipfile.ZipInfo(info.filename, info.date_time)
                entry.compress_type = zipfile.ZIP_DEFLATED
                with out.open(entry, "w", force_zip64=True) as stream:
                    for chunk in _tape_sheet_chunks(n, seed):
                        stream.write(chunk.encode())
                continue
            if info.filename == table_part:
                data = re.sub(rb'ref="[^"]+"', f'ref="{ref}"'.encode(), data)
            elif info.filename == "xl/workbook.xml":
                data = re.sub(rb"Tape!\$A\$2:\$Q\$\d+", f"Tape!$A$1:$Q${n + 1}".encode(), data)
            elif info.filename == tape_rels:
                pass
            out.writestr(info, data, zipfile.ZIP_DEFLATED)
    return path




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=EXCEL_ROWS - 1)
    parser.add_argument("--n-sims", type=int, default=1000)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the workbooks in")
    parser.add_argument("--no-results", action="store_true", help="do not write the results file")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="npl-million-")) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    book = folder / f"tape_{args.loans}.xlsx"
    started = time.perf_counter()
    if not book.exists():
        build_workbook(book, args.loans)
    t_build = time.perf_counter() - started
    load_before = os.getloadavg()
    command = [sys.executable, "-m", "npl_xl.cli", "run", str(book), "-o",
               str(folder / "out.xlsx"), "--n-sims", str(args.n_sims), "--no-png"]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    load_after = os.getloadavg()
    progress_lines = proc.stderr.count("\n") + proc.stderr.count("\r")
    lines = [
        f"# npl-xl run on a {args.loans:,}-loan tape",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"- load average (1, 5, 15 min) before: {load_before[0]:.2f}, {load_before[1]:.2f}, "
        f"{load_before[2]:.2f}; after: {load_after[0]:.2f}, {load_after[1]:.2f}, {load_after[2]:.2f}"
        " (the machine is shared by several developers: wall times are upper bounds)",
        f"- python {platform.python_version()}, numpy {np.__version__}",
        f"- workbook: the sample deal with a generated Tape sheet (benchmarks/tape_million_bench.py,"
        f" seed 0), {book.stat().st_size / 1e6:.0f} MB zipped, built in {t_build:.0f} s",
        f"- command: `npl-xl run BOOK -o OUT --n-sims {args.n_sims} --no-png`",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| exit status | {proc.returncode} |",
        f"| wall time (s) | {wall:.0f} |",
        f"| peak resident memory of the child (MB) | {peak_mb:,.0f} |",
        f"| progress updates on stderr | {progress_lines} |",
        "",
    ]
    if proc.returncode:
        lines += ["stderr:", "", "```", proc.stderr[-2000:], "```", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_results:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
