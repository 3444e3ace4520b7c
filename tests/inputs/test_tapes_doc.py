"""docs/TAPES.md is generated from the alias table and must be current."""

import subprocess
import sys

from workbook_helpers import ROOT


def test_tapes_doc_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "make_tapes_doc.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
