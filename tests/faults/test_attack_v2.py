"""What broke when version 2 was attacked (issue 32), each reproduced against the real server
and kept fixed. The DST freeze (item 1) is in ``test_calendar.py``."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import re
import ssl
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from core.database import Connection
from core.store import Store
from customers.schemas import CustomerDocument, OrderForm
from ingest.archive import archive_reports
from tests.conftest import ServerFactory
from tests.e2e.test_weekly import run_weekly
from tests.faults.test_archive import RETENTION, TODAY, _aged_data_dir
from tests.support import (
    ADMIN_TOKEN,
    RunningServer,
    assert_problem,
    customer,
    make_report,
    order,
    post,
    spawn_server,
)

YEAR = order("2026-01-01", "2026-12-31", 5)


def _read_head(connection: ssl.SSLSocket) -> bytes:
    """Read until the end of a response head (or the connection's end)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


# --- item 2: an address that stops every weekly email ------------------------------------


@pytest.mark.parametrize("separator", ["\u2028", "\u0085"])
def test_an_address_with_a_line_separator_is_refused_with_the_reason(
    server: RunningServer, separator: str
) -> None:
    document = customer(f"al{separator}ice@vendor.example", YEAR)
    with server.admin() as http:
        response = http.put("/v1/customers/acme", json=document)
    problem = assert_problem(response, 422, "account_manager", "not an email address")
    assert "unsafe characters" in problem["detail"]


def _store_legacy_address(data_dir: Path, customer_id: str, address: str) -> None:
    """Write an address as a version before the strict check could have stored it (the
    server is stopped)."""
    con = duckdb.connect(str(data_dir / "statreport.duckdb"))
    try:
        (document,) = con.execute(
            "SELECT document FROM customers WHERE customer_id = ?", [customer_id]
        ).fetchone() or (None,)
        changed = {**json.loads(document), "account_manager": address}
        con.execute(
            "UPDATE customers SET account_manager = ?, document = ? WHERE customer_id = ?",
            [address, json.dumps(changed), customer_id],
        )
    finally:
        con.close()


@pytest.mark.moment("2026-11-23T08:00:00Z")
def test_a_stored_address_no_email_can_carry_fails_only_its_own_delivery(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = server_factory(data_dir=data_dir)
    first.add_customer("broken", customer("carol@vendor.example", YEAR))
    first.add_customer("fine", customer("dave@vendor.example", YEAR))
    first.stop()
    _store_legacy_address(data_dir, "broken", "car\u2028ol@vendor.example")
    server = server_factory(data_dir=data_dir)

    dry = {d["recipient"]: d for d in run_weekly(server, dry_run=True)["deliveries"]}
    assert dry["dave@vendor.example"]["status"] == "dry_run"
    assert dry["car\u2028ol@vendor.example"]["status"] == "failed"
    assert "correct the account manager's address" in dry["car\u2028ol@vendor.example"]["detail"]

    sent = {d["recipient"]: d["status"] for d in run_weekly(server)["deliveries"]}
    assert sent == {"dave@vendor.example": "sent", "car\u2028ol@vendor.example": "failed"}
    assert len(list((data_dir / "outbox").glob("*.eml"))) == 1
    # The week is complete without it: the hourly catch-up does not re-run it for ever.
    reporter = server.app.state.weekly_reporter
    assert asyncio.run(reporter.week_complete(iso_week="2026-W48")) is True


# --- item 3: order validation that grew with the square of the orders --------------------


def test_order_validation_is_linear_in_the_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 overlapping orders made 6 M rule calls (an 8.9 s PUT that stalled every ack)."""
    calls = 0
    rule = OrderForm.rule

    def counted(self: OrderForm, metric: str) -> str:
        nonlocal calls
        calls += 1
        return rule(self, metric)

    monkeypatch.setattr(OrderForm, "rule", counted)
    orders = [order(f"2026-01-{1 + n % 28:02d}", "2027-12-31", 5) for n in range(1000)]
    for number, each in enumerate(orders):
        each["order_id"] = f"OF-{number}"
    document = CustomerDocument.model_validate(customer("alice@vendor.example", *orders))
    assert len(document.orders) == 1000
    metrics = 8
    assert calls <= 2 * metrics * len(orders), calls  # was about 6,000,000


def test_overlapping_orders_that_count_differently_are_still_named(server: RunningServer) -> None:
    first = order("2026-01-01", "2026-12-31", 5)
    second = {**order("2026-06-01", "2027-05-31", 5), "counting": {"users": "max_instance"}}
    third = order("2026-03-01", "2026-04-30", 5)
    with server.admin() as http:
        response = http.put(
            "/v1/customers/acme", json=customer("alice@vendor.example", first, third, second)
        )
    assert_problem(
        response, 422, "overlap", "OF-2026-06-01", "count users differently", "same counting rule"
    )


# --- item 4: bodies read before the 401 ---------------------------------------------------


def test_an_unauthenticated_body_is_refused_before_it_is_sent(server: RunningServer) -> None:
    """The server answers 401 from the head alone: the 150 MiB body never has to arrive."""
    connection = server.raw_tls()
    try:
        connection.sendall(
            b"PUT /v1/customers/acme HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {150 << 20}\r\n\r\n".encode()
            + b'{"name": "'
        )
        head = _read_head(connection)
    finally:
        connection.close()
    assert head.startswith(b"HTTP/1.1 401"), head[:200]


def test_an_admin_body_over_the_limit_is_413_before_it_is_sent(server: RunningServer) -> None:
    connection = server.raw_tls()
    try:
        connection.sendall(
            b"PUT /v1/customers/acme HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n".encode()
            + f"Content-Length: {150 << 20}\r\n\r\n".encode()
        )
        head = _read_head(connection)
    finally:
        connection.close()
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    assert b"takes at most 4 MiB" in head or b"413" in head


def test_a_streamed_admin_body_is_cut_off_at_the_limit(server: RunningServer) -> None:
    def chunks() -> Any:
        for _ in range(6):
            yield b" " * (1 << 20)

    with server.admin() as http:
        response = http.put(
            "/v1/customers/acme", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert_problem(response, 413, "larger than 4 MiB")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_unauthenticated_large_bodies_do_not_grow_the_server(tmp_path: Path) -> None:
    """Three parallel 150 MiB PUTs without a token grew the server from 251 to 1,904 MiB."""
    process = spawn_server(tmp_path / "data")
    try:
        before = _rss_mib(process.process.pid)
        body = b"x" * (150 << 20)

        def attack() -> None:
            # The server answers 401 and closes; the client may still be sending.
            with (
                httpx.Client(verify=process.server.verify(), timeout=30) as http,
                contextlib.suppress(httpx.TransportError),
            ):
                http.put(f"{process.server.url}/v1/customers/acme", content=body)

        threads = [threading.Thread(target=attack) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        after = _rss_mib(process.process.pid)
        print(f"server RSS {before:.0f} MiB before, {after:.0f} MiB after 3 x 150 MiB")
        assert after - before < 100
    finally:
        process.terminate()


# --- item 5: idle keep-alive connections that lock everyone out ---------------------------


def test_idle_keep_alive_connections_give_way_to_a_new_client(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(max_connections=20)
    idle = []
    try:
        for _ in range(20):
            connection = server.raw_tls()
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _read_head(connection).startswith(b"HTTP/1.1 200")
            idle.append(connection)  # kept alive, and idle from now on
        for _ in range(3):
            with server.client() as http:
                assert http.get("/healthz").status_code == 200
    finally:
        for connection in idle:
            connection.close()


def test_busy_connections_are_not_closed_for_a_new_one(server_factory: ServerFactory) -> None:
    """Only idle connections give way: a head being sent is never cut for a newcomer."""
    server = server_factory(max_connections=5)
    busy = []
    try:
        for _ in range(5):
            connection = server.raw_tls()
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # unfinished
            busy.append(connection)
        time.sleep(0.2)
        with pytest.raises((httpx.TransportError, ssl.SSLError)), server.client() as http:
            http.get("/healthz")
        for connection in busy:  # each can still finish its request
            connection.sendall(b"\r\n")
            assert _read_head(connection).startswith(b"HTTP/1.1 200")
    finally:
        for connection in busy:
            connection.close()


# --- items 6 and 7: backups -----------------------------------------------------------------


def _filler(data_dir: Path, rows: int) -> None:
    """Make a backup take a while: a table of ``rows`` rows beside statreport's (stopped)."""
    con = duckdb.connect(str(data_dir / "statreport.duckdb"))
    try:
        con.execute(
            "CREATE TABLE filler AS SELECT range AS id, uuid() AS u, md5(range::VARCHAR) AS h "
            "FROM range(?)",
            [rows],
        )
    finally:
        con.close()


def _backup_in_thread(server: RunningServer, name: str) -> tuple[threading.Thread, list[Any]]:
    answers: list[Any] = []

    def run() -> None:
        with server.admin() as http, contextlib.suppress(httpx.TransportError):
            answers.append(http.post("/v1/backups", json={"destination": name}))

    thread = threading.Thread(target=run)
    thread.start()
    return thread, answers


def _wait_for(predicate: Any, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.slow
def test_a_backup_killed_midway_leaves_nothing_under_its_name(tmp_path: Path) -> None:
    """It used to leave a valid DuckDB file with no tables under the backup's name, which
    then answered 409 and restored nothing."""
    data_dir, backups = tmp_path / "data", tmp_path / "backups"
    spawn_server(data_dir).terminate()
    _filler(data_dir, 4_000_000)
    process = spawn_server(data_dir, STATREPORT_BACKUP_DIR=str(backups))
    thread, answers = _backup_in_thread(process.server, "nightly.duckdb")
    assert _wait_for(lambda: any(backups.glob(".nightly.duckdb.*.partial")))
    process.kill()  # while the copy is being written: its temporary file exists
    thread.join(timeout=30)
    assert answers == []
    assert not (backups / "nightly.duckdb").exists()

    again = spawn_server(data_dir, STATREPORT_BACKUP_DIR=str(backups))
    try:
        with again.server.admin() as http:
            response = http.post("/v1/backups", json={"destination": "nightly.duckdb"})
            assert response.status_code == 201, response.text
            audit = http.get("/v1/audit-log", params={"target": "backup:nightly.duckdb"}).json()
    finally:
        again.terminate()
    copy = duckdb.connect(str(backups / "nightly.duckdb"), read_only=True)
    try:
        assert copy.execute("SELECT count(*) FROM filler").fetchone() == (4_000_000,)
    finally:
        copy.close()
    assert [(e["action"], e["target"]) for e in audit] == [
        ("database.backup", "backup:nightly.duckdb")
    ]


@pytest.mark.slow
def test_reports_are_acknowledged_while_a_backup_is_being_written(tmp_path: Path) -> None:
    """A backup held the single writer for its whole copy (7.1 s at 3 M reports)."""
    data_dir, backups = tmp_path / "data", tmp_path / "backups"
    spawn_server(data_dir).terminate()
    _filler(data_dir, 4_000_000)
    process = spawn_server(data_dir, STATREPORT_BACKUP_DIR=str(backups))
    try:
        key = process.server.add_customer("acme")
        thread, answers = _backup_in_thread(process.server, "nightly.duckdb")
        assert _wait_for(lambda: any(backups.glob(".nightly.duckdb.*.partial")))
        acknowledged = post(process.server, key, make_report())
        assert acknowledged.status_code == 202
        # The report was committed while the copy was still being written.
        assert any(backups.glob(".nightly.duckdb.*.partial")) or not answers
        thread.join(timeout=60)
        assert answers[0].status_code == 201, answers[0].text
    finally:
        process.terminate()


# --- item 7: the archive held the writer for a whole month ----------------------------------


def test_the_archive_deletes_in_chunks_so_writes_land_between(tmp_path: Path) -> None:
    """A write queued while the archive deletes runs before the month is all gone: the old
    single transaction held it until every report of the month had been deleted."""
    data_dir = tmp_path / "data"
    _aged_data_dir(data_dir)
    store = Store(data_dir / "statreport.duckdb")
    store.open()
    seen: list[int] = []

    def count_left(con: Connection, first: str) -> None:
        row = con.execute(
            "SELECT count(*) FROM reports WHERE date_trunc('month', usage_day) = ?::DATE",
            [first],
        ).fetchone()
        seen.append(int(row[0]) if row else -1)

    async def run() -> None:
        pending: list[asyncio.Task[None]] = []

        def after_write(path: Path) -> None:
            first = f"{path.stem}-01"
            pending.append(
                asyncio.get_running_loop().create_task(
                    store.write(lambda con: count_left(con, first))
                )
            )

        await archive_reports(
            store,
            archive_dir=data_dir / "archive" / "reports",
            today=TODAY,
            retention_days=RETENTION,
            after_write=after_write,
        )
        await asyncio.gather(*pending)

    try:
        asyncio.run(run())
    finally:
        store.close_file()
    assert seen, "no month was archived"
    assert all(left > 0 for left in seen), seen  # each write landed mid-month


# --- items 8 and 9: the weekly CSV, and the recipient as stored -----------------------------


def _message(server: RunningServer, week: str, recipient: str) -> EmailMessage:
    with server.admin() as http:
        response = http.get(f"/v1/weekly-reports/{week}/{recipient}")
    assert response.status_code == 200, response.text
    parsed = message_from_bytes(response.content, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.moment("2026-11-23T08:00:00Z")
def test_no_weekly_csv_cell_runs_as_a_formula(server: RunningServer) -> None:
    server.add_customer("-atk-csv", customer("=1+2@vendor.example", YEAR))
    with server.client(server.keys["-atk-csv"]) as http:
        http.post("/v1/reports", json=make_report(metrics={"users": 500}))
    with server.admin() as http:
        assert http.post("/v1/evaluations", json={"as_of": "2026-11-22"}).status_code == 200
    run_weekly(server)
    message = _message(server, "2026-W48", "=1+2@vendor.example")
    (attachment,) = [
        p for p in message.iter_attachments() if (p.get_filename() or "").endswith(".csv")
    ]
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    assert rows, "the CSV has no finding"
    cells = [cell for row in rows for cell in row.values() if cell]
    assert not [c for c in cells if c[0] in "=+-@\t\r"], cells
    assert "'=1+2@vendor.example" in cells
    assert "'-atk-csv" in cells


@pytest.mark.moment("2026-11-23T08:00:00Z")
def test_a_recipient_is_recorded_as_the_account_manager_is_stored(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """An address the email header rewrites (``a(b)@…`` becomes ``a@…``) was recorded as
    rewritten: the week never completed, and every hour re-ran the report."""
    data_dir = tmp_path / "data"
    first = server_factory(data_dir=data_dir)
    first.add_customer("old", customer("carol@vendor.example", YEAR))
    first.stop()
    legacy = "carol(sales)@vendor.example"
    _store_legacy_address(data_dir, "old", legacy)
    server = server_factory(data_dir=data_dir)
    assert [(d["recipient"], d["status"]) for d in run_weekly(server)["deliveries"]] == [
        (legacy, "sent")
    ]
    assert [d["status"] for d in run_weekly(server)["deliveries"]] == ["skipped"]
    assert _message(server, "2026-W48", legacy)["To"] is not None


# --- item 10: the .eml download of a recipient outside Latin-1 -----------------------------


@pytest.mark.moment("2026-11-23T08:00:00Z")
def test_the_eml_download_names_any_recipient(server: RunningServer) -> None:
    recipient = "jöe@vendör.example"
    server.add_customer("umlaut", customer(recipient, YEAR))
    run_weekly(server)
    with server.client(follow_redirects=False) as http:
        signed_in = http.post("/ui/login", data={"token": ADMIN_TOKEN, "next": "/ui/"})
        assert signed_in.status_code == 303, signed_in.text
        response = http.get(f"/ui/weekly/2026-W48/{recipient}/message.eml")
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert "filename*=UTF-8''2026-W48-j%C3%B6e%40vend%C3%B6r.example.eml" in disposition
    assert 'filename="2026-W48-j_e@vend_r.example.eml"' in disposition


# --- item 11: the API documentation in a frame ----------------------------------------------


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_documentation_cannot_be_framed(server: RunningServer, path: str) -> None:
    with server.client() as http:
        response = http.get(path)
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


# --- item 12: one header larger than the head's limit ----------------------------------------


def test_a_single_header_over_64_kib_is_431(server: RunningServer) -> None:
    with server.client() as http:
        response = http.get("/healthz", headers={"X-Big": "a" * 100_000})
    assert response.status_code == 431
    assert response.json()["detail"] == "The request head is larger than 65536 bytes."
    with server.client() as http:  # a large but allowed header still passes
        assert http.get("/healthz", headers={"X-Big": "a" * 60_000}).status_code == 200


# --- item 13: requests the schema allowed, refused with 422 ---------------------------------


def test_the_bounds_of_a_day_asked_about_are_in_the_schema(server: RunningServer) -> None:
    """``from=1000-01-01`` was schema-valid and refused by a 2000-2999 bound nobody stated."""
    with server.client() as http:
        document = http.get("/openapi.json").json()
    usage = document["paths"]["/v1/customers/{customer_id}/usage"]["get"]
    (from_,) = [p for p in usage["parameters"] if p["name"] == "from"]
    pattern = re.compile(from_["schema"]["pattern"])
    assert pattern.fullmatch("2026-11-01")
    assert not pattern.fullmatch("1000-01-01")
    assert not pattern.fullmatch("3000-01-01")
    evaluation = document["components"]["schemas"]["EvaluationRequest"]["properties"]["as_of"]
    assert evaluation["anyOf"][0]["pattern"] == from_["schema"]["pattern"]

    server.add_customer("acme")
    with server.admin() as http:
        response = http.get(
            "/v1/customers/acme/usage", params={"from": "1000-01-01", "to": "1000-01-31"}
        )
    assert_problem(response, 422, "from", "2000-01-01 to 2999-12-31")
