"""The command line: unusable input is a message and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from npl_xl.sheet.registry import load_all


def npl_xl(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "npl_xl.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


@pytest.fixture()
def not_workbooks(tmp_path):
    text = tmp_path / "notes.xlsx"
    text.write_text("not a workbook")
    other_zip = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "a zip, but no workbook in it")
    return [text, other_zip, tmp_path / "missing.xlsx"]


@pytest.mark.parametrize("command", ["run", "recalc"])
def test_unusable_input_is_a_message(command, not_workbooks):
    for path in not_workbooks:
        result = npl_xl(command, path)
        assert result.returncode == 2, (path, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith(f"npl-xl {command}: ")
        assert path.name in result.stderr


def test_functions_lists_the_registry():
    result = npl_xl("functions")
    assert result.returncode == 0
    for name, function in load_all().items():
        assert f"{name}(" in result.stdout
        assert function.doc in result.stdout


def test_no_command_prints_help_and_fails():
    result = npl_xl()
    assert result.returncode == 2 and "recalc" in result.stdout and "run" in result.stdout
