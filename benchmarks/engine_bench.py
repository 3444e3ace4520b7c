"""Benchmark of the Monte Carlo engine; writes benchmarks/results/engine.md.

Deal: 10,000 loans, 10,000 paths, semi-annual payments over a 60-month legal final, three
tranches (senior, mezzanine, subordinated), default settings (rho 0.15, timing sd 3 months).

Measured in one run:
- loan-draws per second of the collection kernel (fast path and general path) with 1 and 2
  numba threads against the strongest numpy implementation of the same model we could write
  (benchmarks/numpy_engine.py: vectorised, tabulated inverse Beta, one gather per lookup,
  bincount bookings, chunked over paths), thread for thread and whole call; the numpy
  implementation is first checked against the kernel (same Philox uniforms: equal to table
  accuracy; numpy Generator: equal within Monte Carlo error). The per-draw scipy reference
  (npl_xl.engine.reference.reference_collections) is kept only as the exactness check;
- the kernel's parts alone (Philox, normal quantile, Beta lookup, period, booking) in ns per
  loan-draw against the whole kernel; the table build and the waterfall; a scaling table
  (loans x paths: time and peak memory, each in a fresh process);
- the CPU model and SIMD flags from /proc/cpuinfo and the load average before and after;
- the whole NPL_TRANCHE_EL-equivalent call (simulate_deal: tables, paths, waterfall,
  figures) with warm numba caches, in this process and in a fresh second process;
- the senior EL standard error at that size, and the standard error at equal time with and
  without variance reduction.

Run: python benchmarks/engine_bench.py [--quick] [--no-scaling]
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numba
import numpy as np
import scipy

from npl_xl.inputs.deal import parse_settings, parse_tranches
from npl_xl.engine import Pool, simulate_deal
from npl_xl.engine import paths, simulate as sim
from npl_xl.engine.waterfall import waterfall_paths
from numpy_engine import numpy_collections, numpy_tables
from npl_xl.engine.reference import reference_collections
from npl_xl import rng
from machine import cpu_model  # benchmarks/machine.py
from timing import best_of  # benchmarks/timing.py

ROOT = Path(__file__).resolve().parent
N_LOANS = 10_000
N_PATHS = 10_000


def make_pool(n: int = N_LOANS, seed: int = 1) -> Pool:
    """A synthetic corporate/residential NPL pool: lognormal claims, expected recovery rates
    10-70%, sd by difficulty 0.10-0.30, 6-48 months, 31 provinces."""
    rs = np.random.default_rng(seed)
    claim = rs.lognormal(13.0, 1.0, n)
    rate = rs.uniform(0.10, 0.70, n)
    sd = rs.choice([0.10, 0.15, 0.20, 0.25, 0.30], n)
    months = rs.uniform(6.0, 48.0, n)
    region = rs.integers(0, 31, n)
    return Pool.from_arrays(claim, claim * rate, months, sd, region)


def tranches_for(pool: Pool):
    er = pool.expected_recovery.sum()
    return [["name", "kind", "balance", "coupon", "issue_price"],
            ["Senior", "senior", 0.50 * er, 0.035, None],
            ["Mezz", "mezzanine", 0.10 * er, 0.06, None],
            ["Sub", "subordinated", 0.20 * er, 0.0, 0.216 * er]]


def machine(load_at_start: float) -> str:
    model = cpu_model()
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{model}, {os.cpu_count()} logical CPUs; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
            f"numba {numba.__version__} (threading layer {numba.threading_layer()}, "
            f"{numba.config.NUMBA_NUM_THREADS} threads); load average {load_at_start:.2f} at the "
            f"start, {load_end:.2f} at the end")


def make_tape(pool: Pool) -> list[list]:
    """The pool as worksheet tape rows with the override columns filled."""
    rows = [["loan_id", "province", "claim", "collateral_type", "expected_recovery",
             "expected_months", "recovery_sd"]]
    provinces = ["浙江", "江苏", "山东", "广东", "辽宁"]
    for i in range(pool.n_loans):
        rows.append([f"L{i}", provinces[i % 5], float(pool.claim[i]), "none",
                     float(pool.expected_recovery[i]), float(pool.expected_months[i]),
                     float(pool.recovery_sd[i])])
    return rows


def tape_call_seconds() -> float:
    """NPL_TRANCHE_EL through the registry on a 10,000-row tape (read, value, simulate);
    best of 3, result cache and table cache cleared each time."""
    from npl_xl.sheet.registry import load_all

    pool = make_pool()
    tape = make_tape(pool)
    fn = load_all()["NPL_TRANCHE_EL"]

    def call():
        fn.clear_cache()
        sim._TABLE_CACHE.clear()
        out = fn(tape, tranches_for(pool), None, float(N_PATHS))
        assert isinstance(out, list), out

    return best_of(call)


@numba.njit(parallel=True)
def _probe(n):
    out = np.zeros(64)
    for s in numba.prange(64):
        acc = 0.0
        for i in range(n):
            acc += np.sin(i * 1e-3 + s)
        out[s] = acc
    return out


def parallel_probe() -> float:
    """Wall-time speedup of a trivially parallel numba loop from 1 to 2 threads: how much of
    a second core this machine actually gave us during the run (2.0 = a full core)."""
    _probe(10)
    times = []
    for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
        numba.set_num_threads(threads)
        start = time.perf_counter()
        _probe(1_000_000)
        times.append(time.perf_counter() - start)
    return times[0] / times[1]


def reference_rate(pool, settings, n_paths: int) -> float:
    start = time.perf_counter()
    reference_collections(pool, settings, n_paths=n_paths, n_total=N_PATHS)
    return n_paths * pool.n_loans / (time.perf_counter() - start)


SECOND_PROCESS = textwrap.dedent("""
    import time
    t0 = time.perf_counter()
    import sys
    sys.path.insert(0, {bench!r})
    import numpy as np
    from engine_bench import make_pool, tranches_for
    from npl_xl.engine import Pool, simulate_deal
    t1 = time.perf_counter()
    tiny = Pool.from_arrays(np.ones(10), np.full(10, 0.4), np.full(10, 12.0), np.full(10, 0.2))
    simulate_deal(tiny, [["name", "kind", "balance"], ["A", "senior", 3.0]], {{"n_sims": 100}})
    t2 = time.perf_counter()
    pool = make_pool()
    t3 = time.perf_counter()
    r = simulate_deal(pool, tranches_for(pool), {{"n_sims": {n}}})
    t4 = time.perf_counter()
    print(t1 - t0, t2 - t1, t4 - t3)
""")


def second_process(n: int) -> tuple[float, float, float, float]:
    """(import seconds, first tiny call = loading the cached kernels, full simulate_deal,
    wall seconds) in a fresh interpreter."""
    code = SECOND_PROCESS.format(bench=str(ROOT), n=n)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    imports, cache_load, run = map(float, out.stdout.split())
    return imports, cache_load, run, wall


def equal_time_se(pool, tranches, n_paths: int) -> dict:
    out = {}
    for vr in (True, False):
        settings = {"n_sims": n_paths, "variance_reduction": vr}
        simulate_deal(pool, tranches, settings)  # tables cached, kernels warm
        start = time.perf_counter()
        r = simulate_deal(pool, tranches, settings)
        seconds = time.perf_counter() - start
        row = r.tranche_table.loc[0]
        out[vr] = {"seconds": seconds, "el": row["EL"], "se": row["el_stderr"],
                   "sub_se": r.tranche_table.loc[2, "el_stderr"]}
    return out


def repeated_seeds(pool, tranches, n_paths: int, seeds: int) -> dict:
    """The actual spread of the senior EL over seeds vs the reported SE, both designs."""
    out = {}
    for vr in (True, False):
        els, ses = [], []
        for seed in range(seeds):
            r = simulate_deal(pool, tranches, {"n_sims": n_paths, "variance_reduction": vr}, seed=seed)
            els.append(r.tranche_table.loc[0, "EL"])
            ses.append(r.tranche_table.loc[0, "el_stderr"])
        out[vr] = (float(np.std(els, ddof=1)), float(np.mean(ses)))
    return out


def cpu_flags() -> str:
    """The SIMD flags of /proc/cpuinfo that matter for the kernels."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                wanted = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512vl",
                          "avx512_vnni"]
                return ", ".join(f for f in wanted if f in flags) or "none of sse4_2/avx/avx2/fma/avx512"
    except OSError:
        pass
    return "unknown"


def kernel_rate_fast_general(pool, coef, settings, threads: int, n_paths: int, fast: bool,
                             repeats: int = 7):
    """Best of ``repeats``: loan-draws per wall second and per CPU second, fast or general
    kernel (the general one is what timing stress uses). Warmed by two full-size calls: the
    first calls after the tables are built run up to 1.4x slower on this VM (first touches
    of the 40 MB of tables, the thread pool)."""
    numba.set_num_threads(threads)
    words = rng.seed_key(0)
    for _ in range(2):  # warm
        paths.collect(words, 0, n_paths, n_paths, True, coef, pool, settings, fast=fast)
    wall = cpu = np.inf
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        paths.collect(words, 0, n_paths, n_paths, True, coef, pool, settings, fast=fast)
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    draws = n_paths * pool.n_loans
    return draws / wall, draws / cpu


def numpy_rate(pool, settings, coef_flat, n_paths: int, repeats: int = 3):
    """Best of ``repeats``: loan-draws per wall and per CPU second of numpy_collections
    (numpy Generator normals), one process."""
    numpy_collections(pool, settings, coef_flat, 128, generator_seed=1)  # warm
    wall = cpu = np.inf
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        numpy_collections(pool, settings, coef_flat, n_paths, generator_seed=1)
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    draws = n_paths * pool.n_loans
    return draws / wall, draws / cpu


def exactness(pool, settings, coef, coef_flat) -> dict:
    """The checks behind the comparisons: kernel vs the per-draw scipy reference, numpy with
    the kernels' Philox uniforms vs the kernel, numpy Generator vs the kernel within Monte
    Carlo error, fast vs general kernel bit for bit."""
    out = {}
    small = Pool.from_arrays(pool.claim[:300], pool.expected_recovery[:300],
                             pool.expected_months[:300], pool.recovery_sd[:300],
                             pool.region_id[:300])
    s_small = parse_settings({"n_sims": 16})
    kern = sim.simulate_collections(small, s_small)
    ref = reference_collections(small, s_small)
    out["ref_abs"] = float(np.abs(kern - ref).max() / small.claim.max())
    n = 512
    words = rng.seed_key(settings.seed)
    kern = paths.collect(words, 0, n, n, True, coef, pool, settings)
    same_u = numpy_collections(pool, settings, coef_flat, n)
    out["philox_rel"] = float(np.abs(kern - same_u).max() / np.abs(kern).max())
    out["fast_equal"] = bool(np.array_equal(
        kern, paths.collect(words, 0, n, n, True, coef, pool, settings, fast=False)))
    n = 4000
    kern = paths.collect(words, 0, n, n, True, coef, pool, settings)
    gen = numpy_collections(pool, settings, coef_flat, n, generator_seed=12345)
    mk, sk = sim.mc_mean(kern, True)
    mg, sg = sim.mc_mean(gen, True)
    zscores = (mk - mg) / np.sqrt(sk ** 2 + sg ** 2)
    tk, tsk = sim.mc_mean(kern.sum(axis=1), True)
    tg, tsg = sim.mc_mean(gen.sum(axis=1), True)
    out["z_max"] = float(np.abs(zscores).max())
    out["n_periods"] = len(zscores)
    out["total"] = (float(tk), float(tsk), float(tg), float(tsg))
    return out


# --- per-part microkernels: the kernel's stages alone, one thread ------------------------
# Each calls the fast kernel's own helper (npl_xl.engine.paths) on one sub-chunk of pairs
# for every loan in turn, each loan with its own table and thresholds, and draws that rotate
# over ROTATION sets: the data-dependent branches see as many patterns as the predictor
# cannot learn, while the draws stay in cache as the kernel's one sub-chunk does.

ROTATION = 8


@numba.njit(cache=True, fastmath=paths.CONTRACT)
def _part_philox(k0, k1, n_loans, u0, bits):
    for i in range(n_loans):
        r = i % u0.shape[0]
        for j in range(u0.shape[1]):
            a, b = rng.uniform_and_bits(k0, k1, rng.STREAM_IDIOSYNCRATIC, j, i)
            u0[r, j] = a
            bits[r, j] = b


@numba.njit(cache=True, fastmath=paths.CONTRACT)
def _part_normal(n_loans, u, table, eps, index, work):
    for i in range(n_loans):
        r = i % u.shape[0]
        paths._normals(u[r], table, 0.92, eps[r], index, work)


@numba.njit(cache=True, fastmath=paths.CONTRACT)
def _part_beta(coef, sys_row, sys_partner_row, eps, rate, rate2):
    for i in range(coef.shape[0]):
        r = i % eps.shape[0]
        paths._rates(coef[i], sys_row, sys_partner_row, eps[r], True, rate[r], rate2[r])


@numba.njit(cache=True, fastmath=paths.CONTRACT)
def _part_touch(coef, sink):
    for i in range(coef.shape[0]):
        paths._touch_table(coef, i + 1, sink)


@numba.njit(cache=True, fastmath=paths.CONTRACT)
def _part_thresholds(thresholds, bits, period, period2, periods_of_loan, periods2_of_loan):
    for i in range(thresholds.shape[0]):
        r = i % bits.shape[0]
        paths._periods_by_thresholds(bits[r], thresholds[i], True, period[r], period2[r])
        if i < periods_of_loan.shape[0]:  # keep each loan's periods for the booking stage
            periods_of_loan[i] = period[r]
            periods2_of_loan[i] = period2[r]


@numba.njit(cache=True, fastmath=paths.CONTRACT)
def _part_booking(claim, rate, rate2, periods_of_loan, periods2_of_loan, even_rows, odd_rows):
    for i in range(claim.shape[0]):
        r = i % rate.shape[0]
        k = i % periods_of_loan.shape[0]
        paths._book_rows(claim[i], rate[r], periods_of_loan[k], even_rows)
        paths._book_rows(claim[i], rate2[r], periods2_of_loan[k], odd_rows)


def per_part(pool, coef, settings, n_loans: int = 2000) -> dict:
    """ns per antithetic pair of each stage of the fast kernel, one thread (best of 3), on
    one sub-chunk (paths.SUB_CHUNK paths = SUB_CHUNK / 2 pairs) for each of n_loans loans."""
    numba.set_num_threads(1)
    m = paths.SUB_CHUNK // 2
    k0, k1 = rng.seed_key(0)
    shape = (ROTATION, m)
    u0, bits = np.empty(shape), np.empty(shape, dtype=np.int64)
    eps, rate, rate2 = np.empty(shape), np.empty(shape), np.empty(shape)
    period, period2 = np.empty(shape, dtype=np.int64), np.empty(shape, dtype=np.int64)
    # 64 loans' own periods (their expected months differ): the booking stage's patterns
    periods_of_loan = np.empty((64, m), dtype=np.int64)
    periods2_of_loan = np.empty((64, m), dtype=np.int64)
    index, work = np.empty(m, dtype=np.int64), np.empty(m)
    table = paths.NORMAL_TABLE
    sys_z, _ = paths.factors(rng.seed_key(0), 0, 2 * m, 2 * m, True, settings.rho, 1.0, 0.0, 1)
    sys_row = np.ascontiguousarray(sys_z[0::2, 0])
    sys_partner_row = np.ascontiguousarray(sys_z[1::2, 0])
    thresholds = paths.period_thresholds(pool.expected_months[:n_loans], settings)
    even_rows = np.zeros((settings.n_periods, m))
    odd_rows = np.zeros((settings.n_periods, m))
    sink = np.zeros(8)
    tables = coef[:n_loans]
    stages = {
        "Philox4x32-10 (one call: eps's uniform and the timing bits)":
            lambda: _part_philox(k0, k1, n_loans, u0, bits),
        "normal quantile of eps (table 4 at a time, exact tails flagged and gathered)":
            lambda: _part_normal(n_loans, u0, table, eps, index, work),
        "Beta table lookups (2: the path and its partner, 4 at a time)":
            lambda: _part_beta(tables, sys_row, sys_partner_row, eps, rate, rate2),
        "next loan's table rows for |z| <= 5 into cache (40 reads a loan)":
            lambda: _part_touch(tables, sink),
        "payment periods by thresholds (2, integer compares)":
            lambda: _part_thresholds(thresholds, bits, period, period2, periods_of_loan,
                                     periods2_of_loan),
        "bookings (2; one vectorised pass per period when a loan's draws span at most 4)":
            lambda: _part_booking(pool.claim[:n_loans], rate, rate2, periods_of_loan,
                                  periods2_of_loan, even_rows, odd_rows),
    }
    out = {}
    for name, fn in stages.items():  # in kernel order: each stage's outputs feed the next
        fn()
        out[name] = best_cpu_of(fn) / (n_loans * m) * 1e9
    return out


def best_cpu_of(function, repeats: int = 3) -> float:
    """Best CPU seconds of this process over ``repeats`` calls (one thread: the time the
    core spent on it, less disturbed by other processes than the wall time)."""
    return best_of(function, repeats, clock=time.process_time)


def waterfall_seconds(pool, tranches, n_paths: int) -> float:
    settings = parse_settings({"n_sims": n_paths})
    coll = sim.simulate_collections(pool, settings)
    parsed = parse_tranches(tranches)
    return best_of(lambda: waterfall_paths(coll, parsed, settings, forecast=coll.mean(axis=0)))


def numpy_paths_and_waterfall(pool, tranches, n_paths: int, coef_flat) -> float:
    """Seconds of numpy collections + the same waterfall (tables given)."""
    settings = parse_settings({"n_sims": n_paths})
    parsed = parse_tranches(tranches)
    t0 = time.perf_counter()
    coll = numpy_collections(pool, settings, coef_flat, n_paths, generator_seed=1)
    waterfall_paths(coll, parsed, settings, forecast=coll.mean(axis=0))
    return time.perf_counter() - t0


SCALING = textwrap.dedent("""
    import resource, sys, time
    sys.path.insert(0, {bench!r})
    from engine_bench import make_pool, tranches_for
    from npl_xl.engine import simulate_deal
    pool = make_pool({loans})
    tranches = tranches_for(pool)
    simulate_deal(pool, tranches, {{"n_sims": 1000}})   # warm: kernels loaded, tables built
    start = time.perf_counter()
    simulate_deal(pool, tranches, {{"n_sims": {paths}}})
    seconds = time.perf_counter() - start
    print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
""")


def scaling(sizes) -> list[tuple[int, int, float, float]]:
    """(loans, paths, seconds of a warm simulate_deal with cached tables, peak RSS MB) each
    in a fresh process."""
    rows = []
    for loans, n in sizes:
        code = SCALING.format(bench=str(ROOT), loans=loans, paths=n)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        seconds, rss = map(float, res.stdout.split())
        rows.append((loans, n, seconds, rss))
    return rows


def main(quick: bool = False, do_scaling: bool = True) -> str:
    load_at_start = os.getloadavg()
    pool = make_pool()
    tranches = tranches_for(pool)
    settings = parse_settings({"n_sims": N_PATHS})

    start = time.perf_counter()
    simulate_deal(pool, tranches, {"n_sims": N_PATHS})
    first_call = time.perf_counter() - start  # numba cache load (or compile) + tables + run

    def tables():
        sim._TABLE_CACHE.clear()
        return sim.pool_tables(pool)

    table_seconds = best_of(tables)
    coef = sim.pool_tables(pool)
    start = time.perf_counter()
    coef_flat = numpy_tables(pool.alpha, pool.beta, pool.mean)
    np_table_seconds = time.perf_counter() - start  # once: it takes seconds
    thr_seconds = best_of(lambda: paths.period_thresholds(pool.expected_months, settings))

    def new_tape():
        sim._TABLE_CACHE.clear()
        paths._THRESHOLD_CACHE.clear()
        return simulate_deal(pool, tranches, {"n_sims": N_PATHS})

    whole = best_of(new_tape)  # warm kernels, tables rebuilt (a new tape)
    result = simulate_deal(pool, tranches, {"n_sims": N_PATHS})
    whole_cached_tables = best_of(lambda: simulate_deal(pool, tranches, {"n_sims": N_PATHS, "rho": 0.2}))
    wf_seconds = waterfall_seconds(pool, tranches, N_PATHS)

    checks = exactness(pool, settings, coef, coef_flat)
    probe = parallel_probe()
    n_kernel = 2048 if quick else 4096
    n_numpy = 256 if quick else 1024
    fast1 = kernel_rate_fast_general(pool, coef, settings, 1, n_kernel, True)
    gen1 = kernel_rate_fast_general(pool, coef, settings, 1, n_kernel, False)
    threads2 = min(2, numba.config.NUMBA_NUM_THREADS)
    fast2 = kernel_rate_fast_general(pool, coef, settings, threads2, n_kernel, True)
    gen2 = kernel_rate_fast_general(pool, coef, settings, threads2, n_kernel, False)
    npy = numpy_rate(pool, settings, coef_flat, n_numpy)
    np_whole = np_table_seconds + numpy_paths_and_waterfall(
        pool, tranches, 2048 if quick else N_PATHS, coef_flat) * (N_PATHS / 2048 if quick else 1.0)
    ref_paths = 4 if quick else 16
    ref = reference_rate(pool, settings, ref_paths)
    parts = per_part(pool, coef, settings)
    numba.set_num_threads(threads2)

    second = [second_process(N_PATHS) for _ in range(2)]
    eq = equal_time_se(pool, tranches, N_PATHS)
    spread = repeated_seeds(make_pool(2000, seed=2), tranches_for(make_pool(2000, seed=2)),
                            2000, 8 if quick else 20)
    if do_scaling:
        sizes = [(1_000, 1_000), (1_000, 10_000), (1_000, 100_000), (10_000, 1_000),
                 (10_000, 10_000), (100_000, 1_000)]
        if not quick:
            sizes += [(10_000, 100_000), (100_000, 10_000)]
        scale_rows = scaling(sizes)
    else:
        scale_rows = []
    load_mid = os.getloadavg()
    info = machine(load_at_start[0])
    tape_seconds = tape_call_seconds()
    load_end = os.getloadavg()
    table = result.tranche_table
    vr, plain = eq[True], eq[False]
    se_plain_at_vr_time = plain["se"] * np.sqrt(plain["seconds"] / vr["seconds"])
    efficiency = (plain["se"] ** 2 * plain["seconds"]) / (vr["se"] ** 2 * vr["seconds"])
    # every stage is timed per antithetic pair: a loan-draw is half of one
    names = list(parts)
    per_draw = {name: 0.5 * parts[name] for name in names}
    parts_sum = sum(per_draw.values())
    kernel_ns = 1e9 / fast1[1]
    load_fmt = lambda la: f"{la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f}"
    lines = [
        "# Engine benchmark",
        "",
        f"Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. Machine: {info}.",
        f"CPU flags: {cpu_flags()}.",
        f"Load average (1 / 5 / 15 min): {load_fmt(load_at_start)} before, "
        f"{load_fmt(load_mid)} after the timings, {load_fmt(load_end)} at the end, on "
        f"{os.cpu_count()} logical CPUs.",
        "",
    ]
    if load_at_start[0] > 1.5 * (os.cpu_count() or 1):
        lines += [
            f"**Noisy run: the machine was heavily loaded (load average {load_at_start[0]:.1f} on "
            f"{os.cpu_count()} CPUs, shared with other work). Absolute rates are low and the "
            "ratios uncertain; re-run on a quiet machine before quoting them.** Per-CPU-second",
            "rates are less affected than wall rates.",
            "",
        ]
    lines += [
        f"Deal: {N_LOANS:,} loans (31 regions), {N_PATHS:,} paths, semi-annual payments, 60-month",
        "legal final, three tranches (senior 50% / mezzanine 10% / subordinated 20% of expected",
        "recovery), default settings (rho 0.15, timing sd 3 months, no timing stress).",
        "",
        "## Exactness checks behind the comparisons",
        "",
        "| check | result |",
        "|---|---|",
        f"| kernel vs per-draw scipy reference (ndtri + betaincinv), 300 loans x 16 paths | max diff {checks['ref_abs']:.1e} of the largest claim |",
        f"| numpy implementation with the kernels' Philox uniforms vs kernel, 512 paths | max diff {checks['philox_rel']:.1e} of the largest cell |",
        f"| numpy implementation with numpy's Generator vs kernel, 4,000 paths each | largest of {checks['n_periods']} per-period z-scores {checks['z_max']:.2f}; pool total {checks['total'][0]:,.0f} +- {checks['total'][1]:,.0f} vs {checks['total'][2]:,.0f} +- {checks['total'][3]:,.0f} |",
        f"| fast kernel (period thresholds) vs general kernel, 512 paths | {'bit-identical' if checks['fast_equal'] else 'DIFFERENT'} |",
        "",
        "## Thread for thread: the kernel against the best numpy",
        "",
        "The numpy implementation is benchmarks/numpy_engine.py: per-loan cubic Hermite",
        "tables of the inverse Beta built with one vectorised scipy betaincinv call, draws",
        "chunked over 64 antithetic pairs x all loans, numpy Generator normals, one vectorised",
        "gather for the table lookup, np.bincount bookings. It runs in one process (numpy is",
        "single-threaded here); the kernel is timed with numba.set_num_threads(1) and 2.",
        "Rates in million loan-draws per second (wall; per CPU-second in brackets), kernel on",
        f"{n_kernel:,} paths, numpy on {n_numpy:,} paths, all {N_LOANS:,} loans.",
        "",
        "| implementation | threads | rate | vs numpy (CPU-second) |",
        "|---|---|---|---|",
        f"| numpy (Generator normals, tables, bincount) | 1 process | {npy[0] / 1e6:.1f} ({npy[1] / 1e6:.1f}) | 1.00x |",
        f"| kernel, fast path (no timing stress) | 1 | {fast1[0] / 1e6:.1f} ({fast1[1] / 1e6:.1f}) | {fast1[1] / npy[1]:.2f}x |",
        f"| kernel, general path (timing stress) | 1 | {gen1[0] / 1e6:.1f} ({gen1[1] / 1e6:.1f}) | {gen1[1] / npy[1]:.2f}x |",
        f"| kernel, fast path | {threads2} | {fast2[0] / 1e6:.1f} ({fast2[1] / 1e6:.1f}) | |",
        f"| kernel, general path | {threads2} | {gen2[0] / 1e6:.1f} ({gen2[1] / 1e6:.1f}) | |",
        f"| per-draw scipy reference (ndtri + betaincinv), {ref_paths} paths, exactness check only | 1 process | {ref / 1e6:.3f} (wall) | |",
        "",
        f"Fast path over general path, one thread, per CPU-second: {fast1[1] / gen1[1]:.2f}x.",
        "Parallel probe (speedup of a trivially parallel loop from 1 to 2 threads, i.e. how",
        f"much of a second core the machine gave): {probe:.2f}x.",
        "",
        "## Whole call",
        "",
        "| measure | numba engine | numpy |",
        "|---|---|---|",
        f"| quantile tables for {N_LOANS:,} loans | {table_seconds:.2f} s | {np_table_seconds:.2f} s |",
        f"| period thresholds for the fast path, {N_LOANS:,} loans | {thr_seconds:.3f} s | (not needed) |",
        f"| waterfall on {N_PATHS:,} paths (same function for both) | {wf_seconds:.2f} s | {wf_seconds:.2f} s |",
        f"| tables + {N_PATHS:,} paths + waterfall (new tape) | {whole:.2f} s | {np_whole:.2f} s{' (paths and waterfall timed on 2,048 paths, scaled)' if quick else ''} |",
        f"| whole simulate_deal, warm, same tape, other rho (tables cached) | {whole_cached_tables:.2f} s | |",
        f"| whole simulate_deal, first call in this process | {first_call:.2f} s | |",
        f"| NPL_TRANCHE_EL through the registry, 10,000-row tape (read + value + simulate) | {tape_seconds:.2f} s | |",
        f"| fresh process: imports | {second[1][0]:.2f} s | |",
        f"| fresh process: first tiny call (loading the numba-cached kernels) | {second[1][1]:.2f} s | |",
        f"| fresh process: then the full simulate_deal | {second[1][2]:.2f} s | |",
        f"| fresh process: wall time of the whole script | {second[1][3]:.2f} s | |",
        "",
        "The numba engine's whole call runs 2 threads; numpy one process. A loan-draw is one",
        "loan on one path (rate, date and booking).",
        "",
        "## Per part (one thread, ns per loan-draw)",
        "",
        "Each stage of the fast kernel timed alone: the kernel's own helper (npl_xl.engine.paths)",
        f"on one sub-chunk of {paths.SUB_CHUNK // 2} antithetic pairs for each of 2,000 loans in turn (the microkernels",
        "in this script), CPU time of one thread. A pair is two loan-draws (a path and its",
        "antithetic partner share one Philox call and one normal quantile). Each loan has its own",
        f"table and thresholds; the draws rotate over {ROTATION} sets. Not in the parts: the per-sub-chunk set-up (region rows of",
        "the systematic term, the collections rows in and out), the cap loop (off here) and the",
        "loop itself. The kernel's figure is its per-CPU-second rate with one thread.",
        "",
        "| stage | ns per pair | ns per loan-draw |",
        "|---|---|---|",
    ]
    for name in names:
        lines.append(f"| {name} | {parts[name]:.2f} | {per_draw[name]:.2f} |")
    lines += [
        f"| sum of the parts | | {parts_sum:.2f} |",
        f"| the fast kernel, one thread (per CPU-second above) | | {kernel_ns:.2f} |",
        f"| kernel / sum of parts | | {kernel_ns / parts_sum:.2f}x |",
        "",
    ]
    if scale_rows:
        lines += [
            "## Scaling (warm simulate_deal with cached tables, 2 threads, fresh process each)",
            "",
            "| loans | paths | seconds | M loan-draws/s | peak RSS (MB) |",
            "|---|---|---|---|---|",
        ]
        for loans, n, seconds, rss in scale_rows:
            lines.append(f"| {loans:,} | {n:,} | {seconds:.2f} | {loans * n / seconds / 1e6:.0f} | {rss:.0f} |")
        lines += ["", "Peak RSS includes the interpreter, numpy/scipy/numba and the warm-up call.",
                  "Sizes above 10^8 loan-draws run only without --quick; 100,000 loans x 100,000 paths",
                  "(10^10 loan-draws) is not run.", ""]
    lines += [
        "## Result and standard errors",
        "",
        _markdown(table[["name", "EL", "el_stderr", "PD", "WAL", "mean_irr", "rating"]]),
        "",
        f"Senior EL standard error at {N_PATHS:,} paths: {table.loc[0, 'el_stderr']:.2e} "
        f"(EL {table.loc[0, 'EL']:.4%}).",
        "",
        "Standard error at equal time (senior EL):",
        "",
        "| design | seconds | senior EL | SE | subordinated SE |",
        "|---|---|---|---|---|",
        f"| antithetic pairs + stratified national factor | {vr['seconds']:.2f} | {vr['el']:.5f} | {vr['se']:.2e} | {vr['sub_se']:.2e} |",
        f"| plain Monte Carlo | {plain['seconds']:.2f} | {plain['el']:.5f} | {plain['se']:.2e} | {plain['sub_se']:.2e} |",
        "",
        f"Plain Monte Carlo's SE scaled to the variance-reduced run's time: {se_plain_at_vr_time:.2e};",
        f"efficiency gain (SE^2 x time, plain / reduced): {efficiency:.1f}x.",
        "",
        "The variance-reduced SE is the collapsed-strata estimate (conservative). Check against",
        "the actual spread over seeds (2,000 loans, 2,000 paths):",
        "",
        "| design | sd of senior EL over seeds | mean reported SE |",
        "|---|---|---|",
        f"| variance reduction | {spread[True][0]:.2e} | {spread[True][1]:.2e} |",
        f"| plain | {spread[False][0]:.2e} | {spread[False][1]:.2e} |",
        "",
    ]
    text = "\n".join(lines)
    results = ROOT / "results"
    results.mkdir(exist_ok=True)
    target = results / "engine.md"
    tmp = target.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return text


def _markdown(frame) -> str:
    def cell(v):
        return f"{v:.5g}" if isinstance(v, float) else str(v)
    rows = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    rows += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(rows)


if __name__ == "__main__":
    print(main(quick="--quick" in sys.argv, do_scaling="--no-scaling" not in sys.argv))
