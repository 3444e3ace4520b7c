"""Every Examples section in the package runs and prints what it says (doctest).

The public API's examples live in the docstrings of the functions npl_xl exports (see
tests/test_public_api.py); a module's docstring may carry examples too (npl_xl itself,
npl_xl.workbook.a1, npl_xl.checks).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import npl_xl

MODULES = sorted(["npl_xl"] + [m.name for m in pkgutil.walk_packages(npl_xl.__path__, "npl_xl.")])


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    tests = [t for t in finder.find(module, name) if t.examples]
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_the_public_examples_are_found():
    # the examples of the exported functions are in modules this file runs
    found = set()
    for name in MODULES:
        module = importlib.import_module(name)
        for test in doctest.DocTestFinder().find(module, name):
            if test.examples:
                found.add(test.name.rsplit(".", 1)[-1])
    assert {"simulate_deal", "read_tape", "bid_price", "waterfall_table", "stratify"} <= found
