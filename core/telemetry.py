"""Prometheus metrics and key=value logs an operator can grep."""

from __future__ import annotations

import logging
import sys
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class StoreMetrics:
    """What the writer measures: stored reports, duplicates, commit sizes and latencies."""

    def __init__(self, *, registry: CollectorRegistry | None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.reports_stored = Counter(
            "statreport_reports_stored", "Reports committed to storage.", registry=registry
        )
        self.reports_duplicate = Counter(
            "statreport_reports_duplicate",
            "Reports received again and answered as duplicates.",
            registry=registry,
        )
        self.commit_reports = Histogram(
            "statreport_commit_batch_reports",
            "Reports per group commit.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "statreport_commit_seconds",
            "Time to commit one group, fsync included.",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
            registry=registry,
        )
        self.instance_days_seconds = Histogram(
            "statreport_commit_instance_days_seconds",
            "Time of a group commit spent appending the instance-days of its reports.",
            buckets=(0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
            registry=registry,
        )
        self.probe_writes = Counter(
            "statreport_readiness_probe_writes",
            "Heartbeat writes made to answer /readyz (at most one a second, however many ask).",
            registry=registry,
        )
        self.overloaded = Counter(
            "statreport_ingest_overloaded",
            "Requests refused with 503 because too many reports were waiting to commit.",
            registry=registry,
        )


class ApiMetrics:
    """Requests by route and status, and the pipeline's last successful runs."""

    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "statreport_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.last_evaluation = Gauge(
            "statreport_last_evaluation_timestamp_seconds",
            "When the last compliance evaluation succeeded (0: never).",
            registry=registry,
        )
        self.last_weekly_report = Gauge(
            "statreport_last_weekly_report_timestamp_seconds",
            "When the last weekly report run with no failed delivery ran (0: never).",
            registry=registry,
        )


class WebhookMetrics:
    """Webhook deliveries by type and outcome, and how long the oldest has waited."""

    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "statreport_webhook_deliveries",
            "Webhook delivery attempts by event type and outcome (delivered, failed).",
            ["type", "outcome"],
            registry=registry,
        )
        self.oldest_pending = Gauge(
            "statreport_webhook_oldest_pending_seconds",
            "How long the oldest pending webhook delivery has waited (0: none pending).",
            registry=registry,
        )


class RequestMetricsMiddleware:
    """Counts requests by route template; logs one line per request, without client addresses."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            record_request(self.metrics, template, scope["method"], status, started)


_http_log = logging.getLogger("statreport.http")


def record_request(
    metrics: ApiMetrics, template: str, method: str, status: int, started: float
) -> None:
    """Count one answered request by route template; log it when it failed (or at DEBUG)."""
    metrics.requests.labels(template, method, str(status)).inc()
    if status >= 400 or _http_log.isEnabledFor(logging.DEBUG):
        _http_log.log(
            logging.INFO if status < 500 else logging.WARNING,
            "event=http.request method=%s route=%s status=%d ms=%.1f",
            method,
            template,
            status,
            (time.perf_counter() - started) * 1000,
        )


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=... logger=... event=... key=value`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().replace("\n", " ")
        if not message.startswith("event="):
            message = f"msg={message!r}"
        line = (
            f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}Z level={record.levelname.lower()} "
            f"logger={record.name} {message}"
        )
        if record.exc_info:
            line += " exc=" + repr(self.formatException(record.exc_info))
        return line


def configure_logging(level: str) -> None:
    """Send every log line, ours and uvicorn's, to stderr as key=value."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = KeyValueFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # uvicorn's access log would record client addresses; statreport stores none.
    logging.getLogger("uvicorn.access").disabled = True
