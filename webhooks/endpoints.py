"""Routes of the webhooks (SPEC §14): endpoints (viewer reads, admin changes), the delivery
log, replay and test."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from core.dependencies import ActorDep, SettingsDep, StaffOnly, StoreDep
from core.errors import NotFound
from core.openapi import problem
from webhooks import service
from webhooks.schemas import Attempt, Delivery, Webhook, WebhookCreate, WebhookCreated, WebhookPatch
from webhooks.sender import Sender

router = APIRouter(tags=["webhooks"], dependencies=[StaffOnly])

WebhookId = Annotated[str, Path(pattern=r"^wh_[0-9a-f]{16}$")]
EventId = Annotated[str, Path(pattern=r"^evt_[a-z2-7]{26}$")]


async def get_sender(request: Request) -> Sender:
    """The process's sender, opened in the app's lifespan."""
    sender: Sender = request.app.state.webhook_sender
    return sender


SenderDep = Annotated[Sender, Depends(get_sender)]


@router.post(
    "/v1/webhooks",
    status_code=201,
    summary="Register a webhook endpoint (its secret is shown once)",
)
async def post_webhook(
    body: WebhookCreate, store: StoreDep, settings: SettingsDep, actor: ActorDep
) -> WebhookCreated:
    """https only, to a host whose addresses are all public (unless
    ``STATREPORT_WEBHOOK_ALLOW_PRIVATE``); 422 otherwise. Audited."""
    return await service.create(store, settings, request=body, actor=actor)


@router.get("/v1/webhooks", summary="Webhook endpoints (never a secret)")
async def get_webhooks(store: StoreDep) -> list[Webhook]:
    """Oldest first."""
    return await service.list_endpoints(store)


@router.get("/v1/webhooks/{webhook_id}", summary="One webhook endpoint (never its secret)")
async def get_webhook(webhook_id: WebhookId, store: StoreDep) -> Webhook:
    """As listed."""
    return await service.get(store, webhook_id=webhook_id)


@router.patch("/v1/webhooks/{webhook_id}", summary="Change a webhook endpoint")
async def patch_webhook(
    webhook_id: WebhookId,
    body: WebhookPatch,
    store: StoreDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> Webhook:
    """Its url, events, description, or whether it is enabled; enabling it again clears
    why it was disabled. Audited."""
    return await service.update(store, settings, webhook_id=webhook_id, patch=body, actor=actor)


@router.delete("/v1/webhooks/{webhook_id}", status_code=204, summary="Remove a webhook endpoint")
async def delete_webhook(webhook_id: WebhookId, store: StoreDep, actor: ActorDep) -> None:
    """With its delivery log. Audited."""
    await service.delete(store, webhook_id=webhook_id, actor=actor)


@router.post(
    "/v1/webhooks/{webhook_id}/rotate-secret",
    summary="A new secret (shown once); both sign for 24 hours",
)
async def rotate_secret(webhook_id: WebhookId, store: StoreDep, actor: ActorDep) -> WebhookCreated:
    """For 24 hours every delivery carries two signatures, the new secret's and the old
    one's, so a receiver can switch without missing one. Audited."""
    return await service.rotate(store, webhook_id=webhook_id, actor=actor)


@router.get("/v1/webhooks/{webhook_id}/deliveries", summary="A webhook endpoint's delivery log")
async def get_deliveries(
    webhook_id: WebhookId,
    store: StoreDep,
    settings: SettingsDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Delivery]:
    """Newest first, each with its attempts, last answer or error, next attempt and payload."""
    return await service.deliveries(
        store, settings, webhook_id=webhook_id, status=status, limit=limit
    )


@router.post(
    "/v1/webhooks/{webhook_id}/deliveries/{event_id}/replay",
    summary="Send a delivery again now, with the same id",
    responses=problem(NotFound, "No such endpoint, or it never had that event"),
)
async def replay(
    webhook_id: WebhookId, event_id: EventId, store: StoreDep, sender: SenderDep
) -> Attempt:
    """Answers the attempt's outcome; a failure goes back on the retry schedule."""
    await service.replayable(store, webhook_id=webhook_id, event_id=event_id)
    return await sender.send(webhook_id, event_id, retry=True)


@router.post("/v1/webhooks/{webhook_id}/test", summary="Send a webhook.test event now")
async def test(webhook_id: WebhookId, store: StoreDep, sender: SenderDep) -> Attempt:
    """Answers the attempt's outcome (a test is not retried); it is in the delivery log."""
    event_id = await service.test_event(store, webhook_id=webhook_id)
    return await sender.send(webhook_id, event_id, retry=False)
