"""No module of npl_xl/, udfs/ or calc/ uses a ``_private`` name of another module.

A name with a leading underscore is its module's own business; a helper another module
needs is made public where it belongs. The scan reads every module's syntax tree and
reports both spellings of the same thing:

- ``from npl_xl.x import _helper`` (also relative: ``from .x import _helper``);
- ``import npl_xl.x as mod`` / ``from npl_xl import x`` followed by ``mod._helper``.

Dunder names (``__version__``) are public by convention and allowed. Aliasing a public
name privately (``from formulas import Error as _Error``) is allowed: the alias is the
importer's own name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"npl_xl": ROOT / "npl_xl", "npl_xl_udfs": ROOT / "udfs", "npl_xl_calc": ROOT / "calc"}


def _modules():
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield path, ".".join([package] + parts), path.name == "__init__.py"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def private_uses(path: Path, module: str, is_package: bool) -> list[str]:
    """Every use in ``path`` of a private name of another of our modules, as text."""
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    module_aliases: dict[str, str] = {}   # local name -> one of our modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(module, node, is_package)
            if source.split(".")[0] not in PACKAGES or source == module:
                continue
            for alias in node.names:
                if _is_private(alias.name):
                    found.append(f"{where}:{node.lineno}: "
                                 f"from {source} import {alias.name}")
                else:
                    module_aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    module_aliases[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases and _is_private(node.attr)):
            found.append(f"{where}:{node.lineno}: "
                         f"{node.value.id}.{node.attr} ({module_aliases[node.value.id]})")
    return found


def test_no_module_imports_a_private_name_of_another():
    found = [use for path, module, is_package in _modules()
             for use in private_uses(path, module, is_package)]
    assert not found, ("private names used across modules (make the helper public where it "
                       "belongs):\n" + "\n".join(found))


@pytest.mark.parametrize("source, expected", [
    ("from npl_xl.sheet.convert import _rows\n", 1),
    ("from .convert import _rows, is_blank\n", 1),
    ("from npl_xl.sheet import convert as c\nx = c._rows(1)\n", 1),
    ("import npl_xl.engine.simulate as s\ns._as_pool(1)\n", 1),
    ("from npl_xl.sheet.convert import rows_of\nfrom formulas import Error as _E\n", 0),
    ("from npl_xl import __version__\n", 0),
])
def test_the_scan_finds_each_spelling(tmp_path, source, expected):
    # The scan itself must be able to fail: each spelling above is caught (or not) as stated.
    path = tmp_path / "probe.py"
    path.write_text(source, encoding="utf-8")
    uses = private_uses(path, "npl_xl.sheet.probe", False)
    assert len(uses) == expected, uses
