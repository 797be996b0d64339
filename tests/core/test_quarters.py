"""Quarters are written YYYYQn whatever the year: an order form may start in year 30 (found
by the API fuzzer: an air-gapped customer since 0030-08-01 made the evaluation fail)."""

from __future__ import annotations

from datetime import date

from core.quarters import next_quarter, previous_quarter, quarter_bounds, quarter_of


def test_a_year_before_1000_is_written_with_four_digits() -> None:
    assert quarter_of(date(30, 8, 1)) == "0030Q3"
    assert quarter_bounds("0030Q3") == (date(30, 7, 1), date(30, 9, 30))
    assert next_quarter("0030Q4") == "0031Q1"
    assert previous_quarter("0031Q1") == "0030Q4"
    assert quarter_of(date(2026, 12, 6)) == "2026Q4"
