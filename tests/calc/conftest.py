"""A headless LibreOffice with the npl-xl extension installed, once per test session.

``npl-xl install --libreoffice --profile DIR`` builds the .oxt from the registry, installs it
into a private profile (-env:UserInstallation under the session's temporary folder) through
the ExtensionManager API and checks NPL_BETA_PARAMS in a second soffice (a type library
added to a running office is known to the office but not yet to its Python importer); a
third soffice on that profile is handed to the tests. The tests talk
to it through driver.py in the office's own Python (npl_xl_calc.office.Driver), so this
interpreter needs no uno. The fixture ends soffice in a finally clause whatever the tests
do; every request has a timeout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from npl_xl_calc import office

SKIP_REASON = None
if office.soffice_path() is None:
    SKIP_REASON = "LibreOffice (soffice) not installed"
elif office.unoidl_write() is None:
    SKIP_REASON = "the LibreOffice SDK's unoidl-write is missing (libreoffice-dev)"
elif office.office_python() is None:
    SKIP_REASON = "no Python here can import uno (python3-uno)"


class LiveCalc:
    """The running office (``call(op, ...)``, see driver.py) and its log."""

    def __init__(self, running: office.HeadlessOffice, log: Path, root: Path):
        self.office = running
        self.log = log
        self.root = root

    def call(self, op: str, **arguments):
        return self.office.call(op, **arguments)

    def load(self, path: Path, recalc: bool = True) -> int:
        return self.call("load", path=str(Path(path).resolve()), recalc=recalc)

    def dispatch(self, doc: int, command: str) -> list[str]:
        """Run an NPL menu command on ``doc`` as the menu does; the log lines it wrote."""
        before = len(self.log_lines())
        self.call("dispatch", doc=doc, url="org.nplxl.calc:" + command)
        return self.log_lines()[before:]

    def log_lines(self) -> list[str]:
        if not self.log.exists():
            return []
        return self.log.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="session")
def live_calc(tmp_path_factory):
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    from npl_xl.cli import main_cli

    root = tmp_path_factory.mktemp("calc")
    profile = root / "profile"
    log = root / "npl-xl-calc.log"
    env = {"NPL_XL_CALC_QUIET": "1", "NPL_XL_CALC_LOG": str(log),
           "NPL_XL_CALC_WORKER_LOG": str(root / "worker.log")}
    # the user's command: build the .oxt, install it into the profile, check NPL_BETA_PARAMS
    status = main_cli(["install", "--libreoffice", "--profile", str(profile),
                       "--build-dir", str(root / "build")])
    assert status == 0, "npl-xl install --libreoffice failed"
    running = office.HeadlessOffice(profile, env=env, output=root / "soffice.log")
    try:
        running.start(timeout=90)
        yield LiveCalc(running, log, root)
    finally:
        running.stop()


@pytest.fixture()
def closing(live_calc):
    """Documents a test opened, closed after it."""
    docs = []
    yield docs.append
    for doc in docs:
        try:
            live_calc.call("close", doc=doc)
        except Exception:  # already closed by the test
            pass
