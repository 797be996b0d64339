"""UTC days (SPEC §2): every day statreport counts and judges is a UTC day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def latest_finished_day(now: datetime | None = None) -> date:
    """The latest UTC day that has ended (at ``now``, by default the clock's): what an
    evaluation, the weekly report, an instance's "active" and the console judge by default.
    No day is judged half-reported, even in a time zone ahead of UTC."""
    return (now or datetime.now(UTC)).astimezone(UTC).date() - timedelta(days=1)
