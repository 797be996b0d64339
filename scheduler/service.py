"""The weekly report (SPEC §7): evaluate as of the day before, one email per manager."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Literal
from zoneinfo import ZoneInfo

from analytics import service as analytics_service
from core.settings import Settings
from core.store import Store
from core.telemetry import ApiMetrics
from scheduler import repository
from scheduler.charts import usage_chart
from scheduler.delivery import DeliveryFailed, Mailer
from scheduler.messages import build_weekly_email
from scheduler.schemas import Delivery, DeliveryRecord, WeeklyRun

log = logging.getLogger("statreport.weekly")

CHART_DAYS = 90


def iso_week_of(day: date) -> str:
    """``2026-W48``."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class WeeklyReporter:
    """Everything a weekly run needs; the scheduler and the API share one."""

    store: Store
    settings: Settings
    mailer: Mailer
    clock: Callable[[], datetime]
    metrics: ApiMetrics | None = None

    @property
    def timezone(self) -> ZoneInfo:
        """The report's time zone."""
        return ZoneInfo(self.settings.report_timezone)

    def default_as_of(self) -> date:
        """The day before today, in the report's time zone."""
        return self.clock().astimezone(self.timezone).date() - timedelta(days=1)

    async def run(
        self, *, as_of: date | None = None, dry_run: bool = False, force: bool = False
    ) -> WeeklyRun:
        """Evaluate, render and send; each manager at most once per ISO week unless forced."""
        as_of = as_of or self.default_as_of()
        iso_week = iso_week_of(as_of + timedelta(days=1))
        evaluation = await analytics_service.evaluate(self.store, as_of=as_of)
        if self.metrics is not None:
            self.metrics.last_evaluation.set(evaluation.evaluated_at.timestamp())
        findings = [f.model_dump(mode="json") for f in evaluation.findings]
        accounts = await analytics_service.accounts_per_manager(self.store)
        charts = await self._charts(findings, as_of=as_of)
        already = await self.store.read(
            lambda con: repository.sent_recipients(con, iso_week=iso_week)
        )
        deliveries = []
        for manager in sorted(accounts):
            mine = [f for f in findings if f["account_manager"] == manager]
            message = self._email(manager, iso_week, as_of, mine, accounts[manager], charts)
            deliveries.append(
                await self._deliver(
                    message, iso_week, len(mine), "manager", already, dry_run=dry_run, force=force
                )
            )
        if self.settings.report_cc:
            message = self._email(
                self.settings.report_cc,
                iso_week,
                as_of,
                findings,
                sum(accounts.values()),
                charts,
                True,
            )
            deliveries.append(
                await self._deliver(
                    message,
                    iso_week,
                    len(findings),
                    "digest",
                    already,
                    dry_run=dry_run,
                    force=force,
                )
            )
        if not dry_run:
            now = self.clock()
            await self.store.write(
                lambda con: repository.record_run(con, iso_week=iso_week, as_of=as_of, ran_at=now)
            )
            if self.metrics is not None and all(d.status != "failed" for d in deliveries):
                self.metrics.last_weekly_report.set(now.timestamp())
        log.info(
            "event=weekly_report.done week=%s as_of=%s sent=%d failed=%d skipped=%d dry_run=%s",
            iso_week,
            as_of,
            sum(d.status == "sent" for d in deliveries),
            sum(d.status == "failed" for d in deliveries),
            sum(d.status == "skipped" for d in deliveries),
            dry_run,
        )
        return WeeklyRun(iso_week=iso_week, as_of=as_of, deliveries=deliveries)

    async def _charts(
        self, findings: list[dict[str, Any]], *, as_of: date
    ) -> dict[tuple[str, str], bytes]:
        overuse = [f for f in findings if f["kind"] == "overuse"]
        series = await analytics_service.metric_series(
            self.store,
            keys={(f["customer_id"], f["metric"]) for f in overuse},
            start=as_of - timedelta(days=CHART_DAYS - 1),
            end=as_of,
        )

        def render() -> dict[tuple[str, str], bytes]:
            return {
                (f["customer_id"], f["metric"]): usage_chart(
                    series[(f["customer_id"], f["metric"])],
                    metric=f["metric"],
                    started_on=date.fromisoformat(f["started_on"]),
                    deadline=date.fromisoformat(f["deadline"]),
                    as_of=as_of,
                    ended_on=date.fromisoformat(f["ended_on"]) if f["ended_on"] else None,
                )
                for f in overuse
            }

        return await asyncio.to_thread(render)

    def _email(
        self,
        recipient: str,
        iso_week: str,
        as_of: date,
        findings: list[dict[str, Any]],
        accounts: int,
        charts: dict[tuple[str, str], bytes],
        digest: bool = False,
    ) -> EmailMessage:
        return build_weekly_email(
            sender=self.settings.smtp_from,
            recipient=recipient,
            iso_week=iso_week,
            as_of=as_of.isoformat(),
            findings=findings,
            accounts=accounts,
            charts=charts,
            digest=digest,
        )

    async def _deliver(
        self,
        message: EmailMessage,
        iso_week: str,
        findings: int,
        kind: Literal["manager", "digest"],
        already: set[str],
        *,
        dry_run: bool,
        force: bool,
    ) -> Delivery:
        recipient, subject = str(message["To"]), str(message["Subject"])
        status: Literal["sent", "failed", "skipped", "dry_run"]
        detail: str | None = None
        if dry_run:
            status = "dry_run"
        elif recipient in already and not force:
            status, detail = "skipped", f"already sent for {iso_week}; use force to send again"
        else:
            try:
                status, detail = "sent", await asyncio.to_thread(self.mailer.send, message)
            except DeliveryFailed as exc:
                status, detail = "failed", f"{exc}; it will be retried within the hour"
                log.warning("event=weekly_report.send_failed week=%s error=%r", iso_week, str(exc))
        delivery = Delivery(
            recipient=recipient,
            kind=kind,
            subject=subject,
            findings=findings,
            status=status,
            detail=detail,
        )
        if status in ("sent", "failed"):
            attempted_at = self.clock()
            await self.store.write(
                lambda con: repository.record_delivery(
                    con, iso_week=iso_week, attempted_at=attempted_at, **delivery.model_dump()
                )
            )
        return delivery

    async def deliveries(self, *, iso_week: str) -> list[DeliveryRecord]:
        """Each recipient's latest attempt for ``iso_week``; empty if none yet."""
        rows = await self.store.read(lambda con: repository.deliveries(con, iso_week=iso_week))
        return [DeliveryRecord.model_validate(row) for row in rows]
