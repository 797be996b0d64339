"""Test support: the real server over real TLS (thread or subprocess), and report factories."""

from __future__ import annotations

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import uvicorn

from core.settings import Settings
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


def query(data_dir: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Read the DuckDB file directly (the server must be stopped)."""
    con = duckdb.connect(str(data_dir / "statreport.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


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
