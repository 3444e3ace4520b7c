"""The command line's text tables and progress bar."""

from __future__ import annotations

import io

from wcwidth import wcswidth

from npl_xl.commands.report import Column, bp, format_table, money, percent
from npl_xl.workbook.progress import ProgressBar


def test_format_table_aligns_by_display_width():
    columns = [Column("name", "name", numeric=False), Column("EL (bp)", "EL", bp)]
    text = format_table([{"name": "优先A", "EL": 0.000215}, {"name": "Subordinated", "EL": 0.0123}],
                        columns)
    lines = text.splitlines()
    assert lines[0].startswith("name") and set(lines[1]) <= {"-", " "}
    assert len({wcswidth(line) for line in lines}) == 1  # 优先A is 5 columns wide, not 3
    assert lines[2].endswith("2.15") and lines[3].endswith("123.00")


def test_units():
    # 0.000215 = 2.15 bp; 0.0348 = 3.48 %; money rounded with separators; NaN shown as '-'
    assert bp(0.000215) == "2.15" and percent(0.0348) == "3.48"
    assert money(10_727_000_000.4) == "10,727,000,000" and money(float("nan")) == "-"


def test_progress_bar_is_silent_off_a_terminal_and_draws_on_one():
    pipe = io.StringIO()
    bar = ProgressBar(pipe)
    for done in (10, 50, 100):
        bar(done, 100)
    assert pipe.getvalue() == ""  # a pipe or log file gets no bar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty = Terminal()
    bar = ProgressBar(tty)
    for done in (10, 50, 100):
        bar(done, 100)
    assert "100/100" in tty.getvalue() and "paths" in tty.getvalue()
