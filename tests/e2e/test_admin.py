"""The admin API over real TLS: customers, order forms, licence keys, audit log, separation."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from statreport.cli import main
from tests import clock
from tests.conftest import ServerFactory
from tests.support import (
    ACME,
    ADMIN_TOKEN,
    RunningServer,
    assert_problem,
    make_report,
    post,
    query,
    stored_bytes,
)

#: Its dates are literal (a calendar of late 2026): it runs on the day they were written for.
pytestmark = pytest.mark.moment(clock.WRITTEN_ON)


def test_put_stores_the_document_and_get_returns_it(server: RunningServer) -> None:
    with server.admin() as http:
        created = http.put("/v1/customers/acme", json=ACME)
        assert created.status_code == 200
        body = created.json()
        assert body["customer_id"] == "acme"
        assert body["orders"] == ACME["orders"]
        fetched = http.get("/v1/customers/acme").json()
        assert fetched["orders"] == ACME["orders"]
        assert fetched["license_keys"] == []
        listed = http.get("/v1/customers").json()
        assert [c["customer_id"] for c in listed] == ["acme"]


def test_an_upsert_replaces_every_order_form(server: RunningServer) -> None:
    renewal = copy.deepcopy(ACME)
    renewal["orders"] = [
        {
            "order_id": "OF-2027-001",
            "start": "2027-01-01",
            "end": "2027-12-31",
            "entitlements": {"user_packs": 8, "users_per_pack": 10},
        }
    ]
    with server.admin() as http:
        first = http.put("/v1/customers/acme", json=ACME).json()
        second = http.put("/v1/customers/acme", json=renewal).json()
    assert second["created_at"] == first["created_at"]
    assert [o["order_id"] for o in second["orders"]] == ["OF-2027-001"]
    server.stop()
    rows = query(
        server.data_dir,
        "SELECT order_id, addon_id, item, quantity FROM entitlements ORDER BY 1, 2, 3, 4",
    )
    assert rows == [("OF-2027-001", "", "user_packs", 8)]


def _with_order(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(ACME)
    document["orders"][0].update(changes)
    return document


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        (_with_order(start="2026-12-31", end="2026-01-01"), "ends (2026-01-01) before it starts"),
        (_with_order(entitlements={"users": 50}), "unknown field 'users'"),
        (_with_order(entitlements={"cpus": 4}), "unknown field 'cpus'"),
        (_with_order(entitlements={"tenants": -1}), "greater than or equal to 0"),
        (_with_order(entitlements={"user_packs": 5}), "sets no users_per_pack"),
        (_with_order(order_id="bad id!"), "pattern"),
        (
            _with_order(addons=[{"addon_id": "A", "effective": "2027-02-01", "entitlements": {}}]),
            "outside its order's term",
        ),
        ({**ACME, "account_manager": "not-an-email"}, "account_manager"),
        ({**ACME, "orders": [ACME["orders"][0], ACME["orders"][0]]}, "same order_id"),
    ],
)
def test_invalid_customer_documents_are_422(
    server: RunningServer, document: dict[str, Any], needle: str
) -> None:
    with server.admin() as http:
        response = http.put("/v1/customers/acme", json=document)
    assert_problem(response, 422, needle)
    with server.admin() as http:
        assert http.get("/v1/customers").json() == []


def test_a_bad_customer_id_is_422(server: RunningServer) -> None:
    with server.admin() as http:
        response = http.put("/v1/customers/" + "x" * 65, json=ACME)
        assert_problem(response, 422, "customer_id")
        assert_problem(http.put("/v1/customers/a%20b", json=ACME), 422, "pattern")


def test_licence_keys_are_random_shown_once_and_stored_hashed(server: RunningServer) -> None:
    key = server.add_customer("acme")
    assert re.fullmatch(r"srk_[A-Za-z0-9_-]{43}", key)  # 32 random bytes = 256 bits
    other = server.add_customer("globex")
    assert other != key
    with server.admin() as http:
        shown = http.get("/v1/customers/acme").json()["license_keys"]
        assert post(server, key, make_report()).status_code == 202
        used = http.get("/v1/customers/acme").json()["license_keys"]
    assert len(shown) == 1
    assert set(shown[0]) == {"key_id", "created_at", "revoked_at", "last_used_at"}
    assert shown[0]["last_used_at"] is None
    assert used[0]["last_used_at"] is not None
    server.stop()  # at shutdown, when keys were last used is written
    assert query(
        server.data_dir, "SELECT count(*) FROM license_keys WHERE last_used_at IS NOT NULL"
    ) == [(1,)]
    raw = stored_bytes(server.data_dir)
    assert key.encode() not in raw
    assert ADMIN_TOKEN.encode() not in raw
    hashes = query(server.data_dir, "SELECT key_hash FROM license_keys ORDER BY created_at")
    assert all(re.fullmatch(r"[0-9a-f]{64}", h[0]) for h in hashes)


def test_keys_for_unknown_customers_and_unknown_revocations_are_404(
    server: RunningServer,
) -> None:
    with server.admin() as http:
        assert_problem(http.post("/v1/customers/ghost/license-keys"), 404, "No customer 'ghost'")
        assert_problem(http.delete("/v1/license-keys/key_nope"), 404, "No licence key")
        assert_problem(http.get("/v1/customers/ghost"), 404, "No customer")


def test_revocation_is_immediate_and_other_keys_keep_working(server: RunningServer) -> None:
    first = server.add_customer("acme")
    with server.admin() as http:
        second = http.post("/v1/customers/acme/license-keys").json()
        keys = http.get("/v1/customers/acme").json()["license_keys"]
        first_id = next(k["key_id"] for k in keys if k["key_id"] != second["key_id"])
        assert http.delete(f"/v1/license-keys/{first_id}").status_code == 204
        assert http.delete(f"/v1/license-keys/{first_id}").status_code == 204  # idempotent
    assert post(server, first, make_report()).status_code == 401
    assert post(server, second["license_key"], make_report()).status_code == 202


def test_admin_token_and_licence_keys_never_work_as_each_other(
    server: RunningServer, acme_key: str
) -> None:
    with server.client(acme_key) as http:
        response = http.get("/v1/customers")
        assert_problem(response, 401, "licence key cannot be used on admin endpoints")
        assert_problem(http.put("/v1/customers/evil", json=ACME), 401)
        assert_problem(http.get("/metrics"), 401)
    assert_problem(post(server, ADMIN_TOKEN, make_report()), 401, "staff token cannot send")
    with server.client("wrong-token") as http:
        assert_problem(http.get("/v1/customers"), 401, "not known or has been revoked")
    with server.client() as http:
        missing = http.get("/v1/customers")
        assert_problem(missing, 401, "Authorization: Bearer <token>")
        assert missing.headers["www-authenticate"] == "Bearer"


def test_every_admin_change_is_audited_with_before_and_after(server: RunningServer) -> None:
    server.add_customer("acme")
    changed = copy.deepcopy(ACME)
    changed["name"] = "ACME Corporation"
    with server.client(ADMIN_TOKEN, headers={"X-Statreport-Actor": "carol"}) as http:
        http.put("/v1/customers/acme", json=changed)
        key_id = http.get("/v1/customers/acme").json()["license_keys"][0]["key_id"]
        http.delete(f"/v1/license-keys/{key_id}")
        entries = http.get("/v1/audit-log").json()
    actions = [(e["action"], e["actor"], e["on_behalf_of"]) for e in entries]
    assert actions == [  # the token's name; the header only adds whom it acted for
        ("license_key.revoke", "root", "carol"),
        ("customer.update", "root", "carol"),
        ("license_key.create", "root", None),
        ("customer.create", "root", None),
    ]
    update = entries[1]
    assert update["before"]["name"] == "ACME Corp"
    assert update["after"]["name"] == "ACME Corporation"
    assert entries[0]["before"]["revoked_at"] is None
    assert entries[0]["after"]["revoked_at"] is not None
    assert "license_key" not in str(entries[2]["after"]).replace("license_key:", "")


def test_health_readiness_and_metrics(server_factory: ServerFactory) -> None:
    server = server_factory()
    key = server.add_customer("acme")
    report = make_report()
    post(server, key, report)
    post(server, key, report)
    with server.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json() == {"status": "ready"}
        assert_problem(http.get("/metrics"), 401)
    with server.admin() as http:
        text = http.get("/metrics").text
    assert "statreport_reports_stored_total 1.0" in text
    assert "statreport_reports_duplicate_total 1.0" in text
    requests = 'statreport_http_requests_total{method="POST",route="/v1/reports",status="202"} 2.0'
    assert requests in text
    assert "statreport_commit_seconds_count" in text
    assert "statreport_commit_batch_reports_bucket" in text
    assert "statreport_last_evaluation_timestamp_seconds" in text
    public = server_factory(metrics_public=True)
    with public.client() as http:
        assert http.get("/metrics").status_code == 200


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``statreport serve`` in a bare environment plus ``env``, until it exits."""
    return subprocess.run(
        [sys.executable, "-m", "statreport", "serve", "--data-dir", str(tmp_path / "d")],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_refuses_to_start_without_an_admin_token(tmp_path: Path) -> None:
    result = _serve(tmp_path)
    assert result.returncode == 2
    assert "STATREPORT_ADMIN_TOKEN is not set" in result.stderr


def test_serve_names_each_refused_setting_and_never_echoes_a_value(tmp_path: Path) -> None:
    secret = "s3cret-smtp-password"
    result = _serve(
        tmp_path,
        STATREPORT_ADMIN_TOKEN="t" * 32,
        STATREPORT_CONSOLE_URL="statreport.vendor.example",
        STATREPORT_SMTP_PORT=secret,  # a value in the wrong place must not be printed
    )
    assert result.returncode == 2
    # Set under its old name, it is named by its new one, which says the old one is read.
    assert "STATREPORT_PUBLIC_URL: String should match pattern" in result.stderr
    assert "old name, `STATREPORT_CONSOLE_URL`" in result.stderr
    assert "for example `https://statreport.vendor.example`" in result.stderr
    assert "STATREPORT_SMTP_PORT: Input should be a valid integer" in result.stderr
    assert secret not in result.stderr


def test_plain_http_only_when_asked(server_factory: ServerFactory) -> None:
    tls = server_factory()
    assert tls.url.startswith("https://")
    plain = server_factory(insecure_http=True)
    import httpx

    assert httpx.get(plain.url + "/healthz").status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(tls.url.replace("https://", "http://") + "/healthz")


@pytest.mark.parametrize("raw", ["%2e%2e", "%2e", "..."])
def test_dot_ids_are_refused_but_other_dotted_ids_are_fine(server: RunningServer, raw: str) -> None:
    with server.admin() as http:
        response = http.put(f"/v1/customers/{raw}", json=ACME)
        listed = [c["customer_id"] for c in http.get("/v1/customers").json()]
    if raw == "...":
        assert response.status_code == 200, response.text
        assert listed == ["..."]
    else:
        assert_problem(response, 422)
        assert listed == []


def test_the_audit_log_takes_a_bare_id_for_its_target(server: RunningServer) -> None:
    server.add_customer("acme")
    server.add_customer("acme2")
    with server.admin() as http:
        bare = http.get("/v1/audit-log", params={"target": "acme"}).json()
        full = http.get("/v1/audit-log", params={"target": "customer:acme"}).json()
    assert [e["target"] for e in bare] == ["customer:acme"]
    assert bare == full


def _order(order_id: str, start: str, end: str, counting: dict[str, str]) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "start": start,
        "end": end,
        "entitlements": {"user_packs": 5, "users_per_pack": 10},
        "counting": counting,
    }


def test_what_get_answers_can_be_put_back(server: RunningServer) -> None:
    server.add_customer("acme")
    with server.admin() as http:
        answered = http.get("/v1/customers/acme").json()
        assert answered["license_keys"]  # read-only fields are in the answer...
        edited = {**answered, "name": "ACME Corporation"}
        again = http.put("/v1/customers/acme", json=edited)  # ...and set aside on the way back
        assert again.status_code == 200, again.text
        assert http.get("/v1/customers/acme").json()["name"] == "ACME Corporation"
        (entry, *_) = http.get("/v1/audit-log", params={"target": "acme"}).json()
    assert "license_keys" not in entry["after"]


def test_overlapping_orders_must_count_alike(server: RunningServer) -> None:
    disagreeing = {
        **ACME,
        "orders": [
            _order("OF-1", "2026-01-01", "2026-06-30", {"users": "production"}),
            _order("OF-2", "2026-06-01", "2026-12-31", {}),
        ],
    }
    back_to_back = {
        **ACME,
        "orders": [
            _order("OF-1", "2026-01-01", "2026-06-30", {"users": "production"}),
            _order("OF-2", "2026-07-01", "2026-12-31", {"users": "max_instance"}),
        ],
    }
    with server.admin() as http:
        refused = http.put("/v1/customers/acme", json=disagreeing)
        accepted = http.put("/v1/customers/acme", json=back_to_back)
        unknown = http.put(
            "/v1/customers/acme",
            json={**ACME, "orders": [_order("OF-1", "2026-01-01", "2026-06-30", {"users": "avg"})]},
        )
    assert_problem(refused, 422, "orders OF-1 and OF-2 overlap", "count users differently")
    assert accepted.status_code == 200, accepted.text
    assert [o["counting"] for o in accepted.json()["orders"]] == [
        {"users": "production"},
        {"users": "max_instance"},
    ]
    assert_problem(unknown, 422)


def test_customers_show_prints_the_editable_document(server: RunningServer) -> None:
    server.add_customer("acme", {**ACME, "air_gapped": True, "air_gapped_since": "2026-04-01"})
    result = CliRunner().invoke(
        main,
        ["customers", "show", "acme", "--server", server.url, "--ca-cert", str(server.ca_cert)],
        env={"STATREPORT_ADMIN_TOKEN": ADMIN_TOKEN},
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["air_gapped_since"] == "2026-04-01"
    assert not {"customer_id", "created_at", "updated_at", "license_keys"} & set(document)
    with server.admin() as http:
        assert http.put("/v1/customers/acme", json=document).status_code == 200
