"""Episodes of any length (SPEC §6 v3): an over-use open for more than 400 days keeps its
start, deadline and id, though reports older than 400 days no longer arrive and the
evaluation reads 400 days of history."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine

from tests.support import RunningServer, customer, days, evaluate, order, send_daily

TERMS = order("2025-01-01", "2027-12-31", 5)  # 50 users


def _overuse(run: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [f for f in run["findings"] if f["kind"] == "overuse"]
    (finding,) = found
    return finding


@pytest.mark.moment("2025-11-20T12:00:00Z")
def test_an_episode_open_for_more_than_400_days_keeps_its_start_deadline_and_id(
    server: RunningServer, moment: time_machine.Traveller
) -> None:
    key = server.add_customer("acme", customer("alice@vendor.example", TERMS))
    send_daily(server, key, dict.fromkeys(days("2025-11-11", "2025-11-19"), 70))
    first = _overuse(evaluate(server, "2025-11-19"))
    assert (first["started_on"], first["deadline"]) == ("2025-11-11", "2025-12-11")

    # 415 days on, still over every day it reports (the earliest days can no longer be sent).
    moment.move_to("2027-01-09T12:00:00Z")
    send_daily(server, key, dict.fromkeys(days("2025-12-10", "2027-01-08"), 70))
    later = _overuse(evaluate(server, "2027-01-08"))
    assert (later["started_on"], later["deadline"]) == ("2025-11-11", "2025-12-11")
    assert later["finding_id"] == first["finding_id"]
    assert later["status"] == "overdue"
    assert later["days_left"] == -393  # 2025-12-11 to 2027-01-08

    moment.move_to("2027-01-10T12:00:00Z")
    send_daily(server, key, dict.fromkeys(days("2027-01-09", "2027-01-09"), 70))
    next_day = _overuse(evaluate(server, "2027-01-09"))
    assert next_day["finding_id"] == first["finding_id"]
    assert next_day["days_left"] == later["days_left"] - 1  # it no longer sticks
    with server.admin() as http:
        history = http.get("/v1/episodes", params={"customer_id": "acme"}).json()
    assert [e["started_on"] for e in history] == ["2025-11-11"]  # no new row a day
