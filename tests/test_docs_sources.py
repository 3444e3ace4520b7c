"""The project's docs cite published sources, never the developers' internal notes.

A package user has README.md, docs/, the docstrings and the workbooks, not the research
notes the code was written from; a reference such as "../shared/...", "domain.md §2.3" or
"seed 002" tells them nothing. Published sources are cited by the keys of docs/SOURCES.md.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INTERNAL = re.compile(
    r"\.\./shared|shared/(?:research|seeds|spec)|research/\w+\.md"
    r"|(?<![\w/.])(?:domain|structuring|anchors|aesthetics)\.md|\bdomain (?:research )?§"
    r"|\bseeds? ?0\d\d\b|\b0\d\d seed\b", re.IGNORECASE)
#: Files excused from the scan (none now).
NOT_YET: set[str] = set()


def _files():
    for pattern in ("README.md", "ARCHITECTURE.md", "docs/*.md", "installer/README.md",
                    "npl_xl/**/*.py", "npl_xl/inputs/data/*", "udfs/**/*.py", "udfs/addin/*", "calc/**/*.py",
                    "workbooks/*.py"):
        for path in sorted(ROOT.glob(pattern)):
            if path.is_file() and path.relative_to(ROOT).as_posix() not in NOT_YET:
                yield path


def test_no_internal_references_in_docs_code_or_data():
    found = []
    for path in _files():
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if INTERNAL.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not found, "internal references (cite docs/SOURCES.md instead):\n" + "\n".join(found)


@pytest.mark.parametrize("book", ["npl_template.xlsx", "sample_deal.xlsx"])
def test_no_internal_references_in_the_workbooks(book):
    with zipfile.ZipFile(ROOT / "workbooks" / book) as archive:
        text = "\n".join(archive.read(n).decode("utf-8", "replace") for n in archive.namelist()
                         if n.endswith(".xml"))
    assert not INTERNAL.search(text), INTERNAL.search(text).group(0)


def test_every_cited_source_key_is_listed():
    listed = set(re.findall(r"\*\*\[([A-Za-z0-9-]+)\]\*\*", (ROOT / "docs" / "SOURCES.md").read_text("utf-8")))
    tags = {"S", "M", "P", "A", "U"}
    cited = set()
    for path in list(_files()):
        cited |= set(re.findall(r"\[([A-Z][A-Za-z]+-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?|16JX1|absbox|Calabrese|Copula|Regional|CivilCode)\]",
                                path.read_text(encoding="utf-8", errors="replace")))
    assert cited - tags <= listed, f"cited but not in docs/SOURCES.md: {sorted(cited - tags - listed)}"
    assert {"SPC-Auction", "Moodys-EL", "ABC-16NY1", "Sun-AMC"} <= listed


def test_the_pattern_catches_what_it_must():
    for text in ("see ../shared/research/domain.md", "domain.md §2.3", "(seed 002)", "Seed 004",
                 "domain §4.2", "research/recalc.md §6"):
        assert INTERNAL.search(text), text
    for text in ("benchmarks/results/recalc.md", "the same seed gives", "seed 0: nothing",
                 "docs/MODEL.md", "[SPC-Auction]"):
        assert not INTERNAL.search(text), text
