"""POST /v1/reports over real TLS: every status of SPEC §2, idempotency, atomicity, gzip."""

from __future__ import annotations

import gzip
import json
import os
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerFactory
from tests.support import JSON, RunningServer, assert_problem, change, make_report, post, query


def stored_ids(server: RunningServer) -> list[str]:
    server.stop()
    return [str(row[0]) for row in query(server.data_dir, "SELECT report_id FROM reports")]


def test_single_report_is_stored_and_its_resend_is_a_duplicate(
    server: RunningServer, acme_key: str
) -> None:
    moment = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    # 23:xx at UTC-05:00 can be the next UTC day: the day must come from the UTC instant.
    report = make_report(generated_at=moment.astimezone(timezone(timedelta(hours=-5))).isoformat())
    first = post(server, acme_key, report)
    assert first.status_code == 202
    assert first.json() == {
        "stored": 1,
        "duplicates": 0,
        "results": [{"report_id": report["report_id"], "status": "stored"}],
    }
    again = post(server, acme_key, report)
    assert again.status_code == 202
    assert again.json()["results"] == [{"report_id": report["report_id"], "status": "duplicate"}]
    server.stop()
    rows = query(
        server.data_dir,
        "SELECT customer_id, generated_at, usage_day, users, tenants, roles, source FROM reports",
    )
    assert rows == [("acme", moment, moment.date(), 48, 3, None, "phone_home")]


def test_batch_reports_each_outcome_and_counts_in_batch_repeats_once(
    server: RunningServer, acme_key: str
) -> None:
    old = make_report()
    assert post(server, acme_key, old).status_code == 202
    fresh = [make_report() for _ in range(3)]
    response = post(server, acme_key, {"reports": [old, *fresh, fresh[0]]})
    assert response.status_code == 202
    body = response.json()
    assert (body["stored"], body["duplicates"]) == (3, 2)
    assert [r["status"] for r in body["results"]] == [
        "duplicate",
        "stored",
        "stored",
        "stored",
        "duplicate",
    ]
    assert sorted(stored_ids(server)) == sorted(r["report_id"] for r in [old, *fresh])


def test_a_batch_with_one_bad_report_stores_nothing_and_names_it(
    server: RunningServer, acme_key: str
) -> None:
    good = [make_report(), make_report()]
    bad = make_report(metrics={"users": -1})
    response = post(server, acme_key, {"reports": [good[0], bad, good[1]]})
    problem = assert_problem(response, 422, "1 of 3 reports", "reports[1].metrics.users")
    assert problem["errors"] == [
        {"loc": ["reports", 1, "metrics", "users"], "msg": problem["errors"][0]["msg"]}
    ]
    assert "greater than or equal to 0" in problem["errors"][0]["msg"]
    retry = post(server, acme_key, {"reports": good})
    assert retry.json()["stored"] == 2  # nothing of the refused batch had been kept
    assert len(stored_ids(server)) == 2


def test_gzip_bodies_are_accepted(server: RunningServer, acme_key: str) -> None:
    reports = [make_report() for _ in range(20)]
    body = gzip.compress(json.dumps({"reports": reports}).encode())
    response = post(server, acme_key, body, **{"Content-Encoding": "gzip"})
    assert response.status_code == 202
    assert response.json()["stored"] == 20


def test_a_gzip_bomb_is_refused_after_one_mebibyte(server: RunningServer, acme_key: str) -> None:
    # 64 MiB of zeros compresses to about 64 KiB; the server must stop after 1 MiB of output.
    bomb = gzip.compress(b"0" * (64 << 20), compresslevel=9)
    assert len(bomb) < (1 << 20)
    response = post(server, acme_key, bomb, **{"Content-Encoding": "gzip"})
    assert_problem(response, 413, "decompressed body is over the 1024 KiB limit")


def test_corrupt_and_truncated_gzip_is_400(server: RunningServer, acme_key: str) -> None:
    body = gzip.compress(json.dumps(make_report()).encode())
    corrupt = post(server, acme_key, b"\x1f\x8b" + os.urandom(200), **{"Content-Encoding": "gzip"})
    assert_problem(corrupt, 400, "gzip body is corrupt")
    truncated = post(server, acme_key, body[:-12], **{"Content-Encoding": "gzip"})
    assert_problem(truncated, 400, "truncated")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "body is empty"),
        (b"\xff\xfe\x00", "not valid JSON"),
    ],
)
def test_malformed_json_is_400(
    server: RunningServer, acme_key: str, body: bytes, needle: str
) -> None:
    assert_problem(post(server, acme_key, body), 400, needle)


def test_missing_unknown_and_revoked_keys_are_401(server: RunningServer, acme_key: str) -> None:
    report = make_report()
    with server.client() as http:
        missing = http.post("/v1/reports", json=report)
    assert_problem(missing, 401, "Authorization: Bearer")
    assert missing.headers["www-authenticate"] == "Bearer"
    unknown = post(server, "srk_" + "A" * 43, report)
    assert_problem(unknown, 401, "not known")
    assert unknown.headers["www-authenticate"] == "Bearer"

    with server.admin() as http:
        key_id = http.get("/v1/customers/acme").json()["license_keys"][0]["key_id"]
        assert http.delete(f"/v1/license-keys/{key_id}").status_code == 204
    revoked = post(server, acme_key, report)
    assert_problem(revoked, 401, f"{key_id} has been revoked")
    assert stored_ids(server) == []


def test_instance_of_another_customer_is_409_and_nothing_is_stored(
    server: RunningServer, acme_key: str
) -> None:
    globex_key = server.add_customer("globex")
    instance = str(uuid.uuid4())
    assert post(server, acme_key, make_report(instance_id=instance)).status_code == 202
    innocent = make_report()
    response = post(server, globex_key, {"reports": [innocent, make_report(instance_id=instance)]})
    assert_problem(response, 409, instance, "another customer")
    # Its owner may go on reporting.
    assert post(server, acme_key, make_report(instance_id=instance)).status_code == 202
    assert innocent["report_id"] not in stored_ids(server)


def test_two_customers_racing_for_a_new_instance_get_one_owner(
    server: RunningServer, acme_key: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    globex_key = server.add_customer("globex")
    instance = str(uuid.uuid4())
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda key: post(server, key, make_report(instance_id=instance)).status_code,
                [acme_key, globex_key] * 8,
            )
        )
    owners = query_after_stop(server, "SELECT DISTINCT customer_id FROM reports")
    assert len(owners) == 1
    assert sorted(set(answers)) == [202, 409]


def query_after_stop(server: RunningServer, sql: str) -> list[tuple[Any, ...]]:
    server.stop()
    return query(server.data_dir, sql)


def test_body_over_one_mebibyte_is_413(server: RunningServer, acme_key: str) -> None:
    huge = b'{"reports": [' + b" " * (1 << 20) + b"]}"
    assert_problem(post(server, acme_key, huge), 413, "over the 1024 KiB limit")


def test_a_body_streamed_without_length_is_cut_at_one_mebibyte(
    server: RunningServer, acme_key: str
) -> None:
    def chunks() -> Any:
        for _ in range(64):
            yield b" " * 65536

    with server.client(acme_key) as http:
        response = http.post("/v1/reports", content=chunks(), headers=JSON)
    assert_problem(response, 413, "The body is over")


@pytest.mark.parametrize(
    ("headers", "needle"),
    [
        ({"Content-Type": "text/plain"}, "Content-Type is 'text/plain'"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, "application/json"),
        ({**JSON, "Content-Encoding": "br"}, "Content-Encoding 'br'"),
    ],
)
def test_other_media_types_and_encodings_are_415(
    server: RunningServer, acme_key: str, headers: dict[str, str], needle: str
) -> None:
    with server.client(acme_key) as http:
        response = http.post(
            "/v1/reports", content=json.dumps(make_report()).encode(), headers=headers
        )
    assert_problem(response, 415, needle)


def _ts(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("change", "loc", "needle"),
    [
        ({"metrics": {"users": 1, "cpus": 3}}, ["metrics", "cpus"], "unknown metric 'cpus'"),
        ({"metrics": {"tenants": 1}}, ["metrics", "users"], "Field required"),
        ({"metrics": {"users": 10_000_001}}, ["metrics", "users"], "10000000"),
        ({"metrics": {"users": 4.0}}, ["metrics", "users"], "integer"),
        ({"metrics": {"users": "4"}}, ["metrics", "users"], "integer"),
        ({"metrics": {"users": True}}, ["metrics", "users"], "integer"),
        ({"hostname": "db1.acme.internal"}, ["hostname"], "unknown field 'hostname'"),
        ({"schema_version": 2}, ["schema_version"], "1"),
        ({"environment": "staging"}, ["environment"], "production"),
        ({"report_id": "not-a-uuid"}, ["report_id"], "must be a UUID"),
        ({"instance_id": 7}, ["instance_id"], "must be a UUID"),
        ({"generated_at": "2026-11-20T03:17:00"}, ["generated_at"], "with an offset"),
        ({"generated_at": 1763608620}, ["generated_at"], "RFC 3339"),
        ({"generated_at": "2026-11-20"}, ["generated_at"], "RFC 3339"),
        ({"generated_at": "1763608620"}, ["generated_at"], "RFC 3339"),
        ({"generated_at": "2026-11-20T03:17Z"}, ["generated_at"], "RFC 3339"),
        ({"generated_at": "2026-02-30T03:17:00Z"}, ["generated_at"], "on a real day"),
        # Well past the 10 minutes: the value is computed when the tests are collected.
        ({"generated_at": _ts(timedelta(hours=2))}, ["generated_at"], "future"),
        ({"generated_at": _ts(-timedelta(days=401))}, ["generated_at"], "400 days"),
        ({"product_version": "1.1"}, ["product_version"], "MAJOR.MINOR.PATCH"),
        ({"product_version": "1.1.3-" + "x" * 30}, ["product_version"], "32"),
        ({"sequence": -1}, ["sequence"], "greater than or equal to 0"),
        # Version 2: strict scalars, ASCII patterns, UUID versions, no nulls.
        ({"schema_version": True}, ["schema_version"], "integer"),
        ({"schema_version": 1.0}, ["schema_version"], "integer"),
        ({"sequence": None}, ["sequence"], "integer"),
        ({"metrics": {"users": 1, "tenants": None}}, ["metrics", "tenants"], "integer"),
        ({"product_version": "\u0661.1.3"}, ["product_version"], "MAJOR.MINOR.PATCH"),
        (
            {"generated_at": "\u0662026-11-20T03:17:00Z"},
            ["generated_at"],
            "RFC 3339",
        ),
        ({"report_id": "5f0c6a3e-2b1d-11e1-9a57-0d6b2f1c9e11"}, ["report_id"], "version 4"),
        ({"report_id": "00000000-0000-0000-0000-000000000000"}, ["report_id"], "version 4"),
        ({"instance_id": "0b9a4f2c-7d3e-11e8-8f1a-3c2d1e0f9a77"}, ["instance_id"], "MAC"),
        ({"instance_id": "00000000-0000-0000-0000-000000000000"}, ["instance_id"], "version 4"),
    ],
)
def test_schema_violations_are_422_with_the_location(
    server: RunningServer, acme_key: str, change: dict[str, Any], loc: list[Any], needle: str
) -> None:
    response = post(server, acme_key, make_report(**change))
    problem = assert_problem(response, 422, "report is invalid")
    matching = [e for e in problem["errors"] if e["loc"] == loc]
    assert matching, problem["errors"]
    assert needle in matching[0]["msg"]


def test_boundaries_of_the_time_window_and_metric_range_are_accepted(
    server: RunningServer, acme_key: str
) -> None:
    reports = [
        make_report(generated_at=_ts(timedelta(minutes=9))),
        make_report(generated_at=_ts(-timedelta(days=399))),
        make_report(
            generated_at=(datetime.now(UTC) - timedelta(hours=2)).strftime(
                "%Y-%m-%dT%H:%M:%S.123456+05:30"
            )
        ),
        make_report(metrics={"users": 10_000_000, "roles": 0}),
        make_report(product_version="10.2.0-rc.1"),
        {k: v for k, v in make_report().items() if k != "sequence"},
    ]
    response = post(server, acme_key, {"reports": reports})
    assert response.status_code == 202, response.text
    assert response.json()["stored"] == 6


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"reports": []}, "at least 1"),
        ({"reports": [make_report() for _ in range(1001)]}, "at most 1000"),
        ({"reports": [make_report()], "extra": 1}, "unknown field 'extra'"),
        ([make_report()], "JSON object"),
    ],
)
def test_batch_shape_violations_are_422(
    server: RunningServer, acme_key: str, body: Any, needle: str
) -> None:
    problem = assert_problem(post(server, acme_key, body), 422)
    assert needle in problem["detail"]


def test_the_rate_limit_answers_429_with_retry_after(server_factory: ServerFactory) -> None:
    server = server_factory(rate_limit_per_minute=3)
    key = server.add_customer("acme")
    other = server.add_customer("globex")
    statuses = [post(server, key, make_report()).status_code for _ in range(3)]
    assert statuses == [202, 202, 202]
    limited = post(server, key, make_report())
    assert_problem(limited, 429, "more than 3 requests a minute")
    assert 1 <= int(limited.headers["retry-after"]) <= 20
    assert post(server, other, make_report()).status_code == 202  # the limit is per key


@pytest.mark.duckdb_only("closes the DuckDB writer; tests/faults restarts PostgreSQL")
def test_storage_failure_is_503_and_nothing_is_acknowledged(
    server: RunningServer, acme_key: str
) -> None:
    with server.client() as http:
        assert http.get("/readyz").status_code == 200
    # The disk goes away under the writer: its DuckDB connection fails from now on.
    server.app.state.store._writer_con.close()
    response = post(server, acme_key, make_report())
    assert_problem(response, 503, "Storage is failing")
    assert response.headers["retry-after"] == "5"
    with server.client() as http:
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert http.get("/healthz").status_code == 200


def test_overload_is_503_with_retry_after(server_factory: ServerFactory) -> None:
    server = server_factory(max_pending_reports=2)
    key = server.add_customer("acme")
    response = post(server, key, {"reports": [make_report() for _ in range(3)]})
    assert_problem(response, 503, "overloaded")
    assert response.headers["retry-after"] == "5"
    assert post(server, key, {"reports": [make_report(), make_report()]}).status_code == 202


def test_unknown_routes_and_methods_are_problem_json(server: RunningServer) -> None:
    with server.client() as http:
        assert_problem(http.get("/v1/nothing"), 404, "No such endpoint")
        assert_problem(http.get("/v1/reports"), 405, "GET is not allowed")


def test_a_stalled_body_is_408_and_frees_the_connection(server_factory: ServerFactory) -> None:
    import socket

    server = server_factory(body_timeout_seconds=1)
    key = server.add_customer("acme")
    host, port = "127.0.0.1", server.settings.port
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        server.verify().wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(
            b"POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {key}\r\nContent-Length: 500\r\n\r\n".encode()
            + b'{"schema_version": 1'
        )
        answer = b""
        while b"bytes came" not in answer:
            chunk = tls.recv(4096)
            if not chunk:
                break
            answer += chunk
    text = answer.decode()
    assert text.startswith("HTTP/1.1 408"), text
    assert "application/problem+json" in text
    assert "did not arrive within 1 s (20 bytes came)" in text


def test_a_large_batch_mixing_new_instances_and_stored_reports(
    server: RunningServer, acme_key: str
) -> None:
    # Large enough for the Arrow path, with new instances: the write runs in a transaction,
    # meets stored report_ids, and must fall back without leaving that transaction broken.
    first = [make_report() for _ in range(300)]
    assert post(server, acme_key, {"reports": first}).json()["stored"] == 300
    fresh = [make_report() for _ in range(100)]
    response = post(server, acme_key, {"reports": first[:150] + fresh + first[150:]})
    assert response.status_code == 202, response.text
    assert (response.json()["stored"], response.json()["duplicates"]) == (100, 300)
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["duplicate"] * 150 + ["stored"] * 100 + ["duplicate"] * 150
    assert (
        post(server, acme_key, {"reports": [make_report() for _ in range(250)]}).json()["stored"]
        == 250
    )


def _lowercase_time(hours_ago: float = 1) -> str:
    moment = datetime.now(UTC) - timedelta(hours=hours_ago)
    return moment.strftime("%Y-%m-%dt%H:%M:%Sz")


@pytest.mark.parametrize("count", [1, 250])  # Arrow built by the writer, and by the request
def test_a_lowercase_t_and_z_are_stored_as_utc_and_resent_as_duplicates(
    server: RunningServer, acme_key: str, count: int
) -> None:
    reports = [make_report(generated_at=_lowercase_time()) for _ in range(count)]
    body: Any = reports[0] if count == 1 else {"reports": reports}
    first = post(server, acme_key, body)
    assert first.status_code == 202, first.text
    assert first.json()["stored"] == count
    again = post(server, acme_key, body)
    assert again.status_code == 202, again.text
    assert again.json() == {**again.json(), "stored": 0, "duplicates": count}
    expected = datetime.fromisoformat(reports[0]["generated_at"].upper())
    server.stop()
    (stored,) = query(
        server.data_dir,
        "SELECT generated_at FROM reports WHERE report_id = ?",
        [reports[0]["report_id"]],
    )
    assert stored[0] == expected


def test_a_version_7_report_id_and_instance_id_are_accepted(
    server: RunningServer, acme_key: str
) -> None:
    report = make_report(
        report_id="01936f2e-8c4a-7b3d-9e21-4f5a6b7c8d9e",
        instance_id="01936f2e-8c4a-7c3d-ae21-4f5a6b7c8d9f",
    )
    assert post(server, acme_key, report).json()["stored"] == 1


#: A version 1 instance id, as stored before version 2 of the contract refused new ones.
OLD_INSTANCE = "0b9a4f2c-7d3e-11e8-8f1a-3c2d1e0f9a77"


def _serving_a_version_1_instance(
    server_factory: ServerFactory, tmp_path: Path
) -> tuple[RunningServer, str]:
    """A server whose customer ``acme`` has ``OLD_INSTANCE`` from before version 2, and its
    licence key."""
    data_dir = tmp_path / "data"
    first = server_factory(data_dir=data_dir)
    key = first.add_customer("acme")
    first.stop()
    change(
        data_dir,
        "INSERT INTO instances (instance_id, customer_id, first_seen_at) "
        "VALUES (?::UUID, 'acme', now())",
        [OLD_INSTANCE],
    )
    return server_factory(data_dir=data_dir), key


def test_an_instance_stored_before_version_2_keeps_its_version_1_id(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    second, key = _serving_a_version_1_instance(server_factory, tmp_path)
    response = post(second, key, make_report(instance_id=OLD_INSTANCE))
    assert response.status_code == 202, response.text


def test_a_batch_names_every_bad_report_whatever_the_kind_of_error(
    server: RunningServer, acme_key: str
) -> None:
    reports = [
        make_report(),
        make_report(metrics={"users": "many"}),
        make_report(generated_at=_ts(timedelta(days=2))),
    ]
    problem = assert_problem(post(server, acme_key, {"reports": reports}), 422, "2 of 3")
    assert sorted(e["loc"][1] for e in problem["errors"]) == [1, 2]


def test_a_batch_names_a_new_version_1_instance_beside_a_schema_error(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Issue 26, item 10: the schema error alone was named, and the version 1 instance was
    refused only on the resend. An instance known from before version 2 is not named."""
    server, key = _serving_a_version_1_instance(server_factory, tmp_path)
    known = OLD_INSTANCE
    reports = [
        make_report(metrics={"users": "many"}),
        make_report(),
        make_report(instance_id="1b9a4f2c-7d3e-11e8-8f1a-3c2d1e0f9a77"),  # new, version 1
        make_report(instance_id=known),
    ]
    problem = assert_problem(post(server, key, {"reports": reports}), 422, "2 of 4")
    assert [e["loc"] for e in problem["errors"]] == [
        ["reports", 0, "metrics", "users"],
        ["reports", 2, "instance_id"],
    ]
    assert "version 1 would carry the host's MAC address" in problem["errors"][1]["msg"]


def test_a_report_id_stored_under_another_customer_is_a_conflict(
    server: RunningServer, acme_key: str
) -> None:
    other = server.add_customer("globex")
    report = make_report()
    assert post(server, acme_key, report).json()["stored"] == 1
    theirs = make_report(report_id=report["report_id"])
    problem = assert_problem(post(server, other, theirs), 409, report["report_id"])
    assert "another customer" in problem["detail"]
    # In one batch with new reports: nothing of it is stored.
    fresh = make_report()
    assert_problem(post(server, other, {"reports": [fresh, theirs]}), 409)
    assert post(server, other, fresh).json()["stored"] == 1
    # The owner's own resend is still a plain duplicate.
    assert post(server, acme_key, report).json()["duplicates"] == 1
