"""A request's reports become rows of ``reports`` in two ways: as Python rows for DuckDB's
appender (small groups) and as an Arrow table built a column at a time (batches). They agree,
whatever the request's timestamps look like."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from core.usage_metrics import REPORT_METRICS
from ingest.repository import (
    _REPORT_SCHEMA,
    StagedReports,
    _received,
    _report_rows,
    _report_table,
)
from ingest.schemas import StatisticsReport

START = datetime(2026, 3, 1, tzinfo=UTC)


@st.composite
def generated_at(draw: st.DrawFn) -> str:
    """A moment as an installation may write it: any offset, fractions, either case."""
    moment = START + timedelta(microseconds=draw(st.integers(0, 3 * 86_400 * 10**6)))
    minutes = draw(st.sampled_from([0, 0, 330, -300, 60, -720, 840]))
    wall = (moment + timedelta(minutes=minutes)).replace(tzinfo=None)
    text = wall.isoformat(
        timespec=draw(st.sampled_from(["seconds", "milliseconds", "microseconds"]))
    )
    if minutes == 0 and draw(st.booleans()):
        zone = "Z"
    else:
        sign = "+" if minutes >= 0 else "-"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    text += zone
    return text.lower() if draw(st.booleans()) else text


@st.composite
def requests(draw: st.DrawFn) -> list[tuple[StagedReports, list[StatisticsReport]]]:
    parts = []
    for n in range(draw(st.integers(1, 3))):
        reports = [
            cast(
                StatisticsReport,
                {
                    "schema_version": 1,
                    "report_id": str(uuid.uuid4()),
                    "instance_id": str(uuid.uuid4()),
                    "environment": draw(st.sampled_from(["production", "non_production"])),
                    "generated_at": draw(generated_at()),
                    "product_version": "1.1.3",
                    **({} if draw(st.booleans()) else {"sequence": draw(st.integers(0, 10**9))}),
                    "metrics": {
                        metric: draw(st.integers(0, 10**6))
                        for metric in REPORT_METRICS
                        if metric == "users" or draw(st.booleans())
                    },
                },
            )
            for _ in range(draw(st.integers(0, 4)))
        ]
        staged = StagedReports(reports, f"customer-{n}", f"key-{n}", "phone_home")
        parts.append((staged, reports))
    return parts


@settings(max_examples=200, deadline=None)
@given(requests())
def test_the_arrow_table_holds_the_appenders_rows(
    parts: list[tuple[StagedReports, list[StatisticsReport]]],
) -> None:
    expected: list[dict[str, Any]] = [
        dict(zip(_REPORT_SCHEMA.names, row, strict=True))
        for row in _report_rows(parts, received_at=START)
    ]
    assert _received(_report_table(parts), at=START).to_pylist() == expected


def test_a_moment_with_an_offset_counts_for_its_utc_day() -> None:
    report = cast(
        StatisticsReport,
        {
            "report_id": str(uuid.uuid4()),
            "instance_id": str(uuid.uuid4()),
            "environment": "production",
            "generated_at": "2026-03-02t01:30:00+05:30",
            "product_version": "1.1.3",
            "metrics": {"users": 3},
        },
    )
    staged = StagedReports([report], "acme", "key-1", "phone_home")
    (row,) = _report_table([(staged, [report])]).to_pylist()
    assert row["generated_at"] == datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    assert row["usage_day"].isoformat() == "2026-03-01"
    assert (row["customer_id"], row["key_id"], row["sequence"]) == ("acme", "key-1", None)
