"""Benchmark ``npl-xl recalc`` on a 10,000-loan tape; write benchmarks/results/recalc.md.

Measures, each in a fresh process (what a user waits for):

0. (issue 17) the shape of an Excel-saved business workbook (:func:`build_business`:
   thousands of VLOOKUP over ``Table[#All]``, INDIRECT and ROW formulas), and a
   10,000-month loan schedule whose rows read the row above (:func:`build_schedule`).
1. ``npl-xl recalc`` on a workbook with a 10,000-row x 18-column loan tape (an Excel
   table) and 50 formula cells: SUM/SUMPRODUCT/COUNTIF/AVERAGE over table columns,
   INDEX/MATCH and VLOOKUP lookups, NPL_BETA_* calls incl. NPL_BETA_FIT over 10,000 rows.
   Goal < 5 s.
2. Start-up of a second process with warm numba caches: import the registry and call
   NPL_BETA_DRAWS once. Goal < 2 s.
3. The same workbook through ``formulas.ExcelModel().loads().finish(); calculate()``
   (structured references rewritten to A1 first, which ExcelModel needs), on the full
   tape if it finishes within the time limit, else on a 2,000-row tape.
4. ``python -X importtime`` of the recalc process: the largest imports.

Run: ``/work/venv/bin/python benchmarks/recalc_bench.py`` (about 2 minutes).
"""

from __future__ import annotations

import datetime
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_model  # benchmarks/machine.py

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "recalc.md"
PYTHON = sys.executable
NPL_XL = [PYTHON, "-m", "npl_xl.cli"]

COLUMNS = ["loan_id", "borrower", "province", "stage", "claim", "principal", "interest",
           "penalty", "collateral_type", "collateral_value", "ltv", "months_overdue",
           "guaranteed", "mean_rr", "sd_rr", "pd", "lgd", "recovery"]
PROVINCES = ["Guangdong", "Jiangsu", "Zhejiang", "Shandong", "Henan", "Sichuan"]
STAGES = ["filing", "judgment", "enforcement", "auction", "settled"]


def calc_formulas() -> list[tuple[str, str]]:
    """The 50 formula cells of the Calc sheet: (anchor or array range, formula)."""
    cells = []
    for col in ("claim", "principal", "interest", "penalty", "collateral_value"):
        cells.append(f"=SUM(Tape[{col}])")
    for a, b in (("claim", "mean_rr"), ("principal", "pd"), ("claim", "lgd"),
                 ("collateral_value", "ltv"), ("claim", "recovery")):
        cells.append(f"=SUMPRODUCT(Tape[{a}],Tape[{b}])")
    for province in PROVINCES[:4]:
        cells.append(f'=COUNTIF(Tape[province],"{province}")')
    cells.append('=COUNTIF(Tape[stage],"auction")')
    for col in ("ltv", "months_overdue", "mean_rr", "recovery", "pd"):
        cells.append(f"=AVERAGE(Tape[{col}])")
    for i in (17, 2500, 5000, 7500, 9999):
        cells.append(f'=INDEX(Tape[claim],MATCH("L{i:05d}",Tape[loan_id],0))')
    for i in (42, 3333, 6666, 8888, 9998):
        cells.append(f'=VLOOKUP("L{i:05d}",LoanTape,10,FALSE)')
    cells.append("=IFERROR(VLOOKUP(\"nope\",LoanTape,5,FALSE),0)")
    cells.append("=SUM(Tape[[principal]:[penalty]])")
    cells.append("=MAX(Tape[claim])-MIN(Tape[claim])")
    cells.append("=SUMIF(Tape[stage],\"settled\",Tape[claim])")
    cells.append("=A1/SUM(Tape[principal])")
    cells.append("=NPL_BETA_INV(0.5,AVERAGE(Tape[mean_rr]),0.2)")
    cells.append("=NPL_BETA_INV(0.05,0.35,0.2)")
    cells.append("=NPL_BETA_INV(0.95,0.35,0.2)")
    cells.append("=NPL_BETA_DIST(0.3,0.35,0.2)")
    cells.append("=NPL_BETA_DIST(0.3,0.35,0.2,FALSE)")
    cells.append("=A27*2")
    cells.append("=ROUND(A5/A1,6)")
    cells.append("=IF(A22>A23,\"ok\",\"check\")")
    cells.append("=COUNT(Tape[claim])")
    cells.append("=SUMPRODUCT((Tape[stage]=\"auction\")*Tape[claim])")
    anchored = [(f"A{i + 1}", f) for i, f in enumerate(cells)]
    anchored.append(("C1:D1", "=NPL_BETA_PARAMS(0.35,0.2)"))
    anchored.append(("C2:H2", "=NPL_BETA_FIT(Tape[recovery])"))
    anchored.append(("C3:D3", "=NPL_BETA_PARAMS(A37,0.15)"))
    anchored.append(("C4:D4", "=NPL_BETA_PARAMS(0.5,0.1)"))
    anchored.append(("C5", "=NPL_BETA_INV(0.5,C1/(C1+D1),0.2)"))
    anchored.append(("J1:J100", "=NPL_BETA_DRAWS(0.35,0.2,100,7)"))
    return anchored


def tape_rows(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    claim = np.round(rng.lognormal(13, 1.0, n), 2)
    principal = np.round(claim * rng.uniform(0.6, 0.8, n), 2)
    interest = np.round(claim * rng.uniform(0.1, 0.2, n), 2)
    penalty = np.round(claim - principal - interest, 2)
    recovery = rng.beta(1.2, 2.0, n)
    recovery[rng.random(n) < 0.08] = 0.0
    recovery[rng.random(n) < 0.03] = 1.0
    for i in range(n):
        yield [f"L{i:05d}", f"Borrower {i}", PROVINCES[i % 6], STAGES[i % 5], float(claim[i]),
               float(principal[i]), float(interest[i]), float(penalty[i]),
               ["residential", "commercial", "land", "none"][i % 4],
               float(round(claim[i] * rng.uniform(0.2, 1.5), 2)), float(rng.uniform(0.2, 1.2)),
               float(rng.integers(3, 60)), bool(i % 3 == 0), 0.35, 0.2,
               float(rng.uniform(0.3, 1.0)), float(rng.uniform(0.3, 0.9)), float(recovery[i])]


CALCULATED = [("expected_recovery", "=[@claim]*[@[mean_rr]]"),
              ("ltv_band", '=IF([@ltv]>1,"under water",IF([@ltv]>0.6,"high","low"))')]


def build(path: Path, n_rows: int, a1_only: bool = False, calculated: bool = False) -> None:
    """The benchmark workbook; ``a1_only`` rewrites structured references and names to A1;
    ``calculated`` adds two calculated columns to the table (2 x n_rows formula cells)."""
    import openpyxl
    from openpyxl.workbook.defined_name import DefinedName
    from openpyxl.worksheet.formula import ArrayFormula
    from openpyxl.worksheet.table import Table

    from npl_xl.recalc.references import Names, Table as TableSpec, rewrite_formula

    last = f"$R${n_rows + 1}"
    book = openpyxl.Workbook()
    tape = book.active
    tape.title = "Tape"
    extra = CALCULATED if calculated else []
    tape.append(COLUMNS + [name for name, _ in extra])
    for row in tape_rows(n_rows):
        tape.append(row + [formula for _, formula in extra])
    last_col = "T" if calculated else "R"
    tape.add_table(Table(displayName="Tape", ref=f"A1:{last_col}{n_rows + 1}"))
    book.defined_names["LoanTape"] = DefinedName("LoanTape", attr_text=f"Tape!$A$1:{last}")
    calc = book.create_sheet("Calc")
    names = Names({"LOANTAPE": f"Tape!$A$1:{last}"}, {},
                  {"TAPE": TableSpec("Tape", "Tape", 0, 0, n_rows, 17, tuple(COLUMNS))},
                  ("Tape", "Calc"))
    for where, formula in calc_formulas():
        if a1_only:
            formula = rewrite_formula(formula, names, "Calc", 0, 0)
        if ":" in where:
            calc[where.split(":")[0]] = ArrayFormula(where, formula)
        else:
            calc[where] = formula
    book.save(path)


def build_business(path: Path, n_rows: int = 3_000, n_lookups: int = 3_600,
                   n_indirect: int = 3_800) -> int:
    """The shape of an Excel-saved business workbook that used to take > 30 minutes.

    A table ``Orders`` of ``n_rows`` rows (id, customer, region, amount, date); on
    ``Report``: ``n_lookups`` rows of ``=IF(ISNA(VLOOKUP(key,Orders[#All],4,FALSE)),0,
    VLOOKUP(key,Orders[#All],4,FALSE))`` with keys typed in column A, and ``n_indirect``
    cells ``=INDIRECT("Orders!D"&ROW()+1)`` and ``=ROW()-1``. Returns the formula cells.
    """
    import openpyxl
    from openpyxl.worksheet.table import Table

    book = openpyxl.Workbook()
    data = book.active
    data.title = "Orders"
    data.append(["id", "customer", "region", "amount", "date"])
    rng = np.random.default_rng(3)
    for i in range(n_rows):
        data.append([f"O{i:05d}", f"C{int(rng.integers(500)):03d}", PROVINCES[i % 6],
                     round(float(rng.uniform(10, 5000)), 2), 45000 + i % 365])
    data.add_table(Table(displayName="Orders", ref=f"A1:E{n_rows + 1}"))
    report = book.create_sheet("Report")
    formulas = 0
    for r in range(2, max(n_lookups, n_indirect) + 2):
        if r - 2 < n_lookups:
            key = f"O{(r * 7919) % (n_rows + 200):05d}"  # some keys are missing: #N/A path
            report.cell(r, 1, key)
            lookup = f"VLOOKUP(A{r},Orders[#All],4,FALSE)"
            report.cell(r, 2, f"=IF(ISNA({lookup}),0,{lookup})")
            formulas += 1
        if r - 2 < n_indirect:
            report.cell(r, 3, '=INDIRECT("Orders!D"&ROW())')
            report.cell(r, 4, "=ROW()-1")
            formulas += 2
    book.save(path)
    return formulas


def build_schedule(path: Path, n_rows: int = 10_000) -> int:
    """A loan schedule of ``n_rows`` months, each row reading the row above.

    B1 rate (0.5 % a month), B2 payment; row r: A period, B opening balance (= previous
    closing), C interest = B*rate, D principal = payment - C, E closing = B - D.
    """
    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Schedule"
    ws["A1"], ws["B1"] = "rate", 0.005
    ws["A2"], ws["B2"] = "payment", "=PMT(B1,%d,-1000000)" % n_rows
    ws.append([])
    ws.append(["period", "opening", "interest", "principal", "closing"])
    first = 5
    for i in range(n_rows):
        r = first + i
        ws.cell(r, 1, i + 1)
        ws.cell(r, 2, 1_000_000 if i == 0 else f"=E{r - 1}")
        ws.cell(r, 3, f"=B{r}*$B$1")
        ws.cell(r, 4, f"=$B$2-C{r}")
        ws.cell(r, 5, f"=B{r}-D{r}")
    book.save(path)
    return 1 + 4 * n_rows - 1


def _agree(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1e-300)
    return str(a) == str(b)


def wall(command: list[str], timeout: float | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - start, done


STARTUP = ("from npl_xl.sheet.registry import load_all; "
           "load_all()['NPL_BETA_DRAWS'](0.35, 0.2, 10.0, 1.0)")

EXCELMODEL = """
import json, sys, time
start = time.perf_counter()
import formulas
from npl_xl.recalc.functions import function_table
function_table()  # the NPL functions, registered in formulas' global table
model = formulas.ExcelModel().loads(sys.argv[1]).finish()
loaded = time.perf_counter()
solution = model.calculate()
done = time.perf_counter()
name = sys.argv[1].rsplit('/', 1)[-1]
values = {}
for row in range(1, 46):
    value = solution["'[%s]CALC'!A%d" % (name, row)].value[0, 0]
    values["Calc!A%d" % row] = value if isinstance(value, (int, float, str)) else str(value)
print(json.dumps({"load": loaded - start, "calculate": done - loaded, "values": values}))
"""


PHASES = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from npl_xl.recalc.functions import function_table
function_table()
t1 = time.perf_counter()
from npl_xl.recalc.xlsx import read_package
from npl_xl.recalc.engine import evaluate_package
from npl_xl.recalc.writeback import write_values
package = read_package(sys.argv[1])
t2 = time.perf_counter()
evaluation = evaluate_package(package)
t3 = time.perf_counter()
parts = {s.name: s.part for s in package.sheets}
values = {}
for (sheet, row, col), value in evaluation.values.items():
    values.setdefault(parts[sheet], {})[(row, col)] = value
write_values(sys.argv[1], sys.argv[2], package.workbook_part, values)
t4 = time.perf_counter()
print(json.dumps({"imports + function table": t1 - t0, "read xlsx (lxml)": t2 - t1,
                  "compile + evaluate": t3 - t2, "write copy": t4 - t3}))
"""


EVALUATE_ONLY = """
import json, sys, time
from npl_xl.recalc.functions import function_table
from npl_xl.recalc.engine import evaluate_package
from npl_xl.recalc.xlsx import read_package
function_table()
evaluate_package(read_package(sys.argv[1]))  # warm-up: first compiles, lazy imports
seconds = {}
for vectorize in (True, False):
    package = read_package(sys.argv[1])
    start = time.perf_counter()
    evaluate_package(package, vectorize=vectorize)
    seconds["columnar" if vectorize else "cell by cell"] = time.perf_counter() - start
print(json.dumps(seconds))
"""


def machine(load_before: float) -> str:
    cpu = cpu_model()
    import os

    import formulas
    import lxml.etree
    import numba
    import openpyxl
    import schedula

    return (f"- CPU: {cpu}, nproc = {os.cpu_count()}\n"
            f"- Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
            f"formulas {formulas.__version__}, schedula {schedula.__version__}, "
            f"openpyxl {openpyxl.__version__}, lxml {lxml.etree.__version__}\n"
            f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
            f"1-minute load average before the runs: {load_before:.2f} (the machine "
            "is shared; timings vary by up to 2x with other jobs running)")


def importtime(path: Path, out: Path) -> list[tuple[float, str]]:
    done = subprocess.run([PYTHON, "-X", "importtime", "-m", "npl_xl.cli", "recalc", str(path),
                           "-o", str(out), "--allow-errors"], capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)", line)
        if m and len(m.group(2)) <= 3:  # top-level and first-level imports
            rows.append((int(m.group(1)) / 1e6, m.group(3)))
    return sorted(rows, reverse=True)[:8]


def main() -> None:
    import os

    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="recalc_bench_"))
    full = work / "bench_10000.xlsx"
    t0 = time.perf_counter()
    build(full, 10_000)
    build_s = time.perf_counter() - t0
    out = work / "out.xlsx"
    runs = []
    for _ in range(3):
        seconds, done = wall(NPL_XL + ["recalc", str(full), "-o", str(out), "--allow-errors"])
        if done.returncode != 0:
            raise SystemExit(f"recalc failed: {done.stderr}")
        runs.append(seconds)
    summary = done.stdout.strip()
    errors = done.stderr.strip()
    startups = [wall([PYTHON, "-c", STARTUP])[0] for _ in range(3)]
    imports = importtime(full, out)
    startup_s, done = wall([PYTHON, "-c", "pass"])
    with_columns = work / "bench_10000_calculated.xlsx"
    build(with_columns, 10_000, calculated=True)
    column_runs = [wall(NPL_XL + ["recalc", str(with_columns), "-o", str(out), "--allow-errors"])[0]
                   for _ in range(2)]
    columnar = json.loads(wall([PYTHON, "-c", EVALUATE_ONLY, str(with_columns)])[1].stdout)
    business = work / "business.xlsx"
    business_cells = build_business(business)
    business_runs = [wall(NPL_XL + ["recalc", str(business), "-o", str(out), "--allow-errors"])
                     for _ in range(2)]
    schedule = work / "schedule_10000.xlsx"
    schedule_cells = build_schedule(schedule)
    schedule_runs = [wall(NPL_XL + ["recalc", str(schedule), "-o", str(out), "--allow-errors"])
                     for _ in range(2)]
    load_after = os.getloadavg()[0]
    phases = json.loads(wall([PYTHON, "-c", PHASES, str(full), str(out)])[1].stdout)

    from npl_xl.recalc import recalc_workbook

    ours = recalc_workbook(full, out)
    model_rows, model = 10_000, None
    a1 = work / "bench_10000_a1.xlsx"
    build(a1, 10_000, a1_only=True)
    try:
        seconds, done = wall([PYTHON, "-c", EXCELMODEL, str(a1)], timeout=120)
    except subprocess.TimeoutExpired:
        model_rows = 2_000
        a1 = work / "bench_2000_a1.xlsx"
        build(a1, 2_000, a1_only=True)
        seconds, done = wall([PYTHON, "-c", EXCELMODEL, str(a1)], timeout=600)
    model = (seconds, json.loads(done.stdout.strip().splitlines()[-1]))
    small_ours = None
    if model_rows != 10_000:
        small = work / "bench_2000.xlsx"
        build(small, 2_000)
        small_ours = wall(NPL_XL + ["recalc", str(small), "-o", str(out), "--allow-errors"])[0]

    lines = [
        "# `npl-xl recalc` benchmark",
        "",
        "Produced by `benchmarks/recalc_bench.py`.",
        "",
        machine(load_before),
        "",
        "## Workbook",
        "",
        "A 10,000-row x 18-column loan tape as the Excel table `Tape` (workbook name `LoanTape` =",
        "`Tape!$A$1:$R$10001`) and 50 formula cells on `Calc`: SUM/SUMPRODUCT/COUNTIF/AVERAGE/SUMIF",
        "over table columns, 5 INDEX/MATCH and 6 VLOOKUP lookups over the 10,000 rows,",
        "NPL_BETA_PARAMS/INV/DIST, NPL_BETA_FIT over the 10,000-row `Tape[recovery]` column",
        "(1x6 array formula) and NPL_BETA_DRAWS over 100x1 (array formula).",
        f"Building it with openpyxl took {build_s:.1f} s (not part of any timing below).",
        "",
        "## Results (wall time of a fresh process)",
        "",
        "| What | Seconds | Goal |",
        "|---|---|---|",
        f"| `npl-xl recalc` (10,000 rows), 3 runs | {' / '.join(f'{s:.2f}' for s in runs)} | < 5 |",
        f"| `npl-xl recalc`, same tape + 2 calculated columns (+20,000 formula cells), 2 runs | "
        f"{' / '.join(f'{s:.2f}' for s in column_runs)} | - |",
        f"| second process start-up: import registry + one NPL_BETA_DRAWS call (warm numba cache), 3 runs | {' / '.join(f'{s:.2f}' for s in startups)} | < 2 |",
        f"| business workbook: 3,000-row table, {business_cells:,} formula cells "
        "(3,600 IF(ISNA(VLOOKUP(..,Orders[#All],..))), 3,800 INDIRECT, 3,800 ROW), 2 runs | "
        f"{' / '.join(f'{s:.2f}' for s, _ in business_runs)} | seconds, not minutes |",
        f"| 10,000-month schedule, each row reading the row above ({schedule_cells:,} formula "
        f"cells), 2 runs | {' / '.join(f'{s:.2f}' for s, _ in schedule_runs)} | - |",
    ]
    total, result = model
    lines.append(f"| `formulas.ExcelModel`: loads().finish() + calculate() ({model_rows:,} rows, "
                 f"A1 refs), fresh process | {total:.1f} ({result['load']:.1f} + "
                 f"{result['calculate']:.1f}) | - |")
    if small_ours is not None:
        lines.append(f"| `npl-xl recalc` on the same 2,000-row workbook | {small_ours:.2f} | - |")
    if model_rows == 10_000:
        same = [cell for cell, value in result["values"].items()
                if _agree(value, ours.values[cell])]
        lines += ["", f"ExcelModel and `npl-xl recalc` agree (rel. 1e-12) on {len(same)} of "
                      f"{len(result['values'])} cells Calc!A1:A45."]
        differ = sorted(set(result["values"]) - set(same), key=lambda c: int(c[6:]))
        lines += [f"- {cell}: ExcelModel {result['values'][cell]!r}, ours {ours.values[cell]!r}"
                  for cell in differ]
    lines += [
        "",
        f"1-minute load average after the business and schedule runs: {load_after:.2f}. "
        "CPU seconds (user) are steadier than wall time on a shared machine; both commands' "
        "outputs:",
        "",
        f"- business: `{business_runs[-1][1].stdout.strip()}`",
        f"- schedule: `{schedule_runs[-1][1].stdout.strip()}`",
        "",
        f"Command output: `{summary}`",
        "",
        "No cell in error." if not errors else f"Cells in error:\n```\n{errors}\n```",
        "",
        f"Calculated columns (`{CALCULATED[0][1]}`, `{CALCULATED[1][1]}`): evaluating the "
        f"whole workbook again in a warm process takes {columnar['columnar']:.2f} s with cells sharing a formula computed "
        f"in one call on columns, {columnar['cell by cell']:.2f} s one cell at a time.",
        "",
        "## Where the time goes",
        "",
        f"Phases of one run, in process (the interpreter itself starts in {startup_s:.2f} s):",
        "",
        "| Phase | Seconds |",
        "|---|---|",
    ] + [f"| {name} | {s:.2f} |" for name, s in phases.items()] + [
        "",
        "NPL_BETA_DIST is the cell that imports scipy.stats (`npl_xl.model.beta.beta_dist` imports",
        "it on first call): about 0.5 s of 'compile + evaluate'. `formulas` imports",
        "scipy.stats and scipy.interpolate at load time but uses them only in a few",
        "statistical functions; `npl_xl.recalc.functions` defers those imports until used",
        "(about 1.5 s saved per process). Compiling happens once per distinct formula shape",
        "(a column of filled-down formulas compiles once).",
        "",
        "`python -X importtime` of the command (cumulative seconds, largest imports):",
        "",
        "| Module | Seconds |",
        "|---|---|",
    ] + [f"| {name} | {s:.2f} |" for s, name in imports]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
