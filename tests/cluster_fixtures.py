"""Real Dask clusters for the tests: processes bound to 127.0.0.1, always ended by the test.

- :func:`local_cluster`: a ``distributed.LocalCluster`` of worker *processes* (one thread
  each, one numba thread each, no dashboards), closed on exit together with every client
  npl-xl opened to it.
- :class:`Processes`: command-line processes (``dask scheduler``, ``dask worker``,
  ``npl-xl run``) started in their own process group; :meth:`Processes.end_all` terminates
  each group, then kills what is left.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def local_cluster(n_workers: int):
    """Yield a LocalCluster of ``n_workers`` processes on 127.0.0.1 (its tcp:// address is
    ``.scheduler_address``; ``.scale(n)`` retires workers)."""
    import distributed

    from npl_xl.engine import cluster as npl_cluster

    local = distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, worker_dashboard_address=None, silence_logs=logging.ERROR,
        env={"NUMBA_NUM_THREADS": "1"})
    try:
        yield local
    finally:
        try:
            npl_cluster.close_clients()
        finally:
            local.close(timeout=30)


class Processes:
    """Processes started by a test, each in its own session (process group)."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def start(self, args: list[str], **kwargs) -> subprocess.Popen:
        env = {**os.environ, "NUMBA_NUM_THREADS": "1", **kwargs.pop("env", {})}
        proc = subprocess.Popen(args, start_new_session=True, env=env, **kwargs)
        self.started.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL the process's whole group (a machine lost, not a polite shutdown)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def end_all(self) -> None:
        """SIGTERM each process group, newest first (clients, then workers, then the
        scheduler); SIGKILL what has not ended within 5 seconds."""
        for proc in reversed(self.started):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.started):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill(proc)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
