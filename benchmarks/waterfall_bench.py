"""Benchmark of the waterfall kernel; writes benchmarks/results/waterfall.md.

waterfall_paths (the waterfall and the tranche figures of every path) on 10,000 paths of
10 semi-annual periods, for the three-tranche deal of engine_bench.py (senior, mezzanine,
subordinated; default settings) and for a structure with every issue-8 rule on (pari-passu
A1/A2 pro rata, mezzanine before senior principal, event-of-default and CCR triggers,
deferred fee, liquidity facility with interest, reserve 1.5x); beside it the whole
simulate_deal of engine_bench.py's 10,000-loan pool, to show the waterfall's share of a run.

Run: python benchmarks/waterfall_bench.py [--baseline PATH]   (PATH: a checkout of another
version of npl-xl whose waterfall_paths is timed on the three-tranche deal for comparison)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from machine import cpu_model  # benchmarks/machine.py

ROOT = Path(__file__).resolve().parent

TIMER = r'''
import time, numpy as np
from npl_xl.inputs.deal import parse_settings, parse_tranches
from npl_xl.engine.waterfall import waterfall_paths
rs = np.random.default_rng(0)
coll = rs.gamma(2.0, 50.0, (10_000, 10))
tranches = parse_tranches(TRANCHES)
settings = parse_settings(SETTINGS)
waterfall_paths(coll[:10], tranches, settings)
best = 1e9
for _ in range(5):
    t = time.perf_counter(); waterfall_paths(coll, tranches, settings); best = min(best, time.perf_counter() - t)
print(best)
'''

PLAIN = ([["name", "kind", "balance", "coupon"], ["Senior", "senior", 500.0, 0.035],
          ["Mezz", "mezzanine", 100.0, 0.06], ["Sub", "subordinated", 200.0, 0.0]],
         {"legal_final_months": 60})
FULL = ([["name", "kind", "balance", "coupon", "pari_group", "principal"],
         ["A1", "senior", 300.0, 0.03, "A", "pro_rata"], ["A2", "senior", 200.0, 0.04, "A", "pro_rata"],
         ["Mezz", "mezzanine", 100.0, 0.06, None, None], ["Sub", "subordinated", 200.0, None, None, None]],
        {"legal_final_months": 60, "mezz_interest": "before_senior_principal",
         "eod_trigger": True, "ccr_trigger": 0.85, "deferred_fee_share": 0.5,
         "liquidity_limit": 20.0, "liquidity_rate": 0.05, "servicer_fee_rate": 0.01,
         "fixed_expenses": 1.0})


def _time(structure, pythonpath: str | None = None) -> float:
    code = TIMER.replace("TRANCHES", repr(structure[0])).replace("SETTINGS", repr(structure[1]))
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=pythonpath or None)
    return float(out.stdout.strip().splitlines()[-1])


def _simulate_deal_seconds() -> float:
    sys.path.insert(0, str(ROOT))
    from engine_bench import make_pool, tranches_for
    from npl_xl.engine import simulate_deal

    pool = make_pool()
    tranches = tranches_for(pool)
    simulate_deal(pool, tranches, {"n_sims": 100})
    best = 1e9
    for _ in range(3):
        t = time.perf_counter()
        simulate_deal(pool, tranches, {"n_sims": 10_000})
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default=None)
    args = parser.parse_args()
    cpu = cpu_model()
    load_start = os.getloadavg()[0]
    rows = [("waterfall_paths, three tranches, 10,000 paths x 10 periods", _time(PLAIN)),
            ("waterfall_paths, every issue-8 rule on, 10,000 paths x 10 periods", _time(FULL))]
    if args.baseline:
        rows.append(("baseline checkout (the waterfall before issue 8), three tranches",
                     _time(PLAIN, args.baseline)))
    whole = _simulate_deal_seconds()
    rows.append(("whole simulate_deal, 10,000 loans x 10,000 paths (engine_bench's deal)", whole))
    load_end = os.getloadavg()[0]
    lines = ["# Waterfall benchmark", "",
             f"Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. Machine: {cpu}, "
             f"{os.cpu_count()} logical CPUs; Python {platform.python_version()}; load average "
             f"{load_start:.2f} at the start, {load_end:.2f} at the end (the machine is shared "
             "with other developers' work).", "",
             "Best of 5 (3 for simulate_deal), warm numba caches.", "",
             "| measure | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.4f} |" for name, seconds in rows]
    lines += ["", f"The three-tranche waterfall is {rows[0][1] / whole:.1%} of the whole run."]
    out = ROOT / "results" / "waterfall.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
