"""Benchmark of the LibreOffice Calc front end; writes benchmarks/results/calc.md.

Measured:

- the worker alone: round trips of ``("call", "NPL_BETA_INV", ...)`` over the pipe to
  ``python -m npl_xl_calc.worker`` (pickle framing, the registry's conversion and the core
  call), against the same registry call in this process;
- live Calc (headless soffice with the extension installed into a private profile by
  ``npl-xl install --libreoffice --profile``): 1,000 cells ``=NPL_BETA_INV(p;0.4;0.2)``
  recalculated by ``calculateAll`` (the issue's goal: under 0.5 s), five times, and the
  same sheet with the native ``=BETA.INV(p;2;3)`` (Calc's own function, no add-in) for the
  cost of Calc's own recalculation.

Run: python benchmarks/calc_bench.py   (needs soffice, python3-uno and libreoffice-dev)
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from machine import cpu_model  # benchmarks/machine.py

ROOT = Path(__file__).resolve().parent
N_CELLS = 1000
N_CALLS = 5000


def machine(load_before: float) -> list[str]:
    cpu = cpu_model()
    return [f"- CPU: {cpu}, nproc = {os.cpu_count()}",
            f"- Python {platform.python_version()}; LibreOffice: "
            + subprocess.run(["soffice", "--version"], capture_output=True, text=True).stdout.strip(),
            f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; 1-minute load average "
            f"before the runs: {load_before:.2f} (the machine is shared with other developers' "
            "jobs; timings vary with them)"]


def worker_round_trips() -> tuple[float, float]:
    from npl_xl.sheet.registry import load_all
    from npl_xl_calc import wire

    function = load_all()["NPL_BETA_INV"]
    started = time.perf_counter()
    for i in range(N_CALLS):
        function((i + 1) / (N_CALLS + 1), 0.4, 0.2)
    in_process = (time.perf_counter() - started) / N_CALLS
    process = subprocess.Popen([sys.executable, "-P", "-m", "npl_xl_calc.worker"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        wire.send(process.stdin, ("ping",))
        wire.receive(process.stdout)
        started = time.perf_counter()
        for i in range(N_CALLS):
            wire.send(process.stdin, ("call", "NPL_BETA_INV", ((i + 1) / (N_CALLS + 1), 0.4, 0.2)))
            wire.receive(process.stdout)
        piped = (time.perf_counter() - started) / N_CALLS
    finally:
        process.stdin.close()
        process.wait(timeout=60)
    return in_process, piped


def live_calc() -> tuple[list[float], list[float]]:
    from npl_xl.cli import main_cli
    from npl_xl_calc import office

    with tempfile.TemporaryDirectory() as scratch:
        profile = Path(scratch) / "profile"
        assert main_cli(["install", "--libreoffice", "--profile", str(profile),
                         "--build-dir", scratch]) == 0
        with office.HeadlessOffice(profile, env={"NPL_XL_CALC_QUIET": "1"}) as running:
            timings = []
            for formula in ("=NPL_BETA_INV({p!r};0.4;0.2)", "=BETA.INV({p!r};2;3)"):
                doc = running.call("new")
                running.call("fill", doc=doc, sheet="Sheet1", where=f"A1:A{N_CELLS}",
                             formulas=[[formula.format(p=(i + 1) / (N_CELLS + 1))]
                                       for i in range(N_CELLS)])
                running.call("time_recalc", doc=doc, repeat=1)  # the worker started, warm
                timings.append(running.call("time_recalc", doc=doc, repeat=5))
                running.call("close", doc=doc)
    return timings[0], timings[1]


def main() -> int:
    load_before = os.getloadavg()[0]
    in_process, piped = worker_round_trips()
    npl, native = live_calc()
    lines = ["# LibreOffice Calc front end benchmark", "",
             "Produced by `benchmarks/calc_bench.py`.", "", *machine(load_before), "",
             "## Results", "",
             "| What | Time | Goal |", "|---|---|---|",
             f"| registry call NPL_BETA_INV in-process | {in_process * 1e6:.1f} µs/call | |",
             f"| the same through the worker's pipe (round trip) | {piped * 1e6:.1f} µs/call | |",
             f"| {N_CELLS:,} cells =NPL_BETA_INV(p;0.4;0.2), calculateAll in Calc (best of 5) | "
             f"{min(npl):.3f} s (all: {', '.join(f'{t:.3f}' for t in npl)}) | < 0.5 s |",
             f"| {N_CELLS:,} cells native =BETA.INV(p;2;3), calculateAll (best of 5) | "
             f"{min(native):.3f} s | |", "",
             f"1-minute load average after the runs: {os.getloadavg()[0]:.2f}.", ""]
    out = ROOT / "results" / "calc.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
