"""A silent or trickling SMTP server bounds one delivery's time and never stalls the API."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import ServerFactory
from tests.support import customer, order

TIMEOUT = 2.0
YEAR = order("2026-01-01", "2026-12-31", 5)
MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _bad_smtp(behaviour: str) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve(conn: socket.socket) -> None:
        greeting = b"220 trickle.example ESMTP at one byte a time\r\n"
        try:
            while not stop.is_set():
                if behaviour == "trickle":
                    for byte in greeting:  # each byte arrives well within the read timeout
                        conn.sendall(bytes([byte]))
                        if stop.wait(0.5):
                            return
                else:
                    stop.wait(0.2)
        except OSError:
            return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture(params=["silent", "trickle"])
def bad_smtp(request: pytest.FixtureRequest) -> Iterator[int]:
    yield from _bad_smtp(request.param)


@pytest.mark.moment(MONDAY)
def test_a_bad_smtp_server_fails_the_delivery_in_time_and_the_api_keeps_answering(
    server_factory: ServerFactory, bad_smtp: int
) -> None:
    server = server_factory(
        smtp_host="127.0.0.1",
        smtp_port=bad_smtp,
        smtp_security="none",
        smtp_timeout_seconds=TIMEOUT,
    )
    for name in ("alice", "bob", "carol", "dave"):
        server.add_customer(name, customer(f"{name}@vendor.example", YEAR))

    def run(_: int) -> tuple[float, dict[str, Any]]:
        started = time.monotonic()
        with server.admin() as http:
            response = http.post("/v1/weekly-reports", json={"as_of": "2026-11-22", "force": True})
        return time.monotonic() - started, response.json()

    api_waits = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        runs = pool.map(run, range(8))
        with server.admin() as http:
            deadline = time.monotonic() + 2 * TIMEOUT
            while time.monotonic() < deadline:
                asked = time.perf_counter()
                assert http.get("/v1/customers").status_code == 200
                api_waits.append(time.perf_counter() - asked)
        results = list(runs)
    print(
        f"slowest GET /v1/customers {max(api_waits) * 1000:.0f} ms over {len(api_waits)}; "
        f"slowest run {max(seconds for seconds, _ in results):.1f} s"
    )
    assert max(api_waits) < 1.0
    deliveries = [d for _, answer in results for d in answer["deliveries"]]
    failed = [d for d in deliveries if d["status"] == "failed"]
    assert failed, deliveries  # every attempt failed; the rest found a claim (skipped)
    assert all(d["status"] in ("failed", "skipped") for d in deliveries)
    details = {d["detail"] for d in failed}
    assert all(f"longer than {TIMEOUT} s" in d or "timed out" in d for d in details), details
    # Four recipients, two at a time, each bounded by the conversation's deadline.
    assert max(seconds for seconds, _ in results) < 4 * TIMEOUT + 5
