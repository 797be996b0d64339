"""The weekly report against a real SMTP server (aiosmtpd), over the real server and API."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import time_machine

from statreport.server import free_port
from tests.conftest import ServerFactory
from tests.smtp import PASSWORD, USER, Recorder, start_smtp
from tests.support import (
    ADMIN_TOKEN,
    D,
    RunningServer,
    change,
    customer,
    days,
    order,
    send_daily,
)

CC = "licensing-ops@vendor.example"
YEAR = order("2026-01-01", "2026-12-31", 5)


def populate(server: RunningServer) -> None:
    """alice: one account in the window; bob: one overdue, one silent; carol: all clear."""
    acme = server.add_customer("acme", customer("alice@vendor.example", YEAR))
    usage = dict.fromkeys(days("2026-11-01", "2026-11-22"), 40)
    usage.update(dict.fromkeys(days("2026-11-20", "2026-11-22"), 54))
    send_daily(server, acme, usage, instance="11111111-1111-4111-8111-111111111111")
    hooli = server.add_customer("hooli", customer("bob@vendor.example", YEAR))
    send_daily(server, hooli, dict.fromkeys(days("2026-10-01", "2026-11-22"), 60))
    globex = server.add_customer("globex", customer("bob@vendor.example", YEAR))
    send_daily(
        server, globex, {D("2026-11-01"): 10}, instance="22222222-2222-4222-8222-222222222222"
    )
    quiet = server.add_customer("quiet", customer("carol@vendor.example", YEAR))
    send_daily(
        server,
        quiet,
        dict.fromkeys(days("2026-11-15", "2026-11-22"), 5),
        instance="33333333-3333-4333-8333-333333333333",
    )


#: Unless a test says otherwise, it runs on the Monday of the week the tests are about, its
#: clock held still there.
MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
pytestmark = pytest.mark.moment(MONDAY, tick=False)
#: The Wednesday of that week, 10:00 UTC.
WEDNESDAY = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def run_weekly(server: RunningServer, **body: Any) -> dict[str, Any]:
    with server.admin() as http:
        response = http.post("/v1/weekly-reports", json={"as_of": "2026-11-22", **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def by_recipient(received: list[Any]) -> dict[str, EmailMessage]:
    return {r.rcpt_tos[0]: r.message for r in received}


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def csv_rows(message: EmailMessage) -> list[dict[str, str]]:
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "findings-2026-W48.csv"
    return list(csv.DictReader(io.StringIO(attachment.get_content())))


def test_one_email_per_manager_with_sections_charts_and_csv(
    server_factory: ServerFactory, smtp: tuple[int, Recorder]
) -> None:
    port, recorder = smtp
    server = server_factory(
        smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", report_cc=CC
    )
    populate(server)
    run = run_weekly(server)
    assert run["iso_week"] == "2026-W48"
    assert {(d["recipient"], d["status"], d["findings"]) for d in run["deliveries"]} == {
        ("alice@vendor.example", "sent", 1),
        ("bob@vendor.example", "sent", 2),
        ("carol@vendor.example", "sent", 0),
        (CC, "sent", 3),
    }
    mails = by_recipient(recorder.wait_for(4))
    assert set(mails) == {"alice@vendor.example", "bob@vendor.example", "carol@vendor.example", CC}

    bob = mails["bob@vendor.example"]
    assert bob["Subject"] == "Licence compliance 2026-W48: 2 accounts need action"
    assert "2 accounts need action." in text_of(bob)
    text = text_of(bob)
    assert text.index("== Overdue (1) ==") < text.index("== Telemetry missing (1) ==")
    # Customers by name, with the id beside; an overdue deadline in words, not "-N days left".
    assert "Bob (hooli): Metric users; Peak / entitled 60 / 50; Over by +20.0% material" in text
    assert re.search(r"Time left \d+ days overdue \(finding f_[0-9a-f]{16}\)\r?\n", text)
    assert "Bob (globex): Last report 2026-11-01" in text
    # An over-use row names its finding, so that a manager can quote it.
    (hooli_row,) = [r for r in csv_rows(bob) if r["customer_id"] == "hooli"]
    assert f"(finding {hooli_row['finding_id']})" in text
    assert f"finding {hooli_row['finding_id']}" in html_of(bob)
    assert bob["Date"].datetime == MONDAY
    assert re.fullmatch(r"<[^@<>]+@localhost>", str(bob["Message-ID"]))
    assert [(r["kind"], r["customer_id"], r["status"]) for r in csv_rows(bob)] == [
        ("overuse", "hooli", "overdue"),
        ("telemetry_missing", "globex", ""),
    ]
    assert hooli_row["material"] == "true"  # as the statement's CSV writes a boolean

    alice = mails["alice@vendor.example"]
    assert alice["Subject"] == "Licence compliance 2026-W48: 1 account needs action"
    assert "== In regularization window (1) ==" in text_of(alice)
    (row,) = csv_rows(alice)
    assert (row["peak_usage"], row["entitled"], row["days_left"], row["overage_pct"]) == (
        "54",
        "50",
        "28",
        "8.0",
    )
    html = html_of(alice)
    cids = re.findall(r'src="cid:([^"]+)"', html)
    assert len(cids) == 1  # one chart per over-use finding
    images = [p for p in alice.walk() if p.get_content_type() == "image/png"]
    assert [str(p["Content-ID"]).strip("<>") for p in images] == cids
    assert images[0].get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    for message in mails.values():
        assert not re.search(r"https?://", html_of(message)), "the HTML loads nothing remote"

    carol = mails["carol@vendor.example"]
    assert carol["Subject"] == "Licence compliance 2026-W48: all clear"
    for body in (text_of(carol), html_of(carol)):
        assert "All clear: none of your 1 account needs action this week." in body
    assert csv_rows(carol) == []

    digest = mails[CC]
    assert digest["Subject"] == "[digest] Licence compliance 2026-W48: 3 accounts need action"
    assert {r["customer_id"] for r in csv_rows(digest)} == {"acme", "hooli", "globex"}
    assert "Bob (hooli), bob@vendor.example:" in text_of(digest)


def test_with_the_consoles_address_each_finding_links_to_its_evidence(
    server_factory: ServerFactory, smtp: tuple[int, Recorder]
) -> None:
    port, recorder = smtp
    http_port = free_port()
    server = server_factory(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        port=http_port,
        public_url=f"https://127.0.0.1:{http_port}/",  # where staff reach it: here, the test
    )
    assert server.url == f"https://127.0.0.1:{http_port}"
    populate(server)
    run_weekly(server)
    bob = by_recipient(recorder.wait_for(3))["bob@vendor.example"]
    rows = csv_rows(bob)
    with server.admin() as http:
        (run,) = http.get("/v1/evaluations", params={"as_of": "2026-11-22"}).json()
    # Pinned to the run the email shows, whatever runs of that day come later.
    pinned = f"evaluation_id={run['evaluation_id']}"
    links = [f"{server.url}/ui/findings/{r['finding_id']}?{pinned}" for r in rows]
    assert len(links) == 2  # the over-use and the missing telemetry
    html = html_of(bob)
    for link in links:
        assert f"Evidence: {link}" in text_of(bob)
        assert f'<a href="{link}"' in html
    assert not re.search(r'src="https?://', html), "the HTML loads nothing remote"
    # The over-use to act on offers to send hooli a link to its own view; the rest do not.
    share = f"{server.url}/ui/customers/hooli#view"
    assert text_of(bob).count(f"Send the customer a link to these figures: {share}") == 1
    assert html.count(f'<a href="{share}"') == 1
    # Each link opens that finding's evidence for staff who sign in.
    with server.client() as http:
        assert http.post("/ui/login", data={"token": ADMIN_TOKEN}).status_code == 303
        for link, row in zip(links, rows, strict=True):
            page = http.get(link.removeprefix(server.url))
            assert page.status_code == 200
            assert row["finding_id"] in page.text
            assert "as known at" in page.text


def test_starttls_and_authentication(server_factory: ServerFactory, tmp_path: Path) -> None:
    port = free_port()
    controller, recorder = start_smtp(port, tls_dir=tmp_path)
    try:
        server = server_factory(
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="starttls",
            smtp_user=USER,
            smtp_password=PASSWORD,
            smtp_ca_cert=tmp_path / "smtp-cert.pem",
        )
        server.add_customer("quiet", customer("carol@vendor.example", YEAR))
        run = run_weekly(server)
        assert [d["status"] for d in run["deliveries"]] == ["sent"], run
        (received,) = recorder.wait_for(1)
        assert received.rcpt_tos == ["carol@vendor.example"]
        assert received.authenticated_as == USER

        wrong = server_factory(
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="starttls",
            smtp_user=USER,
            smtp_password="wrong",
            smtp_ca_cert=tmp_path / "smtp-cert.pem",
        )
        wrong.add_customer("quiet", customer("carol@vendor.example", YEAR))
        (delivery,) = run_weekly(wrong)["deliveries"]
        assert delivery["status"] == "failed"
        assert "SMTPAuthenticationError" in delivery["detail"]
    finally:
        controller.stop()


def test_a_failed_send_is_not_delivered_and_goes_out_on_the_next_run(
    server_factory: ServerFactory,
) -> None:
    port = free_port()  # nothing listens yet
    server = server_factory(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
    server.add_customer("quiet", customer("carol@vendor.example", YEAR))
    (failed,) = run_weekly(server)["deliveries"]
    assert failed["status"] == "failed"
    assert "retried" in failed["detail"]
    with server.admin() as http:
        (kept,) = http.get("/v1/weekly-reports/2026-W48").json()
    assert (kept["recipient"], kept["status"]) == ("carol@vendor.example", "failed")
    controller, recorder = start_smtp(port)
    try:
        (retried,) = run_weekly(server)["deliveries"]
        assert retried["status"] == "sent"
        assert len(recorder.wait_for(1)) == 1
        with server.admin() as http:
            (kept,) = http.get("/v1/weekly-reports/2026-W48").json()
        assert kept["status"] == "sent"
    finally:
        controller.stop()


def test_at_most_one_email_per_manager_per_week_across_restarts(
    server_factory: ServerFactory,
    smtp: tuple[int, Recorder],
    tmp_path: Path,
    moment: time_machine.Traveller,
) -> None:
    port, recorder = smtp
    data_dir = tmp_path / "data"
    settings = _mail_to(port)
    first = server_factory(data_dir=data_dir, **settings)
    first.add_customer("quiet", customer("carol@vendor.example", YEAR))
    assert [d["status"] for d in run_weekly(first)["deliveries"]] == ["sent"]
    (skipped,) = run_weekly(first)["deliveries"]
    assert skipped["status"] == "skipped"
    assert "already sent for 2026-W48" in skipped["detail"]
    first.stop()

    # Restarted on the Wednesday of that week, with the scheduler on: its catch-up sees the
    # week done and sends nothing.
    moment.move_to(WEDNESDAY)
    second = server_factory(data_dir=data_dir, scheduler_enabled=True, **settings)
    assert len(recorder.wait_for(2, timeout=3)) == 1
    forced = run_weekly(second, force=True)["deliveries"]
    assert [d["status"] for d in forced] == ["sent"]
    assert len(recorder.wait_for(2)) == 2
    dry = run_weekly(second, force=True, dry_run=True)["deliveries"]
    assert [d["status"] for d in dry] == ["dry_run"]
    assert len(recorder.wait_for(3, timeout=2)) == 2


def _mail_to(port: int) -> dict[str, Any]:
    """Settings that send the weekly emails to the test's SMTP server on ``port``."""
    return {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none"}


def _born(data_dir: Path, at: datetime) -> None:
    """Pretend the data directory's database was created ``at`` (the server is stopped)."""
    change(data_dir, "UPDATE schema_migrations SET applied_at = ?", [at])


def test_a_missed_monday_is_sent_when_the_server_comes_back(
    server_factory: ServerFactory,
    smtp: tuple[int, Recorder],
    tmp_path: Path,
    moment: time_machine.Traveller,
) -> None:
    port, recorder = smtp
    data_dir = tmp_path / "data"
    settings = _mail_to(port)
    offline = server_factory(data_dir=data_dir, **settings)
    offline.add_customer("quiet", customer("carol@vendor.example", YEAR))
    offline.stop()
    _born(data_dir, datetime(2026, 11, 16, 9, 0, tzinfo=UTC))  # the week before
    # Down through Monday 07:00; back on Wednesday.
    moment.move_to(WEDNESDAY)
    server_factory(data_dir=data_dir, scheduler_enabled=True, **settings)
    (received,) = recorder.wait_for(1)
    assert received.rcpt_tos == ["carol@vendor.example"]
    assert "2026-W48" in str(received.message["Subject"])
    # As of the latest UTC day that has fully ended when it runs (SPEC §7 v2).
    assert "evaluated as of 2026-11-24" in text_of(received.message)


def test_no_catch_up_before_birth(
    server_factory: ServerFactory,
    smtp: tuple[int, Recorder],
    tmp_path: Path,
    moment: time_machine.Traveller,
) -> None:
    port, recorder = smtp
    data_dir = tmp_path / "data"
    settings = _mail_to(port)
    offline = server_factory(data_dir=data_dir, **settings)
    offline.add_customer("quiet", customer("carol@vendor.example", YEAR))
    offline.stop()
    _born(data_dir, datetime(2026, 11, 24, 9, 0, tzinfo=UTC))  # after Monday 07:00
    moment.move_to(WEDNESDAY)
    server = server_factory(data_dir=data_dir, scheduler_enabled=True, **settings)
    assert recorder.wait_for(1, timeout=3) == []
    with server.admin() as http:
        assert http.get("/v1/weekly-reports/2026-W48").json() == []


def test_a_customer_loaded_after_the_weeks_run_still_gets_its_email(
    server_factory: ServerFactory,
    smtp: tuple[int, Recorder],
    tmp_path: Path,
    moment: time_machine.Traveller,
) -> None:
    port, recorder = smtp
    data_dir = tmp_path / "data"
    settings = _mail_to(port)
    empty = server_factory(data_dir=data_dir, **settings)
    empty.stop()
    _born(data_dir, datetime(2026, 11, 16, 9, 0, tzinfo=UTC))
    # The week's run on an empty database sends nothing, and completes nobody.
    moment.move_to(WEDNESDAY)
    first = server_factory(data_dir=data_dir, **settings)
    assert run_weekly(first, as_of="2026-11-24")["deliveries"] == []
    first.add_customer("quiet", customer("carol@vendor.example", YEAR))
    first.stop()
    server_factory(data_dir=data_dir, scheduler_enabled=True, **settings)
    (received,) = recorder.wait_for(1)
    assert received.rcpt_tos == ["carol@vendor.example"]


def test_without_smtp_the_emails_go_to_the_outbox(server_factory: ServerFactory) -> None:
    server = server_factory()
    server.add_customer("quiet", customer("carol@vendor.example", YEAR))
    (delivery,) = run_weekly(server)["deliveries"]
    assert delivery["status"] == "sent"
    files = sorted((server.data_dir / "outbox").glob("*.eml"))
    assert len(files) == 1
    assert delivery["detail"] == str(files[0])
    assert b"To: carol@vendor.example" in files[0].read_bytes()


def test_overlapping_runs_send_each_recipient_one_email(
    server_factory: ServerFactory, smtp: tuple[int, Recorder]
) -> None:
    port, recorder = smtp
    server = server_factory(
        smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", report_cc=CC
    )
    populate(server)
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda _: run_weekly(server), range(4)))
    statuses = sorted(d["status"] for run in runs for d in run["deliveries"])
    assert statuses.count("sent") == 4  # alice, bob, carol and the digest, once each
    assert set(statuses) == {"sent", "skipped"}
    time.sleep(0.5)  # let any second email arrive, if one was (wrongly) sent
    received = recorder.wait_for(4)
    assert sorted(r.rcpt_tos[0] for r in received) == sorted(
        ["alice@vendor.example", "bob@vendor.example", "carol@vendor.example", CC]
    )
    with server.admin() as http:
        kept = http.get("/v1/weekly-reports/2026-W48").json()
    assert [(k["recipient"], k["status"]) for k in kept] == sorted(
        (r.rcpt_tos[0], "sent") for r in received
    )


def test_each_email_is_kept_as_sent_with_its_digest_and_what_it_was_built_from(
    server_factory: ServerFactory, smtp: tuple[int, Recorder]
) -> None:
    port, recorder = smtp
    server = server_factory(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
    server.add_customer("quiet", customer("carol@vendor.example", YEAR))
    run_weekly(server)
    (received,) = recorder.wait_for(1)
    with server.admin() as http:
        (kept,) = http.get("/v1/weekly-reports/2026-W48").json()
        message = http.get("/v1/weekly-reports/2026-W48/carol@vendor.example")
        missing = http.get("/v1/weekly-reports/2026-W47/carol@vendor.example")
    assert message.status_code == 200
    assert message.headers["content-type"] == "message/rfc822"
    assert hashlib.sha256(message.content).hexdigest() == kept["message_sha256"]
    assert re.fullmatch(r"evaluation ev_\w+ as of 2026-11-22", kept["built_from"])
    assert str(received.message["Message-ID"]) in message.text
    assert missing.status_code == 404
    assert "GET /v1/weekly-reports/2026-W47" in missing.json()["detail"]


def test_an_as_of_after_today_is_refused(server_factory: ServerFactory) -> None:
    server = server_factory()
    with server.admin() as http:
        response = http.post("/v1/weekly-reports", json={"as_of": "2026-11-24"})
        ancient = http.post("/v1/weekly-reports", json={"as_of": "0001-01-01"})
    assert response.status_code == 422
    assert "after today (2026-11-23" in response.json()["detail"]
    assert ancient.status_code == 422


def _gauge(server: RunningServer, name: str) -> float:
    with server.admin() as http:
        text = http.get("/metrics").text
    (value,) = re.findall(rf"^{name} (\S+)$", text, re.M)
    return float(value)


def test_the_last_run_gauges_survive_a_restart(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = server_factory(data_dir=data_dir)
    first.add_customer("quiet", customer("carol@vendor.example", YEAR))
    run_weekly(first)
    evaluated = _gauge(first, "statreport_last_evaluation_timestamp_seconds")
    weekly = _gauge(first, "statreport_last_weekly_report_timestamp_seconds")
    assert weekly == MONDAY.timestamp()
    assert evaluated > 0
    first.stop()
    second = server_factory(data_dir=data_dir)
    assert _gauge(second, "statreport_last_evaluation_timestamp_seconds") == evaluated
    assert _gauge(second, "statreport_last_weekly_report_timestamp_seconds") == weekly


def test_an_outbox_that_cannot_be_written_is_a_failed_delivery_not_a_crash(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    server.add_customer("quiet", customer("carol@vendor.example", YEAR))
    (server.data_dir / "outbox").write_text("a file where the outbox folder should be")
    (delivery,) = run_weekly(server)["deliveries"]
    assert delivery["status"] == "failed"
    assert "could not be written" in delivery["detail"]
    assert "retried" in delivery["detail"]


def test_a_dry_run_stores_nothing(server_factory: ServerFactory, tmp_path: Path) -> None:
    """SPEC §7 v3: no evaluation run, no delivery, no claim; the newest run stays what it was."""
    server = server_factory()
    populate(server)
    run_weekly(server, force=True)
    with server.admin() as http:
        runs_before = http.get("/v1/evaluations").json()
        deliveries_before = http.get("/v1/weekly-reports/2026-W48").json()
        dry = run_weekly(server, dry_run=True, force=True)
        assert {d["status"] for d in dry["deliveries"]} == {"dry_run"}
        alice = next(d for d in dry["deliveries"] if d["recipient"] == "alice@vendor.example")
        assert "For alice@vendor.example" in alice["text"]  # what would be sent, to read
        assert http.get("/v1/evaluations").json() == runs_before
        assert http.get("/v1/weekly-reports/2026-W48").json() == deliveries_before
    assert len(list((server.data_dir / "outbox").glob("*.eml"))) == len(deliveries_before)
