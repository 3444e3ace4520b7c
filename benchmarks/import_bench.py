"""Start-up cost of the Python API: ``import npl_xl`` (lazy: no numerics) against the first
use of a name (numpy, pandas, scipy, numba load then). Writes benchmarks/results/import.md.

Run: python benchmarks/import_bench.py
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from machine import cpu_model  # benchmarks/machine.py

REPEATS = 7
RESULTS = Path(__file__).resolve().parent / "results" / "import.md"
CASES = {
    "python -c pass (the interpreter alone)": "pass",
    "import npl_xl": "import npl_xl",
    "import npl_xl; npl_xl.read_tape (pandas)": "import npl_xl; npl_xl.read_tape",
    "import npl_xl; npl_xl.simulate_deal (numba, scipy, cached kernels)": "import npl_xl; npl_xl.simulate_deal",
}




def wall(code: str) -> list[float]:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    wall("import npl_xl; npl_xl.simulate_deal")  # warm the file cache and numba's cache
    load = os.getloadavg()
    rows = []
    for label, code in CASES.items():
        times = wall(code)
        rows.append(f"| {label} | {statistics.median(times) * 1000:,.0f} | {min(times) * 1000:,.0f} |")
    load_after = os.getloadavg()
    text = "\n".join([
        "# Import time of the Python API",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"- python {platform.python_version()}",
        f"- load average before / after: {load[0]:.2f} / {load_after[0]:.2f} (1 min; the machine "
        "is shared, so absolute times are high and noisy: compare the rows)",
        f"- each case a fresh interpreter, {REPEATS} runs",
        "",
        "| case | median ms | min ms |",
        "|---|---:|---:|",
        *rows,
        "",
        "`import npl_xl` costs about what the interpreter costs: every exported name is imported",
        "on first use (tests/test_public_api.py checks that numpy, pandas, scipy and numba are",
        "not loaded by the import itself).",
        "",
    ])
    RESULTS.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
