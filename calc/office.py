"""LibreOffice on this machine: where it is, and a headless soffice on a private profile.

The project's interpreter (``npl-xl install --libreoffice``, the tests) never imports
``uno``, which exists only for the office's own Python (often another version): it uses the
finders (:func:`soffice_path`, :func:`unoidl_write`, :func:`office_python`) and
:class:`HeadlessOffice`, which starts ``soffice --headless`` with ``-env:UserInstallation``
on a pipe, talks to it through ``driver.py`` run by the office's Python (JSON lines:
:class:`Driver`), and always ends it. Installing, upgrading and removing the extension go
through the ExtensionManager API that way (``unopkg add`` refuses root for a user profile).
"""

from __future__ import annotations

import functools
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import uuid
from pathlib import Path

EXTENSION_ID = "org.nplxl.calc"
OXT_NAME = "npl_xl_calc.oxt"


def soffice_path() -> str | None:
    """The soffice executable: PATH, then the usual install folders."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found:
        return found
    for candidate in (r"C:\Program Files\LibreOffice\program\soffice.exe",
                      "/Applications/LibreOffice.app/Contents/MacOS/soffice",
                      "/usr/lib/libreoffice/program/soffice", "/opt/libreoffice/program/soffice"):
        if os.path.exists(candidate):
            return candidate
    return None


def program_dir() -> Path | None:
    """LibreOffice's program folder (where types.rdb is)."""
    soffice = soffice_path()
    if soffice is None:
        return None
    real = Path(os.path.realpath(soffice)).parent
    for folder in (real, real.parent / "program", real.parent / "Resources",
                   Path("/usr/lib/libreoffice/program")):
        if (folder / "types.rdb").exists():
            return folder
    return None


def unoidl_write() -> str | None:
    """The SDK's unoidl-write (Debian: libreoffice-dev, in /usr/lib/libreoffice/sdk/bin)."""
    found = shutil.which("unoidl-write")
    if found:
        return found
    program = program_dir()
    if program is None:
        return None
    for candidate in (program.parent / "sdk" / "bin" / "unoidl-write", program / "unoidl-write",
                      program.parent / "sdk" / "bin" / "unoidl-write.exe",
                      program / "unoidl-write.exe"):
        if candidate.exists():
            return str(candidate)
    return None


def type_libraries() -> list[Path]:
    """The office's own type libraries, which the add-in's interface builds on."""
    program = program_dir()
    if program is None:
        return []
    return [p for p in (program / "types.rdb", program / "types" / "offapi.rdb") if p.exists()]


def _imports_uno(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import uno"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.lru_cache(maxsize=1)
def office_python() -> str | None:
    """A Python that can ``import uno``: LibreOffice's bundled one, or Debian's python3."""
    program = program_dir()
    candidates = []
    if program is not None:
        candidates += [program / "python", program / "python.exe",
                       program.parent / "Resources" / "python"]
    candidates += [Path("/usr/bin/python3")]
    for candidate in candidates:
        if candidate.exists() and _imports_uno(str(candidate)):
            return str(candidate)
    return None


class HeadlessOffice:
    """``soffice --headless`` on a private profile, listening on a pipe; a context manager
    that always ends it (UNO terminate, then the process group).

    Parameters
    ----------
    profile : Path
        The UserInstallation folder (created by soffice on first start).
    env : dict, optional
        Extra environment variables for soffice (and so for the extension's worker).
    output : Path, optional
        File that receives soffice's stdout and stderr (default: discarded).
    """

    def __init__(self, profile: Path, env: dict | None = None, output: Path | None = None):
        self.profile = Path(profile)
        self.output = output
        self.pipe = f"npl_xl_{uuid.uuid4().hex[:12]}"
        self.env = dict(os.environ, **(env or {}))
        if os.name == "posix":
            # soffice's helpers run programs found on PATH; a virtual environment's or pyenv's
            # python3 there made xlsx loading fail (loadComponentFromURL returned nothing)
            self.env["PATH"] = os.pathsep.join(p for p in self.env.get("PATH", "").split(os.pathsep)
                                               if p.startswith(("/usr/", "/bin", "/sbin", "/opt/")))
            self.env.pop("VIRTUAL_ENV", None)
        self.process: subprocess.Popen | None = None
        self.driver: Driver | None = None

    @property
    def accept(self) -> str:
        return f"pipe,name={self.pipe};urp;StarOffice.ComponentContext"

    def start(self, timeout: float = 60.0):
        soffice = soffice_path()
        if soffice is None:
            raise RuntimeError("LibreOffice (soffice) is not installed")
        self.profile.mkdir(parents=True, exist_ok=True)
        sink = open(self.output, "ab") if self.output else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [soffice, f"-env:UserInstallation={self.profile.resolve().as_uri()}", "--headless",
             "--invisible", "--nologo", "--norestore", "--nodefault", "--nolockcheck",
             f"--accept={self.accept}"],
            stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=self.env,
            start_new_session=True)
        if sink is not subprocess.DEVNULL:
            sink.close()
        try:
            self.driver = Driver(self.pipe, timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def call(self, op: str, timeout: float = 300.0, **arguments):
        """One request to the office (see driver.py for the operations)."""
        return self.driver.call(op, timeout=timeout, **arguments)

    def stop(self, timeout: float = 20.0) -> None:
        """End soffice: ask it to terminate, then end its process group (ours alone)."""
        if self.driver is not None:
            try:
                self.driver.call("terminate", timeout=timeout)
            except (DriverError, OSError):
                pass
            self.driver.close()
            self.driver = None
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        if os.name == "posix":
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # the session we started
            except (ProcessLookupError, PermissionError):
                pass
        elif self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=timeout)
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class DriverError(RuntimeError):
    pass


class Driver:
    """driver.py in the office's Python, connected to soffice on ``pipe``; JSON lines."""

    def __init__(self, pipe: str, timeout: float = 60.0, python: str | None = None):
        python = python or office_python()
        if python is None:
            raise DriverError("no Python here can import uno (install python3-uno)")
        script = Path(__file__).with_name("driver.py")
        self.process = subprocess.Popen(
            [python, str(script), pipe], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, encoding="utf-8",
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")})
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._answer(timeout)

    def _read(self):
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _answer(self, timeout: float):
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise DriverError(f"LibreOffice did not answer within {timeout:.0f} s") from None
        if line is None:
            raise DriverError("the UNO driver stopped: " + self.process.stderr.read()[-2000:])
        answer = json.loads(line)
        if "error" in answer:
            raise DriverError(answer["error"] + "\n" + answer.get("traceback", ""))
        return answer["ok"]

    def call(self, op: str, timeout: float = 300.0, **arguments):
        self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self.process.stdin.flush()
        return self._answer(timeout)

    def close(self):
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(timeout=10)
