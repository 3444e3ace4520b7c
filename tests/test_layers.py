"""The folder tree is the layering (ARCHITECTURE.md): a module of npl_xl imports only from
its own layer or the layers below it. Leaf helpers that import nothing of npl_xl
(errors, checks, rng, workbook.a1) may be used by every layer."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "npl_xl"
#: Layer of each top-level module or package of npl_xl, bottom (0) to top.
LAYERS = {"errors": 0, "checks": 0, "rng": 0, "inputs": 1, "model": 2, "engine": 3,
          "analysis": 4, "sheet": 5, "workbook": 5, "macros": 6, "recalc": 6, "commands": 7,
          "cli": 7, "__init__": 8}
LEAVES = {"npl_xl.workbook.a1"}


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def upward_imports(root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        own = path.relative_to(root).with_suffix("").parts[0]
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] != "npl_xl" or len(parts) < 2 or module in LEAVES:
                continue
            if LAYERS.get(parts[1], -1) > LAYERS.get(own, 99):
                found.append(f"npl_xl/{path.relative_to(root)}:{line}: {own} imports {module}")
    return found


def test_every_top_level_module_has_a_layer():
    names = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert names <= set(LAYERS), f"give these a layer in LAYERS: {sorted(names - set(LAYERS))}"


def test_no_module_imports_from_a_layer_above_it():
    found = upward_imports()
    assert not found, "imports against the layering (move the helper down):\n" + "\n".join(found)


def test_the_scan_catches_an_upward_import(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "x.py").write_text("from npl_xl.engine.pool import Pool\n")
    (tmp_path / "model" / "y.py").write_text("from npl_xl.inputs.codes import normalise\n"
                                             "from npl_xl.workbook.a1 import cell_address\n")
    assert upward_imports(tmp_path) == ["npl_xl/model/x.py:1: model imports npl_xl.engine.pool"]
