"""The weekly trigger (SPEC §7): when the Monday run fires, whatever the zone and its summer
time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scheduler.jobs import last_fire_time, weekly_trigger
from tests.support import D


def test_before_seven_on_monday_the_last_fire_time_is_last_weeks() -> None:
    trigger = weekly_trigger("0 7 * * mon", "UTC")
    early = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Monday, before 07:00
    fired = last_fire_time(trigger, now=early)
    assert fired is not None
    assert fired.date() == D("2026-11-23")  # so the catch-up, which looks at this week, waits


@pytest.mark.parametrize(
    ("zone", "after", "local_fire", "utc_fire"),
    [
        # Europe leaves summer time on Sunday 2026-10-25.
        ("Europe/Paris", "2026-10-20T00:00:00+00:00", "2026-10-26T07:00:00+01:00", "06:00"),
        ("Europe/Paris", "2026-10-13T00:00:00+00:00", "2026-10-19T07:00:00+02:00", "05:00"),
        # The US enters summer time on Sunday 2026-03-08.
        ("America/New_York", "2026-03-03T00:00:00+00:00", "2026-03-09T07:00:00-04:00", "11:00"),
    ],
)
def test_a_dst_week_fires_at_seven_local_time(
    zone: str, after: str, local_fire: str, utc_fire: str
) -> None:
    trigger = weekly_trigger("0 7 * * mon", zone)
    start = datetime.fromisoformat(after)
    fire = trigger.get_next_fire_time(None, start)
    assert fire is not None
    assert fire.isoformat() == local_fire
    assert fire.astimezone(UTC).strftime("%H:%M") == utc_fire
