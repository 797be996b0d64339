"""The weekly report's documents: a run, its deliveries, and the request to run it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel


class WeeklyReportRequest(BaseModel):
    """What to run: as of which day, without sending, or sending again."""

    as_of: date | None = None
    dry_run: bool = False
    force: bool = False


class Delivery(BaseModel):
    """What happened to one recipient's email."""

    recipient: str
    kind: Literal["manager", "digest"]
    subject: str
    findings: int
    status: Literal["sent", "failed", "skipped", "dry_run"]
    detail: str | None = None


class DeliveryRecord(BaseModel):
    """One recipient's latest attempt of one week, as recorded: ``sending`` while a run holds
    its claim."""

    recipient: str
    kind: Literal["manager", "digest"]
    subject: str
    findings: int
    status: Literal["sending", "sent", "failed"]
    detail: str | None = None
    attempted_at: datetime
    built_from: str | None = None
    message_sha256: str | None = None


class WeeklyRun(BaseModel):
    """The answer of a weekly report run."""

    iso_week: str
    as_of: date
    deliveries: list[Delivery]
