"""Episodes and findings over small literal frames, one rule or boundary per case."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from analytics.compliance import overuse_episodes, overuse_findings
from analytics.entitlements import daily_entitlements
from tests.analytics.reference import episodes as reference_episodes

D = date.fromisoformat


def span(first: str, last: str) -> list[date]:
    start, end = D(first), D(last)
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def usage_frame(values: dict[date, int], metric: str = "users") -> pl.LazyFrame:
    return pl.DataFrame(
        {
            "customer_id": ["acme"] * len(values),
            "metric": [metric] * len(values),
            "day": list(values),
            "usage": list(values.values()),
        },
        schema={"customer_id": pl.String, "metric": pl.String, "day": pl.Date, "usage": pl.Int64},
    ).lazy()


def entitlement_frame(values: dict[date, int], metric: str = "users") -> pl.LazyFrame:
    return pl.DataFrame(
        {
            "customer_id": ["acme"] * len(values),
            "metric": [metric] * len(values),
            "day": list(values),
            "entitled": list(values.values()),
        },
        schema={
            "customer_id": pl.String,
            "metric": pl.String,
            "day": pl.Date,
            "entitled": pl.Int64,
        },
    ).lazy()


def subscribed_frame(days: set[date]) -> pl.LazyFrame:
    return pl.DataFrame(
        {"customer_id": ["acme"] * len(days), "day": sorted(days)},
        schema={"customer_id": pl.String, "day": pl.Date},
    ).lazy()


def episodes_of(
    usage: dict[date, int],
    entitled: dict[date, int],
    as_of: str,
    subscribed: set[date] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    frame = overuse_episodes(
        usage_frame(usage),
        entitlement_frame(entitled),
        as_of=D(as_of),
        subscribed=None if subscribed is None else subscribed_frame(subscribed),
        **kwargs,
    )
    return frame.drop("customer_id", "metric").to_dicts()


def worked_example_usage(until: str) -> dict[date, int]:
    usage = dict.fromkeys(span("2026-10-01", until), 48)
    usage.update(dict.fromkeys(span("2026-11-03", "2026-11-05"), 58))
    usage.update(dict.fromkeys(span("2026-11-06", "2026-11-07"), 49))
    usage[D("2026-11-08")] = 52
    if D(until) >= D("2026-11-09"):
        usage[D("2026-11-09")] = 52
    return usage


def test_the_specs_worked_example() -> None:
    # Order: 5 packs of 10 users from 2026-10-01; add-on of 1 pack effective 2026-11-09.
    orders = pl.DataFrame(
        {
            "customer_id": ["acme"],
            "order_id": ["OF-1"],
            "start_on": [D("2026-10-01")],
            "end_on": [D("2027-09-30")],
            "users_per_pack": [10],
        }
    ).lazy()
    items = pl.DataFrame(
        {
            "customer_id": ["acme", "acme"],
            "order_id": ["OF-1", "OF-1"],
            "addon_id": ["", "AO-1"],
            "effective_on": [D("2026-10-01"), D("2026-11-09")],
            "item": ["user_packs", "user_packs"],
            "quantity": [5, 1],
        }
    ).lazy()
    entitled = daily_entitlements(orders, items, start=D("2026-10-01"), end=D("2026-11-09"))
    assert entitled.filter(pl.col("day") == D("2026-11-08"))["entitled"].to_list() == [50]
    assert entitled.filter(pl.col("day") == D("2026-11-09"))["entitled"].to_list() == [60]

    at_8 = overuse_episodes(
        usage_frame(worked_example_usage("2026-11-08")), entitled.lazy(), as_of=D("2026-11-08")
    )
    assert at_8.drop("customer_id", "metric").to_dicts() == [
        {
            "status": "in_window",
            "started_on": D("2026-11-03"),
            "deadline": D("2026-12-03"),
            "days_left": 25,
            "entitled": 50,
            "peak_usage": 58,
            "overage": 8,
            "overage_pct": 16.0,
            "material": True,
            "ended_on": None,
            "resolution": None,
            "late": None,
        }
    ]
    at_9 = overuse_episodes(
        usage_frame(worked_example_usage("2026-11-09")), entitled.lazy(), as_of=D("2026-11-09")
    )
    row = at_9.to_dicts()[0]
    assert (row["status"], row["ended_on"], row["resolution"], row["late"]) == (
        "regularized",
        D("2026-11-09"),
        "capacity_purchased",
        False,
    )
    assert row["started_on"] == D("2026-11-03")


FLAT_100 = dict.fromkeys(span("2026-01-01", "2026-03-31"), 100)


def over_on(days: list[str], value: int = 120, base: int = 90) -> dict[date, int]:
    usage = dict.fromkeys(span("2026-01-01", "2026-02-28"), base)
    usage.update({D(d): value for d in days})
    return usage


@pytest.mark.parametrize(
    ("name", "usage", "entitled", "as_of", "expected"),
    [
        (
            "relapse exactly 7 days after the last over-day continues the episode",
            over_on(["2026-01-02", "2026-01-09"]),
            FLAT_100,
            "2026-01-09",
            [("in_window", "2026-01-02", None)],
        ),
        (
            "relapse 8 days after the last over-day opens a new episode",
            over_on(["2026-01-02", "2026-01-10"]),
            FLAT_100,
            "2026-01-10",
            [("regularized", "2026-01-02", "2026-01-03"), ("in_window", "2026-01-10", None)],
        ),
        (
            "silence inside an episode keeps it open (no compliant day, 20 days apart)",
            {D("2026-01-02"): 120, D("2026-01-22"): 120},
            FLAT_100,
            "2026-01-22",
            [("in_window", "2026-01-02", None)],
        ),
        (
            "silence after the last over-day leaves it open",
            {D("2026-01-02"): 120},
            FLAT_100,
            "2026-01-20",
            [("in_window", "2026-01-02", None)],
        ),
        (
            "past the deadline it is overdue",
            dict.fromkeys(span("2026-01-02", "2026-02-05"), 120),
            FLAT_100,
            "2026-02-05",
            [("overdue", "2026-01-02", None)],
        ),
        (
            "a metric no order names is unlimited: never flagged",
            over_on(["2026-01-05"], value=10_000),
            {},
            "2026-01-31",
            [],
        ),
    ],
)
def test_episode_rules(
    name: str,
    usage: dict[date, int],
    entitled: dict[date, int],
    as_of: str,
    expected: list[tuple[str, str, str | None]],
) -> None:
    found = episodes_of(usage, entitled, as_of)
    got = [
        (e["status"], e["started_on"].isoformat(), e["ended_on"] and e["ended_on"].isoformat())
        for e in found
    ]
    assert got == expected, name


def test_an_addon_mid_episode_regularizes_by_capacity() -> None:
    entitled = dict(FLAT_100)
    entitled.update(dict.fromkeys(span("2026-01-10", "2026-03-31"), 150))
    usage = over_on([d.isoformat() for d in span("2026-01-05", "2026-01-12")], value=120)
    (episode,) = episodes_of(usage, entitled, "2026-01-12")
    assert episode["status"] == "regularized"
    assert episode["ended_on"] == D("2026-01-10")
    assert episode["resolution"] == "capacity_purchased"
    assert episode["late"] is False


def test_the_entitlement_shown_is_the_first_peak_days() -> None:
    # The same peak on two days, under a larger entitlement the second day: the overage is
    # counted against the first (docs/rules.md, "Amounts").
    entitled = dict(FLAT_100)
    entitled[D("2026-01-06")] = 110
    usage = {D("2026-01-05"): 120, D("2026-01-06"): 120, D("2026-01-07"): 105}
    (episode,) = episodes_of(usage, entitled, "2026-01-07")
    assert (episode["peak_usage"], episode["entitled"], episode["overage"]) == (120, 100, 20)


def test_reduced_usage_regularizes_and_late_after_the_deadline() -> None:
    usage = over_on([d.isoformat() for d in span("2026-01-05", "2026-02-06")])
    (episode,) = episodes_of(usage, FLAT_100, "2026-02-10")
    assert episode["ended_on"] == D("2026-02-07")
    assert episode["deadline"] == D("2026-02-04")
    assert episode["resolution"] == "usage_reduced"
    assert episode["late"] is True


@pytest.mark.parametrize(
    ("usage", "entitled", "pct", "material"),
    [
        (1100, 1000, 10.0, False),  # exactly 10 %: not material
        (1101, 1000, 10.1, True),
        (51, 50, 2.0, False),
        (1, 0, None, True),  # entitlement 0: always material, no percentage
        (2, 3, None, None),  # not over at all
    ],
)
def test_material_boundary_and_zero_entitlement(
    usage: int, entitled: int, pct: float | None, material: bool | None
) -> None:
    found = episodes_of({D("2026-01-05"): usage}, {D("2026-01-05"): entitled}, "2026-01-05")
    if material is None:
        assert found == []
        return
    (episode,) = found
    assert episode["overage_pct"] == pct
    assert episode["material"] is material
    assert episode["overage"] == usage - entitled


def test_regularized_episodes_are_reported_for_seven_days() -> None:
    usage = over_on(["2026-01-05"])
    frame = overuse_episodes(usage_frame(usage), entitlement_frame(FLAT_100), as_of=D("2026-01-12"))
    assert overuse_findings(frame, as_of=D("2026-01-12")).height == 1  # ended 01-06, 7th day
    later = overuse_episodes(usage_frame(usage), entitlement_frame(FLAT_100), as_of=D("2026-01-13"))
    assert overuse_findings(later, as_of=D("2026-01-13")).height == 0


def test_renewals_back_to_back_and_an_expired_order() -> None:
    orders = pl.DataFrame(
        {
            "customer_id": ["acme", "acme"],
            "order_id": ["2025", "2026"],
            "start_on": [D("2025-01-01"), D("2026-01-01")],
            "end_on": [D("2025-12-31"), D("2026-01-31")],
            "users_per_pack": [10, 10],
        }
    ).lazy()
    items = pl.DataFrame(
        {
            "customer_id": ["acme", "acme", "acme"],
            "order_id": ["2025", "2026", "2026"],
            "addon_id": ["", "", ""],
            "effective_on": [D("2025-01-01"), D("2026-01-01"), D("2026-01-01")],
            "item": ["user_packs", "user_packs", "tenants"],
            "quantity": [5, 6, 0],
        }
    ).lazy()
    entitled = daily_entitlements(orders, items, start=D("2025-12-30"), end=D("2026-02-02"))
    users = dict(entitled.filter(pl.col("metric") == "users").select("day", "entitled").iter_rows())
    assert users[D("2025-12-31")] == 50
    assert users[D("2026-01-01")] == 60  # the renewal takes over the next day, no gap
    assert D("2026-02-01") not in users  # expired: unlimited, never an over-day
    tenants = entitled.filter(pl.col("metric") == "tenants")
    assert tenants["entitled"].unique().to_list() == [0]


def test_the_result_has_the_documented_columns_and_types() -> None:
    frame = overuse_episodes(
        usage_frame({D("2026-01-05"): 120}), entitlement_frame(FLAT_100), as_of=D("2026-01-05")
    )
    expected = pl.DataFrame(
        {
            "customer_id": ["acme"],
            "metric": ["users"],
            "status": ["in_window"],
            "started_on": [D("2026-01-05")],
            "deadline": [D("2026-02-04")],
            "days_left": [30],
            "entitled": [100],
            "peak_usage": [120],
            "overage": [20],
            "overage_pct": [20.0],
            "material": [True],
            "ended_on": [None],
            "resolution": [None],
            "late": [None],
        },
        schema_overrides={
            "ended_on": pl.Date,
            "resolution": pl.String,
            "late": pl.Boolean,
            "days_left": pl.Int64,
        },
    )
    assert_frame_equal(frame, expected)


@st.composite
def histories(
    draw: st.DrawFn,
) -> tuple[dict[date, int], dict[date, int], date, set[date] | None]:
    start = D("2026-01-01")
    length = draw(st.integers(1, 60))
    usage: dict[date, int] = {}
    entitled: dict[date, int] = {}
    subscribed: set[date] = set()
    level = draw(st.integers(0, 20))
    active = True
    for n in range(length):
        day = start + timedelta(days=n)
        if draw(st.integers(0, 9)) < 8:  # some days are silent
            usage[day] = draw(st.integers(0, 30))
        if draw(st.integers(0, 19)) == 0:  # capacity changes now and then
            level = draw(st.integers(0, 30))
        if draw(st.integers(0, 14)) == 0:  # an order lapses, or a renewal starts
            active = not active
        if active:
            subscribed.add(day)
            if level != 20:  # 20 stands for "unlimited"
                entitled[day] = level
    as_of = start + timedelta(days=draw(st.integers(0, length + 40)))
    # Some histories are judged without the subscription rule, as before version 2.
    return usage, entitled, as_of, draw(st.sampled_from([subscribed, None]))


@settings(max_examples=300, deadline=None)
@given(histories(), st.integers(1, 10))
def test_polars_agrees_with_the_plain_reference(
    history: tuple[dict[date, int], dict[date, int], date, set[date] | None], relapse_days: int
) -> None:
    usage, entitled, as_of, subscribed = history
    got = episodes_of(
        usage, entitled, as_of.isoformat(), subscribed=subscribed, relapse_days=relapse_days
    )
    expected = reference_episodes(
        usage, entitled, as_of=as_of, relapse_days=relapse_days, subscribed=subscribed
    )
    assert got == expected


def _lapse_then_renewal(renewal_packs: int) -> tuple[dict[date, int], dict[date, int], set[date]]:
    """SPEC §6 v2: order A, 4 packs of 10, Jan to March; 44 users every day from 03-20; no
    order from 04-01 to 04-09; order B from 04-10."""
    subscribed = set(span("2026-01-01", "2026-03-31")) | set(span("2026-04-10", "2026-12-31"))
    entitled = dict.fromkeys(span("2026-01-01", "2026-03-31"), 40)
    entitled.update(dict.fromkeys(span("2026-04-10", "2026-12-31"), 10 * renewal_packs))
    usage = dict.fromkeys(span("2026-03-20", "2026-05-31"), 44)
    return usage, entitled, subscribed


def test_a_lapse_neither_ends_nor_regularizes_an_episode() -> None:
    usage, entitled, subscribed = _lapse_then_renewal(5)
    (during,) = episodes_of(usage, entitled, "2026-04-05", subscribed)
    assert (during["status"], during["started_on"], during["deadline"]) == (
        "in_window",
        D("2026-03-20"),
        D("2026-04-19"),
    )
    (after,) = episodes_of(usage, entitled, "2026-04-12", subscribed)
    assert (after["status"], after["ended_on"], after["resolution"], after["late"]) == (
        "regularized",
        D("2026-04-10"),
        "capacity_purchased",  # 50 on 04-10 > 40 on 03-31
        False,
    )
    # Before version 2 the lapse read as "unlimited" and ended the episode on 04-01.
    (v1,) = episodes_of(usage, entitled, "2026-04-05")
    assert (v1["ended_on"], v1["resolution"]) == (D("2026-04-01"), "capacity_purchased")


def test_a_renewal_that_does_not_cover_the_usage_continues_the_episode() -> None:
    usage, entitled, subscribed = _lapse_then_renewal(4)
    (at_19,) = episodes_of(usage, entitled, "2026-04-19", subscribed)
    (at_20,) = episodes_of(usage, entitled, "2026-04-20", subscribed)
    assert (at_19["status"], at_19["started_on"]) == ("in_window", D("2026-03-20"))
    assert (at_20["status"], at_20["days_left"], at_20["ended_on"]) == ("overdue", -1, None)


def test_a_metric_not_licensed_is_over_at_any_use_and_always_material() -> None:
    days = span("2026-02-01", "2026-02-03")
    (episode,) = episodes_of(dict.fromkeys(days, 1), dict.fromkeys(days, 0), "2026-02-03")
    assert (episode["entitled"], episode["overage_pct"], episode["material"]) == (0, None, True)
