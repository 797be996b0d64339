"""A customer's instances and their retirement (SPEC §3 v2), over HTTPS."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests import clock
from tests.support import RunningServer, assert_problem, make_report

#: Its dates are literal (a calendar of late 2026): it runs on the day they were written for.
pytestmark = pytest.mark.moment(clock.WRITTEN_ON)

A = "3d1c9e7a-5b2f-4a8e-9c3d-1e2f3a4b5c6d"
B = "7e6d5c4b-3a2f-4e1d-8c9b-0a1b2c3d4e5f"


def _day(days_ago: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=days_ago)


def _reports(instance: str, first: int, last: int, environment: str) -> list[dict[str, Any]]:
    return [
        make_report(
            instance_id=instance,
            environment=environment,
            generated_at=f"{_day(ago).isoformat()}T12:00:00Z",
            sequence=100 - ago,
            product_version="1.2.0" if ago == last else "1.1.3",
        )
        for ago in range(first, last - 1, -1)
    ]


def _fleet(server: RunningServer) -> None:
    key = server.add_customer("acme")
    reports = _reports(A, 5, 2, "production") + _reports(B, 20, 10, "non_production")
    with server.client(key) as http:
        assert http.post("/v1/reports", json={"reports": reports}).status_code == 202


def test_the_instances_of_a_customer(server: RunningServer) -> None:
    _fleet(server)
    with server.admin() as http:
        listed = http.get("/v1/customers/acme/instances").json()
        missing = http.get("/v1/customers/nobody/instances")
    assert listed == [
        {
            "instance_id": B,
            "environment": "non_production",
            "product_version": "1.2.0",
            "first_report_on": _day(20).isoformat(),
            "last_report_on": _day(10).isoformat(),
            "reports": 11,
            "last_sequence": 90,
            "active_on_as_of": False,
            "retired_on": None,
        },
        {
            "instance_id": A,
            "environment": "production",
            "product_version": "1.2.0",
            "first_report_on": _day(5).isoformat(),
            "last_report_on": _day(2).isoformat(),
            "reports": 4,
            "last_sequence": 98,
            "active_on_as_of": True,  # reported the day before the latest finished day
            "retired_on": None,
        },
    ]
    assert_problem(missing, 404, "No customer 'nobody'")


def test_retiring_an_instance_and_undoing_it(server: RunningServer) -> None:
    _fleet(server)
    with server.admin() as http:
        retired = http.post(f"/v1/instances/{A}/retire", json={"retired_on": _day(2).isoformat()})
        assert retired.status_code == 200, retired.text
        assert (retired.json()["retired_on"], retired.json()["active_on_as_of"]) == (
            _day(2).isoformat(),
            False,  # no longer carried past its retirement
        )
        undone = http.delete(f"/v1/instances/{A}/retire", headers={"X-Statreport-Actor": "carol"})
        assert (undone.json()["retired_on"], undone.json()["active_on_as_of"]) == (None, True)
        entries = http.get("/v1/audit-log", params={"target": A}).json()
    assert [(e["action"], e["actor"], e["on_behalf_of"]) for e in entries] == [
        ("instance.unretire", "root", "carol"),
        ("instance.retire", "root", None),
    ]
    assert entries[1]["after"] == {"customer_id": "acme", "retired_on": _day(2).isoformat()}
    assert entries[0]["after"] == {"customer_id": "acme", "retired_on": None}


def test_a_retirement_day_must_lie_between_the_first_report_and_today(
    server: RunningServer,
) -> None:
    _fleet(server)
    with server.admin() as http:
        early = http.post(f"/v1/instances/{A}/retire", json={"retired_on": _day(6).isoformat()})
        future = http.post(f"/v1/instances/{A}/retire", json={"retired_on": _day(-1).isoformat()})
        unknown = http.post(
            "/v1/instances/00000000-0000-4000-8000-000000000000/retire",
            json={"retired_on": _day(1).isoformat()},
        )
        not_a_uuid = http.post("/v1/instances/db1/retire", json={"retired_on": "2026-01-01"})
    assert_problem(early, 422, f"outside {_day(5)} (the instance's first report)")
    assert_problem(future, 422, "today")
    assert_problem(unknown, 404, "No instance 00000000-0000-4000-8000-000000000000")
    assert_problem(not_a_uuid, 422)
