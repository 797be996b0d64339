"""The charts drawn as inline SVG: what a reader is meant to see is there."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from analytics.charts import OVER_COLOUR, date_ticks, sequence_svg, usage_svg, value_ticks


def test_a_clones_sequence_is_drawn_report_by_report_its_regressions_red() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    reports = [
        {
            "generated_at": (start + timedelta(hours=n)).isoformat(),
            "sequence": s,
            "regression": back,
        }
        for n, (s, back) in enumerate(
            [(100, False), (101, False), (40, True), (102, False), (41, True)]
        )
    ]
    svg = sequence_svg(reports, title="sequence over time")
    assert svg.count("<circle") == 5
    assert len(re.findall(rf'r="3" fill="{OVER_COLOUR}"', svg)) == 2  # the two regressions
    assert "2026-12-01T00:00Z" in svg  # the first report's time
    assert "2026-12-01T04:00Z" in svg  # and the last's
    assert ">102<" in svg  # the highest sequence
    assert ">40<" in svg  # and the lowest
    assert sequence_svg([]) == ""


def test_usage_charts_have_a_value_axis_dates_and_the_entitlement_named() -> None:
    days = [date(2026, 11, 1) + timedelta(days=n) for n in range(30)]
    svg = usage_svg([(d, 48 if n < 20 else 58, 50) for n, d in enumerate(days)])
    assert "entitled 50" in svg
    assert "2026-11-01" in svg
    assert "2026-11-30" in svg
    assert svg.count(f'fill="{OVER_COLOUR}"') == 10  # the over-days
    assert value_ticks(63.8) == [0, 20, 40, 60]
    assert date_ticks(90) == [0, 18, 36, 53, 71, 89]
