"""Benchmark of Settings tax_base = interest in the collection kernels; writes
benchmarks/results/tax_base.md.

The kernels book, with tax_base = interest, each loan's recovery above its principal beside
the collections (one more loop per loan and sub-chunk). Measured: the fast (threshold) and
the general kernel, tax booking off and on, best of a few calls each with warm numba caches,
on the engine benchmark's synthetic pool (benchmarks/engine_bench.py make_pool: 10,000 loans)
with principal 80 % of each claim; plus the load average and CPU model, as the machine is
shared.

Run: python benchmarks/tax_base_bench.py [--paths N] [--repeats R]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

import numba
import numpy as np

from engine_bench import make_pool
from npl_xl import rng
from npl_xl.engine import Pool, paths
from npl_xl.engine.simulate import pool_tables
from npl_xl.inputs.deal import parse_settings
from machine import cpu_model  # benchmarks/machine.py
from timing import best_of  # benchmarks/timing.py

ROOT = Path(__file__).resolve().parent




def best_time(fn, repeats: int) -> float:
    fn()  # compile / warm
    return best_of(fn, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = make_pool()
    pool = Pool.from_arrays(base.claim, base.expected_recovery, base.expected_months,
                            base.recovery_sd, base.region_id, principal=0.8 * base.claim)
    coef = pool_tables(pool)
    n = args.paths
    load_before = os.getloadavg()
    rows = []
    for base_name in ("collections", "interest"):
        settings = parse_settings({"n_sims": n, "tax_base": base_name})
        words = rng.seed_key(settings.seed)
        for fast in (True, False):
            taxable = np.empty((n, settings.n_periods)) if base_name == "interest" else None

            def call():
                paths.collect(words, 0, n, n, True, coef, pool, settings, fast=fast,
                              taxable=taxable)

            seconds = best_time(call, args.repeats)
            rows.append((base_name, "fast" if fast else "general", seconds,
                         pool.n_loans * n / seconds / 1e6))
    load_after = os.getloadavg()
    lines = [
        "# tax_base benchmark", "",
        f"Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. CPU: {cpu_model()}, "
        f"{os.cpu_count()} logical CPUs; numba {numba.__version__} ({numba.get_num_threads()} "
        f"threads). Load average (1 / 5 / 15 min): "
        f"{' / '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{' / '.join(f'{x:.2f}' for x in load_after)} after (a shared machine).", "",
        f"Pool: {pool.n_loans:,} loans (benchmarks/engine_bench.py make_pool), principal 80 % "
        f"of each claim; {n:,} paths, semi-annual to a 60-month legal final; best of "
        f"{args.repeats} calls with warm caches.", "",
        "| tax_base | kernel | seconds | M loan-draws/s |", "|---|---|---|---|",
    ]
    lines += [f"| {b} | {k} | {s:.3f} | {r:.1f} |" for b, k, s, r in rows]
    out = ROOT / "results" / "tax_base.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
