"""Benchmark of the structuring analyses; writes benchmarks/results/analysis.md.

Deal: the engine benchmark's (benchmarks/engine_bench.py): 10,000 loans, 10,000 paths,
semi-annual payments over a 60-month legal final, senior / mezzanine / subordinated.

Measured (best of 3, warm numba caches, the pool's quantile tables cached as they are
between worksheet calls on the same tape):
- one NPL_TRANCHE_EL call: simulate_deal (collections + waterfall + figures);
- NPL_TRANCHE_SIZE for six rating levels (Aaa, Aa2, A2, Baa2, Ba2, B2): the collections
  once, then the waterfall per candidate balance; target: < 2x one call;
- a five-variable tornado (eleven scenarios on common random numbers: the base, rho,
  recovery, sd, delay and timing sd low and high); target: < 8x one call;
- for comparison, the same eleven scenarios as eleven separate simulations.

Run: python benchmarks/analysis_bench.py [--quick]
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from engine_bench import N_LOANS, N_PATHS, best_of, machine, make_pool, parallel_probe, tranches_for  # noqa: E402

from npl_xl.analysis.sensitivity import scenario_tables, tornado, tornado_ranges  # noqa: E402
from npl_xl.analysis.sizing import tranche_size  # noqa: E402
from npl_xl.engine import simulate_deal  # noqa: E402
from npl_xl.engine.scenarios import Scenario  # noqa: E402
from npl_xl.inputs.deal import parse_settings, parse_tranches  # noqa: E402

RATINGS = ["Aaa", "Aa2", "A2", "Baa2", "Ba2", "B2"]


def main(argv=None) -> int:
    quick = "--quick" in (argv or sys.argv[1:])
    n_loans, n_paths = (2000, 2000) if quick else (N_LOANS, N_PATHS)
    load_start = os.getloadavg()[0]
    probe = parallel_probe()
    pool = make_pool(n_loans)
    tranches = parse_tranches(tranches_for(pool))
    settings = parse_settings({"n_sims": n_paths})
    # warm-up: compile/load kernels, build the pool's tables and the sd scenarios' tables
    simulate_deal(pool, tranches, settings)
    sized = tranche_size(pool, tranches, RATINGS, None, settings)
    tornado(pool, tranches, settings)

    one_call = best_of(lambda: simulate_deal(pool, tranches, settings))
    sizing = best_of(lambda: tranche_size(pool, tranches, RATINGS, None, settings))
    tornado_time = best_of(lambda: tornado(pool, tranches, settings))
    ranges = tornado_ranges(settings)
    separate_settings = []
    for variable, (low, high) in ranges.items():
        for value in (low, high):
            separate_settings.append((variable, value))

    def eleven_separate():
        simulate_deal(pool, tranches, settings)
        for variable, value in separate_settings:
            scenario_tables(pool, tranches, settings, [Scenario.shock(variable, value)])

    separate = best_of(eleven_separate, repeats=1)
    frame = tornado(pool, tranches, settings)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Structuring analyses benchmark", "",
        f"Date: {stamp}. Machine: {machine(load_start)}.",
        "The machine is shared with other developers' work; the load average above shows how "
        "busy it was, and the parallel probe how much of the second core the run got.", "",
        f"Deal: {n_loans:,} loans, {n_paths:,} paths, semi-annual payments, 60-month legal final, "
        "senior 50% / mezzanine 10% / subordinated 20% of expected recovery (the engine "
        "benchmark's deal), default settings.", "",
        "| measure | seconds | x one call | target |", "|---|---|---|---|",
        f"| parallel probe: speedup 1 -> 2 threads | {probe:.2f}x | | |",
        f"| one NPL_TRANCHE_EL call (simulate_deal, warm) | {one_call:.2f} | 1.00 | |",
        f"| NPL_TRANCHE_SIZE, six rating levels ({sized.evaluations} waterfall runs) | {sizing:.2f} | "
        f"{sizing / one_call:.2f} | < 2 |",
        f"| tornado, five variables = eleven scenarios on common random numbers | {tornado_time:.2f} | "
        f"{tornado_time / one_call:.2f} | < 8 |",
        f"| the same eleven scenarios as separate simulations (one run) | {separate:.2f} | "
        f"{separate / one_call:.2f} | |", "",
        "Sizing simulates the pool once and re-runs only the waterfall per candidate balance; "
        "the tornado draws every (loan, path) random number once and evaluates the eleven "
        "scenarios from it (npl_xl.engine.paths.collect_scenarios); the two sd scenarios need "
        "their own quantile tables, built once and cached like the base tables.", "",
        "## Senior sizes found", "",
        "| rating | balance | share of expected recovery | EL | WAL |", "|---|---|---|---|---|",
    ]
    for _, row in sized.table.iterrows():
        lines.append(f"| {row['target_rating']} | {row['balance']:,.0f} | "
                     f"{row['share_of_expected_recovery']:.2%} | {row['EL']:.6%} | {row['WAL']:.2f} |")
    lines += ["", "## Tornado (senior EL)", "", "| variable | low | high | EL low | EL high |",
              "|---|---|---|---|---|"]
    for _, row in frame.iterrows():
        lines.append(f"| {row['variable']} | {row['low_shock']:g} | {row['high_shock']:g} | "
                     f"{row['low_value']:.5%} | {row['high_value']:.5%} |")
    text = "\n".join(lines) + "\n"
    if not quick:
        (ROOT / "results" / "analysis.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
