"""Faults of the shared store (SPEC §16 v3): one of two processes killed under load, and the
PostgreSQL server itself restarted under load. An acknowledged report is never lost, and
never stored twice."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import httpx
import pytest

from core.database import connect_postgres, copy_rows
from core.postgres_store import PostgresStore
from ingest.archive import archive_reports
from statreport.server import free_port
from tests.support import DATABASES as _DATABASES
from tests.support import (
    TEST_DATABASE_URL,
    ServerProcess,
    make_report,
    new_database,
    postgres_reachable,
    query,
    spawn_server,
)

CONNECTIONS = 16
REPORT_COLUMNS = [
    "report_id", "customer_id", "instance_id", "environment", "generated_at", "usage_day",
    "product_version", "sequence", "users", "tenants", "namespaces", "worker_groups", "roles",
    "service_accounts", "source", "key_id", "received_at",
]  # fmt: skip


@pytest.fixture
def database() -> Iterator[str]:
    if not postgres_reachable():
        pytest.skip("no PostgreSQL server (STATREPORT_TEST_DATABASE_URL)")
    url, drop = new_database()
    yield url
    drop()


def _serve(tmp_path: Path, name: str, url: str, port: int | None = None) -> ServerProcess:
    data_dir = tmp_path / name
    _DATABASES[data_dir] = url
    return spawn_server(
        data_dir,
        port=port,
        STATREPORT_DATABASE_URL=url,
        STATREPORT_RATE_LIMIT_PER_MINUTE="1000000",
    )


class Load:
    """Senders spread over servers, noting every report the server acknowledged."""

    def __init__(self, servers: list[ServerProcess], key: str) -> None:
        self.servers = servers
        self.key = key
        self.acknowledged: dict[str, dict[str, Any]] = {}
        self.refused: list[int] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._send, args=(n,)) for n in range(CONNECTIONS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _send(self, worker: int) -> None:
        server = self.servers[worker % len(self.servers)].server
        while not self.stop.is_set():
            reports = [make_report() for _ in range(20 if worker % 4 == 0 else 1)]
            body: Any = reports[0] if len(reports) == 1 else {"reports": reports}
            try:
                with server.client(self.key) as http:
                    response = http.post("/v1/reports", json=body)
            except httpx.TransportError:
                time.sleep(0.05)  # that process is down: keep going at the other
                continue
            with self.lock:
                if response.status_code == 202:
                    self.acknowledged.update((r["report_id"], r) for r in reports)
                else:
                    self.refused.append(response.status_code)

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.acknowledged)} reports acknowledged")
            time.sleep(0.05)


def _resent_are_all_duplicates(server: ServerProcess, key: str, reports: list[Any]) -> None:
    with server.server.client(key) as http:
        for start in range(0, len(reports), 500):
            batch = reports[start : start + 500]
            answer = http.post("/v1/reports", json={"reports": batch})
            assert answer.status_code == 202, answer.text
            assert answer.json()["stored"] == 0, "an acknowledged report was lost"


@pytest.mark.slow
def test_one_of_two_processes_killed_under_load_loses_nothing_and_doubles_nothing(
    tmp_path: Path, database: str
) -> None:
    one = _serve(tmp_path, "one", database)
    other = _serve(tmp_path, "other", database)
    key = one.server.add_customer("acme")
    try:
        with Load([one, other], key) as load:
            load.wait_for(1500)
            one.kill()  # mid-load: requests are in flight on it
            load.wait_for(len(load.acknowledged) + 500)  # the other goes on alone
        one = _serve(tmp_path, "one", database, port=int(one.server.url.rsplit(":", 1)[1]))
        reports = list(load.acknowledged.values())
        _resent_are_all_duplicates(one, key, reports)
        stored = query(
            one.server.data_dir, "SELECT report_id::VARCHAR, count(*) FROM reports GROUP BY 1"
        )
        counts = dict(stored)
        assert all(counts.get(r) == 1 for r in load.acknowledged)
        assert max(counts.values()) == 1
    finally:
        for server in (one, other):
            if server.process.poll() is None:
                server.terminate()


def _restartable() -> str:
    """How to restart the tests' PostgreSQL server, or skip: it must be this machine's."""
    host = urlsplit(TEST_DATABASE_URL).hostname
    ctl = shutil.which("pg_ctlcluster")
    if host not in ("127.0.0.1", "localhost", None) or ctl is None or os.geteuid() != 0:
        pytest.skip("restarting PostgreSQL needs the local cluster, pg_ctlcluster and root")
    return ctl


@pytest.mark.slow
def test_a_postgresql_restart_under_load_is_503_and_then_nothing_acknowledged_is_lost(
    tmp_path: Path, database: str
) -> None:
    ctl = _restartable()
    cluster = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
    ).stdout.split()
    version, name = cluster[0], cluster[1]
    server = _serve(tmp_path, "one", database)
    key = server.server.add_customer("acme")
    try:
        with Load([server], key) as load:
            load.wait_for(1000)
            subprocess.run([ctl, version, name, "restart"], check=True, timeout=120)
            before = len(load.acknowledged)
            load.wait_for(before + 500, timeout=90)  # it recovered on its own
        assert 503 in load.refused  # meanwhile it said so, and acknowledged nothing
        assert set(load.refused) <= {503}
        with server.server.client() as http:
            assert http.get("/readyz").status_code == 200
        _resent_are_all_duplicates(server, key, list(load.acknowledged.values()))
    finally:
        server.terminate()


@pytest.mark.slow
def test_two_processes_starting_together_on_an_empty_database_migrate_once(
    tmp_path: Path, database: str
) -> None:
    ports = [free_port(), free_port()]
    starting = [
        threading.Thread(
            target=lambda n=n: servers.append(_serve(tmp_path, f"s{n}", database, ports[n]))
        )
        for n in range(2)
    ]
    servers: list[ServerProcess] = []
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join(timeout=60)
    try:
        assert len(servers) == 2
        versions = query(servers[0].server.data_dir, "SELECT version FROM schema_migrations")
        assert sorted(v for (v,) in versions) == [15, 16]
    finally:
        for server in servers:
            server.terminate()


def test_old_months_of_a_shared_database_move_to_the_archive_each_report_once(
    tmp_path: Path, database: str
) -> None:
    """Retention on PostgreSQL: the month is read into DuckDB from a snapshot and written as
    Parquet to the archive directory, then deleted from PostgreSQL in bounded steps."""
    today = datetime.now(UTC).date()
    first = datetime.combine(today - timedelta(days=30 * 31), datetime.min.time(), UTC)
    rows = [
        (
            str(uuid.uuid4()), "acme", f"00000000-0000-4000-8000-00000000000{i % 3}",
            "production", first + timedelta(hours=6 * i), (first + timedelta(hours=6 * i)).date(),
            "1.1.3", i, i % 100, 1, None, 2, 5, 1, "phone_home", "k1", first,
        )
        for i in range(30 * 31 * 4)
    ]  # fmt: skip
    store = PostgresStore(database)
    store.open()
    try:
        asyncio.run(store.write(lambda con: copy_rows(con, "reports", REPORT_COLUMNS, rows)))
        archive = tmp_path / "archive"
        done = asyncio.run(
            archive_reports(store, archive_dir=archive, today=today, retention_days=401)
        )
    finally:
        store.close_file()
    assert len(done) >= 15  # the months past 401 days
    files = sorted(str(f) for f in archive.glob("*.parquet"))
    archived = (
        duckdb.connect()
        .execute("SELECT report_id::VARCHAR FROM read_parquet(?)", [files])
        .fetchall()
    )
    with connect_postgres(database) as raw:
        kept = raw.execute("SELECT report_id::VARCHAR FROM reports").fetchall()
    ids = [r for (r,) in archived] + [r for (r,) in kept]
    assert sorted(ids) == sorted(row[0] for row in rows)  # every report once, in one place
    assert min(r[5] for r in rows if r[0] in {k for (k,) in kept}) >= today - timedelta(
        days=401 + 31
    )
