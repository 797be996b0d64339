"""Test support: the real server over real TLS (thread or subprocess), and report factories."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import adbc_driver_postgresql.dbapi as adbc_postgresql
import duckdb
import httpx
import psycopg
import pytest
import uvicorn

from core import instance_days
from core.database import PostgresConnection, connect_postgres
from core.postgres_store import PostgresStore
from core.settings import Settings
from core.store import Store
from statreport.server import create_app, free_port, uvicorn_config
from tests import clock

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"

ACME: dict[str, Any] = {
    "name": "ACME Corp",
    "account_manager": "alice@vendor.example",
    "air_gapped": False,
    "orders": [
        {
            "order_id": "OF-2026-014",
            "start": "2026-01-01",
            "end": "2026-12-31",
            "entitlements": {
                "user_packs": 5,
                "users_per_pack": 10,
                "production_instances": 2,
                "non_production_instances": 2,
                "tenants": 3,
                "worker_groups": 4,
            },
            "addons": [
                {"addon_id": "AO-7", "effective": "2026-06-01", "entitlements": {"user_packs": 2}}
            ],
        }
    ],
}


def make_report(**overrides: Any) -> dict[str, Any]:
    """A valid wire-format report generated an hour ago, with fresh ids."""
    report: dict[str, Any] = {
        "schema_version": 1,
        "report_id": str(uuid.uuid4()),
        "instance_id": str(uuid.uuid4()),
        "environment": "production",
        "generated_at": (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "product_version": "1.1.3",
        "sequence": 1,
        "metrics": {"users": 48, "tenants": 3, "namespaces": 120, "worker_groups": 4},
    }
    report.update(overrides)
    return report


#: The PostgreSQL database of each data directory whose server keeps its data there.
DATABASES: dict[Path, str] = {}


def query(data_dir: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Read the server's database directly: the DuckDB file (the server must be stopped), or
    the server's PostgreSQL database."""
    url = DATABASES.get(data_dir)
    if url is not None:
        return _query_postgres(url, sql, params)
    con = duckdb.connect(str(data_dir / "statreport.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _query_postgres(url: str, sql: str, params: list[Any] | None) -> list[tuple[Any, ...]]:
    """A test's query, in DuckDB's SQL, over every table of a PostgreSQL database loaded
    through ADBC: the tests' queries are written once for both engines."""
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    with adbc_postgresql.connect(url) as pg, pg.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - a listed name
            duck.register(table, cursor.fetch_arrow_table().replace_schema_metadata(None))
    duck.execute(instance_days.CREATE_VIEW)
    return duck.execute(sql, params or []).fetchall()


def stored_bytes(data_dir: Path) -> bytes:
    """Everything the server's database holds, as stored: the DuckDB file and its WAL, or
    every table of the PostgreSQL database as ``COPY`` writes it (for what must never be
    stored, such as a token)."""
    url = DATABASES.get(data_dir)
    if url is None:
        database = data_dir / "statreport.duckdb"
        wal = data_dir / "statreport.duckdb.wal"
        return database.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    out = bytearray()
    with connect_postgres(url) as raw:
        tables = raw.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        ).fetchall()
        for (table,) in tables:
            with raw.cursor().copy(f'COPY "{table}" TO STDOUT') as copy:  # a listed name
                for chunk in copy:
                    out += chunk
    return bytes(out)


def change(data_dir: Path, sql: str, params: list[Any] | None = None) -> None:
    """Change the server's database directly (the server must be stopped), on its engine."""
    url = DATABASES.get(data_dir)
    if url is not None:
        with connect_postgres(url) as raw:
            PostgresConnection(raw).execute(sql, params)
        return
    con = duckdb.connect(str(data_dir / "statreport.duckdb"))
    try:
        con.execute(sql, params or [])
    finally:
        con.close()


def open_store(data_dir: Path, **options: Any) -> Store:
    """The server's store, opened by the test (the server must be stopped): the DuckDB file,
    or the server's PostgreSQL database."""
    url = DATABASES.get(data_dir)
    store = (
        PostgresStore(url, **options)
        if url is not None
        else Store(data_dir / "statreport.duckdb", **options)
    )
    store.open()
    return store


@dataclass
class RunningServer:
    """A statreport server over HTTPS and what a test needs to talk to it."""

    url: str
    data_dir: Path
    ca_cert: Path
    settings: Settings
    _stop: Any = None
    app: Any = None
    keys: dict[str, str] = field(default_factory=dict)

    def verify(self) -> ssl.SSLContext:
        """Trust exactly the server's self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client over TLS, optionally with a bearer token."""
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(
            base_url=self.url, verify=self.verify(), headers=headers, timeout=30, **kwargs
        )

    def raw_tls(self, *, timeout: float = 10) -> ssl.SSLSocket:
        """A TLS connection to the server, for what an HTTP client library would not send."""
        port = int(self.url.rsplit(":", 1)[1])
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        return self.verify().wrap_socket(raw, server_hostname="127.0.0.1")

    def admin(self) -> httpx.Client:
        """A client holding the admin token."""
        return self.client(ADMIN_TOKEN)

    def add_customer(self, customer_id: str, document: dict[str, Any] | None = None) -> str:
        """Create a customer and return a new licence key for it."""
        with self.admin() as http:
            response = http.put(f"/v1/customers/{customer_id}", json=document or ACME)
            assert response.status_code == 200, response.text
            response = http.post(f"/v1/customers/{customer_id}/license-keys")
            assert response.status_code == 201, response.text
            key: str = response.json()["license_key"]
        self.keys[customer_id] = key
        return key

    def stop(self) -> None:
        """Stop the server (gracefully)."""
        if self._stop is not None:
            self._stop()
            self._stop = None


#: The PostgreSQL server the tests of the shared store use (SPEC §16 v3); each test gets a
#: database of its own on it.
TEST_DATABASE_URL = os.environ.get(
    "STATREPORT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@functools.cache
def postgres_reachable() -> bool:
    """True when the tests' PostgreSQL server answers."""
    try:
        with psycopg.connect(TEST_DATABASE_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def new_database() -> tuple[str, Callable[[], None]]:
    """A new, empty PostgreSQL database for one test: its URL, and how to drop it."""
    name = f"statreport_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # a generated name

    def drop() -> None:
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(urlsplit(TEST_DATABASE_URL)._replace(path=f"/{name}")), drop


def _certificate_for_a_moved_clock(settings: Settings) -> None:
    """On a moved clock the server's own certificate would be dated by it; OpenSSL checks it
    on the real one, so such a server gets a certificate valid on both (tests/clock.py)."""
    if clock.travelling() is not None and settings.tls_cert is None:
        clock.place_certificate(settings.cert_path, settings.key_path)


def start_thread_server(data_dir: Path, **overrides: Any) -> RunningServer:
    """The real app under uvicorn with TLS, in a background thread of this process, on this
    process's clock (moved by a test's ``moment`` marker).

    The scheduler stays off unless a test asks for it (``scheduler_enabled=True``), so that
    no weekly run starts behind a test's back.
    """
    overrides.setdefault("scheduler_enabled", False)
    overrides.setdefault("port", free_port())
    settings = Settings(data_dir=data_dir, admin_token=ADMIN_TOKEN, **overrides)
    if settings.postgres_url is not None:
        DATABASES[data_dir] = settings.postgres_url
    _certificate_for_a_moved_clock(settings)
    app = create_app(settings)
    config = uvicorn_config(settings, app)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)

    scheme = "http" if settings.insecure_http else "https"
    return RunningServer(
        url=f"{scheme}://127.0.0.1:{settings.port}",
        data_dir=data_dir,
        ca_cert=settings.cert_path,
        settings=settings,
        _stop=stop,
        app=app,
    )


@dataclass
class ServerProcess:
    """``statreport serve`` as a child process."""

    process: subprocess.Popen[bytes]
    server: RunningServer
    log_path: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self) -> None:
        """SIGTERM and wait."""
        self.process.terminate()
        self.process.wait(timeout=30)


def spawn_server(
    data_dir: Path, *, port: int | None = None, log_dir: Path | None = None, **env: str
) -> ServerProcess:
    """Start ``statreport serve`` in a subprocess and wait until it is ready; its log goes to
    ``log_dir`` (default: beside the data directory)."""
    port = port or free_port()
    environment = {
        **os.environ,
        "STATREPORT_ADMIN_TOKEN": ADMIN_TOKEN,
        "STATREPORT_DATA_DIR": str(data_dir),
        "STATREPORT_PORT": str(port),
        **env,
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir, port=port, admin_token=ADMIN_TOKEN)
    if "STATREPORT_TLS_CERT" not in env:
        _certificate_for_a_moved_clock(settings)
    log_path = (log_dir or data_dir.parent) / f"serve-{port}-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "statreport", "serve"],
            env={**environment, **clock.child_environment()},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(
        url=f"https://127.0.0.1:{port}",
        data_dir=data_dir,
        ca_cert=settings.cert_path,
        settings=settings,
    )
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        if server.ca_cert.exists():
            try:
                with server.client() as http:
                    if http.get("/readyz").status_code == 200:
                        break
            except (httpx.TransportError, ssl.SSLError):
                pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"server did not become ready: {log_path.read_text()}")
        time.sleep(0.1)
    return ServerProcess(process=process, server=server, log_path=log_path)


def debian_tool(name: str, needed_for: str) -> str:
    """The path of a Debian package's command a test drives. Without it a developer's machine
    skips the test, named in pytest's summary; under CI (``CI=true``) the test fails, since a
    skipped test there would pass what nobody checked."""
    path = shutil.which(name)
    if path is None:
        reason = (
            f"{needed_for} need Debian's {name}: apt-get install {name} "
            "(make test installs it when run as root)"
        )
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"{reason}; CI=true, so they may not be skipped")
        pytest.skip(reason)
    return path


def chromium() -> str:
    """Debian's chromium, for the tests of pages in a browser."""
    return debian_tool("chromium", "the browser tests")


def iter_batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive slices of ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


D = date.fromisoformat
INSTANCE = "0b9a4f2c-7d3e-4e58-8f1a-3c2d1e0f9a77"
JSON = {"Content-Type": "application/json"}


def post(server: RunningServer, key: str, body: Any, **headers: str) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with server.client(key) as http:
        return http.post("/v1/reports", content=content, headers={**JSON, **headers})


def assert_problem(response: Any, status: int, *needles: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://")
    assert problem["title"]
    for needle in needles:
        assert needle in problem["detail"], problem["detail"]
    return problem


def order(
    start: str, end: str, packs: int, *, addons: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "order_id": f"OF-{start}",
        "start": start,
        "end": end,
        "entitlements": {"user_packs": packs, "users_per_pack": 10},
        "addons": addons or [],
    }


#: The order form of SPEC §5-§6's worked example: 5 packs of 10 users, one more from 11-09.
WORKED_EXAMPLE_ORDER = order(
    "2026-10-01",
    "2027-09-30",
    5,
    addons=[{"addon_id": "AO-8", "effective": "2026-11-09", "entitlements": {"user_packs": 1}}],
)


def customer(manager: str, *orders: dict[str, Any], air_gapped: bool = False) -> dict[str, Any]:
    return {
        "name": manager.split("@")[0].title(),
        "account_manager": manager,
        "air_gapped": air_gapped,
        "orders": list(orders),
    }


def send_daily(
    server: RunningServer, key: str, users: dict[date, int], *, instance: str = INSTANCE
) -> None:
    reports = [
        make_report(
            instance_id=instance,
            generated_at=f"{day.isoformat()}T12:00:00Z",
            metrics={"users": value},
        )
        for day, value in users.items()
    ]
    with server.client(key) as http:
        for batch in iter_batches(reports, 500):
            response = http.post("/v1/reports", json={"reports": batch})
            assert response.status_code == 202, response.text


def days(first: str, last: str) -> list[date]:
    start = D(first)
    return [start + timedelta(days=n) for n in range((D(last) - start).days + 1)]


def evaluate(server: RunningServer, as_of: str) -> dict[str, Any]:
    with server.admin() as http:
        response = http.post("/v1/evaluations", json={"as_of": as_of})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
