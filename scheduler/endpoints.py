"""The weekly report's routes: run it now, and what was sent for a week."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from core.dependencies import AdminDep
from scheduler.schemas import DeliveryRecord, WeeklyReportRequest, WeeklyRun
from scheduler.service import WeeklyReporter

router = APIRouter(tags=["weekly report"], dependencies=[AdminDep])


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
async def get_weekly_report(
    iso_week: Annotated[str, Path(pattern=r"^[0-9]{4}-W[0-9]{2}$")], reporter: WeeklyReporterDep
) -> list[DeliveryRecord]:
    """Each recipient's latest attempt for ``iso_week`` (``2026-W48``); empty if none yet."""
    return await reporter.deliveries(iso_week=iso_week)
