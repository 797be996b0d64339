"""Calendar edges that once froze the server: a weekly cron inside the hour that the autumn
DST change repeats (issue 32, item 1)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.jobs import last_fire_time, weekly_trigger
from tests.support import spawn_server

#: Europe/Paris falls back on 2026-10-25: 02:00-03:00 local happens twice.
AFTER_FALL_BACK = "2026-10-26T09:00:00Z"


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("cron", "now", "expected"),
    [
        # The first occurrence of 02:30 that Sunday (CEST, 00:30 UTC).
        ("30 2 * * sun", "2026-10-26T09:00:00+00:00", "2026-10-25T00:30:00+00:00"),
        ("30 2 * * sun", "2026-10-25T01:45:00+00:00", "2026-10-25T00:30:00+00:00"),
        # A daily cron in the repeated hour moves on to the next day.
        ("30 2 * * *", "2026-10-26T09:00:00+00:00", "2026-10-26T01:30:00+00:00"),
        # Spring forward: 02:30 does not exist on 2026-03-29 and fires at 03:00 CEST.
        ("30 2 * * sun", "2026-03-29T09:00:00+00:00", "2026-03-29T01:30:00+00:00"),
        # Every minute for 8 days across the change: bounded, and up to date.
        ("* * * * *", "2026-10-26T09:00:00+00:00", "2026-10-26T09:00:00+00:00"),
    ],
)
def test_the_last_fire_time_moves_on_across_a_repeated_hour(
    cron: str, now: str, expected: str
) -> None:
    trigger = weekly_trigger(cron, "Europe/Paris")
    fired = last_fire_time(trigger, now=datetime.fromisoformat(now))
    assert fired is not None
    assert fired.astimezone(UTC) == datetime.fromisoformat(expected)


@pytest.mark.moment(AFTER_FALL_BACK)
def test_a_server_with_a_weekly_cron_in_the_repeated_hour_starts_and_answers(
    tmp_path: Path,
) -> None:
    """Before the fix the catch-up spun at 100 % CPU and the port never opened."""
    process = spawn_server(
        tmp_path / "data",
        STATREPORT_REPORT_CRON="30 2 * * sun",
        STATREPORT_REPORT_TIMEZONE="Europe/Paris",
        STATREPORT_SCHEDULER_ENABLED="true",
    )
    try:
        with process.server.client() as http:
            for _ in range(5):
                response = http.get("/healthz")
                assert response.status_code == 200
                # The server's clock is on the day after the change (faketime), not today's.
                assert response.headers["date"].startswith("Mon, 26 Oct 2026")
            assert http.get("/readyz").status_code == 200
    finally:
        process.terminate()
