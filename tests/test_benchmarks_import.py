"""Every benchmark script imports: they are run by hand, so a renamed helper would go unseen
(shared_bench.py imported a CPU-name helper that had moved to benchmarks/machine.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_every_benchmark_script_imports():
    names = sorted(p.stem for p in BENCHMARKS.glob("*.py"))
    assert "engine_bench" in names and "timing" in names
    code = "import importlib\n" + "".join(f"importlib.import_module({n!r})\n" for n in names)
    done = subprocess.run([sys.executable, "-c", code], cwd=BENCHMARKS, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
