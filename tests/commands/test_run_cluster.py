"""``npl-xl run --scheduler tcp://127.0.0.1:PORT`` on a cluster started from the command line
(``dask scheduler`` and two ``dask worker`` processes, every port on 127.0.0.1), with one
worker killed (SIGKILL, as a lost machine) while it computes a block: the run completes and
its Results are those of the in-process run, cell for cell. The worker killed is the one that
holds the scattered pool (Dask keeps one replica and cannot recompute it, so the blocks that
need it are cancelled and npl-xl must scatter it again). A cluster that loses its only worker
ends the run with one line instead of a wait for ever. Every process is ended by the test
(:class:`cluster_fixtures.Processes`, in a finally)."""

from __future__ import annotations

import time

import openpyxl
import pytest

from cluster_fixtures import VENV_BIN, Processes, free_port
from workbook_helpers import SAMPLE

distributed = pytest.importorskip("distributed")

from npl_xl.cli import main_cli  # noqa: E402

#: Enough paths for ~30 blocks of 2048 (the automatic block size on two worker threads), so
#: the run is still going when the kill comes; seconds on two cores.
N_SIMS = 300_000  # long enough that a block is still in flight when the watcher looks, on a quiet machine
SEED = 5
TIMEOUT = 240  # seconds for any one wait; the test fails rather than hangs


@pytest.fixture
def processes():
    procs = Processes()
    try:
        yield procs
    finally:
        procs.end_all()


def _results_values(path) -> dict[str, list[list]]:
    sheet = openpyxl.load_workbook(path)["Results"]
    return {name: [r for r in ([c.value for c in row] for row in sheet[ref]) if r[0] != "run_at_utc"]
            for name, ref in sheet.tables.items()}


def _start_cluster(processes, logs, n_workers):
    """(address, worker processes) of a `dask scheduler` and n `dask worker --no-nanny`
    processes on 127.0.0.1, logging into ``logs``."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    _start(processes, logs, "scheduler", [VENV_BIN / "dask", "scheduler", "--host", "127.0.0.1",
                                          "--port", port, "--no-dashboard"])
    workers = [_start(processes, logs, f"worker{i}",
                      [VENV_BIN / "dask", "worker", address, "--host", "127.0.0.1",
                       "--nthreads", 1, "--no-nanny", "--no-dashboard", "--name", f"w{i}"])
               for i in range(1, n_workers + 1)]
    return address, workers


def _start(processes, logs, name, args, **kwargs):
    log = open(logs / f"{name}.log", "w")
    return processes.start([str(a) for a in args], stdout=log, stderr=log, **kwargs)


def _pool_holder(watcher) -> str | None:
    """Address of the worker that holds the scattered pool once a block is running, else None."""
    def holder(dask_scheduler):
        running = any(ts.state == "processing" and "block_task" in str(key)
                      for key, ts in dask_scheduler.tasks.items())
        pools = [ts for key, ts in dask_scheduler.tasks.items() if str(key).startswith("Pool-")]
        if running and pools and pools[0].who_has:
            return sorted(ws.address for ws in pools[0].who_has)[0]
        return None
    return watcher.run_on_scheduler(holder)


def test_a_worker_killed_mid_run_changes_nothing(processes, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    address, workers = _start_cluster(processes, logs, 2)
    with distributed.Client(address, timeout=TIMEOUT) as watcher:
        watcher.wait_for_workers(2, timeout=TIMEOUT)
        pid_of = watcher.run(__import__("os").getpid)  # worker address -> process id
        assert sorted(pid_of.values()) == sorted(w.pid for w in workers)

        out = tmp_path / "cluster.xlsx"
        run_log = logs / "run.log"
        run = _start(processes, logs, "run",
                     [VENV_BIN / "npl-xl", "run", SAMPLE, "-o", out, "--n-sims", N_SIMS,
                      "--seed", SEED, "--no-png", "--scheduler", address])
        # kill the pool's holder while a block is in flight
        victim = None
        deadline = time.monotonic() + TIMEOUT
        while victim is None and run.poll() is None and time.monotonic() < deadline:
            holder = _pool_holder(watcher)
            if holder is not None:
                victim = next(w for w in workers if w.pid == pid_of[holder])
                processes.kill(victim)
                break
            time.sleep(0.02)
        assert victim is not None, "the run ended before a worker could be killed; raise N_SIMS"
        watcher.wait_for_workers(1, timeout=TIMEOUT)
        assert run.wait(timeout=TIMEOUT) == 0, run_log.read_text(errors="replace")[-2000:]
        assert len(watcher.nthreads()) == 1  # the run finished on the survivor

    reference = tmp_path / "in_process.xlsx"
    assert main_cli(["run", str(SAMPLE), "-o", str(reference), "--n-sims", str(N_SIMS),
                     "--seed", str(SEED), "--no-png", "--quiet"]) == 0
    assert _results_values(out) == _results_values(reference)


def test_a_cluster_that_loses_every_worker_ends_the_run_with_one_line(processes, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    address, (worker,) = _start_cluster(processes, logs, 1)
    with distributed.Client(address, timeout=TIMEOUT) as watcher:
        watcher.wait_for_workers(1, timeout=TIMEOUT)
        run = _start(processes, logs, "run",
                     [VENV_BIN / "npl-xl", "run", SAMPLE, "-o", tmp_path / "never.xlsx",
                      "--n-sims", N_SIMS, "--seed", SEED, "--no-png", "--quiet",
                      "--scheduler", address],
                     env={"NPL_XL_NO_WORKERS_SECONDS": "3"})
        deadline = time.monotonic() + TIMEOUT
        while run.poll() is None and time.monotonic() < deadline and not any(
                "block_task" in str(k) for keys in watcher.processing().values() for k in keys):
            time.sleep(0.02)
        assert run.poll() is None, "the run ended before its worker could be killed"
        processes.kill(worker)
        # 3 s without workers, then one line and a non-zero exit (not a wait for ever)
        assert run.wait(timeout=60) == 2
    lines = (logs / "run.log").read_text().strip().splitlines()
    assert len(lines) == 1, lines
    assert "has had no workers for 3 s" in lines[0] and "restart the workers" in lines[0]
    assert not (tmp_path / "never.xlsx").exists()
