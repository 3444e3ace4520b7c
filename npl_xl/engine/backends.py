"""Where the blocks of paths are computed: in this process, or on a Dask cluster.

A backend has two methods:

``block_paths(n_paths, requested) -> int``
    The block size to use (paths): ``requested`` (the Settings key ``block_paths``) when
    given, else the backend's choice. The figures do not depend on it.
``map_blocks(pool, settings, ranges, per_path, keep_collections, progress, block_order)``
    Compute :func:`npl_xl.engine.simulate.simulate_block` for every (first, stop) in
    ``ranges`` and return the blocks' dicts **in the order of ranges** (path order), calling
    ``progress(done_paths, total_paths)`` as blocks complete.

The client then copies the blocks into whole-run arrays in path order and reduces them
(:func:`npl_xl.engine.simulate.run_blocks`), so every backend gives the same numbers.

Callers (simulate_deal, the analyses) go through :func:`npl_xl.engine.simulate.run_blocks`;
:func:`backend_for` maps the ``scheduler`` setting to a backend: blank = :class:`InProcess`,
``local``/``local:N``/``tcp://HOST:PORT`` = :class:`npl_xl.engine.cluster.DaskBackend`
(needs the optional extra ``pip install npl-xl[cluster]``).
"""

from __future__ import annotations

from collections.abc import Callable

from npl_xl.inputs.deal import parse_scheduler

__all__ = ["InProcess", "backend_for", "IN_PROCESS"]


class InProcess:
    """Blocks computed one after the other in this process (each block's kernels use the
    numba threads)."""

    def block_paths(self, n_paths: int, requested: int | None) -> int | None:
        """``requested``, or None (the engine's BLOCK_PATHS)."""
        return requested

    def map_blocks(self, pool, settings, ranges, per_path: Callable | None,
                   keep_collections: bool, progress=None, block_order=None) -> list[dict]:
        """simulate_block on each range, in ``block_order`` (default: path order); the list
        is in path order whatever the order of computation."""
        from npl_xl.engine.simulate import pool_tables, simulate_block

        coef = pool_tables(pool)
        n = ranges[-1][1] if ranges else 0
        order = range(len(ranges)) if block_order is None else block_order
        if sorted(order) != list(range(len(ranges))):
            raise ValueError(f"block_order must be a permutation of 0..{len(ranges) - 1}")
        blocks: list[dict | None] = [None] * len(ranges)
        done = 0
        for b in order:
            first, stop = ranges[b]
            blocks[b] = simulate_block(pool, settings, first, stop, per_path, keep_collections,
                                       coef)
            done += stop - first
            if progress is not None:
                progress(done, n)
        return blocks


IN_PROCESS = InProcess()


def backend_for(scheduler: str | None):
    """The backend for a ``scheduler`` setting: blank = this process; local, local:N,
    tcp://HOST:PORT = a Dask cluster (DomainError naming ``scheduler`` for anything else;
    ClusterError naming ``pip install npl-xl[cluster]`` when Dask is not installed)."""
    kind, _ = parse_scheduler(scheduler)
    if kind == "":
        return IN_PROCESS
    from npl_xl.engine.cluster import DaskBackend

    return DaskBackend.for_scheduler(scheduler)
