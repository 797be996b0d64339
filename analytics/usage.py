"""Daily usage per customer and metric (SPEC §5)."""

from __future__ import annotations

from datetime import date

import polars as pl

from core.usage_metrics import REPORT_METRICS

INSTANCE_METRICS = ("production_instances", "non_production_instances")
USAGE_METRICS = (*INSTANCE_METRICS, *REPORT_METRICS)


def daily_usage(
    instance_days: pl.LazyFrame, *, as_of: date, activity_days: int = 3
) -> pl.DataFrame:
    """``customer_id, metric, day, usage`` for each day up to ``as_of`` that has usage.

    ``instance_days`` holds each instance's peak of every metric per day it reported. An
    instance is active on D if it reported on D or on one of the ``activity_days - 1`` days
    before; it then contributes its values from its latest report day <= D. Usage is the sum
    over active instances; a day without an active instance has no row (no usage, not zero).
    """
    reported = (
        instance_days.filter(pl.col("day") <= as_of)
        .sort("customer_id", "instance_id", "day")
        .with_columns(next_day=pl.col("day").shift(-1).over("customer_id", "instance_id"))
    )
    # One copy per day of the window, each kept only until the instance's next report:
    # cheaper than a list of dates per row (measured on 10M reports: 0.45 s -> 0.27 s).
    expanded = pl.concat(
        [
            reported.with_columns(active_day=pl.col("day") + pl.duration(days=offset))
            for offset in range(activity_days)
        ]
    ).filter(
        (pl.col("active_day") <= as_of)
        & (pl.col("next_day").is_null() | (pl.col("active_day") < pl.col("next_day")))
    )
    per_day = expanded.group_by("customer_id", "active_day").agg(
        (pl.col("environment") == "production").sum().cast(pl.Int64).alias("production_instances"),
        (pl.col("environment") == "non_production")
        .sum()
        .cast(pl.Int64)
        .alias("non_production_instances"),
        # A metric no active instance reported is unknown that day, not zero.
        *[
            pl.when(pl.col(m).count() > 0).then(pl.col(m).cast(pl.Int64).sum()).alias(m)
            for m in REPORT_METRICS
        ],
    )
    return (
        per_day.rename({"active_day": "day"})
        .unpivot(
            index=["customer_id", "day"],
            on=list(USAGE_METRICS),
            variable_name="metric",
            value_name="usage",
        )
        .filter(pl.col("usage").is_not_null())
        .select("customer_id", "metric", "day", "usage")
        .sort("customer_id", "metric", "day")
        .collect()
    )
