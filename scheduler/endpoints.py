"""The weekly report's routes: run it now, and what was sent for a week."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from core.dependencies import StaffOnly
from core.identifiers import RecipientPath
from scheduler.schemas import DeliveryRecord, WeeklyReportRequest, WeeklyRun
from scheduler.service import WeeklyReporter

router = APIRouter(tags=["weekly report"], dependencies=[StaffOnly])

IsoWeek = Annotated[str, Path(pattern=r"^[0-9]{4}-W[0-9]{2}$")]


async def get_weekly_reporter(request: Request) -> WeeklyReporter:
    """The reporter the scheduler shares, opened in the app's lifespan."""
    reporter: WeeklyReporter = request.app.state.weekly_reporter
    return reporter


WeeklyReporterDep = Annotated[WeeklyReporter, Depends(get_weekly_reporter)]


@router.post("/v1/weekly-reports", summary="Run the weekly report now")
async def post_weekly_report(body: WeeklyReportRequest, reporter: WeeklyReporterDep) -> WeeklyRun:
    """Answers each recipient's delivery: sent, failed, skipped (sent already), or dry_run."""
    return await reporter.run(as_of=body.as_of, dry_run=body.dry_run, force=body.force)


@router.get(
    "/v1/weekly-reports/{iso_week}", summary="What was sent for one ISO week, and what failed"
)
async def get_weekly_report(iso_week: IsoWeek, reporter: WeeklyReporterDep) -> list[DeliveryRecord]:
    """Each recipient's latest attempt for ``iso_week`` (``2026-W48``); empty if none yet."""
    return await reporter.deliveries(iso_week=iso_week)


@router.get(
    "/v1/weekly-reports/{iso_week}/{recipient}",
    summary="One recipient's email of one ISO week, as it was sent",
    response_class=Response,
    responses={200: {"content": {"message/rfc822": {}}}},
)
async def get_weekly_email(
    iso_week: IsoWeek,
    recipient: RecipientPath,
    reporter: WeeklyReporterDep,
) -> Response:
    """The message byte for byte (``message/rfc822``): its SHA-256 is the delivery's
    ``message_sha256``."""
    message = await reporter.delivered_message(iso_week=iso_week, recipient=recipient)
    return Response(message, media_type="message/rfc822")
