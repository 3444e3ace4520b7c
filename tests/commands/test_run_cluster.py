"""``npl-xl run --scheduler tcp://127.0.0.1:PORT`` on a cluster started from the command line
(``dask scheduler`` and two ``dask worker`` processes, every port on 127.0.0.1), with one
worker killed (SIGKILL, as a lost machine) while it computes a block: the run completes and
its Results are those of the in-process run, cell for cell. Every process is ended by the
test (:class:`cluster_fixtures.Processes`, in a finally)."""

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


def test_a_worker_killed_mid_run_changes_nothing(processes, tmp_path):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name, args):
        log = open(logs / f"{name}.log", "w")
        return processes.start([str(a) for a in args], stdout=log, stderr=log)

    start("scheduler", [VENV_BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", port,
                        "--no-dashboard"])
    workers = [start(f"worker{i}", [VENV_BIN / "dask", "worker", address, "--host", "127.0.0.1",
                                    "--nthreads", 1, "--no-nanny", "--no-dashboard",
                                    "--name", f"w{i}"]) for i in (1, 2)]
    with distributed.Client(address, timeout=TIMEOUT) as watcher:
        watcher.wait_for_workers(2, timeout=TIMEOUT)
        pid_of = watcher.run(__import__("os").getpid)  # worker address -> process id
        assert sorted(pid_of.values()) == sorted(w.pid for w in workers)

        out = tmp_path / "cluster.xlsx"
        run_log = logs / "run.log"
        run = start("run", [VENV_BIN / "npl-xl", "run", SAMPLE, "-o", out, "--n-sims", N_SIMS,
                            "--seed", SEED, "--no-png", "--scheduler", address])
        # kill a worker while it computes a block
        victim = None
        deadline = time.monotonic() + TIMEOUT
        while victim is None and run.poll() is None and time.monotonic() < deadline:
            busy = {w: keys for w, keys in watcher.processing().items()
                    if any("block_task" in str(k) for k in keys)}
            if busy:  # a block in flight on that worker is lost with it
                victim = next(w for w in workers if w.pid == pid_of[sorted(busy)[0]])
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
