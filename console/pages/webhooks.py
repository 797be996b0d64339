"""Webhooks (SPEC §14): the endpoints, their recent deliveries and failures; an admin adds,
edits, tests, rotates, replays and removes there, through the same services as the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, Response

from analytics.announcements import EVENT_TYPES
from console.sessions import COOKIE
from console.web import (
    ConsoleRoute,
    FormDep,
    SessionDep,
    actor,
    confirmation,
    confirmed,
    page,
    see_other,
    sessions_of,
)
from core.dependencies import SettingsDep, StoreDep
from webhooks import service
from webhooks.endpoints import EventId, SenderDep, WebhookId
from webhooks.schemas import WebhookCreate, WebhookPatch

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)

#: Deliveries each endpoint shows on the list page.
RECENT = 5


def _events(form: Mapping[str, str]) -> list[str]:
    """The event types ticked in a form (one checkbox each), or every type."""
    if form.get("event.*"):
        return ["*"]
    return [kind for kind in EVENT_TYPES if form.get(f"event.{kind}")]


@router.get("/webhooks")
async def webhook_list(
    request: Request, session: SessionDep, store: StoreDep, settings: SettingsDep
) -> HTMLResponse:
    """Every endpoint with its latest deliveries and how many failed."""
    endpoints = await service.list_endpoints(store)
    recent = {
        e.webhook_id: await service.deliveries(
            store, settings, webhook_id=e.webhook_id, status=None, limit=RECENT
        )
        for e in endpoints
    }
    failed = {
        e.webhook_id: len(
            await service.deliveries(store, settings, webhook_id=e.webhook_id, status="failed")
        )
        for e in endpoints
    }
    once = sessions_of(request).take_once
    return page(
        request,
        "webhooks.html.j2",
        session=session,
        endpoints=endpoints,
        recent=recent,
        failed=failed,
        event_types=EVENT_TYPES,
        created=await once(request.cookies.get(COOKIE), "webhook"),
        outcome=await once(request.cookies.get(COOKIE), "webhook-outcome"),
        allow_private=settings.webhook_allow_private,
    )


@router.post("/webhooks")
async def add_webhook(
    request: Request, form: FormDep, session: SessionDep, store: StoreDep, settings: SettingsDep
) -> Response:
    """Register an endpoint; the list shows its secret once."""
    asked = WebhookCreate.model_validate(
        {
            "url": form.get("url", ""),
            "events": _events(form),
            "description": form.get("description", ""),
        }
    )
    created = await service.create(store, settings, request=asked, actor=actor(session))
    await sessions_of(request).show_once(request.cookies.get(COOKIE), "webhook", created)
    return see_other("/ui/webhooks")


@router.get("/webhooks/{webhook_id}")
async def webhook_page(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    webhook_id: WebhookId,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
) -> HTMLResponse:
    """One endpoint: its settings (an admin edits them) and its delivery log."""
    endpoint = await service.get(store, webhook_id=webhook_id)
    log = await service.deliveries(store, settings, webhook_id=webhook_id, status=status)
    once = sessions_of(request).take_once
    return page(
        request,
        "webhook.html.j2",
        session=session,
        endpoint=endpoint,
        deliveries=log,
        shown_status=status or "",
        event_types=EVENT_TYPES,
        created=await once(request.cookies.get(COOKIE), "webhook"),
        outcome=await once(request.cookies.get(COOKIE), "webhook-outcome"),
    )


@router.post("/webhooks/{webhook_id}")
async def edit_webhook(
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    webhook_id: WebhookId,
) -> Response:
    """Change its address, events, description, or whether it is enabled."""
    patch = WebhookPatch.model_validate(
        {
            "url": form.get("url", ""),
            "events": _events(form),
            "description": form.get("description", ""),
            "enabled": form.get("enabled") == "true",
        }
    )
    await service.update(store, settings, webhook_id=webhook_id, patch=patch, actor=actor(session))
    return see_other(f"/ui/webhooks/{webhook_id}")


@router.post("/webhooks/{webhook_id}/test")
async def test_webhook(
    request: Request,
    form: FormDep,
    store: StoreDep,
    sender: SenderDep,
    webhook_id: WebhookId,
) -> Response:
    """Send a ``webhook.test`` now and say what came of it."""
    event_id = await service.test_event(store, webhook_id=webhook_id)
    attempt = await sender.send(webhook_id, event_id, retry=False)
    await sessions_of(request).show_once(request.cookies.get(COOKIE), "webhook-outcome", attempt)
    back = "/ui/webhooks" if form.get("back") == "/ui/webhooks" else f"/ui/webhooks/{webhook_id}"
    return see_other(back)


@router.post("/webhooks/{webhook_id}/deliveries/{event_id}/replay")
async def replay(
    request: Request,
    form: FormDep,
    store: StoreDep,
    sender: SenderDep,
    webhook_id: WebhookId,
    event_id: EventId,
) -> Response:
    """Send a delivery again now, with the same id, and say what came of it."""
    await service.replayable(store, webhook_id=webhook_id, event_id=event_id)
    attempt = await sender.send(webhook_id, event_id, retry=True)
    await sessions_of(request).show_once(request.cookies.get(COOKIE), "webhook-outcome", attempt)
    return see_other(f"/ui/webhooks/{webhook_id}")


@router.post("/webhooks/{webhook_id}/rotate-secret")
async def rotate(
    request: Request, form: FormDep, session: SessionDep, store: StoreDep, webhook_id: WebhookId
) -> Response:
    """A new secret, once confirmed; shown once."""
    if not confirmed(form):
        return confirmation(
            request,
            session,
            title=f"Rotate the secret of {webhook_id}?",
            consequence="A new secret is made and shown once. For 24 hours every delivery "
            "carries two signatures, with the new secret and with the current one, so the "
            "receiver can switch to the new one without missing a delivery; after that only "
            "the new one signs.",
            confirm_label="Rotate the secret",
            fields={},
            back=f"/ui/webhooks/{webhook_id}",
        )
    rotated = await service.rotate(store, webhook_id=webhook_id, actor=actor(session))
    await sessions_of(request).show_once(request.cookies.get(COOKIE), "webhook", rotated)
    return see_other(f"/ui/webhooks/{webhook_id}")


@router.post("/webhooks/{webhook_id}/remove")
async def remove(
    request: Request, form: FormDep, session: SessionDep, store: StoreDep, webhook_id: WebhookId
) -> Response:
    """Remove an endpoint and its delivery log, once confirmed."""
    if not confirmed(form):
        return confirmation(
            request,
            session,
            title=f"Remove the webhook {webhook_id}?",
            consequence="Nothing is sent to it from then on, and its delivery log goes with "
            "it; pending deliveries are dropped. To pause it instead, disable it.",
            confirm_label=f"Remove {webhook_id}",
            fields={},
            back=f"/ui/webhooks/{webhook_id}",
        )
    await service.delete(store, webhook_id=webhook_id, actor=actor(session))
    return see_other("/ui/webhooks")
