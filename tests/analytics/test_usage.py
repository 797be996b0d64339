"""Daily usage (SPEC §5) over small literal frames."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from analytics.usage import daily_usage
from core.usage_metrics import REPORT_METRICS
from tests.analytics.reference import InstanceDay, usage_by_day

D = date.fromisoformat


def instance_frame(rows: list[InstanceDay], retired: dict[str, date] | None = None) -> pl.LazyFrame:
    retired = retired or {}
    data: dict[str, list[Any]] = {
        "customer_id": ["acme"] * len(rows),
        "instance_id": [r.instance_id for r in rows],
        "day": [r.day for r in rows],
        "environment": [r.environment for r in rows],
        "users": [r.value for r in rows],
        "retired_on": [retired.get(r.instance_id) for r in rows],
    }
    schema = {
        "customer_id": pl.String,
        "instance_id": pl.String,
        "day": pl.Date,
        "environment": pl.String,
        "users": pl.Int32,
        "retired_on": pl.Date,
    }
    for metric in REPORT_METRICS[1:]:
        data[metric] = [None] * len(rows)
        schema[metric] = pl.Int32
    return pl.DataFrame(data, schema=schema).lazy()


def rule_frame(rule: str, first: date, last: date) -> pl.LazyFrame:
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return pl.DataFrame(
        {
            "customer_id": ["acme"] * len(days),
            "metric": ["users"] * len(days),
            "day": days,
            "rule": [rule] * len(days),
        },
        schema={"customer_id": pl.String, "metric": pl.String, "day": pl.Date, "rule": pl.String},
    ).lazy()


def users(
    rows: list[InstanceDay],
    as_of: str,
    rule: str = "sum",
    retired: dict[str, date] | None = None,
) -> dict[date, int]:
    counting = rule_frame(rule, D("2000-01-01"), D(as_of)) if rule != "sum" else None
    frame = daily_usage(instance_frame(rows, retired), as_of=D(as_of), counting=counting)
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


def test_the_counting_rules_of_the_spec_example() -> None:
    # Entitled 50 users; a production instance reports 35, a non-production one 25.
    both = [
        InstanceDay("p", D("2026-05-01"), 35, "production"),
        InstanceDay("n", D("2026-05-01"), 25, "non_production"),
    ]
    day = D("2026-05-01")
    assert users(both, "2026-05-01", "sum") == {day: 60}
    assert users(both, "2026-05-01", "production") == {day: 35}
    assert users(both, "2026-05-01", "max_instance") == {day: 35}
    # With only the non-production instance active, `production` gives 0, not nothing.
    assert users(both[1:], "2026-05-01", "production") == {day: 0}
    counts = daily_usage(
        instance_frame(both), as_of=day, counting=rule_frame("production", day, day)
    )
    assert dict(counts.select("metric", "usage").iter_rows())["non_production_instances"] == 1


def test_a_retired_instance_is_not_carried_and_a_later_report_revives_it() -> None:
    # SPEC §6 v2: P reports up to 05-09 and is retired on 05-09; Q reports from 05-10.
    rows = [InstanceDay("p", D("2026-05-09"), 1), InstanceDay("q", D("2026-05-10"), 1)]
    production = {"p": D("2026-05-09")}

    def instances(retired: dict[str, date], extra: list[InstanceDay]) -> dict[date, int]:
        frame = daily_usage(instance_frame(rows + extra, retired), as_of=D("2026-05-12"))
        counted = frame.filter(pl.col("metric") == "production_instances")
        return dict(counted.select("day", "usage").iter_rows())

    assert instances({}, [])[D("2026-05-10")] == 2  # P carried by the activity window
    assert instances(production, [])[D("2026-05-10")] == 1
    assert instances(production, [])[D("2026-05-11")] == 1
    revived = instances(production, [InstanceDay("p", D("2026-05-12"), 1)])
    assert revived[D("2026-05-12")] == 2


@st.composite
def fleets(draw: st.DrawFn) -> tuple[list[InstanceDay], date, dict[str, date]]:
    start = D("2026-03-01")
    rows = []
    retired: dict[str, date] = {}
    for instance in ("a", "b", "c")[: draw(st.integers(1, 3))]:
        environment = draw(st.sampled_from(["production", "non_production"]))
        days = draw(st.sets(st.integers(0, 25), max_size=12))
        for offset in sorted(days):
            rows.append(
                InstanceDay(
                    instance,
                    start + timedelta(days=offset),
                    draw(st.integers(0, 50)),
                    environment,
                )
            )
        if draw(st.booleans()):
            retired[instance] = start + timedelta(days=draw(st.integers(0, 25)))
    return rows, start + timedelta(days=draw(st.integers(0, 30))), retired


@settings(max_examples=200, deadline=None)
@given(fleets(), st.integers(1, 5), st.sampled_from(["sum", "production", "max_instance"]))
def test_polars_usage_agrees_with_the_plain_reference(
    fleet: tuple[list[InstanceDay], date, dict[str, date]], activity_days: int, rule: str
) -> None:
    rows, as_of, retired = fleet
    counting = rule_frame(rule, D("2026-01-01"), as_of) if rule != "sum" else None
    frame = daily_usage(
        instance_frame(rows, retired), as_of=as_of, activity_days=activity_days, counting=counting
    )
    got = dict(frame.filter(pl.col("metric") == "users").select("day", "usage").iter_rows())
    expected = usage_by_day(
        rows, as_of=as_of, activity_days=activity_days, rule=rule, retired=retired
    )
    assert got == expected
