"""The weekly reports: what was sent each week, each email as it was sent, and a run now."""

from __future__ import annotations

import email
import email.policy
import hashlib
from email.message import EmailMessage
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, Response

from console.web import (
    ConsoleRoute,
    FormDep,
    SessionDep,
    attachment,
    page,
    parse_day,
)
from core.identifiers import RecipientPath
from scheduler.endpoints import IsoWeek, WeeklyReporterDep

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)


@router.get("/weekly")
async def weekly(
    request: Request,
    session: SessionDep,
    reporter: WeeklyReporterDep,
    week: Annotated[str | None, Query(pattern=r"^[0-9]{4}-W[0-9]{2}$")] = None,
) -> HTMLResponse:
    """Each ISO week's deliveries and failures; a week's emails as they were sent."""
    weeks = await reporter.weeks()
    chosen = week or (weeks[0]["iso_week"] if weeks else None)
    deliveries = await reporter.deliveries(iso_week=chosen) if chosen else []
    return page(
        request,
        "weekly.html.j2",
        session=session,
        weeks=weeks,
        week=chosen,
        deliveries=deliveries,
        run=None,
        default_as_of=reporter.default_as_of(),
    )


@router.post("/weekly")
async def weekly_run(
    request: Request, form: FormDep, session: SessionDep, reporter: WeeklyReporterDep
) -> HTMLResponse:
    """Run the weekly report now: first as a dry run that sends nothing, then for real."""
    as_of = parse_day(form.get("as_of"), field="as_of")
    dry_run = form.get("action") != "send"
    run = await reporter.run(as_of=as_of, dry_run=dry_run, force=form.get("force") == "on")
    weeks = await reporter.weeks()
    return page(
        request,
        "weekly.html.j2",
        session=session,
        weeks=weeks,
        week=run.iso_week,
        deliveries=await reporter.deliveries(iso_week=run.iso_week),
        run=run,
        dry_run=dry_run,
        default_as_of=run.as_of,
    )


@router.get("/weekly/{iso_week}/{recipient}")
async def weekly_email(
    request: Request,
    session: SessionDep,
    reporter: WeeklyReporterDep,
    iso_week: IsoWeek,
    recipient: RecipientPath,
) -> HTMLResponse:
    """One email as it was sent: its headers, its text, its attachments and its SHA-256."""
    raw = await reporter.delivered_message(iso_week=iso_week, recipient=recipient)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    attachments = [
        {"name": part.get_filename() or "inline chart", "type": part.get_content_type()}
        for part in message.walk()
        if part.get_content_disposition() in ("attachment", "inline") and not part.is_multipart()
    ]
    return page(
        request,
        "email.html.j2",
        session=session,
        iso_week=iso_week,
        recipient=recipient,
        headers=[(k, str(message[k])) for k in ("Subject", "From", "To", "Date") if message[k]],
        text=text,
        attachments=attachments,
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
    )


@router.get("/weekly/{iso_week}/{recipient}/message.eml")
async def weekly_email_raw(
    session: SessionDep,
    reporter: WeeklyReporterDep,
    iso_week: IsoWeek,
    recipient: RecipientPath,
) -> Response:
    """The message byte for byte, to open in a mail program."""
    raw = await reporter.delivered_message(iso_week=iso_week, recipient=recipient)
    return Response(
        raw,
        media_type="message/rfc822",
        headers={"Content-Disposition": attachment(f"{iso_week}-{recipient}.eml")},
    )
