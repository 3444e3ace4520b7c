"""Build the LibreOffice extension ``npl_xl_calc.oxt`` from the registry.

The .oxt is a zip:

- ``META-INF/manifest.xml``: what each part is;
- ``description.xml``: the extension's identifier (org.nplxl.calc) and version;
- ``types/npl_calc.rdb``: the add-in's UNO interface, compiled from the generated UNOIDL
  (:func:`npl_xl_calc.spec.idl_source`) by the SDK's ``unoidl-write`` against the office's
  own type libraries;
- ``npl_calc.components`` and ``npl_calc.py``: the Python component (loader
  com.sun.star.loader.Python) with ``pythonpath/npl_calc_wire.py`` (the pipe's framing);
- ``functions.json`` (names, arguments, help) and ``worker.json`` (the interpreter that runs
  the worker: the one building the .oxt, where npl-xl is installed);
- ``Addons.xcu`` and ``ProtocolHandler.xcu``: the NPL menu and toolbar and their commands;
- ``Jobs.xcu``: the document job that gives xlsx formulas their long names on load and
  their short (Excel) names back after a save.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from importlib import resources
from pathlib import Path

from npl_xl.errors import NplError
from npl_xl_calc import office, spec

__all__ = ["build_oxt", "compile_idl", "worker_config", "OXT_NAME"]

OXT_NAME = office.OXT_NAME
_ZIP_DATE = (2026, 1, 1, 0, 0, 0)

MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="http://openoffice.org/2001/manifest">
 <manifest:file-entry manifest:media-type="application/vnd.sun.star.uno-typelibrary;type=RDB"
  manifest:full-path="types/npl_calc.rdb"/>
 <manifest:file-entry manifest:media-type="application/vnd.sun.star.uno-components"
  manifest:full-path="npl_calc.components"/>
 <manifest:file-entry manifest:media-type="application/vnd.sun.star.configuration-data"
  manifest:full-path="Addons.xcu"/>
 <manifest:file-entry manifest:media-type="application/vnd.sun.star.configuration-data"
  manifest:full-path="ProtocolHandler.xcu"/>
 <manifest:file-entry manifest:media-type="application/vnd.sun.star.configuration-data"
  manifest:full-path="Jobs.xcu"/>
</manifest:manifest>
"""

DESCRIPTION = """<?xml version="1.0" encoding="UTF-8"?>
<description xmlns="http://openoffice.org/extensions/description/2006"
 xmlns:xlink="http://www.w3.org/1999/xlink">
 <identifier value="{identifier}"/>
 <version value="{version}"/>
 <display-name><name lang="en">npl-xl: NPL worksheet functions and the NPL menu</name>
  <name lang="zh">npl-xl：不良资产定价函数与 NPL 菜单</name></display-name>
 <publisher><name lang="en" xlink:href="https://pypi.org/project/npl-xl/">npl-xl developers</name></publisher>
</description>
"""

COMPONENTS = """<?xml version="1.0" encoding="UTF-8"?>
<components xmlns="http://openoffice.org/2010/uno-components">
 <component loader="com.sun.star.loader.Python" uri="npl_calc.py">
  <implementation name="{implementation}">
   <service name="com.sun.star.sheet.AddIn"/>
   <service name="{service}"/>
  </implementation>
  <implementation name="{job}">
   <service name="{job}"/>
   <service name="com.sun.star.task.Job"/>
  </implementation>
  <implementation name="{commands}">
   <service name="{commands}"/>
   <service name="com.sun.star.frame.ProtocolHandler"/>
  </implementation>
 </component>
</components>
"""


def compile_idl(idl: str, out: Path) -> Path:
    """Compile UNOIDL source into a type library with the SDK's unoidl-write."""
    tool = office.unoidl_write()
    libraries = office.type_libraries()
    if tool is None or len(libraries) < 2:
        raise NplError("building the LibreOffice extension needs the SDK's unoidl-write "
                       "(Debian: apt-get install libreoffice-dev libreoffice-dev-common)")
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "npl_calc.idl"
        source.write_text(idl, encoding="utf-8")
        done = subprocess.run([tool, *map(str, libraries), str(source), str(out)],
                              capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not out.exists():
        raise NplError(f"unoidl-write failed: {(done.stderr or done.stdout).strip()}")
    return out


def worker_config(python: str | None = None) -> dict:
    """worker.json: how the component starts the worker, and the names it answers to."""
    return {"python": python or sys.executable,
            "implementation": spec.IMPLEMENTATION,
            "commands_implementation": spec.COMMANDS_IMPLEMENTATION,
            "job_implementation": spec.JOB_IMPLEMENTATION,
            "protocol": spec.PROTOCOL,
            "explain_error": spec.EXPLAIN_ERROR}


def _resource(name: str) -> bytes:
    return resources.files("npl_xl_calc").joinpath(name).read_bytes()


def oxt_parts(rdb: bytes, python: str | None = None, registry=None) -> dict[str, bytes]:
    """Every part of the .oxt, by path."""
    from npl_xl import __version__

    specs = spec.function_specs(registry)
    names = {"implementation": spec.IMPLEMENTATION, "service": spec.SERVICE,
             "commands": spec.COMMANDS_IMPLEMENTATION, "job": spec.JOB_IMPLEMENTATION}
    return {
        "META-INF/manifest.xml": MANIFEST.encode(),
        "description.xml": DESCRIPTION.format(identifier=spec.EXTENSION_ID,
                                              version=__version__).encode(),
        "npl_calc.components": COMPONENTS.format(**names).encode(),
        "npl_calc.py": _resource("extension/npl_calc.py"),
        "pythonpath/npl_calc_wire.py": _resource("wire.py"),
        "pythonpath/npl_calc_names.py": _resource("names.py"),
        "types/npl_calc.rdb": rdb,
        "npl_calc.idl": spec.idl_source(specs).encode(),  # for reading; not loaded
        "functions.json": spec.functions_json(specs),
        "worker.json": json.dumps(worker_config(python), indent=1).encode(),
        "Addons.xcu": spec.addons_xcu(),
        "ProtocolHandler.xcu": spec.protocol_handler_xcu(),
        "Jobs.xcu": spec.jobs_xcu(),
    }


def build_oxt(target: Path, python: str | None = None) -> Path:
    """Write the extension to ``target`` (a temporary file in its folder, then renamed)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        rdb = compile_idl(spec.idl_source(spec.function_specs()), Path(scratch) / "npl_calc.rdb")
        parts = oxt_parts(rdb.read_bytes(), python)
    fd, tmp = tempfile.mkstemp(prefix=".npl-xl-", suffix=".oxt", dir=target.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in parts.items():
                archive.writestr(zipfile.ZipInfo(name, _ZIP_DATE), data,
                                 compress_type=zipfile.ZIP_DEFLATED)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
