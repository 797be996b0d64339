"""``POST /v1/weekly-reports``: run the weekly report now."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from pydantic import BaseModel

from ingest.dependencies import AdminDep
from scheduler.weekly import WeeklyReporter, WeeklyRun

router = APIRouter(tags=["weekly report"], dependencies=[AdminDep])


class WeeklyReportRequest(BaseModel):
    """What to run: as of which day, without sending, or sending again."""

    as_of: date | None = None
    dry_run: bool = False
    force: bool = False


@router.post("/v1/weekly-reports", summary="Run the weekly report now")
async def post_weekly_report(body: WeeklyReportRequest, request: Request) -> WeeklyRun:
    """Answers each recipient's delivery: sent, failed, skipped (sent already), or dry_run."""
    reporter: WeeklyReporter = request.app.state.weekly_reporter
    return await reporter.run(as_of=body.as_of, dry_run=body.dry_run, force=body.force)
