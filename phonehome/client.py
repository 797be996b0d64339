"""The reference phone-home client: a disk spool, batches, backoff with full jitter."""

from __future__ import annotations

import json
import logging
import os
import random
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from core.files import write_durably
from ingest.schemas import MAX_BATCH

log = logging.getLogger("statreport.client")

PERMANENT_STATUSES = {400, 409, 413, 415, 422}


class SendFailed(Exception):
    """The server could not be reached, or kept refusing, within the attempts allowed."""


class KeyRefused(Exception):
    """401: the licence key is missing, unknown or revoked. Nothing is dropped."""


@dataclass
class Rejected(Exception):
    """The server refused these reports for good (4xx other than 401 and 429)."""

    status: int
    detail: str
    bad_indexes: set[int] = field(default_factory=set)

    def __str__(self) -> str:
        return f"the server answered {self.status}: {self.detail}"


@dataclass(frozen=True)
class SendResult:
    """What the server acknowledged for one request."""

    stored: int
    duplicates: int


def verify_context(ca_cert: Path | None) -> ssl.SSLContext:
    """TLS verification: the system's CAs, or one certificate (e.g. the server's self-signed)."""
    if ca_cert is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=str(ca_cert))


class PhoneHomeClient:
    """Sends reports to ``POST /v1/reports`` and retries what can be retried."""

    def __init__(
        self,
        server_url: str,
        *,
        license_key: str,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 30.0,
        max_attempts: int = 8,
        base_delay: float = 0.5,
        max_delay: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._http = httpx.Client(
            base_url=server_url.rstrip("/"),
            verify=verify,
            timeout=timeout,
            headers={"Authorization": f"Bearer {license_key}"},
        )
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._jitter = jitter

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> PhoneHomeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**attempt)]."""
        return float(self._jitter() * min(self.max_delay, self.base_delay * 2**attempt))

    def send(self, reports: Sequence[dict[str, Any]]) -> SendResult:
        """Send one request (a single report or a batch), retrying transient failures."""
        body: dict[str, Any] = dict(reports[0]) if len(reports) == 1 else {"reports": reports}
        for attempt in range(self.max_attempts):
            delay: float | None
            try:
                response = self._http.post("/v1/reports", json=body)
            except httpx.TransportError as exc:
                delay = self.backoff(attempt)
                log.warning("event=client.transport_error error=%r retry_in=%.1f", str(exc), delay)
            else:
                if response.status_code == 202:
                    answer = response.json()
                    return SendResult(stored=answer["stored"], duplicates=answer["duplicates"])
                problem = _problem(response)
                if response.status_code == 401:
                    raise KeyRefused(problem.get("detail", "the licence key was refused"))
                if response.status_code in PERMANENT_STATUSES:
                    raise Rejected(
                        status=response.status_code,
                        detail=str(problem.get("detail", response.text[:200])),
                        bad_indexes=_bad_indexes(problem) if len(reports) > 1 else {0},
                    )
                delay = _retry_after(response)
                if delay is None:
                    delay = self.backoff(attempt)
                delay = min(delay, self.max_delay)
                log.warning(
                    "event=client.retry status=%d retry_in=%.1f", response.status_code, delay
                )
            if attempt + 1 < self.max_attempts:
                self._sleep(delay)
        raise SendFailed(f"gave up after {self.max_attempts} attempts; the reports stay spooled")


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _bad_indexes(problem: dict[str, Any]) -> set[int]:
    indexes: set[int] = set()
    for error in problem.get("errors", []):
        loc = error.get("loc", [])
        if len(loc) >= 2 and loc[0] == "reports" and isinstance(loc[1], int):
            indexes.add(loc[1])
    return indexes


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


#: How long the spool keeps a copy of each report the server acknowledged: as long as the
#: server can be asked about it (it refuses reports older than 400 days).
KEEP_SENT = timedelta(days=400)


class Spool:
    """Reports on disk, one file each, written atomically; survives restarts. ``pending/``
    waits to be sent, ``sent/`` keeps what the server acknowledged for 400 days (the
    administrator's own record, to check a statement against), ``rejected/`` what it refused
    for good, with the reason."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending_dir = directory / "pending"
        self.sent_dir = directory / "sent"
        self.rejected_dir = directory / "rejected"
        for folder in (self.pending_dir, self.sent_dir, self.rejected_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def add(self, report: dict[str, Any]) -> Path:
        """Persist one report before any attempt to send it."""
        name = f"{time.time_ns():020d}-{report['report_id']}.json"
        return write_durably(self.pending_dir / name, json.dumps(report).encode())

    def pending(self) -> list[tuple[Path, dict[str, Any]]]:
        """Spooled reports, oldest first."""
        entries = []
        for path in sorted(self.pending_dir.glob("*.json")):
            entries.append((path, json.loads(path.read_text())))
        return entries

    def acknowledged(self, paths: Sequence[Path], *, now: float | None = None) -> None:
        """Move acknowledged reports to ``sent/``; forget those sent over 400 days ago."""
        for path in paths:
            os.replace(path, self.sent_dir / path.name)
        oldest = ((now if now is not None else time.time()) - KEEP_SENT.total_seconds()) * 1e9
        for path in self.sent_dir.glob("*.json"):
            stamp = path.name.split("-", 1)[0]
            if stamp.isdigit() and int(stamp) < oldest:
                path.unlink(missing_ok=True)

    def reject(self, path: Path, *, status: int, detail: str) -> None:
        """Move a report the server refused for good aside, with the reason."""
        target = self.rejected_dir / path.name
        os.replace(path, target)
        reason = {"status": status, "detail": detail, "at": datetime.now(UTC).isoformat()}
        write_durably(target.with_suffix(".reason.json"), json.dumps(reason).encode())

    def next_identity(self, *, advance: bool = True) -> tuple[str, int]:
        """This installation's instance_id (created once) and its next sequence number.

        With ``advance=False`` the sequence number is only looked at, not used up.
        """
        state_path = self.directory / "instance.json"
        known = state_path.exists()
        if known:
            state = json.loads(state_path.read_text())
        else:
            state = {"instance_id": str(uuid.uuid4()), "sequence": -1}
        sequence: int = state["sequence"] + 1
        if advance:
            state["sequence"] = sequence
        if advance or not known:
            write_durably(state_path, json.dumps(state).encode())
        return state["instance_id"], sequence


@dataclass
class FlushSummary:
    """What one flush of the spool achieved."""

    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    remaining: int = 0
    error: str | None = None


def flush(
    spool: Spool,
    client: PhoneHomeClient,
    *,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> FlushSummary:
    """Send the spool's backlog in batches; keep what was acknowledged in ``sent/``."""
    batch_size = max(1, min(batch_size, MAX_BATCH))
    summary = FlushSummary()
    queue = spool.pending()
    while queue:
        batch, queue = queue[:batch_size], queue[batch_size:]
        try:
            result = client.send([report for _, report in batch])
        except Rejected as rejected:
            if rejected.status == 413 and len(batch) > 1:
                half = len(batch) // 2
                queue = batch[:half] + batch[half:] + queue
                batch_size = half
                continue
            bad = rejected.bad_indexes or set(range(len(batch)))
            for index in sorted(bad):
                spool.reject(batch[index][0], status=rejected.status, detail=rejected.detail)
            summary.rejected += len(bad)
            log.warning("event=client.rejected status=%d count=%d", rejected.status, len(bad))
            queue = [entry for i, entry in enumerate(batch) if i not in bad] + queue
            continue
        except (SendFailed, KeyRefused) as exc:
            summary.error = str(exc)
            summary.remaining = len(batch) + len(queue)
            return summary
        spool.acknowledged([path for path, _ in batch])
        summary.stored += result.stored
        summary.duplicates += result.duplicates
        if progress is not None:
            progress(len(batch))
    return summary


def build_report(
    *,
    instance_id: str,
    sequence: int | None,
    environment: str,
    product_version: str,
    metrics: dict[str, int],
    generated_at: datetime | None = None,
) -> dict[str, Any]:
    """A wire-format v1 report with a fresh report_id."""
    moment = (generated_at or datetime.now(UTC)).astimezone(UTC)
    report: dict[str, Any] = {
        "schema_version": 1,
        "report_id": str(uuid.uuid4()),
        "instance_id": instance_id,
        "environment": environment,
        "generated_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "product_version": product_version,
        "metrics": metrics,
    }
    if sequence is not None:
        report["sequence"] = sequence
    return report
