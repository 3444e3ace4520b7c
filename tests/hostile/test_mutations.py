"""Property: whatever random damage is done to the template's package (bytes flipped in one
part, the file truncated, a part dropped, the entries shuffled, bytes of the zip itself
flipped), ``npl-xl recalc`` and ``npl-xl run`` end within TIME_BOUND seconds with exit
status 0, 1 or 2 (never 3, a defect; never a traceback), one line of message when 2, the
input byte-identical and no temporary file beside the output.

The example count is modest (CI budget): NPL_XL_MUTATIONS=500 runs more.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import signal
import tempfile
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from npl_xl.cli import main_cli

TEMPLATE = Path(__file__).resolve().parents[2] / "workbooks" / "npl_template.xlsx"
TIME_BOUND = 120  # seconds per command, on a shared 2-core machine
EXAMPLES = int(os.environ.get("NPL_XL_MUTATIONS", "12"))


def _entries() -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(TEMPLATE) as archive:
        return [(info, archive.read(info)) for info in archive.infolist()]


ENTRIES = _entries()


def _zip(entries) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


@st.composite
def mutated(draw) -> bytes:
    kind = draw(st.sampled_from(["flip_part", "truncate", "drop", "shuffle", "flip_zip"]))
    entries = list(ENTRIES)
    if kind == "flip_part":
        k = draw(st.integers(0, len(entries) - 1))
        info, data = entries[k]
        data = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
        entries[k] = (info, bytes(data))
        return _zip(entries)
    if kind == "drop":
        k = draw(st.integers(0, len(entries) - 1))
        return _zip(entries[:k] + entries[k + 1:])
    if kind == "shuffle":
        seed = draw(st.integers(0, 2**32 - 1))
        random.Random(seed).shuffle(entries)
        return _zip(entries)
    whole = bytearray(_zip(entries))
    if kind == "truncate":
        return bytes(whole[:draw(st.integers(0, len(whole) - 1))])
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(whole) - 1))
        whole[at] ^= draw(st.integers(1, 255))
    return bytes(whole)


class _Timeout(Exception):
    pass


def _run(argv) -> tuple[int | None, str]:
    def alarm(signum, frame):
        raise _Timeout(f"{argv[0]} took over {TIME_BOUND} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TIME_BOUND)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main_cli(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, err.getvalue()


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_damaged_template_never_a_traceback_or_a_modified_input(data):
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in" / "deal.xlsx"
        source.parent.mkdir()
        source.write_bytes(data)
        for command, extra in (("recalc", []), ("run", ["--n-sims", "64", "--quiet", "--no-png"])):
            out_dir = Path(folder) / command
            out = out_dir / f"{command}.xlsx"
            code, err = _run([command, str(source), "-o", str(out), *extra])
            assert code in (0, 1, 2), f"{command}: exit {code}: {err}"
            assert "Traceback" not in err
            if code == 2:
                assert len(err.strip().splitlines()) == 1, err
            assert source.read_bytes() == data, f"{command} modified its input"
            left = [p.name for p in out_dir.iterdir() if p != out] if out_dir.exists() else []
            assert not left, f"{command} left {left}"
