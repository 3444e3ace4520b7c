"""Shared test set-up: the helper modules beside this file (workbook_helpers, recalc_fixtures,
winstubs) are importable from the per-layer test folders."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_collection_modifyitems(session, config, items):
    """The tests that start Dask clusters run first, in a fresh process state: after the
    rest of the suite (LibreOffice, numba thread pools, many child processes) their local
    workers were seen to die under load and a run then waits for workers."""
    cluster = [item for item in items if "cluster" in item.nodeid]
    items[:] = cluster + [item for item in items if "cluster" not in item.nodeid]
