"""docs/FUNCTIONS.md is generated from the registry and must be current."""

from __future__ import annotations

import subprocess
import sys

from npl_xl.inputs.deal import SETTINGS
from npl_xl.sheet.docs import FUNCTIONS_MD, GUIDE_MD, render_functions_md, render_guide, signature
from npl_xl.sheet.registry import load_all

REGENERATE = "python -m npl_xl.sheet.docs"


def test_the_committed_reference_is_the_generated_one():
    assert FUNCTIONS_MD.exists(), f"docs/FUNCTIONS.md is missing: run `{REGENERATE}`"
    assert FUNCTIONS_MD.read_text(encoding="utf-8") == render_functions_md(), (
        f"docs/FUNCTIONS.md is out of date with the worksheet declarations or SETTINGS: run "
        f"`{REGENERATE}` and commit docs/FUNCTIONS.md")


def test_the_chinese_guide_lists_every_function_with_its_zh_line():
    current = GUIDE_MD.read_text(encoding="utf-8")
    assert current == render_guide(current), (
        f"the function list of docs/使用指南.md is out of date: run `{REGENERATE}` and commit it")
    for fn in load_all().values():
        assert f"`{signature(fn)}`" in current and fn.zh in current
    for button in ("Validate Tape", "Stratify Pool", "Fit Recoveries", "Run Simulation",
                   "Price Bid", "Clear Results", "Explain Error"):
        assert button in current
    assert "#VALUE!" in current and "#NUM!" in current and "#N/A" in current


def test_it_names_every_function_argument_default_and_settings_key():
    text = render_functions_md()
    for fn in load_all().values():
        assert f"### `{signature(fn)}`" in text
        assert fn.zh in text and fn.shape in text
        for arg in fn.args:
            assert f"`{arg.name}`" in text and arg.doc in text
    for key in SETTINGS:
        assert f"| `{key.name}` |" in text and key.doc in text
    for code in ("#VALUE!", "#NUM!", "#N/A"):
        assert f"`{code}`" in text


def test_check_mode_and_the_command_line(tmp_path):
    stale = tmp_path / "FUNCTIONS.md"
    stale.write_text("old", encoding="utf-8")
    guide = tmp_path / "guide.md"
    guide.write_text("x\n<!-- functions:begin -->\nold\n<!-- functions:end -->\ny\n", encoding="utf-8")
    run = [sys.executable, "-m", "npl_xl.sheet.docs", "--output", str(stale), "--guide", str(guide)]
    assert subprocess.run(run + ["--check"], capture_output=True).returncode == 1
    assert subprocess.run(run, capture_output=True).returncode == 0
    assert subprocess.run(run + ["--check"], capture_output=True).returncode == 0
    assert "NPL_BETA_PARAMS" in guide.read_text(encoding="utf-8")
    zh = subprocess.run([sys.executable, "-m", "npl_xl.cli", "functions", "--lang", "zh"],
                        capture_output=True, text=True, encoding="utf-8")
    assert zh.returncode == 0 and load_all()["NPL_BETA_PARAMS"].zh in zh.stdout
