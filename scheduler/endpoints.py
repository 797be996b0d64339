"""``POST /v1/weekly-reports``: run the weekly report now."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from ingest.dependencies import AdminDep
from scheduler import repository
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


class DeliveryRecord(BaseModel):
    """One recipient's latest attempt of one week."""

    recipient: str
    kind: str
    subject: str
    findings: int
    status: str
    detail: str | None
    attempted_at: datetime


@router.get(
    "/v1/weekly-reports/{iso_week}", summary="What was sent for one ISO week, and what failed"
)
async def get_weekly_report(
    iso_week: Annotated[str, Path(pattern=r"^\d{4}-W\d{2}$")], request: Request
) -> list[DeliveryRecord]:
    """Each recipient's latest attempt for ``iso_week`` (``2026-W48``); empty if none yet."""
    reporter: WeeklyReporter = request.app.state.weekly_reporter
    rows = await reporter.store.read(lambda con: repository.deliveries(con, iso_week=iso_week))
    return [DeliveryRecord.model_validate(row) for row in rows]
