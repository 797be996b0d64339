"""The compliance evaluation over real TLS: reports in, findings out (SPEC §5, §6)."""

from __future__ import annotations

import copy
import uuid
from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner

from statreport.cli import main
from tests import clock
from tests.support import (
    ADMIN_TOKEN,
    INSTANCE,
    WORKED_EXAMPLE_ORDER,
    D,
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


def worked_example_usage() -> dict[date, int]:
    usage = dict.fromkeys(days("2026-10-01", "2026-11-09"), 48)
    usage.update(dict.fromkeys(days("2026-11-03", "2026-11-05"), 58))
    usage.update(dict.fromkeys(days("2026-11-06", "2026-11-07"), 49))
    usage[D("2026-11-08")] = 52
    usage[D("2026-11-09")] = 52
    return usage


def test_the_worked_example_end_to_end(server: RunningServer) -> None:
    key = server.add_customer("acme", customer("alice@vendor.example", WORKED_EXAMPLE_ORDER))
    send_daily(server, key, worked_example_usage())

    at_8 = evaluate(server, "2026-11-08")
    assert at_8["as_of"] == "2026-11-08"
    assert at_8["findings"] == [
        {
            "finding_id": at_8["findings"][0]["finding_id"],
            "kind": "overuse",
            "customer_id": "acme",
            "account_manager": "alice@vendor.example",
            "metric": "users",
            "status": "in_window",
            "started_on": "2026-11-03",
            "deadline": "2026-12-03",
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
    at_9 = evaluate(server, "2026-11-09")
    (finding,) = at_9["findings"]
    assert (finding["status"], finding["ended_on"], finding["resolution"], finding["late"]) == (
        "regularized",
        "2026-11-09",
        "capacity_purchased",
        False,
    )
    # The same episode keeps its id from the day it opens until it is regularized.
    assert finding["finding_id"] == at_8["findings"][0]["finding_id"]
    assert finding["finding_id"].startswith("f_")

    # An earlier day evaluated after a later one answers as if it came first.
    again = evaluate(server, "2026-11-08")
    assert again["findings"] == at_8["findings"]
    with server.admin() as http:
        stored = http.get("/v1/findings", params={"as_of": "2026-11-08"}).json()
        assert stored == again  # kept, not recomputed: same evaluated_at
        history = http.get("/v1/episodes", params={"customer_id": "acme"}).json()
    assert len(history) == 1
    assert history[0]["started_on"] == "2026-11-03"
    assert history[0]["first_reported_as_of"] == "2026-11-08"
    assert history[0]["last_evaluated_as_of"] == "2026-11-09"
    assert (history[0]["status"], history[0]["ended_on"]) == ("regularized", "2026-11-09")


def test_hourly_reports_count_the_days_peak(server: RunningServer) -> None:
    key = server.add_customer(
        "acme", customer("alice@vendor.example", order("2026-10-01", "2027-09-30", 5))
    )
    reports = [
        make_report(
            instance_id=INSTANCE,
            generated_at=f"2026-11-10T{hour:02d}:15:00+00:00",
            metrics={"users": 70 if hour == 13 else 40},
        )
        for hour in range(24)
    ]
    with server.client(key) as http:
        assert http.post("/v1/reports", json={"reports": reports}).status_code == 202
    (finding,) = evaluate(server, "2026-11-10")["findings"]
    assert (finding["peak_usage"], finding["entitled"], finding["started_on"]) == (
        70,
        50,
        "2026-11-10",
    )


def test_every_kind_of_finding_in_the_specs_order(server: RunningServer) -> None:
    year = order("2026-01-01", "2026-12-31", 5)
    # Over since 2026-10-01: overdue by 2026-11-22.
    hooli = server.add_customer("hooli", customer("bob@vendor.example", year))
    send_daily(server, hooli, dict.fromkeys(days("2026-10-01", "2026-11-22"), 60))
    # Over since 2026-11-20: in the regularization window.
    acme = server.add_customer("acme", customer("alice@vendor.example", year))
    usage = dict.fromkeys(days("2026-11-01", "2026-11-22"), 40)
    usage.update(dict.fromkeys(days("2026-11-20", "2026-11-22"), 54))
    send_daily(server, acme, usage, instance="11111111-1111-4111-8111-111111111111")
    # Silent since 2026-11-01.
    globex = server.add_customer("globex", customer("bob@vendor.example", year))
    send_daily(
        server, globex, {D("2026-11-01"): 10}, instance="22222222-2222-4222-8222-222222222222"
    )
    # Reporting after its only order ended.
    initech = server.add_customer(
        "initech", customer("carol@vendor.example", order("2025-11-01", "2026-10-31", 5))
    )
    send_daily(
        server, initech, {D("2026-11-20"): 10}, instance="33333333-3333-4333-8333-333333333333"
    )
    # Air-gapped since its order began: 2026Q1 to Q3 owed (Q3 due 2026-10-30), none received.
    server.add_customer("airco", customer("carol@vendor.example", year, air_gapped=True))

    findings = evaluate(server, "2026-11-22")["findings"]
    summary = [(f["kind"], f["customer_id"], f.get("status"), f.get("days_left")) for f in findings]
    assert summary == [
        ("overuse", "hooli", "overdue", -22),
        ("overuse", "acme", "in_window", 28),
        ("telemetry_missing", "globex", None, None),
        ("attestation_overdue", "airco", None, None),
        ("attestation_overdue", "airco", None, None),
        ("attestation_overdue", "airco", None, None),
        ("no_active_subscription", "initech", None, None),
    ]
    by_kind = {f["kind"]: f for f in findings}
    assert by_kind["telemetry_missing"]["last_report_on"] == "2026-11-01"
    owed = [(f["quarter"], f["due_on"]) for f in findings if f["kind"] == "attestation_overdue"]
    assert owed == [  # every missed quarter, oldest first (SPEC §6 v2)
        ("2026Q1", "2026-04-30"),
        ("2026Q2", "2026-07-30"),
        ("2026Q3", "2026-10-30"),
    ]
    assert by_kind["no_active_subscription"]["last_order_end"] == "2026-10-31"
    assert by_kind["no_active_subscription"]["instances"] == 1


def test_a_new_order_has_a_grace_week_before_telemetry_missing(server: RunningServer) -> None:
    document = customer("alice@vendor.example", order("2026-11-16", "2027-11-15", 5))
    server.add_customer("fresh", document)
    assert evaluate(server, "2026-11-22")["findings"] == []  # order active 7 days, not 8
    kinds = [f["kind"] for f in evaluate(server, "2026-11-23")["findings"]]
    assert kinds == ["telemetry_missing"]


def test_findings_of_a_day_never_evaluated_is_404(server: RunningServer) -> None:
    with server.admin() as http:
        response = http.get("/v1/findings", params={"as_of": "2026-01-01"})
    assert_problem(response, 404, "POST /v1/evaluations")


def test_usage_shows_every_metric_with_its_entitlement(server: RunningServer) -> None:
    document = customer("alice@vendor.example", WORKED_EXAMPLE_ORDER)
    document = copy.deepcopy(document)
    document["orders"][0]["entitlements"]["production_instances"] = 1
    key = server.add_customer("acme", document)
    send_daily(server, key, worked_example_usage())
    with server.admin() as http:
        response = http.get(
            "/v1/customers/acme/usage", params={"from": "2026-11-08", "to": "2026-11-13"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        bad = http.get(
            "/v1/customers/acme/usage", params={"from": "2026-11-09", "to": "2026-11-01"}
        )
        missing = http.get(
            "/v1/customers/ghost/usage", params={"from": "2026-11-09", "to": "2026-11-10"}
        )
    assert (body["customer_id"], body["from"], body["to"]) == ("acme", "2026-11-08", "2026-11-13")
    by_day = {d["day"]: d for d in body["days"]}
    assert len(by_day) == 6
    assert by_day["2026-11-08"]["usage"]["users"] == 52
    assert by_day["2026-11-08"]["entitled"]["users"] == 50
    assert by_day["2026-11-09"]["entitled"]["users"] == 60
    assert by_day["2026-11-09"]["usage"]["production_instances"] == 1
    assert by_day["2026-11-09"]["entitled"]["production_instances"] == 1
    assert by_day["2026-11-09"]["entitled"]["tenants"] is None  # unlimited
    assert by_day["2026-11-11"]["usage"]["users"] == 52  # still active two days on
    assert by_day["2026-11-12"]["usage"]["users"] is None  # no active instance: no usage
    assert_problem(bad, 422, "before 'from'")
    assert_problem(missing, 404, "No customer 'ghost'")


def test_evaluate_cli_prints_a_table_and_json(server: RunningServer) -> None:
    key = server.add_customer("acme", customer("alice@vendor.example", WORKED_EXAMPLE_ORDER))
    send_daily(server, key, worked_example_usage())
    args = [
        "evaluate",
        "--as-of",
        "2026-11-08",
        "--server",
        server.url,
        "--ca-cert",
        str(server.ca_cert),
    ]
    env = {"STATREPORT_ADMIN_TOKEN": ADMIN_TOKEN}
    table = CliRunner().invoke(main, args, env=env)
    assert table.exit_code == 0, table.output
    assert "Findings as of 2026-11-08: 1" in table.output
    # Worded as the weekly email and the console word it.
    assert "In regularization window" in table.output
    assert "Peak / entitled 58 / 50; Over by +16.0% material; Since 2026-11-03" in table.output
    assert "Time left 25 days" in table.output
    as_json = CliRunner().invoke(main, [*args, "--json"], env=env)
    assert '"peak_usage": 58' in as_json.output
    with server.admin() as http:
        metrics = http.get("/metrics").text
    assert "statreport_last_evaluation_timestamp_seconds 0.0" not in metrics


def test_days_out_of_range_are_refused_not_a_crash(server: RunningServer) -> None:
    server.add_customer("acme", customer("alice@vendor.example", WORKED_EXAMPLE_ORDER))
    with server.admin() as http:
        ancient = http.get(
            "/v1/customers/acme/usage", params={"from": "0001-01-01", "to": "0001-01-05"}
        )
        far = http.get(
            "/v1/customers/acme/usage", params={"from": "9999-12-01", "to": "9999-12-31"}
        )
        future = http.post("/v1/evaluations", json={"as_of": "2099-01-01"})
        before_2000 = http.post("/v1/evaluations", json={"as_of": "0001-01-01"})
    # The bounds are in the schema's pattern of a day asked about (issue 32, item 13).
    assert_problem(ancient, 422, "query.from", "from 2000-01-01 to 2999-12-31")
    assert_problem(far, 422, "query.to", "from 2000-01-01 to 2999-12-31")
    assert_problem(future, 422, "after today")
    assert_problem(before_2000, 422, "as_of", "from 2000-01-01 to 2999-12-31")


def test_a_production_counting_rule_frees_non_production_use(server: RunningServer) -> None:
    production_only = {
        **order("2026-01-01", "2026-12-31", 5),
        "counting": {"users": "production"},
    }
    for customer_id, terms in (("summed", order("2026-01-01", "2026-12-31", 5)),
                               ("split", production_only)):  # fmt: skip
        key = server.add_customer(customer_id, customer("alice@vendor.example", terms))
        days_of_use = days("2026-11-01", "2026-11-10")
        send_daily(server, key, dict.fromkeys(days_of_use, 35), instance=str(uuid.uuid4()))
        non_production = [
            make_report(
                instance_id=NON_PRODUCTION[customer_id],
                environment="non_production",
                generated_at=f"{day.isoformat()}T12:00:00Z",
                metrics={"users": 25},
            )
            for day in days_of_use
        ]
        with server.client(key) as http:
            assert http.post("/v1/reports", json={"reports": non_production}).status_code == 202
    findings = evaluate(server, "2026-11-10")["findings"]
    over = {
        (f["customer_id"], f["peak_usage"], f["entitled"])
        for f in findings
        if f["kind"] == "overuse"
    }
    assert over == {("summed", 60, 50)}  # 35 + 25 summed; 35 alone under `production`
    with server.admin() as http:
        usage = http.get(
            "/v1/customers/split/usage", params={"from": "2026-11-10", "to": "2026-11-10"}
        ).json()
    (day,) = usage["days"]
    assert (day["usage"]["users"], day["usage"]["non_production_instances"]) == (35, 1)


NON_PRODUCTION = {
    "summed": "8c1f0d4e-3b7a-4c2e-9d61-5a0b7e2f1c01",
    "split": "8c1f0d4e-3b7a-4c2e-9d61-5a0b7e2f1c02",
}


@pytest.mark.parametrize(
    ("since", "owed"),
    [
        ("2026-07-01", ["2026Q3"]),  # the first day of a quarter: that quarter is owed
        ("2026-09-30", ["2026Q3"]),  # its last day too
        ("2026-10-01", []),  # from the next quarter: 2026Q4 is not due yet
    ],
)
def test_air_gapped_since_decides_the_first_quarter_owed(
    server: RunningServer, since: str, owed: list[str]
) -> None:
    document = {
        **customer("carol@vendor.example", order("2026-01-01", "2026-12-31", 5), air_gapped=True),
        "air_gapped_since": since,
    }
    server.add_customer("airco", document)
    findings = evaluate(server, "2026-11-22")["findings"]
    assert [f["quarter"] for f in findings if f["kind"] == "attestation_overdue"] == owed


def _sequenced(instance: str, sequences: list[int]) -> list[dict[str, Any]]:
    return [
        make_report(
            instance_id=instance,
            generated_at=f"2026-11-2{1 + hour // 10}T{hour % 10:02d}:00:00Z",
            sequence=sequence,
        )
        for hour, sequence in enumerate(sequences)
    ]


def test_an_instance_whose_sequence_regresses_twice_is_cloned(server: RunningServer) -> None:
    # SPEC §6 v2: 7, 300, 8, 301, 9 regresses twice (a clone); 7, 8, 9, 4, 5, 6 once (a restore).
    key = server.add_customer(
        "acme", customer("alice@vendor.example", order("2026-01-01", "2026-12-31", 5))
    )
    cloned, restored = (
        "9a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
        "9a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3e",
    )
    reports = _sequenced(cloned, [7, 300, 8, 301, 9]) + _sequenced(restored, [7, 8, 9, 4, 5, 6])
    with server.client(key) as http:
        assert http.post("/v1/reports", json={"reports": reports}).status_code == 202
    findings = evaluate(server, "2026-11-22")["findings"]
    (clone,) = [f for f in findings if f["kind"] == "instance_cloned"]
    assert (clone["instance_id"], clone["regressions"]) == (cloned, 2)
    assert clone["first_regression_at"].startswith("2026-11-21T02:00:00")


def test_the_clone_evidence_shows_the_reports_around_each_regression_marked(
    server: RunningServer,
) -> None:
    """SPEC §11: the reports around each regression, not every report of the week."""
    key = server.add_customer(
        "acme", customer("alice@vendor.example", order("2026-01-01", "2026-12-31", 5))
    )
    cloned = "9a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
    sequences = [1, 2, 3, 4, 5, 6, 7, 300, 8, 301, 9, 10, 11, 12, 13, 14]
    with server.client(key) as http:
        sent = http.post("/v1/reports", json={"reports": _sequenced(cloned, sequences)})
        assert sent.status_code == 202
    findings = evaluate(server, "2026-11-22")["findings"]
    (clone,) = [f for f in findings if f["kind"] == "instance_cloned"]
    with server.admin() as http:
        evidence = http.get(
            f"/v1/findings/{clone['finding_id']}/evidence", params={"as_of": "2026-11-22"}
        ).json()
    shown = [(r["sequence"], r["regression"]) for r in evidence["reports"]]
    # Two before and two after each of the two regressions (8 after 300, 9 after 301).
    assert shown == [
        (7, False),
        (300, False),
        (8, True),
        (301, False),
        (9, True),
        (10, False),
        (11, False),
    ]
    assert all(r["generated_at"].endswith(":00Z") for r in evidence["reports"])


def test_each_evaluation_is_a_run_of_its_own(server: RunningServer) -> None:
    key = server.add_customer("acme", customer("alice@vendor.example", WORKED_EXAMPLE_ORDER))
    send_daily(server, key, worked_example_usage())
    first = evaluate(server, "2026-11-08")
    second = evaluate(server, "2026-11-08")
    assert first["evaluation_id"] != second["evaluation_id"]
    assert (second["rules_version"], second["customers_version"]) == ("3", 2)  # customer, key
    assert second["parameters"] == {
        "activity_days": 3,
        "relapse_days": 7,
        "silence_days": 7,
        "regularization_days": 30,
        "material_pct": 10,
    }
    with server.admin() as http:
        runs = http.get("/v1/evaluations", params={"as_of": "2026-11-08"}).json()
        kept = http.get(f"/v1/evaluations/{first['evaluation_id']}").json()
        newest = http.get("/v1/findings", params={"as_of": "2026-11-08"}).json()
        missing = http.get("/v1/evaluations/ev_nothing_here")
    assert [r["evaluation_id"] for r in runs] == [second["evaluation_id"], first["evaluation_id"]]
    assert runs[0]["findings"] == 1
    assert kept == first  # as it was answered, never overwritten
    assert newest == second
    assert_problem(missing, 404, "GET /v1/evaluations?as_of=")


def test_reports_of_the_same_moment_are_not_compared(server: RunningServer) -> None:
    key = server.add_customer(
        "acme", customer("alice@vendor.example", order("2026-01-01", "2026-12-31", 5))
    )
    instance = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
    moments = [("00", 10), ("00", 5), ("01", 11), ("02", 6), ("03", 12), ("04", 7)]
    reports = [
        make_report(
            instance_id=instance, generated_at=f"2026-11-21T{hour}:00:00Z", sequence=sequence
        )
        for hour, sequence in moments
    ]
    with server.client(key) as http:
        assert http.post("/v1/reports", json={"reports": reports}).status_code == 202
    findings = evaluate(server, "2026-11-22")["findings"]
    (clone,) = [f for f in findings if f["kind"] == "instance_cloned"]
    assert clone["regressions"] == 2  # 11 -> 6 and 12 -> 7; not 10 -> 5 within one moment
