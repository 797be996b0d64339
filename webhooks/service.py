"""Webhook endpoints and their deliveries (SPEC §14): register, change, rotate, remove (each
audited), the delivery log, a replay and a test. Sending is ``webhooks.sender``'s work."""

from __future__ import annotations

import base64
import json
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from analytics.announcements import TEST_EVENT
from core import repository as audit_repository
from core.auth import Actor
from core.database import Connection
from core.errors import InvalidPayload, NotFound
from core.settings import Settings
from core.store import Store
from webhooks import addresses, payloads, repository
from webhooks.schemas import Delivery, Webhook, WebhookCreate, WebhookCreated, WebhookPatch

log = logging.getLogger("statreport.webhooks")

#: For how long, after a rotation, deliveries are signed with the old secret too.
ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    """``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _public(row: dict[str, Any], *, now: datetime) -> Webhook:
    until = row.get("previous_until")
    return Webhook(
        webhook_id=row["webhook_id"],
        url=row["url"],
        events=list(row["events"]),
        description=row["description"],
        enabled=row["enabled"],
        created_at=row["created_at"],
        disabled_reason=row.get("disabled_reason"),
        previous_secret_until=until if until is not None and until > now else None,
    )


def _audited(row: dict[str, Any]) -> dict[str, Any]:
    """An endpoint as the audit log keeps it: never a secret."""
    return {
        k: v
        for k, v in row.items()
        if k not in ("secret", "previous_secret", "previous_until", "failing_since")
    }


async def _check_address(url: str, settings: Settings) -> None:
    try:
        await addresses.resolve(url, allow_private=settings.webhook_allow_private)
    except addresses.RefusedAddress as exc:
        raise InvalidPayload(
            f"The webhook URL is refused: {exc}.",
            errors=[{"loc": ["body", "url"], "msg": str(exc)}],
        ) from None


async def create(
    store: Store, settings: Settings, *, request: WebhookCreate, actor: Actor
) -> WebhookCreated:
    """Register an endpoint; its secret is in this answer only."""
    await _check_address(request.url, settings)
    now = datetime.now(UTC)
    row = {
        "webhook_id": "wh_" + secrets.token_hex(8),
        "url": request.url,
        "events": request.events,
        "description": request.description,
        "enabled": True,
        "created_at": now,
        "secret": new_secret(),
    }

    def write(con: Connection) -> None:
        repository.insert_endpoint(con, endpoint=row)
        audit_repository.append_audit(
            con,
            at=now,
            actor=actor,
            action="webhook.create",
            target=f"webhook:{row['webhook_id']}",
            before=None,
            after=_audited(row),
        )

    await store.write(write)
    log.info("event=webhook.created webhook=%s actor=%s", row["webhook_id"], actor)
    return WebhookCreated(**_public(row, now=now).model_dump(), secret=row["secret"])


async def list_endpoints(store: Store) -> list[Webhook]:
    """Every endpoint, oldest first, never a secret."""
    now = datetime.now(UTC)
    return [_public(row, now=now) for row in await store.read(repository.endpoints)]


async def _row(store: Store, webhook_id: str) -> dict[str, Any]:
    row = await store.read(lambda con: repository.endpoint(con, webhook_id=webhook_id))
    if row is None:
        raise NotFound(f"No webhook {webhook_id!r}; GET /v1/webhooks lists them.")
    return row


async def get(store: Store, *, webhook_id: str) -> Webhook:
    """One endpoint, never its secret."""
    return _public(await _row(store, webhook_id), now=datetime.now(UTC))


async def update(
    store: Store, settings: Settings, *, webhook_id: str, patch: WebhookPatch, actor: Actor
) -> Webhook:
    """Change an endpoint's address, events, description or whether it is enabled."""
    changes = patch.model_dump(exclude_none=True)
    if "url" in changes:
        await _check_address(changes["url"], settings)
    if changes.get("enabled") is True:
        changes.update(disabled_reason=None, failing_since=None)
    return await _change(store, webhook_id, changes, actor=actor, action="webhook.update")


async def _change(
    store: Store, webhook_id: str, changes: dict[str, Any], *, actor: Actor, action: str
) -> Webhook:
    def write(con: Connection) -> dict[str, Any] | None:
        before = repository.endpoint(con, webhook_id=webhook_id)
        if before is None:
            return None
        if changes:
            repository.update_endpoint(con, webhook_id=webhook_id, changes=changes)
        after = repository.endpoint(con, webhook_id=webhook_id)
        assert after is not None
        audit_repository.append_audit(
            con,
            at=datetime.now(UTC),
            actor=actor,
            action=action,
            target=f"webhook:{webhook_id}",
            before=_audited(before),
            after=_audited(after),
        )
        return after

    row = await store.write(write)
    if row is None:
        raise NotFound(f"No webhook {webhook_id!r}; GET /v1/webhooks lists them.")
    log.info("event=%s webhook=%s actor=%s", action, webhook_id, actor)
    return _public(row, now=datetime.now(UTC))


async def rotate(store: Store, *, webhook_id: str, actor: Actor) -> WebhookCreated:
    """A new secret, shown once; for 24 hours every delivery is signed with both."""
    current = await _row(store, webhook_id)
    secret = new_secret()
    now = datetime.now(UTC)
    changed = await _change(
        store,
        webhook_id,
        {
            "secret": secret,
            "previous_secret": current["secret"],
            "previous_until": now + ROTATION_OVERLAP,
        },
        actor=actor,
        action="webhook.rotate_secret",
    )
    return WebhookCreated(**changed.model_dump(), secret=secret)


async def delete(store: Store, *, webhook_id: str, actor: Actor) -> None:
    """Remove an endpoint and its delivery log."""

    def write(con: Connection) -> bool:
        before = repository.endpoint(con, webhook_id=webhook_id)
        if before is None:
            return False
        repository.delete_endpoint(con, webhook_id=webhook_id)
        audit_repository.append_audit(
            con,
            at=datetime.now(UTC),
            actor=actor,
            action="webhook.delete",
            target=f"webhook:{webhook_id}",
            before=_audited(before),
            after=None,
        )
        return True

    if not await store.write(write):
        raise NotFound(f"No webhook {webhook_id!r}; GET /v1/webhooks lists them.")
    log.info("event=webhook.deleted webhook=%s actor=%s", webhook_id, actor)


def _delivery(row: dict[str, Any], settings: Settings) -> Delivery:
    data = json.loads(row["data"])
    body = payloads.body(
        kind=row["type"],
        created_at=row["event_created_at"],
        data=data,
        public_url=settings.public_url,
    )
    return Delivery(
        event_id=row["event_id"],
        type=row["type"],
        status=row["status"],
        attempts=row["attempts"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        next_attempt_at=row["next_attempt_at"] if row["status"] == "pending" else None,
        delivered_at=row["delivered_at"],
        created_at=row["created_at"],
        payload=json.loads(body),
    )


async def deliveries(
    store: Store, settings: Settings, *, webhook_id: str, status: str | None, limit: int = 100
) -> list[Delivery]:
    """An endpoint's delivery log, newest first."""
    await _row(store, webhook_id)
    rows = await store.read(
        lambda con: repository.deliveries(con, webhook_id=webhook_id, status=status, limit=limit)
    )
    return [_delivery(row, settings) for row in rows]


async def test_event(store: Store, *, webhook_id: str) -> str:
    """A new ``webhook.test`` event for one endpoint, in the outbox; its id."""
    await _row(store, webhook_id)
    event_id = "evt_" + base64.b32encode(secrets.token_bytes(20)).decode().lower()[:26]
    now = datetime.now(UTC)
    await store.write(
        lambda con: repository.insert_event(
            con,
            event_id=event_id,
            kind=TEST_EVENT,
            at=now,
            data={"webhook_id": webhook_id, "message": "a test of this endpoint"},
        )
    )
    return event_id


async def replayable(store: Store, *, webhook_id: str, event_id: str) -> None:
    """404 unless the endpoint has (or had) a delivery of that event."""
    await _row(store, webhook_id)
    found = await store.read(
        lambda con: repository.delivery(con, webhook_id=webhook_id, event_id=event_id)
    )
    if found is None:
        raise NotFound(
            f"Webhook {webhook_id} has no delivery of {event_id!r}; its delivery log lists them."
        )
