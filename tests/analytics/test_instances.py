"""The instance findings of SPEC §6 v2 over small literal frames: silent instances."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from analytics.compliance import instance_silent

D = date.fromisoformat
T = D("2026-11-22")


def _customers(air_gapped: bool = False) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["acme"],
            "account_manager": ["alice@vendor.example"],
            "air_gapped": [air_gapped],
        }
    )


def _instance_days(
    rows: list[tuple[str, date]], retired: dict[str, date] | None = None
) -> pl.DataFrame:
    retired = retired or {}
    return pl.DataFrame(
        {
            "customer_id": ["acme"] * len(rows),
            "instance_id": [instance for instance, _ in rows],
            "day": [day for _, day in rows],
            "environment": ["production"] * len(rows),
            "retired_on": [retired.get(instance) for instance, _ in rows],
        },
        schema={
            "customer_id": pl.String,
            "instance_id": pl.String,
            "day": pl.Date,
            "environment": pl.String,
            "retired_on": pl.Date,
        },
    )


def _order_days(active: bool = True) -> pl.DataFrame:
    days = [T - timedelta(days=n) for n in range(8)] if active else []
    return pl.DataFrame(
        {"customer_id": ["acme"] * len(days), "day": days},
        schema={"customer_id": pl.String, "day": pl.Date},
    )


def _silent(
    silent_for: int,
    *,
    days: int = 2,
    other_ago: int = 1,
    retired_on: date | None = None,
    air_gapped: bool = False,
    subscribed: bool = True,
) -> list[str]:
    last = T - timedelta(days=silent_for)
    rows = [("quiet", last - timedelta(days=n)) for n in range(days)]
    rows.append(("busy", T - timedelta(days=other_ago)))
    frame = instance_silent(
        _customers(air_gapped),
        _instance_days(rows, {"quiet": retired_on} if retired_on else None),
        _order_days(subscribed),
        as_of=T,
    )
    return frame["instance_id"].to_list()


@pytest.mark.parametrize(("silent_for", "found"), [(6, False), (7, True), (30, True), (31, False)])
def test_silence_is_reported_from_7_to_30_days(silent_for: int, found: bool) -> None:
    assert _silent(silent_for) == (["quiet"] if found else [])


def test_an_instance_seen_on_one_day_only_is_not_silent() -> None:
    assert _silent(10, days=1) == []


def test_only_while_another_instance_reported_in_the_two_days_up_to_t() -> None:
    assert _silent(10, other_ago=1) == ["quiet"]
    assert _silent(10, other_ago=2) == []  # then the whole customer is quiet: telemetry_missing


def test_a_retired_instance_is_not_silent_until_it_reports_after_its_retirement() -> None:
    assert _silent(10, retired_on=T - timedelta(days=10)) == []
    assert _silent(10, retired_on=T - timedelta(days=11)) == ["quiet"]  # reported after it


def test_air_gapped_or_unsubscribed_customers_have_no_silent_instances() -> None:
    assert _silent(10, air_gapped=True) == []
    assert _silent(10, subscribed=False) == []
