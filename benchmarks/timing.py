"""The benchmarks' one timing rule: the best of a few calls (the least disturbed by others)."""

from __future__ import annotations

import time


def best_of(function, repeats: int = 3, clock=time.perf_counter) -> float:
    """Smallest ``clock`` seconds of ``repeats`` calls of ``function`` (wall time by default;
    ``clock=time.process_time`` for the CPU time of this process)."""
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        function()
        best = min(best, clock() - start)
    return best
