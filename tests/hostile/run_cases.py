"""Run ``npl-xl recalc`` and ``npl-xl run`` on hostile workbooks in this one process and
report, as JSON on stdout, per case and command: the exit status, stderr, whether the
input stayed byte-identical, the files left in the output folder, and at the end the
process's peak resident memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` and, on
Linux, ``VmHWM`` of /proc/self/status. The smaller is reported: Linux carries the parent's
high-water mark across fork and exec into ru_maxrss (kernel/exec: setmax_mm_hiwater_rss),
so a child of a large pytest process would report the parent's size; VmHWM belongs to the
process's own address space, new at exec.

Usage: python tests/hostile/run_cases.py CASE_DIR OUT_DIR NAME [NAME ...]
(the commands run in-process through :func:`npl_xl.cli.main_cli`, exactly what the
``npl-xl`` script calls; an exception escaping it is reported as a traceback).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import resource
import sys
import time
import traceback
from pathlib import Path

from npl_xl.cli import main_cli


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_one(command: str, source: Path, out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{source.stem}.{command}.xlsx"
    argv = [command, str(source), "-o", str(out)]
    if command == "run":
        argv += ["--n-sims", "64", "--quiet", "--no-png"]
    before = _digest(source)
    stderr, stdout = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            code = main_cli(argv)
    except BaseException:  # noqa: BLE001 - what the test must never see
        code = None
        stderr.write(traceback.format_exc())
    return {"command": command, "code": code, "stderr": stderr.getvalue(),
            "seconds": time.perf_counter() - started,
            "input_unchanged": _digest(source) == before,
            "left": sorted(p.name for p in out_dir.iterdir() if p != out)}


def main(argv: list[str]) -> None:
    case_dir, out_dir, names = Path(argv[0]), Path(argv[1]), argv[2:]
    results = {}
    for name in names:
        source = case_dir / f"{name}.xlsx"
        results[name] = [run_one(command, source, out_dir / name / command)
                         for command in ("recalc", "run")]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak_mb = min(peak_mb, int(line.split()[1]) / 1024)
    except OSError:
        pass
    print(json.dumps({"results": results, "peak_mb": peak_mb}))


if __name__ == "__main__":
    main(sys.argv[1:])
