"""Blocks of paths on a Dask distributed cluster (the optional extra ``npl-xl[cluster]``).

How a run goes (:meth:`DaskBackend.map_blocks`):

1. The client checks every worker's software (:func:`check_workers`): npl-xl version, a
   fingerprint of npl-xl's source, numba, numpy and scipy must equal the client's, since
   identical numbers need identical code. A cluster that differs is refused with a message
   naming both sides.
2. The pool (the per-loan arrays, 64 bytes a loan) is scattered once to every worker
   (``broadcast=True``, a content-hashed key, so a second run of the same pool sends
   nothing). Each worker builds the pool's quantile tables once from it and keeps them
   (:func:`npl_xl.engine.simulate.pool_tables`, an LRU cache per process): the tables are
   4 KB a loan, 64 times the pool, and building them costs each worker what it costs the
   client, so shipping them would only add traffic (benchmarks/results/cluster.md).
3. One task per block of paths: :func:`block_task` = the version check then
   :func:`npl_xl.engine.simulate.simulate_block`, the very function an in-process run calls:
   the block's collections, then the caller's per-path function (the analyses' scenario
   waterfalls, :class:`npl_xl.engine.simulate.ScenarioWaterfalls`). simulate_deal sends no
   per-path function: its waterfall needs the whole run's expected collection curve (the
   issuance forecast of the CCR trigger and reserve target), so it runs on the client after
   the blocks are back. A worker holds one block's arrays per thread at a time: memory per
   worker is bounded by the block (block_paths x n_periods x 8 bytes, plus what the
   per-path function returns, the pool and its tables), not by n_sims.
4. The client takes the blocks as they complete (progress per block) and puts them back in
   path order; :func:`npl_xl.engine.simulate.run_blocks` then reduces them exactly as it
   reduces an in-process run. A block whose worker dies is recomputed elsewhere by the
   scheduler (up to ``distributed.scheduler.allowed-failures`` times, default 3); a block
   cancelled because the pool's one replica died with its worker (Dask's memory manager
   keeps one replica of scattered data and cannot recompute it) is resubmitted with the
   pool scattered again. Its draws are counter-based (seed, path index), so a recomputed
   block is identical. A cluster left without workers for NO_WORKERS_SECONDS ends the run
   with ClusterError rather than a wait for ever.

Clients are kept per scheduler string for the life of the process (a LocalCluster for
``local``/``local:N``: worker processes bound to 127.0.0.1, no dashboard, one thread each
and numba threads = cores / N) and closed by :func:`close_clients` (registered atexit).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import math
import os
import threading
import time
from pathlib import Path

from npl_xl.errors import NplError
from npl_xl.inputs.deal import parse_scheduler

__all__ = ["ClusterError", "DaskBackend", "INSTALL_HINT", "software", "code_fingerprint",
           "check_workers", "block_task", "no_workers_seconds", "close_clients", "warm_worker",
           "dask_setup", "BLOCKS_PER_THREAD", "MIN_BLOCK_PATHS"]

INSTALL_HINT = "pip install npl-xl[cluster]"
#: Automatic block size on a cluster: enough blocks for this many per worker thread (so a
#: slow or lost worker delays the run by a small block), within [MIN_BLOCK_PATHS, 2048].
BLOCKS_PER_THREAD = 8
MIN_BLOCK_PATHS = 256
#: Seconds to wait for a scheduler to answer, and for a LocalCluster's workers to start.
CONNECT_TIMEOUT = 30
#: A block cancelled with a lost worker is resubmitted at most this many times.
RESUBMITS = 3
#: Seconds a run waits on a cluster that has lost every worker before it gives up; the
#: environment variable NPL_XL_NO_WORKERS_SECONDS overrides it, for tests and for clusters
#: whose workers take longer to come back (:func:`no_workers_seconds`).
NO_WORKERS_SECONDS = 60.0
#: How often a waiting run looks for new results (s) and asks the scheduler for workers (s).
POLL_SECONDS = 0.02
WORKER_CHECK_SECONDS = 1.0


class ClusterError(NplError):
    """A distributed run that cannot go ahead: Dask not installed, scheduler unreachable,
    workers running other software, a block lost on every worker that tried it."""

    excel_code = "#VALUE!"

    def __reduce__(self):  # raised on a worker, re-raised on the client: keep the message
        return (_cluster_error, (self.detail, self.argument))


def _cluster_error(detail: str, argument: str | None) -> ClusterError:
    return ClusterError(detail, argument=argument)


def _distributed():
    """The distributed module, or ClusterError naming the extra to install."""
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError(f"a distributed run needs Dask ({exc.name or exc} is not installed): "
                           f"{INSTALL_HINT}", argument="scheduler") from None
    return distributed


# --- software identity ------------------------------------------------------------------

_FINGERPRINT: list[str] = []


def code_fingerprint() -> str:
    """First 16 hex digits of the SHA-256 of npl-xl's Python source (every .py file of the
    package, by relative path and content): equal on two machines iff the code is."""
    if not _FINGERPRINT:
        root = Path(__file__).resolve().parents[1]
        digest = hashlib.sha256()
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root).as_posix()).encode())
            digest.update(path.read_bytes())
        _FINGERPRINT.append(digest.hexdigest()[:16])
    return _FINGERPRINT[0]


def software() -> dict[str, str]:
    """What identical numbers depend on: npl-xl (version and source fingerprint), numba,
    numpy, scipy versions of this process."""
    import numba
    import numpy
    import scipy

    import npl_xl

    return {"npl-xl": npl_xl.__version__, "code": code_fingerprint(),
            "numba": numba.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__}


def _describe(found: dict[str, str]) -> str:
    extra = ", ".join(f"{k} {found.get(k)}" for k in ("numpy", "scipy"))
    return (f"npl-xl {found.get('npl-xl')} (code {found.get('code')}) with numba "
            f"{found.get('numba')}, {extra}")


def mismatch_message(worker: str, found: dict, expected: dict) -> str:
    """One line naming the worker's and the client's software."""
    differ = ", ".join(k for k in expected if found.get(k) != expected[k])
    return (f"worker {worker} runs {_describe(found)} but this client runs "
            f"{_describe(expected)} ({differ} differ): install the same npl-xl and numba on "
            "every worker, identical numbers need identical code")


def check_workers(client, expected: dict[str, str] | None = None) -> int:
    """Refuse a cluster whose workers run other software than this client; return the
    number of worker threads. Raises ClusterError naming the first differing worker."""
    expected = software() if expected is None else expected
    found = client.run(software, on_error="return")
    if not found:
        raise ClusterError(f"the cluster at {client.scheduler.address} has no workers",
                           argument="scheduler")
    for worker, got in sorted(found.items()):
        if isinstance(got, BaseException):
            raise ClusterError(
                f"worker {worker} cannot run npl-xl ({type(got).__name__}: {got}); install "
                f"{_describe(expected)} on every worker", argument="scheduler")
        if got != expected:
            raise ClusterError(mismatch_message(worker, got, expected), argument="scheduler")
    return sum(client.nthreads().values())


# --- the task -----------------------------------------------------------------------------

_TABLES_LOCK = threading.Lock()


def block_task(pool, settings, first: int, stop: int, per_path, keep_collections: bool,
               expected: dict[str, str]) -> dict:
    """One block of paths on a worker: check the software (a worker that joined after the
    client's check is refused too), then simulate_block, the in-process computation."""
    from npl_xl.engine.simulate import pool_tables, simulate_block

    found = software()
    if found != expected:
        from distributed import get_worker

        raise ClusterError(mismatch_message(get_worker().address, found, expected),
                           argument="scheduler")
    with _TABLES_LOCK:  # worker threads share one build of the pool's tables
        coef = pool_tables(pool)
    return simulate_block(pool, settings, first, stop, per_path, keep_collections, coef)


def warm_worker() -> str:
    """Load (or compile once into numba's cache) every kernel a block uses, on a tiny deal;
    returns the software fingerprint. ``client.run(warm_worker)`` warms every worker."""
    import numpy as np

    from npl_xl.engine.pool import Pool
    from npl_xl.engine.simulate import simulate_deal

    claim = np.array([100.0, 200.0, 50.0, 80.0])
    pool = Pool.from_arrays(claim, 0.4 * claim, [6.0, 12.0, 24.0, 36.0], [0.2] * 4, [0, 1, 0, 1])
    tranches = [["name", "kind", "balance", "coupon"], ["A", "senior", 100.0, 0.04],
                ["B", "mezzanine", 20.0, 0.06], ["C", "subordinated", 30.0, 0.0]]
    simulate_deal(pool, tranches, {"n_sims": 8, "region_weight": 0.5}, scheduler="")
    return code_fingerprint()


def dask_setup(worker=None) -> None:
    """Preload hook: ``dask worker --preload npl_xl.engine.cluster ADDRESS`` warms the
    numba kernels when the worker starts (docs/CLUSTER.md)."""
    warm_worker()


# --- the backend -------------------------------------------------------------------------

_CLIENTS: dict[str, tuple[object, object | None]] = {}
_CLIENTS_LOCK = threading.Lock()


def _connect(scheduler: str):
    """(client, local cluster or None) for a scheduler string, started once per process."""
    kind, detail = parse_scheduler(scheduler)
    key = scheduler.strip().lower() if kind == "local" else scheduler.strip()
    with _CLIENTS_LOCK:
        if key in _CLIENTS:
            return _CLIENTS[key][0]
        distributed = _distributed()
        cluster = None
        try:
            if kind == "local":
                cores = os.cpu_count() or 1
                n_workers = detail or cores
                cluster = distributed.LocalCluster(
                    n_workers=n_workers, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address=None, worker_dashboard_address=None,
                    silence_logs=logging.ERROR,
                    env={"NUMBA_NUM_THREADS": str(max(1, cores // n_workers))})
                client = distributed.Client(cluster, timeout=CONNECT_TIMEOUT)
            else:
                client = distributed.Client(detail, timeout=CONNECT_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - Dask's start-up failures, one line each
            if cluster is not None:
                cluster.close()
            if kind == "local":
                raise ClusterError(f"could not start {scheduler} ({type(exc).__name__}: {exc})",
                                   argument="scheduler") from None
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); is "
                               "`dask scheduler` running there and its port open?",
                               argument="scheduler") from None
        _CLIENTS[key] = (client, cluster)
        return client


def close_clients() -> None:
    """Close every client (and LocalCluster) this process opened."""
    with _CLIENTS_LOCK:
        items = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client, cluster in items:
        try:
            client.close()
        finally:
            if cluster is not None:
                cluster.close()


atexit.register(close_clients)


class DaskBackend:
    """Blocks of paths as Dask tasks (see the module docstring)."""

    def __init__(self, scheduler: str):
        _distributed()
        self.scheduler = scheduler.strip()
        self._threads: int | None = None

    @classmethod
    def for_scheduler(cls, scheduler: str) -> "DaskBackend":
        return cls(scheduler)

    @property
    def client(self):
        return _connect(self.scheduler)

    def threads(self) -> int:
        """Worker threads of the cluster (after checking the workers' software)."""
        if self._threads is None:
            self._threads = check_workers(self.client)
        return self._threads

    def block_paths(self, n_paths: int, requested: int | None) -> int:
        """``requested``, else about BLOCKS_PER_THREAD blocks per worker thread, a multiple
        of 4 within [MIN_BLOCK_PATHS, 2048]."""
        from npl_xl.engine.simulate import BLOCK_PATHS

        if requested is not None:
            return requested
        per_block = -(-n_paths // (BLOCKS_PER_THREAD * self.threads()))
        return min(BLOCK_PATHS, max(MIN_BLOCK_PATHS, -(-per_block // 4) * 4))

    def map_blocks(self, pool, settings, ranges, per_path, keep_collections: bool,
                   progress=None, block_order=None) -> list[dict]:
        """One task per range; the blocks' dicts in the order of ``ranges``. block_order is
        ignored (the scheduler places the tasks).

        Blocks come back as they complete (:func:`distributed.as_completed` on this client's
        own event loop: with a second client in the process, Dask's default loop would be
        the other client's and no completion would ever be seen). A block cancelled because
        the scattered pool was lost with its worker (Dask keeps one replica of scattered
        data and cannot recompute it) is resubmitted with the pool scattered again, up to
        RESUBMITS times. A cluster without workers for NO_WORKERS_SECONDS ends the run with
        ClusterError instead of waiting for ever."""
        distributed = _distributed()
        wait_seconds = no_workers_seconds()
        client = self.client
        expected = software()
        self._threads = check_workers(client, expected)
        n = ranges[-1][1] if ranges else 0
        blocks: list[dict | None] = [None] * len(ranges)
        done = 0
        todo = list(range(len(ranges)))
        for attempt in range(RESUBMITS + 1):
            if attempt:  # the pool was lost with its worker: scatter it again, once one is up
                _wait_for_a_worker(client, len(todo), wait_seconds)
            pool_future = client.scatter(pool, broadcast=True, hash=attempt == 0)
            futures = {client.submit(block_task, pool_future, settings, *ranges[b], per_path,
                                     keep_collections, expected, priority=-b): b
                       for b in todo}
            lost: list[int] = []
            try:
                for future in _completed(distributed, client, list(futures), wait_seconds):
                    b = futures[future]
                    if future.status == "cancelled":
                        lost.append(b)
                        continue
                    try:
                        blocks[b] = future.result()
                    except distributed.scheduler.KilledWorker as exc:
                        raise ClusterError(
                            f"a block of paths was lost with every worker that ran it ({exc}); "
                            "workers are dying, perhaps out of memory",
                            argument="scheduler") from None
                    future.release()
                    done += ranges[b][1] - ranges[b][0]
                    if progress is not None:
                        progress(done, n)
            finally:
                for future in futures:
                    future.release()
                pool_future.release()
            if not lost:
                return blocks
            todo = sorted(lost)
        raise ClusterError(f"{len(todo)} block(s) of paths were lost with their workers "
                           f"{RESUBMITS + 1} times; workers are dying, perhaps out of memory",
                           argument="scheduler")


def no_workers_seconds() -> float:
    """NPL_XL_NO_WORKERS_SECONDS if set (seconds > 0), else NO_WORKERS_SECONDS; a value
    that is not a positive number is a ClusterError naming the variable."""
    text = os.environ.get("NPL_XL_NO_WORKERS_SECONDS", "").strip()
    if not text:
        return NO_WORKERS_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise ClusterError(f"the environment variable NPL_XL_NO_WORKERS_SECONDS must be a "
                           f"number of seconds > 0, got {text!r}", argument="scheduler")
    return seconds


def _no_workers(client, blocks_to_go: int, seconds: float) -> ClusterError:
    return ClusterError(
        f"the cluster at {client.scheduler.address} has had no workers for "
        f"{seconds:g} s with {blocks_to_go} block(s) of paths to go; restart the "
        "workers and run again", argument="scheduler")


def _wait_for_a_worker(client, blocks_to_go: int, seconds: float) -> None:
    """Return once the cluster has a worker; ClusterError after ``seconds``."""
    try:
        client.wait_for_workers(1, timeout=seconds)
    except TimeoutError:
        raise _no_workers(client, blocks_to_go, seconds) from None


def _completed(distributed, client, futures, seconds: float):
    """Yield ``futures`` as they finish, error or are cancelled, on ``client``'s loop;
    ClusterError when the cluster has had no worker for ``seconds``."""
    pending = distributed.as_completed(futures, loop=client.loop)
    checked = time.monotonic()
    without_workers_since = None
    while not pending.is_empty():
        if pending.has_ready():
            yield next(pending)
            continue
        time.sleep(POLL_SECONDS)
        now = time.monotonic()
        if now - checked < WORKER_CHECK_SECONDS:
            continue
        checked = now
        if client.nthreads():
            without_workers_since = None
        elif without_workers_since is None:
            without_workers_since = now
        elif now - without_workers_since > seconds:
            raise _no_workers(client, pending.count(), seconds)
