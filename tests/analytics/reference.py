"""A deliberately plain reading of SPEC §5 and §6, to check the Polars code against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any


@dataclass
class InstanceDay:
    """One instance's peak of one metric on one day, and its environment."""

    instance_id: str
    day: date
    value: int | None
    environment: str = "production"


def usage_by_day(
    instance_days: list[InstanceDay],
    *,
    as_of: date,
    activity_days: int = 3,
    rule: str = "sum",
    retired: dict[str, date] | None = None,
) -> dict[date, int]:
    """SPEC §5, day by day: the active instances' latest values, added up by ``rule``; an
    instance retired on R is not carried past R, until it reports again."""
    if not instance_days:
        return {}
    retired = retired or {}
    first = min(d.day for d in instance_days)
    usage: dict[date, int] = {}
    day = first
    while day <= as_of:
        active: list[InstanceDay] = []
        for instance in sorted({d.instance_id for d in instance_days}):
            reported = [d for d in instance_days if d.instance_id == instance and d.day <= day]
            if not reported:
                continue
            latest = max(reported, key=lambda d: d.day)
            if (day - latest.day).days >= activity_days:
                continue
            retired_on = retired.get(instance)
            if retired_on is not None and latest.day <= retired_on < day:
                continue
            active.append(latest)
        values = [d.value for d in active if d.value is not None]
        production = [d.value for d in active if d.environment == "production"]
        if rule == "production":
            if any(v is not None for v in production):
                usage[day] = sum(v for v in production if v is not None)
            elif active and not production:
                usage[day] = 0
        elif values:
            usage[day] = max(values) if rule == "max_instance" else sum(values)
        day += timedelta(days=1)
    return usage


def episodes(
    usage: dict[date, int],
    entitled: dict[date, int],
    *,
    as_of: date,
    relapse_days: int = 7,
    subscribed: set[date] | None = None,
) -> list[dict[str, Any]]:
    """SPEC §6 for one customer and metric; ``entitled`` lacks unlimited days, and
    ``subscribed`` (when given) holds the days with an active order: the others are skipped
    like days without usage."""
    days = sorted(d for d in usage if d <= as_of and (subscribed is None or d in subscribed))
    over = {d: d in entitled and usage[d] > entitled[d] for d in days}
    found: list[list[date]] = []
    last_over: date | None = None
    compliant_since_last = False
    for day in days:
        if over[day]:
            assert last_over is not None or not found
            if last_over is None or (
                compliant_since_last and (day - last_over).days > relapse_days
            ):
                found.append([day])
            else:
                found[-1].append(day)
            last_over = day
            compliant_since_last = False
        elif last_over is not None:
            compliant_since_last = True
    result = []
    for over_days in found:
        started, last = over_days[0], over_days[-1]
        peak = max(usage[d] for d in over_days)
        peak_day = min(d for d in over_days if usage[d] == peak)
        ent = entitled[peak_day]
        ended = next((d for d in days if d > last and not over[d]), None)
        deadline = started + timedelta(days=30)
        if ended is None:
            status = "in_window" if as_of <= deadline else "overdue"
            resolution = None
            late = None
        else:
            status = "regularized"
            after = entitled.get(ended)
            resolution = (
                "capacity_purchased" if after is None or after > entitled[last] else "usage_reduced"
            )
            late = ended > deadline
        overage = peak - ent
        pct = None if ent == 0 else float(f"{(100 * overage / ent) + 1e-9:.1f}")
        result.append(
            {
                "status": status,
                "started_on": started,
                "deadline": deadline,
                "days_left": (deadline - as_of).days,
                "entitled": ent,
                "peak_usage": peak,
                "overage": overage,
                "overage_pct": pct,
                "material": any(
                    entitled[d] == 0 or usage[d] * 100 > entitled[d] * 110 for d in over_days
                ),
                "ended_on": ended,
                "resolution": resolution,
                "late": late,
            }
        )
    return result
