"""The evidence behind a finding (SPEC §11), over HTTPS."""

from __future__ import annotations

from typing import Any

import pytest

from tests import clock
from tests.support import (
    WORKED_EXAMPLE_ORDER,
    RunningServer,
    assert_problem,
    customer,
    days,
    evaluate,
    make_report,
    order,
    send_daily,
)

#: Its dates are literal (a calendar of late 2026): it runs on the day they were written for.
pytestmark = pytest.mark.moment(clock.WRITTEN_ON)

PRODUCTION = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
NON_PRODUCTION = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0fa"


def _evidence(server: RunningServer, finding_id: str, as_of: str) -> Any:
    with server.admin() as http:
        return http.get(f"/v1/findings/{finding_id}/evidence", params={"as_of": as_of})


def test_an_overuse_finding_shows_each_day_and_each_instance(server: RunningServer) -> None:
    key = server.add_customer("acme", customer("alice@vendor.example", WORKED_EXAMPLE_ORDER))
    usage = dict.fromkeys(days("2026-10-01", "2026-11-08"), 48)
    usage.update(dict.fromkeys(days("2026-11-03", "2026-11-05"), 58))
    usage.update(dict.fromkeys(days("2026-11-06", "2026-11-07"), 49))
    usage[days("2026-11-08", "2026-11-08")[0]] = 52
    send_daily(server, key, usage, instance=PRODUCTION)
    (finding,) = evaluate(server, "2026-11-08")["findings"]
    response = _evidence(server, finding["finding_id"], "2026-11-08")
    assert response.status_code == 200, response.text
    evidence = response.json()
    assert (evidence["kind"], evidence["metric"], evidence["counting"]) == (
        "overuse",
        "users",
        "sum",
    )
    assert evidence["activity_days"] == 3
    by_day = {d["date"]: d for d in evidence["days"]}
    assert next(iter(by_day)) == "2026-10-27"  # 7 days before started_on
    assert list(by_day)[-1] == "2026-11-08"  # open: up to as_of
    peak = by_day["2026-11-03"]
    assert (peak["usage"], peak["entitled"], peak["over"], peak["subscription"]) == (
        58,
        50,
        True,
        True,
    )
    (instance,) = peak["instances"]
    assert (instance["value"], instance["from_day"], instance["reports"]) == (58, "2026-11-03", 1)
    assert len(instance["report_ids"]) == 1
    assert by_day["2026-11-06"]["over"] is False
    for day in evidence["days"]:  # the values of a day add up to its usage
        assert sum(i["value"] for i in day["instances"]) == day["usage"]


def test_under_a_production_rule_non_production_instances_count_zero(
    server: RunningServer,
) -> None:
    terms = {**order("2026-01-01", "2026-12-31", 3), "counting": {"users": "production"}}
    key = server.add_customer("split", customer("alice@vendor.example", terms))
    span = days("2026-11-01", "2026-11-10")
    send_daily(server, key, dict.fromkeys(span, 35), instance=PRODUCTION)
    reports = [
        make_report(
            instance_id=NON_PRODUCTION,
            environment="non_production",
            generated_at=f"{day.isoformat()}T12:00:00Z",
            metrics={"users": 25},
        )
        for day in span
    ]
    with server.client(key) as http:
        assert http.post("/v1/reports", json={"reports": reports}).status_code == 202
    (finding,) = evaluate(server, "2026-11-10")["findings"]
    evidence = _evidence(server, finding["finding_id"], "2026-11-10").json()
    assert evidence["counting"] == "production"
    day = next(d for d in evidence["days"] if d["date"] == "2026-11-10")
    values = {i["environment"]: i["value"] for i in day["instances"]}
    assert values == {"production": 35, "non_production": 0}
    assert day["usage"] == 35


def test_evidence_of_a_finding_not_in_that_days_run_is_404(server: RunningServer) -> None:
    server.add_customer("acme", customer("alice@vendor.example", WORKED_EXAMPLE_ORDER))
    evaluate(server, "2026-11-08")
    unknown = _evidence(server, "f_0000000000000000", "2026-11-08")
    never = _evidence(server, "f_0000000000000000", "2026-11-01")
    assert_problem(unknown, 404, "not in the newest evaluation as of 2026-11-08")
    assert_problem(never, 404, "No evaluation as of 2026-11-01")


def test_a_silent_customer_shows_its_instances(server: RunningServer) -> None:
    key = server.add_customer(
        "globex", customer("bob@vendor.example", order("2026-01-01", "2026-12-31", 5))
    )
    send_daily(server, key, {days("2026-11-01", "2026-11-01")[0]: 10}, instance=PRODUCTION)
    findings = evaluate(server, "2026-11-22")["findings"]
    (silent,) = [f for f in findings if f["kind"] == "telemetry_missing"]
    evidence = _evidence(server, silent["finding_id"], "2026-11-22").json()
    (instance,) = evidence["instances"]
    assert (
        instance["instance_id"],
        instance["last_report_on"],
        instance["days_without_report"],
    ) == (
        PRODUCTION,
        "2026-11-01",
        21,
    )


SILENT = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0fb"
LONG_GONE = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0fc"


def _three_instances(server: RunningServer, terms: dict[str, Any]) -> None:
    """One instance reporting every day, one silent for 10 days, one gone since May."""
    key = server.add_customer("initech", customer("bob@vendor.example", terms))
    send_daily(server, key, dict.fromkeys(days("2026-05-01", "2026-05-03"), 5), instance=LONG_GONE)
    send_daily(server, key, dict.fromkeys(days("2026-11-01", "2026-11-12"), 5), instance=SILENT)
    send_daily(server, key, dict.fromkeys(days("2026-11-01", "2026-11-22"), 5), instance=PRODUCTION)


def test_a_silent_instance_shows_itself_and_the_ones_still_reporting(
    server: RunningServer,
) -> None:
    """Not every instance of 400 days (issue 26, item 10)."""
    _three_instances(server, order("2026-01-01", "2026-12-31", 5))
    findings = evaluate(server, "2026-11-22")["findings"]
    (silent,) = [f for f in findings if f["kind"] == "instance_silent"]
    assert silent["instance_id"] == SILENT
    evidence = _evidence(server, silent["finding_id"], "2026-11-22").json()
    assert sorted(i["instance_id"] for i in evidence["instances"]) == sorted([SILENT, PRODUCTION])


def test_no_subscription_shows_the_instances_that_reported_without_one(
    server: RunningServer,
) -> None:
    _three_instances(server, order("2026-01-01", "2026-10-31", 5))
    findings = evaluate(server, "2026-11-22")["findings"]
    (lapsed,) = [f for f in findings if f["kind"] == "no_active_subscription"]
    evidence = _evidence(server, lapsed["finding_id"], "2026-11-22").json()
    assert [i["instance_id"] for i in evidence["instances"]] == [PRODUCTION]
