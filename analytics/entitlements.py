"""Entitlements per customer, metric and day, from order forms and add-ons (SPEC §3)."""

from __future__ import annotations

import json
from datetime import date
from typing import TypeVar

import polars as pl

#: The metric an entitlement item counts: user packs count users, the rest are their metric.
_METRIC = pl.when(pl.col("item") == "user_packs").then(pl.lit("users")).otherwise(pl.col("item"))


def licensed_metrics(items: pl.DataFrame) -> list[str]:
    """The metrics any entitlement item names (on any day): the only ones that can be over."""
    return sorted(items.select(_METRIC.alias("metric")).unique()["metric"])


def daily_entitlements(
    orders: pl.LazyFrame,
    items: pl.LazyFrame,
    *,
    start: date,
    end: date,
    only: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``customer_id, metric, day, entitled`` for every day from ``start`` to ``end``, in
    no particular order; with ``only`` (``customer_id, metric``), of those metrics alone.

    On day D a metric's entitlement is the sum, over the orders with start <= D <= end, of
    the order's own quantity and of each of its add-ons effective on or before D. User packs
    count ``users_per_pack`` users of their order. A metric with no row on a day is unlimited.
    """
    amounts = _amounts(orders, items)
    if only is not None:
        amounts = amounts.join(only.lazy(), on=["customer_id", "metric"], how="semi")
    return (
        amounts.pipe(_each_day, starts=("effective_on", "start_on"), start=start, end=end)
        .group_by("customer_id", "metric", "day")
        .agg(entitled=pl.col("amount").sum())
        .collect()
    )


def entitlement_floors(orders: pl.LazyFrame, items: pl.LazyFrame) -> pl.DataFrame:
    """``customer_id, metric, floor``: no day on which an order names the metric entitles the
    customer to less than ``floor``, since each quantity in force on a day adds to that
    day's entitlement and none is negative. Usage that never exceeds it was never over."""
    return (
        _amounts(orders, items)
        .group_by("customer_id", "metric")
        .agg(floor=pl.col("amount").min())
        .collect()
    )


def _amounts(orders: pl.LazyFrame, items: pl.LazyFrame) -> pl.LazyFrame:
    """Each quantity of each order and add-on as the ``metric`` and ``amount`` it entitles."""
    return items.join(orders, on=["customer_id", "order_id"], how="inner").with_columns(
        metric=_METRIC,
        amount=pl.when(pl.col("item") == "user_packs")
        .then(pl.col("quantity") * pl.col("users_per_pack"))
        .otherwise(pl.col("quantity"))
        .cast(pl.Int64),
    )


def active_order_days(orders: pl.LazyFrame, *, start: date, end: date) -> pl.DataFrame:
    """``customer_id, day`` for every day from ``start`` to ``end`` with an active order, in
    no particular order."""
    return (
        _each_day(orders, starts=("start_on",), start=start, end=end)
        .select("customer_id", "day")
        .unique()
        .collect()
    )


def counting_rules(orders: pl.LazyFrame, *, start: date, end: date) -> pl.DataFrame:
    """``customer_id, metric, day, rule`` for every day from ``start`` to ``end`` on which an
    active order counts a metric by a rule other than ``sum`` (SPEC §3, §5 v2).

    ``orders`` carries each order's ``counting`` as JSON text (``{"users": "production"}``);
    orders whose terms overlap agree on their rules, which the admin API enforces.
    """
    named = (
        orders.filter(pl.col("counting").is_not_null() & (pl.col("counting") != "{}"))
        .select("customer_id", "start_on", "end_on", "counting")
        .collect()
    )
    rows = [
        (order["customer_id"], order["start_on"], order["end_on"], metric, rule)
        for order in named.iter_rows(named=True)
        for metric, rule in json.loads(order["counting"]).items()
        if rule != "sum"
    ]
    frame = pl.DataFrame(
        rows,
        schema={
            "customer_id": named.schema["customer_id"],  # text, or the evaluation's categorical
            "start_on": pl.Date,
            "end_on": pl.Date,
            "metric": pl.String,
            "rule": pl.String,
        },
        orient="row",
    )
    return (
        _each_day(frame, starts=("start_on",), start=start, end=end)
        .select("customer_id", "metric", "day", "rule")
        .unique(subset=["customer_id", "metric", "day"], keep="first")
        .sort("customer_id", "metric", "day")
    )


FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


def _each_day(frame: FrameT, *, starts: tuple[str, ...], start: date, end: date) -> FrameT:
    """One row per day of each row's term (from the latest of ``starts`` to ``end_on``),
    within ``start`` to ``end``: the days an order, add-on or rule is in force."""
    return (
        frame.with_columns(
            first=pl.max_horizontal(*starts, pl.lit(start)),
            last=pl.min_horizontal("end_on", pl.lit(end)),
        )
        .filter(pl.col("first") <= pl.col("last"))
        .with_columns(day=pl.date_ranges("first", "last"))
        .explode("day")
    )
