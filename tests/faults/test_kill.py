"""SIGKILL mid-load: an acknowledged report survives, nothing is half-written (reports and
attestations alike)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.attestation import build_bundle
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


def _quarter_bundle(key: str, *, instances: int) -> dict[str, Any]:
    """A signed 2026Q3 bundle with hourly reports of ``instances`` installations."""
    start = datetime(2026, 7, 1, tzinfo=UTC)
    reports = [
        make_report(
            instance_id=instance_id,
            generated_at=(start + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        for instance_id in [str(uuid.uuid4()) for _ in range(instances)]
        for hour in range(92 * 24)
    ]
    return build_bundle(
        quarter="2026Q3",
        reports=reports,
        certification={
            "officer_name": "Jane Roe",
            "officer_title": "CFO",
            "certified_on": "2026-10-05",
            "statement": "I certify that these figures are complete and accurate.",
        },
        license_key=key,
    )


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.1, 0.4, 0.55, 0.7])
def test_an_attestation_killed_mid_upload_is_stored_whole_or_not_at_all(
    tmp_path: Path, delay: float
) -> None:
    data_dir = tmp_path / "data"
    first = spawn_server(data_dir)
    key = first.server.add_customer("airco")
    bundle = _quarter_bundle(key, instances=5)
    body = json.dumps(bundle).encode()
    answers: list[int] = []

    def upload() -> None:
        with first.server.client(key) as http, contextlib.suppress(httpx.TransportError):
            answers.append(
                http.post(
                    "/v1/attestations",
                    content=body,
                    headers={"Content-Type": "application/json"},
                ).status_code
            )

    thread = threading.Thread(target=upload)
    thread.start()
    time.sleep(delay)
    first.kill()
    thread.join(timeout=30)

    # Restarting replays the write-ahead log: the transaction is there whole, or not at all.
    spawn_server(data_dir).terminate()
    (stored,) = query(data_dir, "SELECT count(*) FROM reports WHERE source = 'attestation'")
    (records,) = query(data_dir, "SELECT count(*) FROM attestations")
    total = len(bundle["reports"])
    print(f"killed after {delay} s: answers {answers}, {stored[0]} of {total} stored")
    assert (stored[0], records[0]) in ((0, 0), (total, 1))
    if answers == [202]:
        assert (stored[0], records[0]) == (total, 1)  # acknowledged means durable
