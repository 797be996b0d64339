"""The weekly report's documents: a run, its deliveries, and the request to run it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.identifiers import ReportingDay


class WeeklyReportRequest(BaseModel):
    """What to run: as of which day, without sending, or sending again."""

    model_config = ConfigDict(extra="forbid")

    as_of: ReportingDay | None = None
    dry_run: Annotated[bool, Field(strict=True)] = False
    force: Annotated[bool, Field(strict=True)] = False


class Delivery(BaseModel):
    """What happened to one recipient's email."""

    recipient: str
    kind: Literal["manager", "digest"]
    subject: str
    findings: int
    status: Literal["sent", "failed", "skipped", "dry_run"]
    detail: str | None = None
    text: str | None = Field(
        None, description="A dry run's email as text, to read before sending; null otherwise."
    )


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
