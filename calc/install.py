"""``npl-xl install --libreoffice [--profile DIR] [--uninstall] [--dry-run]``.

Steps:

1. build ``npl_xl_calc.oxt`` from the registry (needs the SDK's unoidl-write);
2. install it, replacing an installed npl-xl extension (upgrade), or remove it:
   into the profile ``--profile DIR`` through the ExtensionManager API of a headless soffice
   started on that profile; else for all users with ``unopkg add --shared`` when run as
   root (``unopkg`` refuses a user installation as root); else for this user with
   ``unopkg add``;
3. with ``--profile``: check that Calc computes ``=NPL_BETA_PARAMS(0.4;0.2)`` = 2, 3.

Without soffice on this machine (or with --dry-run) the steps are printed, and the .oxt is
built when unoidl-write is there. Close LibreOffice first: a running soffice holds the
profile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from npl_xl.errors import NplError
from npl_xl_calc import office

__all__ = ["main", "CHECK_FORMULA"]

CHECK_FORMULA = "=NPL_BETA_PARAMS(0.4;0.2)"


def _unopkg() -> str | None:
    soffice = office.soffice_path()
    if soffice is None:
        return None
    folder = Path(os.path.realpath(soffice)).parent
    for name in ("unopkg", "unopkg.exe", "unopkg.com"):
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which("unopkg")


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _check(profile: Path) -> str:
    with office.HeadlessOffice(profile) as running:
        doc = running.call("new")
        running.call("formula", doc=doc, sheet="Sheet1", where="A1:B1", formula=CHECK_FORMULA,
                     array=True)
        got = [v for _, v in running.call("cells", doc=doc, addresses=["Sheet1!A1", "Sheet1!B1"])]
        running.call("close", doc=doc)
    if not all(isinstance(v, float) for v in got) or [round(v, 9) for v in got] != [2.0, 3.0]:
        raise NplError(f"{CHECK_FORMULA} gave {got!r} in LibreOffice Calc, expected [2.0, 3.0]")
    return f"{CHECK_FORMULA} = {got} in LibreOffice Calc"


def main(args) -> int:
    from npl_xl_calc.oxt import build_oxt

    build_dir = Path(args.build_dir) if args.build_dir else _default_build_dir()
    profile = Path(args.profile).expanduser() if args.profile else None
    soffice = office.soffice_path()
    dry = bool(args.dry_run) or soffice is None
    uninstall = bool(getattr(args, "uninstall", False))
    if dry:
        reason = "--dry-run" if args.dry_run else "no LibreOffice (soffice) on this machine"
        print(f"npl-xl install --libreoffice: dry run ({reason}): each step is printed")
    target = build_dir / office.OXT_NAME
    where = (f"the profile {profile}" if profile else
             "all users (unopkg --shared, as root)" if _is_root() else "this user (unopkg)")
    steps = 1 if uninstall else (3 if profile else 2)
    if not uninstall:
        print(f"[1/{steps}] Build the LibreOffice extension {office.OXT_NAME}", flush=True)
        if office.unoidl_write() is None and dry:
            print("      would build it (needs the SDK's unoidl-write: Debian libreoffice-dev)")
        else:
            build_oxt(target)
            print(f"      built {target}")
    number = 1 if uninstall else 2
    verb = "Remove the extension from" if uninstall else "Install (or upgrade) it into"
    print(f"[{number}/{steps}] {verb} {where}", flush=True)
    if dry:
        print("      would " + ("remove org.nplxl.calc" if uninstall else f"add {target}"))
        return 0
    if profile is not None:
        with office.HeadlessOffice(profile) as running:
            if uninstall:
                done = "removed" if running.call("remove_extension") else "was not installed"
            else:
                done = running.call("add_extension", path=str(target.resolve()))
        print(f"      {done} ({profile})")
    else:
        unopkg = _unopkg()
        if unopkg is None:
            raise NplError("unopkg was not found beside soffice")
        command = [unopkg, "remove" if uninstall else "add"]
        command += ["--shared"] if _is_root() else []
        command += ["org.nplxl.calc"] if uninstall else ["--force", str(target)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip().splitlines()
            raise NplError(f"{' '.join(command[:2])} failed: {message[-1] if message else ''}")
        print(f"      {subprocess.list2cmdline(command)}: done")
    if profile is not None and not uninstall:
        print(f"[3/{steps}] Check a worksheet function through LibreOffice Calc", flush=True)
        print(f"      {_check(profile)}")
    return 0


def _default_build_dir() -> Path:
    base = os.environ.get("LOCALAPPDATA") or (Path.home() / ".local" / "share")
    return Path(base) / "npl-xl"

