"""The one process: the HTTPS API, the admin API and the scheduler, over one DuckDB file."""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from analytics.endpoints import router as analytics_router
from console.pages import root_router as console_root
from console.pages import router as console_router
from console.sessions import Sessions
from core.auth import Keyring
from core.connections import bounded_protocol
from core.database import KEYRING
from core.errors import SchemaTooNew, StoreUnavailable
from core.fastlane import FastLane
from core.gate import BodyGate
from core.openapi import finish as finish_openapi
from core.postgres_store import PostgresStore
from core.problems import install_problem_handlers
from core.ratelimit import RateLimiter
from core.settings import Settings
from core.store import Store
from core.telemetry import ApiMetrics, RequestMetricsMiddleware, StoreMetrics, WebhookMetrics
from core.tls import check_tls_files, ensure_self_signed, fingerprint
from customers import repository as customers_repository
from customers.endpoints import router as customers_router
from ingest.archive import ArchivedMonth, archive_reports
from ingest.attestation_endpoints import router as attestation_router
from ingest.endpoints import post_reports, reports_route
from ingest.openapi import add_reports_path
from ingest.writer import ReportCommit
from scheduler.delivery import Mailer
from scheduler.endpoints import router as weekly_router
from scheduler.jobs import start_scheduler
from scheduler.service import WeeklyReporter
from staff import repository as staff_repository
from staff import tokens
from staff.endpoints import admin_router as operations_admin_router
from staff.endpoints import router as operations_router
from webhooks.endpoints import router as webhooks_router
from webhooks.sender import Sender as WebhookSender

log = logging.getLogger("statreport.server")


class MissingAdminToken(Exception):
    """``statreport serve`` refuses to start without an admin token."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _archive(store: Store, settings: Settings, today: date) -> list[ArchivedMonth]:
    """The daily archive job's work: raw reports older than the retention to Parquet."""
    return await archive_reports(
        store,
        archive_dir=settings.archive_path,
        today=today,
        retention_days=settings.retention_days,
    )


def create_app(settings: Settings) -> FastAPI:
    """Build the application; resources open in its lifespan."""
    if settings.admin_token is None or not settings.admin_token.get_secret_value():
        raise MissingAdminToken(
            "STATREPORT_ADMIN_TOKEN is not set. Set it to a long random secret, e.g. "
            "export STATREPORT_ADMIN_TOKEN=$(python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')"
        )
    admin_token = settings.admin_token.get_secret_value()
    registry = CollectorRegistry()
    api_metrics = ApiMetrics(registry=registry)
    store_metrics = StoreMetrics(registry=registry)
    webhook_metrics = WebhookMetrics(registry=registry)

    lifespan = _lifespan(
        settings,
        admin_token=admin_token,
        metrics=api_metrics,
        store_metrics=store_metrics,
        webhook_metrics=webhook_metrics,
    )

    # FastAPI's own /docs and /redoc pages load their scripts from a CDN; fastapi-offline
    # serves the same Swagger UI and ReDoc from files in its package. The validator badge is
    # off: it would send the document's URL to validator.swagger.io.
    app = FastAPIOffline(
        title="statreport",
        summary="Licensor-side Statistics Report ingest and licence compliance",
        version=importlib.metadata.version("statreport"),
        lifespan=lifespan,
        static_url="/docs/assets",
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.api_metrics = api_metrics
    app.state.rate_limiter = RateLimiter(per_minute=settings.rate_limit_per_minute)
    install_problem_handlers(app)
    app.router.routes.append(reports_route)
    app.include_router(attestation_router)
    app.include_router(customers_router)
    app.include_router(analytics_router)
    app.include_router(weekly_router)
    app.include_router(webhooks_router)
    app.include_router(operations_admin_router)
    app.include_router(operations_router)
    app.include_router(console_router)
    app.include_router(console_root)
    app.mount("/ui/static", StaticFiles(packages=[("console", "static")]), name="console-static")
    # The customer's view loads its stylesheet from under its own path, as it does everything.
    app.mount("/c/static", StaticFiles(packages=[("console", "static")]), name="portal-static")
    app.add_middleware(BodyGate)
    app.add_middleware(RequestMetricsMiddleware, metrics=api_metrics)
    app.add_middleware(UnframedDocs)
    app.openapi = finish_openapi(add_reports_path(app.openapi))  # type: ignore[method-assign]
    return app


class UnframedDocs:
    """The API documentation pages (``/docs``, ``/redoc``) under the console's frame rules: no
    other site may frame them (``frame-ancestors 'none'``, and ``X-Frame-Options`` for older
    browsers). Their inline scripts stay allowed: only framing is ruled."""

    PATHS = ("/docs", "/redoc")
    HEADERS = (
        (b"content-security-policy", b"frame-ancestors 'none'"),
        (b"x-frame-options", b"DENY"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.PATHS):
            await self.app(scope, receive, send)
            return

        async def framed(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.HEADERS if n not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, framed)


class ServerDidNotStart(Exception):
    """The server thread ended before it accepted connections (its log says why)."""


def start_in_thread(settings: Settings) -> tuple[uvicorn.Server, threading.Thread]:
    """The whole app under uvicorn in a daemon thread, once it accepts connections: for the
    demo, the docs' screenshots and the benchmarks. Stop it with ``should_exit = True``."""
    server = uvicorn.Server(uvicorn_config(settings, create_app(settings)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise ServerDidNotStart("the server did not start; see the log above")
        time.sleep(0.05)
    return server, thread


def free_port() -> int:
    """A loopback port that was free a moment ago, for a server of the demo or a test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _lifespan(
    settings: Settings,
    *,
    admin_token: str,
    metrics: ApiMetrics,
    store_metrics: StoreMetrics,
    webhook_metrics: WebhookMetrics,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Open the store, the keyring and the scheduler for the app's life; close them after."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = _open_store(settings, store_metrics)
        app.state.store = store
        app.state.keyring = Keyring(
            admin_token=admin_token,
            records=await store.read(customers_repository.license_keys),
            staff=await store.read(staff_repository.staff_tokens),
        )
        app.state.sessions = Sessions(app.state.keyring, store)
        # Keys and tokens another process issues or revokes count here at once (SPEC §16).
        store.follow(KEYRING, partial(_reload_keyring, store, app.state.keyring))
        log.info("event=store.opened database=%s", store.where)
        mailer = Mailer(settings)
        reporter = WeeklyReporter(
            store=store, settings=settings, mailer=mailer, clock=_utc_now, metrics=metrics
        )
        app.state.weekly_reporter = reporter
        await reporter.restore_gauges()
        scheduler = _start_scheduler(settings, reporter, store, mailer)
        # The webhook outbox: what a crash left pending goes out now (SPEC §14 v3).
        sender = WebhookSender(store, settings, webhook_metrics)
        app.state.webhook_sender = sender
        sender.start()
        # Everything loaded so far (DuckDB, Polars, pyarrow, matplotlib...) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise stalled every
        # request for ~100 ms a few times a minute under load (measured: p99 100 ms -> see
        # benchmarks/ingest.py).
        gc.collect()
        gc.freeze()
        uses = asyncio.create_task(_write_uses_every_minute(store, app.state.keyring))
        try:
            yield
        finally:
            uses.cancel()
            await sender.stop()
            await tokens.write_uses(store, app.state.keyring)
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            mailer.shutdown()
            await store.close()
            log.info("event=store.closed database=%s", store.where)

    return lifespan


def _open_store(settings: Settings, store_metrics: StoreMetrics) -> Store:
    """The database, migrated, with its writer running; a refusal is logged and raised."""
    # The TLS files and the outbox live there, whichever engine holds the data.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = {
        "commit_window_ms": settings.commit_window_ms,
        "commit_max_reports": settings.commit_max_reports,
        "max_pending_reports": settings.max_pending_reports,
        "retry_after_seconds": settings.retry_after_seconds,
        "metrics": store_metrics,
        "group_commit": ReportCommit(metrics=store_metrics),
    }
    store = (
        PostgresStore(settings.postgres_url, **common)
        if settings.postgres_url is not None
        else Store(
            settings.database_path,
            duckdb_threads=settings.duckdb_threads,
            memory_limit=settings.duckdb_memory_limit,
            **common,
        )
    )
    try:
        store.open()
    except (SchemaTooNew, StoreUnavailable) as exc:
        log.error("event=store.refused reason=%r", str(exc))
        raise
    return store


def _start_scheduler(
    settings: Settings, reporter: WeeklyReporter, store: Store, mailer: Mailer
) -> AsyncIOScheduler | None:
    """The scheduled jobs (weekly email, daily evaluation, archive), unless disabled."""
    if not settings.scheduler_enabled:
        return None
    scheduler = start_scheduler(reporter, archive=partial(_archive, store, settings))
    log.info(
        "event=scheduler.started weekly=%r timezone=%s mail=%r",
        settings.report_cron,
        settings.report_timezone,
        mailer.describe(),
    )
    return scheduler


def _reload_keyring(store: Store, keyring: Keyring) -> None:
    """Take every key and token as stored now (on the follower's thread, between requests:
    the keyring's tables are replaced whole)."""
    records, staff = asyncio.run(
        store.read(
            lambda con: (customers_repository.license_keys(con), staff_repository.staff_tokens(con))
        )
    )
    keyring.replace(records=records, staff=staff)
    log.info("event=keyring.reloaded keys=%d tokens=%d", len(records), len(staff))


async def _write_uses_every_minute(store: Store, keyring: Keyring) -> None:
    """When tokens and keys were last used, to the minute, without a write per request."""
    while True:
        await asyncio.sleep(60)
        await tokens.write_uses(store, keyring)


def uvicorn_config(settings: Settings, app: FastAPI) -> uvicorn.Config:
    """The uvicorn config: TLS unless plain HTTP was asked for, no access log (no client IPs).

    Raises ``TlsFilesInvalid`` when the operator's TLS files cannot be used.
    """
    tls: dict[str, str] = {}
    if not settings.insecure_http:
        given = check_tls_files(settings.tls_cert, settings.tls_key)
        if not given and ensure_self_signed(
            settings.cert_path, settings.key_path, host=settings.host
        ):
            log.info("event=tls.self_signed_created cert=%s", settings.cert_path)
        log.info(
            "event=tls.certificate cert=%s sha256=%s",
            settings.cert_path,
            fingerprint(settings.cert_path),
        )
        tls = {"ssl_certfile": str(settings.cert_path), "ssl_keyfile": str(settings.key_path)}
    else:
        log.warning("event=tls.disabled reason=--insecure-http")
    lane = FastLane(
        app, method="POST", path="/v1/reports", endpoint=post_reports, metrics=app.state.api_metrics
    )
    return uvicorn.Config(
        lane,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        # X-Forwarded-For is believed only from STATREPORT_TRUSTED_PROXIES (SPEC §12 v3):
        # uvicorn's middleware then gives the app the client's address, as the sign-in
        # throttle needs; nothing stores it.
        proxy_headers=settings.trusted_proxies is not None,
        forwarded_allow_ips=settings.trusted_proxies,
        server_header=False,
        timeout_keep_alive=30,
        # Bounded TLS handshakes, request heads and connections (core/connections.py).
        loop="core.connections:new_event_loop",
        http=bounded_protocol(max_connections=settings.max_connections),
        # SIGTERM: requests in flight get this long, then connections are closed.
        timeout_graceful_shutdown=5,
        **tls,  # type: ignore[arg-type]
    )
