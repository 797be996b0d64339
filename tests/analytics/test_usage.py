"""Daily usage (SPEC §5) over small literal frames."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from analytics.usage import daily_usage
from core.usage_metrics import REPORT_METRICS
from tests.analytics.reference import InstanceDay, usage_by_day

D = date.fromisoformat


def instance_frame(rows: list[InstanceDay]) -> pl.LazyFrame:
    data = {
        "customer_id": ["acme"] * len(rows),
        "instance_id": [r.instance_id for r in rows],
        "day": [r.day for r in rows],
        "environment": [r.environment for r in rows],
        "users": [r.value for r in rows],
    }
    schema = {
        "customer_id": pl.String,
        "instance_id": pl.String,
        "day": pl.Date,
        "environment": pl.String,
        "users": pl.Int32,
    }
    for metric in REPORT_METRICS[1:]:
        data[metric] = [None] * len(rows)
        schema[metric] = pl.Int32
    return pl.DataFrame(data, schema=schema).lazy()


def users(rows: list[InstanceDay], as_of: str) -> dict[date, int]:
    frame = daily_usage(instance_frame(rows), as_of=D(as_of))
    return dict(frame.filter(pl.col("metric") == "users").select("day", "usage").iter_rows())


def test_an_instance_is_active_on_its_report_day_and_the_two_after() -> None:
    got = users([InstanceDay("a", D("2026-01-10"), 7)], "2026-01-20")
    assert got == {D("2026-01-10"): 7, D("2026-01-11"): 7, D("2026-01-12"): 7}


def test_a_newer_report_replaces_the_value_and_instances_add_up() -> None:
    rows = [
        InstanceDay("a", D("2026-01-01"), 10),
        InstanceDay("a", D("2026-01-02"), 12),
        InstanceDay("b", D("2026-01-02"), 5, "non_production"),
    ]
    assert users(rows, "2026-01-10") == {
        D("2026-01-01"): 10,
        D("2026-01-02"): 17,
        D("2026-01-03"): 17,
        D("2026-01-04"): 17,
    }
    frame = daily_usage(instance_frame(rows), as_of=D("2026-01-02"))
    counts = frame.filter(pl.col("metric").str.ends_with("instances")).sort("metric", "day")
    expected = pl.DataFrame(
        {
            "customer_id": ["acme"] * 4,
            "metric": ["non_production_instances"] * 2 + ["production_instances"] * 2,
            "day": [D("2026-01-01"), D("2026-01-02")] * 2,
            "usage": [0, 1, 1, 1],
        }
    )
    assert_frame_equal(counts, expected)


def test_nothing_after_as_of_counts() -> None:
    rows = [InstanceDay("a", D("2026-01-01"), 10), InstanceDay("a", D("2026-01-03"), 99)]
    assert users(rows, "2026-01-02") == {D("2026-01-01"): 10, D("2026-01-02"): 10}


def test_a_metric_no_active_instance_reported_is_unknown_not_zero() -> None:
    frame = daily_usage(
        instance_frame([InstanceDay("a", D("2026-01-01"), 3)]), as_of=D("2026-01-01")
    )
    assert set(frame["metric"]) == {"users", "production_instances", "non_production_instances"}


@st.composite
def fleets(draw: st.DrawFn) -> tuple[list[InstanceDay], date]:
    start = D("2026-03-01")
    rows = []
    for instance in ("a", "b", "c")[: draw(st.integers(1, 3))]:
        days = draw(st.sets(st.integers(0, 25), max_size=12))
        for offset in sorted(days):
            rows.append(
                InstanceDay(instance, start + timedelta(days=offset), draw(st.integers(0, 50)))
            )
    return rows, start + timedelta(days=draw(st.integers(0, 30)))


@settings(max_examples=200, deadline=None)
@given(fleets(), st.integers(1, 5))
def test_polars_usage_agrees_with_the_plain_reference(
    fleet: tuple[list[InstanceDay], date], activity_days: int
) -> None:
    rows, as_of = fleet
    frame = daily_usage(instance_frame(rows), as_of=as_of, activity_days=activity_days)
    got = dict(frame.filter(pl.col("metric") == "users").select("day", "usage").iter_rows())
    assert got == usage_by_day(rows, as_of=as_of, activity_days=activity_days)
