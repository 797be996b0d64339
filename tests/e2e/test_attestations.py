"""Offline attestations (SPEC §4), with bundles signed here from the SPEC's definition."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from click.testing import CliRunner

from core.quarters import quarter_of
from ingest.attestation import build_bundle
from statreport.cli import main
from tests import clock
from tests.support import (
    RunningServer,
    assert_problem,
    customer,
    days,
    evaluate,
    make_report,
    order,
    query,
    send_daily,
)

#: Its dates are literal (a calendar of late 2026): it runs on the day they were written for.
pytestmark = pytest.mark.moment(clock.WRITTEN_ON)

YEAR = order("2026-01-01", "2026-12-31", 5)


def spec_sign(bundle: dict[str, Any], key: str) -> str:
    """SPEC §4, written out independently of the product's code."""
    message = json.dumps(
        {k: v for k, v in bundle.items() if k != "signature"},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    return "hmac-sha256=" + hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def quarter_reports(
    first: str, last: str, users: int = 40, instance: str | None = None
) -> list[dict[str, Any]]:
    instance = instance or str(uuid.uuid4())
    return [
        make_report(
            instance_id=instance,
            generated_at=f"{day.isoformat()}T08:30:00+02:00",
            metrics={"users": users},
        )
        for day in days(first, last)
    ]


def bundle_of(
    reports: list[dict[str, Any]], key: str, quarter: str = "2026Q3", **changes: Any
) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "schema_version": 1,
        "kind": "statreport.attestation",
        "quarter": quarter,
        "reports": reports,
        "certification": {
            "officer_name": "Jane Roe",
            "officer_title": "CFO",
            "certified_on": "2026-10-05",
            "statement": "I certify that these figures are complete and accurate. " * 10,
        },
    }
    bundle.update(changes)
    bundle["signature"] = spec_sign(bundle, key)
    return bundle


def upload(server: RunningServer, key: str, bundle: dict[str, Any] | bytes) -> Any:
    content = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
    with server.client(key) as http:
        return http.post(
            "/v1/attestations", content=content, headers={"Content-Type": "application/json"}
        )


def test_a_valid_bundle_is_stored_and_a_resend_is_only_duplicates(
    server: RunningServer, tmp_path: Path
) -> None:
    key = server.add_customer("airco", customer("carol@vendor.example", YEAR, air_gapped=True))
    bundle = bundle_of(quarter_reports("2026-07-01", "2026-09-30"), key)
    first = upload(server, key, bundle)
    assert first.status_code == 202, first.text
    assert (first.json()["stored"], first.json()["duplicates"]) == (92, 0)
    again = upload(server, key, bundle)
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 92)

    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    result = CliRunner().invoke(main, ["attest", "verify", str(path), "--license-key", key])
    assert result.exit_code == 0, result.output
    assert "valid attestation for 2026Q3" in result.output
    assert "reports:    92" in result.output
    assert "days:       2026-07-01 to 2026-09-30" in result.output
    assert "Jane Roe, CFO" in result.output


def test_a_tampered_metric_breaks_the_signature(server: RunningServer) -> None:
    key = server.add_customer("airco", customer("carol@vendor.example", YEAR, air_gapped=True))
    bundle = bundle_of(quarter_reports("2026-07-01", "2026-07-31", users=90), key)
    bundle["reports"][3]["metrics"]["users"] = 9  # lowered after signing
    assert_problem(upload(server, key, bundle), 422, "signature does not match")


def test_a_report_outside_the_quarter_is_named(server: RunningServer) -> None:
    key = server.add_customer("airco", customer("carol@vendor.example", YEAR, air_gapped=True))
    reports = quarter_reports("2026-09-29", "2026-10-01")
    problem = assert_problem(upload(server, key, bundle_of(reports, key)), 422, "outside 2026Q3")
    assert problem["detail"].startswith("1 report of the bundle is invalid, so nothing was stored")
    assert problem["errors"] == [
        {
            "loc": ["reports", 2, "generated_at"],
            "msg": "2026-10-01 (UTC) is outside 2026Q3 (2026-07-01 to 2026-09-30)",
        }
    ]


def test_a_bundle_signed_with_another_key_is_refused(server: RunningServer, tmp_path: Path) -> None:
    key = server.add_customer("airco", customer("carol@vendor.example", YEAR, air_gapped=True))
    with server.admin() as http:
        other = http.post("/v1/customers/airco/license-keys").json()["license_key"]
    bundle = bundle_of(quarter_reports("2026-07-01", "2026-07-10"), other)
    assert_problem(upload(server, key, bundle), 422, "signed with another licence key")
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    result = CliRunner().invoke(main, ["attest", "verify", str(path), "--license-key", key])
    assert result.exit_code == 1
    assert "signature does not match" in result.output


def test_a_bundle_over_sixteen_mebibytes_is_413(server: RunningServer) -> None:
    key = server.add_customer("airco", customer("carol@vendor.example", YEAR, air_gapped=True))
    huge = b'{"reports": [' + b" " * (16 << 20) + b"]}"
    assert_problem(upload(server, key, huge), 413, "16384 KiB")


def test_the_overdue_attestation_appears_after_due_on_and_clears_on_upload(
    server: RunningServer,
) -> None:
    since_july = order("2026-07-01", "2027-06-30", 5)  # Q2 had no order: nothing due for it
    key = server.add_customer(
        "airco", customer("carol@vendor.example", since_july, air_gapped=True)
    )
    assert evaluate(server, "2026-10-30")["findings"] == []  # due on 10-30: not yet overdue
    (finding,) = evaluate(server, "2026-10-31")["findings"]
    assert (finding["kind"], finding["quarter"], finding["due_on"]) == (
        "attestation_overdue",
        "2026Q3",
        "2026-10-30",
    )
    assert (
        upload(server, key, bundle_of(quarter_reports("2026-07-01", "2026-09-30"), key)).status_code
        == 202
    )
    assert evaluate(server, "2026-10-31")["findings"] == []


def test_attested_reports_count_exactly_like_phoned_home_ones(server: RunningServer) -> None:
    usage = dict.fromkeys(days("2026-07-01", "2026-09-19"), 40)  # then silent
    usage.update(dict.fromkeys(days("2026-09-10", "2026-09-14"), 57))
    online = server.add_customer("online", customer("carol@vendor.example", YEAR))
    send_daily(server, online, usage, instance=str(uuid.uuid4()))
    offline = server.add_customer(
        "offline", customer("carol@vendor.example", YEAR, air_gapped=True)
    )
    reports = [
        make_report(
            instance_id="44444444-4444-4444-8444-444444444444",
            generated_at=f"{day.isoformat()}T12:00:00Z",
            metrics={"users": value},
        )
        for day, value in usage.items()
    ]
    assert upload(server, offline, bundle_of(reports, offline)).status_code == 202
    findings = evaluate(server, "2026-09-18")["findings"]
    overuse = {f["customer_id"]: f for f in findings if f["kind"] == "overuse"}
    assert set(overuse) == {"online", "offline"}
    online_finding = {
        k: v for k, v in overuse["online"].items() if k not in ("customer_id", "finding_id")
    }
    offline_finding = {
        k: v for k, v in overuse["offline"].items() if k not in ("customer_id", "finding_id")
    }
    assert online_finding == offline_finding
    assert overuse["offline"]["peak_usage"] == 57
    with server.admin() as http:
        for name in ("online", "offline"):
            response = http.get(
                f"/v1/customers/{name}/usage", params={"from": "2026-09-08", "to": "2026-09-16"}
            )
            assert [d["usage"]["users"] for d in response.json()["days"]] == [
                40,
                40,
                57,
                57,
                57,
                57,
                57,
                40,
                40,
            ]


def test_export_builds_a_bundle_that_the_spec_signature_accepts(
    server: RunningServer, tmp_path: Path
) -> None:
    key = server.add_customer("airco", customer("carol@vendor.example", YEAR, air_gapped=True))
    # Two days fall in Q2; August and September have one report each.
    reports = quarter_reports("2026-06-29", "2026-07-03")
    reports += quarter_reports("2026-08-15", "2026-08-15") + quarter_reports(
        "2026-09-30", "2026-09-30"
    )
    source = tmp_path / "reports.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in reports) + "\n")
    target = tmp_path / "bundle.json"
    result = CliRunner().invoke(
        main,
        [
            "attest",
            "export",
            "--quarter",
            "2026Q3",
            "--reports",
            str(source),
            "--officer-name",
            "Jane Roe",
            "--officer-title",
            "CFO",
            "--certified-on",
            "2026-10-05",
            "--output",
            str(target),
        ],
        env={"STATREPORT_LICENSE_KEY": key},
    )
    assert result.exit_code == 0, result.output
    bundle = json.loads(target.read_text())
    assert len(bundle["reports"]) == 5
    assert bundle["signature"] == spec_sign(bundle, key)
    assert upload(server, key, bundle).json()["stored"] == 5
    assert bundle["certification"]["certified_on"] == "2026-10-05"


@pytest.mark.parametrize("path", ["/v1/attestations", "/v1/reports"])
def test_deeply_nested_json_is_a_400_on_both_routes(server: RunningServer, path: str) -> None:
    key = server.add_customer("airco", customer("carol@vendor.example", YEAR, air_gapped=True))
    body = b'{"reports": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    with server.client(key) as http:
        response = http.post(path, content=body, headers={"Content-Type": "application/json"})
    problem = assert_problem(response, 400, "not valid JSON")
    assert "recursion" in problem["detail"]


def test_attest_upload_sends_a_bundle_and_a_resend_is_harmless(
    server: RunningServer, tmp_path: Path
) -> None:
    key = server.add_customer("airco", customer("carol@vendor.example", YEAR, air_gapped=True))
    bundle = build_bundle(
        quarter="2026Q3",
        reports=quarter_reports("2026-07-01", "2026-09-30"),
        certification={
            "officer_name": "Jane Roe",
            "officer_title": "CFO",
            "certified_on": "2026-10-05",
            "statement": "I certify that these figures are complete and accurate.",
        },
        license_key=key,
    )
    path = tmp_path / "attestation-2026Q3.json"
    path.write_text(json.dumps(bundle))
    env = {"STATREPORT_LICENSE_KEY": key, "STATREPORT_CA_CERT": str(server.ca_cert)}
    args = ["attest", "upload", str(path), "--server", server.url]
    first = CliRunner().invoke(main, args, env=env)
    assert first.exit_code == 0, first.output
    assert f"{len(bundle['reports'])} reports stored, 0 already there" in first.output
    again = CliRunner().invoke(main, args, env=env)
    assert again.exit_code == 0, again.output
    assert f"0 reports stored, {len(bundle['reports'])} already there" in again.output
    bundle["certification"]["officer_name"] = "Someone Else"  # tampered after signing
    path.write_text(json.dumps(bundle))
    refused = CliRunner().invoke(main, args, env=env)
    assert refused.exit_code == 1
    assert "signature does not match" in refused.output


def _certified(on: str) -> dict[str, str]:
    return {
        "officer_name": "Jane Roe",
        "officer_title": "CFO",
        "certified_on": on,
        "statement": "I certify that these figures are complete and accurate.",
    }


def test_a_bundle_must_cover_every_month_its_orders_owe(
    server: RunningServer, tmp_path: Path
) -> None:
    key = server.add_customer("airco", customer("carol@vendor.example", YEAR, air_gapped=True))
    july_and_september = quarter_reports("2026-07-01", "2026-07-31") + quarter_reports(
        "2026-09-01", "2026-09-30"
    )
    bundle = bundle_of(july_and_september, key)
    assert_problem(upload(server, key, bundle), 422, "no report from August 2026")
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    result = CliRunner().invoke(main, ["attest", "verify", str(path), "--license-key", key])
    assert result.exit_code == 1
    assert "no report from August 2026" in result.output
    # A month no order covers owes nothing: an order from September on needs September only.
    late = server.add_customer(
        "late",
        customer("carol@vendor.example", order("2026-09-01", "2027-08-31", 5), air_gapped=True),
    )
    september = bundle_of(quarter_reports("2026-09-01", "2026-09-30"), late)
    assert upload(server, late, september).status_code == 202


def test_a_quarter_is_attested_once_over_and_certified_after_its_end(
    server: RunningServer,
) -> None:
    key = server.add_customer("airco", customer("carol@vendor.example", YEAR, air_gapped=True))
    whole = quarter_reports("2026-07-01", "2026-09-30")
    early = bundle_of(whole, key, certification=_certified("2026-09-29"))
    future = bundle_of(whole, key, certification=_certified("2099-01-01"))
    # The quarter today is in, whatever today is: it has not ended.
    now = datetime.now(UTC)
    this_quarter = quarter_of(now.date())
    report = make_report(generated_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    current = bundle_of([report], key, quarter=this_quarter)
    assert_problem(
        upload(server, key, early), 422, "certified_on 2026-09-29 must lie from 2026-09-30"
    )
    assert_problem(upload(server, key, future), 422, "certified_on 2099-01-01")
    assert_problem(upload(server, key, current), 422, f"{this_quarter} has not ended yet")
    server.stop()
    assert query(server.data_dir, "SELECT count(*) FROM reports") == [(0,)]


@pytest.mark.moment("2026-10-10T12:00:00Z")
def test_the_listing_keeps_when_each_quarter_first_arrived_and_whether_it_was_late(
    server: RunningServer, moment: time_machine.Traveller
) -> None:
    """SPEC §4 v3: a resent bundle used to overwrite received_at (INSERT OR REPLACE)."""
    key = server.add_customer("airco", customer("carol@vendor.example", YEAR, air_gapped=True))
    on_time = bundle_of(quarter_reports("2026-07-01", "2026-09-30"), key)
    assert upload(server, key, on_time).status_code == 202
    moment.move_to("2026-12-06T12:00:00Z")
    assert upload(server, key, on_time).status_code == 202  # sent again, after due_on
    with server.admin() as http:
        (listed,) = http.get("/v1/customers/airco/attestations").json()
        missing = http.get("/v1/customers/nobody/attestations")
    assert listed["quarter"] == "2026Q3"
    assert listed["received_at"].startswith("2026-10-10T12:00")
    assert (listed["due_on"], listed["late"]) == ("2026-10-30", False)
    assert (listed["reports"], listed["officer_name"]) == (92, "Jane Roe")
    assert_problem(missing, 404, "No customer 'nobody'")


@pytest.mark.moment("2026-11-02T09:00:00Z")
def test_an_attestation_first_stored_after_its_due_day_is_late(server: RunningServer) -> None:
    key = server.add_customer("airco", customer("carol@vendor.example", YEAR, air_gapped=True))
    assert (
        upload(server, key, bundle_of(quarter_reports("2026-07-01", "2026-09-30"), key)).status_code
        == 202
    )
    with server.admin() as http:
        (listed,) = http.get("/v1/customers/airco/attestations").json()
    assert (listed["due_on"], listed["late"]) == ("2026-10-30", True)
