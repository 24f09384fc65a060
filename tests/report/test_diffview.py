"""Tests of focalpo.report.diffview: the characters that differ inside changed lines, the page's code blocks.

Run: .venv/bin/python -m pytest -q tests/report/test_diffview.py
"""

from __future__ import annotations

from focalpo.report.diffview import char_diff, code_html


def test_char_diff_marks_exactly_the_differing_characters():
    assert char_diff("x = 2\ny = 1\n", "x = 5\ny = 1\n") == (((4, 5),), ((4, 5),))
    # a line only in the rejected is marked whole; the chosen has nothing to mark
    assert char_diff("a = 1\nreturn a\n", "a = 1\nprint(a)\nreturn a\n") == ((), ((6, 15),))
    assert char_diff("same\n", "same  \n") == ((), ())  # trailing whitespace is not a change


def test_code_html_escapes_and_marks_the_spans():
    page = code_html("x = '<b>'\n", {"diff": [(5, 8)]})
    assert "&lt;b&gt;" in page and "<b>" not in page
    assert page.count("&lt;b&gt;") == 1
