"""An acknowledged report survives SIGKILL; nothing unacknowledged is half-written."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import make_report, query, spawn_server

CONNECTIONS = 20


@pytest.mark.slow
def test_every_acknowledged_report_survives_sigkill_exactly_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = spawn_server(data_dir, STATREPORT_RATE_LIMIT_PER_MINUTE="1000000")
    key = first.server.add_customer("acme")
    acknowledged: list[str] = []
    sent_batches: list[list[str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def sender(worker: int) -> None:
        with first.server.client(key) as http:
            while not stop.is_set():
                # Every fourth request is a batch, to check atomicity across the crash.
                reports = [make_report() for _ in range(25 if worker % 4 == 0 else 1)]
                ids = [r["report_id"] for r in reports]
                body: dict[str, Any] = reports[0] if len(reports) == 1 else {"reports": reports}
                with lock:
                    sent_batches.append(ids)
                try:
                    response = http.post("/v1/reports", json=body)
                except httpx.TransportError:
                    return
                if response.status_code == 202:
                    with lock:
                        acknowledged.extend(ids)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.kill()  # mid-load: requests are in flight
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(acknowledged) >= 2000, "the load did not get going before the kill"

    second = spawn_server(data_dir)
    try:
        duplicates = 0
        with second.server.client(key) as http:
            for start in range(0, len(acknowledged), 1000):
                chunk = acknowledged[start : start + 1000]
                response = http.post(
                    "/v1/reports",
                    json={"reports": [make_report(report_id=i) for i in chunk]},
                )
                assert response.status_code == 202, response.text
                answer = response.json()
                assert answer["stored"] == 0, "an acknowledged report was lost in the crash"
                duplicates += answer["duplicates"]
        assert duplicates == len(acknowledged)
    finally:
        second.terminate()

    rows = query(data_dir, "SELECT report_id::VARCHAR FROM reports")
    stored = [row[0] for row in rows]
    assert len(stored) == len(set(stored))  # exactly once
    assert set(acknowledged) <= set(stored)
    stored_set = set(stored)
    for ids in sent_batches:  # a request is wholly stored or not at all
        present = sum(1 for i in ids if i in stored_set)
        assert present in (0, len(ids))
