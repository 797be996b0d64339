"""The background sender (SPEC §14): every pending delivery whose time has come is sent,
signed with the Standard Webhooks library, and what came of it recorded: delivered on a 2xx
within 10 s; a 410 disables the endpoint; anything else is retried on the schedule, then
failed; an endpoint failing for 5 days is disabled.

Attempts run as tasks of the server's event loop, at most a few at once per endpoint and in
all, each bounded to 10 s whole (a receiver that answers a byte a second included), so a
slow or dead receiver holds only its own endpoint's slots: never ingest, the console or
another endpoint. Deliveries live in the database, so a crash loses none: a restart finds
them pending and sends them, with the same ``webhook-id``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
from standardwebhooks import Webhook as Signer

from core import repository as audit_repository
from core.auth import Actor
from core.database import Connection
from core.settings import Settings
from core.store import Store
from core.telemetry import WebhookMetrics
from webhooks import addresses, payloads, repository
from webhooks.schemas import Attempt

log = logging.getLogger("statreport.webhooks")

#: An attempt succeeds on a 2xx within this many seconds, the answer's head included.
ATTEMPT_SECONDS = 10.0
#: An endpoint whose deliveries have all failed this long is disabled.
DISABLE_AFTER = timedelta(days=5)
#: Attempts in flight at once: per endpoint, and in all.
PER_ENDPOINT, IN_ALL = 4, 32
#: Due deliveries taken from the database at once, per endpoint and in all; they wait in
#: memory for their endpoint's slot, so that one look at the database feeds many attempts.
QUEUED_PER_ENDPOINT, QUEUED = 64, 1024
#: A delivery taken for an attempt is not due for anyone else this long: the attempt's bound
#: and a margin. A process that died mid-attempt leaves it due again after that.
CLAIM_SECONDS = ATTEMPT_SECONDS + 20
#: How often the sender looks for due deliveries when nothing woke it.
POLL_SECONDS = 1.0
#: How long it lets finished attempts gather before it looks again.
REFILL_SECONDS = 0.05
_SYSTEM = Actor(name="system")


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    status_code: int | None
    error: str | None
    retry_after: float | None
    seconds: float

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def signatures(row: dict[str, Any], *, event_id: str, at: datetime, body: bytes) -> str:
    """``v1,…`` with the current secret, and with the previous one during a rotation's 24
    hours, separated by a space."""
    keys = [row["secret"]]
    until = row.get("previous_until")
    if row.get("previous_secret") and until is not None and until > at:
        keys.append(row["previous_secret"])
    return " ".join(Signer(key).sign(event_id, at, body) for key in keys)


class Sender:
    """Sends the outbox; one per process."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        metrics: WebhookMetrics,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(ATTEMPT_SECONDS),
            limits=httpx.Limits(max_connections=IN_ALL, max_keepalive_connections=8),
        )
        self._in_flight: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._settling: list[tuple[Callable[[Connection], None], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._claiming: list[tuple[tuple[str, str], asyncio.Future[bool]]] = []
        self._claimer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin sending in the background."""
        self._task = asyncio.create_task(self._run(), name="webhook-sender")

    async def stop(self) -> None:
        """Stop sending; an attempt in flight is abandoned and stays pending."""
        if self._task is not None:
            self._task.cancel()
        for task in list(self._in_flight.values()):
            task.cancel()
        await asyncio.gather(
            *(t for t in [self._task, *self._in_flight.values()] if t is not None),
            return_exceptions=True,
        )
        await self._client.aclose()

    async def _run(self) -> None:
        observed = 0.0
        while True:
            try:
                await self._send_due()
                if time.monotonic() - observed >= POLL_SECONDS:
                    await self._observe()
                    observed = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failing store: try again at the next poll
                log.exception("event=webhook.sender_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()
            await asyncio.sleep(REFILL_SECONDS)  # let the ends of many attempts gather

    async def _send_due(self) -> None:
        now = self.clock()
        due = await self.store.read(
            lambda con: repository.due_deliveries(
                con, now=now, per_endpoint=QUEUED_PER_ENDPOINT, limit=QUEUED
            )
        )
        queued = Counter(webhook_id for webhook_id, _ in self._in_flight)
        for row in due:
            key = (row["webhook_id"], row["event_id"])
            if key in self._in_flight or len(self._in_flight) >= QUEUED:
                continue
            if queued[row["webhook_id"]] >= QUEUED_PER_ENDPOINT:
                continue
            queued[row["webhook_id"]] += 1
            task = asyncio.create_task(self._deliver(row["webhook_id"], row["event_id"]))
            self._in_flight[key] = task
            task.add_done_callback(partial(self._done, key))

    def _done(self, key: tuple[str, str], _: object) -> None:
        self._in_flight.pop(key, None)
        if len(self._in_flight) < QUEUED // 2:
            self._wake.set()  # room for more: look for them without waiting for the poll

    def _slot(self, webhook_id: str) -> asyncio.Semaphore:
        """The endpoint's attempts in flight at once: PER_ENDPOINT, whatever waits behind."""
        return self._slots.setdefault(webhook_id, asyncio.Semaphore(PER_ENDPOINT))

    async def _observe(self) -> None:
        oldest = await self.store.read(repository.oldest_pending)
        age = 0.0 if oldest is None else max((self.clock() - oldest).total_seconds(), 0.0)
        self.metrics.oldest_pending.set(age)

    async def _deliver(self, webhook_id: str, event_id: str) -> None:
        """Send a delivery the loop found due, if it still is as stored now: a list read
        before another attempt of it settled must not send it twice."""
        try:
            async with self._slot(webhook_id):  # checked once its turn has come
                await self._send(webhook_id, event_id, retry=True, only_if_due=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event=webhook.attempt_failed webhook=%s event=%s", webhook_id, event_id)

    async def send(self, webhook_id: str, event_id: str, *, retry: bool) -> Attempt:
        """One attempt now, recorded: a replay, a test. Without ``retry`` a failure is final
        (a test)."""
        attempt = await self._send(webhook_id, event_id, retry=retry, only_if_due=False)
        assert attempt is not None
        return attempt

    async def _send(
        self, webhook_id: str, event_id: str, *, retry: bool, only_if_due: bool
    ) -> Attempt | None:
        """One attempt, recorded; with ``only_if_due``, none unless the delivery is pending
        and due as stored now, its endpoint enabled (read in the same look as the rest)."""
        endpoint, event, delivery = await self.store.read(
            lambda con: (
                repository.endpoint(con, webhook_id=webhook_id),
                repository.event(con, event_id=event_id),
                repository.delivery(con, webhook_id=webhook_id, event_id=event_id),
            )
        )
        if endpoint is None or event is None:
            raise LookupError(f"no webhook {webhook_id} or event {event_id}")
        at = self.clock()
        if only_if_due and not (
            endpoint["enabled"]
            and delivery is not None
            and delivery["status"] == "pending"
            and delivery["next_attempt_at"] is not None
            and delivery["next_attempt_at"] <= at
            # Taken for this attempt, unless another process (or look) took it first.
            and await self._claim((webhook_id, event_id))
        ):
            return None
        body = payloads.body(
            kind=event["type"],
            created_at=event["created_at"],
            data=_loads(event["data"]),
            public_url=self.settings.public_url,
        )
        outcome = await self._attempt(endpoint, event_id=event_id, at=at, body=body)
        attempts = (delivery["attempts"] if delivery else 0) + 1
        await self._record(
            partial(
                self._settle,
                endpoint=endpoint,
                event_id=event_id,
                attempts=attempts,
                outcome=outcome,
                retry=retry,
            )
        )
        result = "delivered" if outcome.delivered else "failed"
        self.metrics.deliveries.labels(type=event["type"], outcome=result).inc()
        log.info(
            "event=webhook.attempt webhook=%s event_id=%s type=%s attempt=%d status=%s "
            "seconds=%.3f error=%r",
            webhook_id,
            event_id,
            event["type"],
            attempts,
            outcome.status_code,
            outcome.seconds,
            outcome.error,
        )
        return Attempt(
            event_id=event_id,
            delivered=outcome.delivered,
            status_code=outcome.status_code,
            error=outcome.error,
            seconds=round(outcome.seconds, 3),
        )

    async def _record(self, settle: Callable[[Connection], None]) -> None:
        """Record an attempt's outcome, committed with the others that ended meanwhile: one
        transaction for many attempts, not one each (a commit is the slow part of an attempt
        to a fast receiver), and each caller answered once its own is committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._settling.append((settle, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _claim(self, key: tuple[str, str]) -> bool:
        """Take a due delivery for one attempt (``CLAIM_SECONDS``), with the others asked for
        meanwhile in one write; False when it was no longer due (another process took it)."""
        taken: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._claiming.append((key, taken))
        if self._claimer is None or self._claimer.done():
            self._claimer = asyncio.create_task(self._claim_batches())
        return await taken

    async def _claim_batches(self) -> None:
        while self._claiming:
            batch, self._claiming = self._claiming, []
            now = self.clock()
            try:
                claimed = await self.store.write(
                    partial(
                        repository.claim_due,
                        keys=[key for key, _ in batch],
                        now=now,
                        until=now + timedelta(seconds=CLAIM_SECONDS),
                    )
                )
            except Exception as exc:
                for _, taken in batch:
                    if not taken.done():
                        taken.set_exception(exc)
                continue
            for key, taken in batch:
                if not taken.done():
                    taken.set_result(key in claimed)

    async def _flush(self) -> None:
        while self._settling:
            batch, self._settling = self._settling, []

            try:
                await self.store.write(partial(_apply, [settle for settle, _ in batch]))
            except Exception as exc:  # nothing of the batch was recorded: each caller knows
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _attempt(
        self, endpoint: dict[str, Any], *, event_id: str, at: datetime, body: bytes
    ) -> Outcome:
        started = time.perf_counter()

        def ended(code: int | None, error: str | None, retry_after: float | None = None) -> Outcome:
            return Outcome(code, error, retry_after, time.perf_counter() - started)

        try:
            target = await addresses.resolve(
                endpoint["url"], allow_private=self.settings.webhook_allow_private
            )
        except addresses.RefusedAddress as exc:
            return ended(None, f"refused: {exc}")
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": "statreport-webhooks",
            "webhook-id": event_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signatures(endpoint, event_id=event_id, at=at, body=body),
        }
        try:
            async with asyncio.timeout(ATTEMPT_SECONDS):
                request = self._client.build_request(
                    "POST",
                    target.url,
                    content=body,
                    headers=headers,
                    extensions={"sni_hostname": target.server_name},
                )
                response = await self._client.send(request, stream=True)
                await response.aclose()  # the status is the answer; the body is not read
        except TimeoutError:
            return ended(None, f"no whole answer within {ATTEMPT_SECONDS:.0f} s")
        except httpx.HTTPError as exc:
            return ended(None, f"{type(exc).__name__}: {exc}"[:500])
        retry_after = (
            _retry_after(response.headers.get("retry-after"))
            if response.status_code in (429, 503)
            else None
        )
        if 300 <= response.status_code < 400:
            return ended(response.status_code, "redirects are not followed", None)
        return ended(response.status_code, None, retry_after)

    def _settle(
        self,
        con: Connection,
        *,
        endpoint: dict[str, Any],
        event_id: str,
        attempts: int,
        outcome: Outcome,
        retry: bool,
    ) -> None:
        now = self.clock()
        webhook_id = endpoint["webhook_id"]
        record = {
            "webhook_id": webhook_id,
            "event_id": event_id,
            "attempts": attempts,
            "at": now,
            "status_code": outcome.status_code,
            "error": outcome.error,
        }
        if outcome.delivered:
            repository.record_attempt(con, status="delivered", next_attempt_at=None, **record)
            repository.update_endpoint(con, webhook_id=webhook_id, changes={"failing_since": None})
            return
        if outcome.status_code == 410:
            repository.record_attempt(con, status="failed", next_attempt_at=None, **record)
            self._disable(con, endpoint, "the receiver answered 410 Gone", at=now)
            return
        delays = self.settings.retry_delays
        if not retry or attempts > len(delays):
            repository.record_attempt(con, status="failed", next_attempt_at=None, **record)
        else:
            delay = delays[attempts - 1] * random.uniform(0.9, 1.1)
            delay = max(delay, outcome.retry_after or 0.0)
            repository.record_attempt(
                con,
                status="pending",
                next_attempt_at=now + timedelta(seconds=delay),
                **record,
            )
        failing_since = endpoint.get("failing_since") or now
        if endpoint.get("failing_since") is None:
            repository.update_endpoint(con, webhook_id=webhook_id, changes={"failing_since": now})
        elif now - failing_since >= DISABLE_AFTER:
            self._disable(
                con,
                endpoint,
                f"every delivery failed since {failing_since:%Y-%m-%d %H:%M} UTC",
                at=now,
            )

    def _disable(
        self, con: Connection, endpoint: dict[str, Any], reason: str, *, at: datetime
    ) -> None:
        webhook_id = endpoint["webhook_id"]
        if not endpoint["enabled"]:
            return
        repository.update_endpoint(
            con, webhook_id=webhook_id, changes={"enabled": False, "disabled_reason": reason}
        )
        audit_repository.append_audit(
            con,
            at=at,
            actor=_SYSTEM,
            action="webhook.disable",
            target=f"webhook:{webhook_id}",
            before={"enabled": True},
            after={"enabled": False, "disabled_reason": reason},
        )
        log.warning("event=webhook.disabled webhook=%s reason=%r", webhook_id, reason)


def _apply(settles: list[Callable[[Connection], None]], con: Connection) -> None:
    """Record several attempts in one transaction."""
    for settle in settles:
        settle(con)


def _loads(data: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(data) if isinstance(data, str) else data
    return loaded
