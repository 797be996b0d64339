"""Two statreport servers on one PostgreSQL database (SPEC §16 v3): whichever of them a request
reaches, it meets the same data, the same keys and tokens, the same sessions, and what must
happen once happens once."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook as Verifier

from tests.conftest import ServerFactory
from tests.e2e.test_weekly import CC, MONDAY, populate, run_weekly
from tests.receiver import receiving
from tests.smtp import Recorder
from tests.support import (
    ACME,
    ADMIN_TOKEN,
    RunningServer,
    assert_problem,
    evaluate,
    make_report,
    new_database,
    post,
    postgres_reachable,
    spawn_server,
)

pytestmark = pytest.mark.moment(MONDAY, tick=False)


@pytest.fixture
def pair(
    server_factory: ServerFactory,
) -> Iterator[Callable[..., tuple[RunningServer, RunningServer]]]:
    """Two servers sharing a new PostgreSQL database, with the given settings."""
    if not postgres_reachable():
        pytest.skip("no PostgreSQL server (STATREPORT_TEST_DATABASE_URL)")
    drops: list[Callable[[], None]] = []
    servers: list[RunningServer] = []

    def start(**settings: Any) -> tuple[RunningServer, RunningServer]:
        url, drop = new_database()
        drops.append(drop)
        both = (
            server_factory(database_url=url, **settings),
            server_factory(database_url=url, **settings),
        )
        servers.extend(both)
        return both

    yield start
    for server in servers:
        server.stop()
    for drop in drops:
        drop()


def eventually(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Wait for ``check`` (another process's notification takes a moment), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(what)


def test_keys_and_tokens_issued_or_revoked_on_one_count_on_the_other_at_once(
    pair: Callable[..., tuple[RunningServer, RunningServer]],
) -> None:
    one, other = pair()
    key = one.add_customer("acme")
    eventually(lambda: post(other, key, make_report()).status_code == 202, "the key never worked")
    with one.admin() as http:
        token = http.post("/v1/tokens", json={"name": "vera", "role": "viewer"}).json()["token"]
    with other.client(token) as http:
        eventually(lambda: http.get("/v1/customers").status_code == 200, "the token never worked")
    with other.admin() as http:
        (listed,) = http.get("/v1/customers/acme").json()["license_keys"]
        assert http.delete(f"/v1/license-keys/{listed['key_id']}").status_code == 204
        assert http.delete("/v1/tokens/vera").status_code == 204
    eventually(lambda: post(one, key, make_report()).status_code == 401, "the key still works")
    assert_problem(post(one, key, make_report()), 401, "has been revoked")
    with one.client(token) as http:
        eventually(lambda: http.get("/v1/customers").status_code == 401, "the token still works")


def test_a_report_id_and_an_instance_are_one_customers_whichever_process_stores_them(
    pair: Callable[..., tuple[RunningServer, RunningServer]],
) -> None:
    one, other = pair()
    acme = one.add_customer("acme")
    globex = one.add_customer("globex", ACME)
    report = make_report()
    assert post(one, acme, report).json()["stored"] == 1
    eventually(lambda: post(other, acme, make_report()).status_code == 202, "no key")
    again = post(other, acme, report)
    assert (again.status_code, again.json()["duplicates"]) == (202, 1)
    assert_problem(
        post(other, globex, make_report(report_id=report["report_id"])), 409, "report_id"
    )
    # The instance acme's report claimed, claimed again by globex on the other process.
    claim = make_report(instance_id=report["instance_id"])
    assert_problem(post(other, globex, claim), 409, "another customer")
    with other.admin() as http:
        of_acme = http.get("/v1/customers/acme/instances").json()
        of_globex = http.get("/v1/customers/globex/instances").json()
    assert report["instance_id"] in [i["instance_id"] for i in of_acme]
    assert of_globex == []


def test_concurrent_reports_to_both_are_all_stored_once(
    pair: Callable[..., tuple[RunningServer, RunningServer]],
) -> None:
    one, other = pair(rate_limit_per_minute=100_000)
    key = one.add_customer("acme")
    eventually(lambda: post(other, key, make_report()).status_code == 202, "no key")
    reports = [make_report() for _ in range(300)]

    def send(n: int) -> int:
        server = (one, other)[n % 2]
        status: int = post(server, key, reports[n]).status_code
        return status

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(send, range(len(reports)))) == {202}
    with one.admin() as http:
        usage = http.get("/v1/customers/acme/instances").json()
    assert sum(i["reports"] for i in usage) == len(reports) + 1


def test_a_console_session_opened_on_one_is_served_and_ended_by_the_other(
    pair: Callable[..., tuple[RunningServer, RunningServer]],
) -> None:
    one, other = pair()
    with one.client() as http:
        signed_in = http.post("/ui/login", data={"token": ADMIN_TOKEN})
    assert signed_in.status_code == 303, signed_in.text
    cookie = signed_in.cookies["statreport_session"]
    with other.client(cookies={"statreport_session": cookie}) as http:
        page = http.get("/ui/customers")
        assert page.status_code == 200
        assert "Sign out" in page.text
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        assert http.post("/ui/logout", data={"csrf": csrf}).status_code == 303
    with one.client(cookies={"statreport_session": cookie}) as http:
        assert http.get("/ui/customers").status_code == 303  # off to sign in


def test_an_evaluation_on_one_is_the_runs_list_of_the_other_and_backups_are_refused(
    pair: Callable[..., tuple[RunningServer, RunningServer]],
) -> None:
    one, other = pair()
    populate(one)
    run = evaluate(one, "2026-11-22")
    with other.admin() as http:
        runs = http.get("/v1/evaluations", params={"as_of": "2026-11-22"}).json()
        assert [r["evaluation_id"] for r in runs] == [run["evaluation_id"]]
        again = http.get(f"/v1/evaluations/{run['evaluation_id']}").json()
        assert again["findings"] == run["findings"]
        refused = http.post("/v1/backups", json={"destination": "copy.duckdb"})
    assert_problem(refused, 409, "PostgreSQL", "pg_dump")


def test_both_sending_the_outbox_deliver_each_event_once(
    pair: Callable[..., tuple[RunningServer, RunningServer]],
) -> None:
    one, other = pair(webhook_allow_private=True, webhook_retry_schedule="1,1,1")
    populate(one)
    with receiving() as receiver:
        with one.admin() as http:
            created = http.post("/v1/webhooks", json={"url": receiver.url}).json()
        for _ in range(3):  # three runs of three days: each finding's events, and each run's
            evaluate(other, "2026-11-20")
            evaluate(one, "2026-11-21")
            evaluate(other, "2026-11-22")
        with one.admin() as http:

            def settled() -> bool:
                log = http.get(f"/v1/webhooks/{created['webhook_id']}/deliveries").json()
                return bool(log) and all(d["status"] == "delivered" for d in log)

            eventually(settled, "the outbox never drained", timeout=30)
            log = http.get(f"/v1/webhooks/{created['webhook_id']}/deliveries").json()
        time.sleep(1.5)  # a second sender's duplicate, if there were one, would arrive now
    ids = [a.headers["webhook-id"] for a in receiver.arrived]
    assert len(ids) == len(set(ids)) == len(log)
    for arrived in receiver.arrived:
        Verifier(created["secret"]).verify(arrived.body, arrived.headers)


def test_weekly_runs_started_on_both_at_once_send_each_recipient_one_email(
    pair: Callable[..., tuple[RunningServer, RunningServer]], smtp: tuple[int, Recorder]
) -> None:
    port, recorder = smtp
    one, other = pair(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", report_cc=CC)
    populate(one)
    # Both apps live in this process: each builds its routes' models on their first request,
    # which pydantic does not do from two threads at once (two processes never share them).
    for server in (one, other):
        assert {d["status"] for d in run_weekly(server, dry_run=True)["deliveries"]} == {"dry_run"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda n: run_weekly((one, other)[n % 2]), range(4)))
    statuses = sorted(d["status"] for run in runs for d in run["deliveries"])
    assert statuses.count("sent") == 4  # alice, bob, carol and the digest, once each
    time.sleep(0.5)  # let any second email arrive, if one was (wrongly) sent
    received = recorder.wait_for(4)
    assert sorted(r.rcpt_tos[0] for r in received) == sorted(
        ["alice@vendor.example", "bob@vendor.example", "carol@vendor.example", CC]
    )


def test_an_unreachable_database_is_refused_at_start_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="STATREPORT_DATABASE_URL") as refused:
        spawn_server(
            tmp_path / "data", STATREPORT_DATABASE_URL="postgresql://x:secret@127.0.0.1:1/none"
        )
    assert "secret" not in str(refused.value)  # the password is never logged


def test_readiness_names_a_data_directory_that_went_missing(
    pair: Callable[..., tuple[RunningServer, RunningServer]],
) -> None:
    """On PostgreSQL the data directory holds only the TLS files and the outbox; if it goes,
    /readyz says so (it answered 500 before)."""
    one, _ = pair()
    kept = one.data_dir.parent / "cert.pem"
    shutil.copy(one.ca_cert, kept)
    one.ca_cert = kept
    shutil.rmtree(one.data_dir)
    with one.client() as http:
        answer = http.get("/readyz")
    assert answer.status_code == 503
    assert "cannot be read" in answer.json()["detail"]
