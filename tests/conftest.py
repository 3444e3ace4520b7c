"""Shared test set-up: the helper modules beside this file (workbook_helpers, recalc_fixtures,
winstubs, cluster_fixtures) are importable from the per-layer test folders."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
