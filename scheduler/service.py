"""The weekly report (SPEC §7): evaluate as of the day before, one email per manager."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.errors import HeaderParseError
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal
from zoneinfo import ZoneInfo

from analytics import notes
from analytics import runs as analytics_runs
from analytics import service as analytics_service
from analytics.schemas import Finding, FindingNote, OveruseFinding
from core.days import latest_finished_day
from core.errors import NotFound
from core.identifiers import deliverable
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


@dataclass(frozen=True)
class Letter:
    """One recipient's weekly email as built, or the problem that kept it from being built."""

    recipient: str
    kind: Literal["manager", "digest"]
    findings: int
    subject: str
    message: EmailMessage | None
    problem: str | None


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

    def today(self) -> date:
        """Today in the report's time zone: its ISO week is the week of an email sent now."""
        return self.clock().astimezone(self.timezone).date()

    def default_as_of(self) -> date:
        """The latest UTC day that has fully ended, by this reporter's clock."""
        return latest_finished_day(self.clock())

    async def run(
        self, *, as_of: date | None = None, dry_run: bool = False, force: bool = False
    ) -> WeeklyRun:
        """Evaluate, render and send; each recipient at most once per ISO week unless forced,
        also when runs overlap: each delivery is claimed in the database before it is sent."""
        as_of = as_of or self.default_as_of()
        analytics_service.check_as_of(as_of, today=self.clock().astimezone(UTC).date())
        iso_week = iso_week_of(self.today())
        # A dry run stores nothing (SPEC §7 v3): its evaluation is not kept either, so the
        # newest run stays what it was.
        evaluation = await analytics_service.evaluate(
            self.store, as_of=as_of, keep=not dry_run, metrics=self.metrics
        )
        built_from = f"evaluation {evaluation.evaluation_id} as of {as_of}"
        findings = evaluation.findings
        accounts = await analytics_service.accounts_per_manager(self.store)
        names = await analytics_service.customer_names(self.store)
        # The charts as known at the run, like its evidence (SPEC §11 v3); the links to the
        # evidence name the run, unless a dry run kept none.
        charts = await self._charts(findings, as_of=as_of, known_at=evaluation.known_at)
        # Each finding's newest working note, as written by the time the email is built.
        noted = await notes.notes_of(self.store, [f.finding_id for f in findings])
        latest = {finding_id: kept[-1] for finding_id, kept in noted.items() if kept}
        run = None if dry_run else evaluation.evaluation_id
        letters: list[Letter] = []
        for manager in sorted(accounts):
            mine = [f for f in findings if f.account_manager == manager]
            letters.append(
                self._letter(
                    manager,
                    iso_week,
                    as_of,
                    mine,
                    accounts[manager],
                    charts,
                    names,
                    run=run,
                    notes=latest,
                )
            )
        if self.settings.report_cc:
            total = sum(accounts.values())
            letters.append(
                self._letter(
                    self.settings.report_cc,
                    iso_week,
                    as_of,
                    findings,
                    total,
                    charts,
                    names,
                    True,
                    run=run,
                    notes=latest,
                )
            )
        deliveries = [
            await self._deliver(letter, iso_week, built_from, dry_run=dry_run, force=force)
            for letter in letters
        ]
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

    async def recipients(self) -> set[str]:
        """Who gets this week's email: every account manager, and the digest's address."""
        managers = set(await analytics_service.accounts_per_manager(self.store))
        return managers | ({self.settings.report_cc} if self.settings.report_cc else set())

    async def week_complete(self, *, iso_week: str) -> bool:
        """True once every current recipient has been sent ``iso_week``'s email: customers
        loaded after the week's run still get theirs."""
        # An address stored before the strict check that no email can carry fails its
        # delivery at every run; waiting for it would re-run the week every hour.
        recipients = {r for r in await self.recipients() if deliverable(r)}
        unsent = await self.store.read(
            lambda con: repository.unsent_recipients(con, iso_week=iso_week, recipients=recipients)
        )
        return not unsent

    async def restore_gauges(self) -> None:
        """Set the last-evaluation and last-weekly-run gauges from the database, so that they
        survive a restart (SPEC §9 v2)."""
        if self.metrics is None:
            return
        evaluated = await analytics_runs.last_evaluated_at(self.store)
        ran = await self.store.read(repository.last_successful_run_at)
        if evaluated is not None:
            self.metrics.last_evaluation.set(evaluated.timestamp())
        if ran is not None:
            self.metrics.last_weekly_report.set(ran.timestamp())

    async def born_at(self) -> datetime | None:
        """When this data directory's database was created."""
        return await self.store.read(repository.database_born_at)

    async def _charts(
        self, findings: list[Finding], *, as_of: date, known_at: datetime | None
    ) -> dict[tuple[str, str], bytes]:
        overuse = [f for f in findings if isinstance(f, OveruseFinding)]
        series = await analytics_service.metric_series(
            self.store,
            keys={(f.customer_id, f.metric) for f in overuse},
            start=as_of - timedelta(days=CHART_DAYS - 1),
            end=as_of,
            known_at=known_at,
        )

        def render() -> dict[tuple[str, str], bytes]:
            return {
                (f.customer_id, f.metric): usage_chart(
                    series[(f.customer_id, f.metric)],
                    metric=f.metric,
                    started_on=f.started_on,
                    deadline=f.deadline,
                    as_of=as_of,
                    ended_on=f.ended_on,
                )
                for f in overuse
            }

        return await asyncio.to_thread(render)

    def _letter(
        self,
        recipient: str,
        iso_week: str,
        as_of: date,
        findings: list[Finding],
        accounts: int,
        charts: dict[tuple[str, str], bytes],
        names: dict[str, str],
        digest: bool = False,
        *,
        run: str | None,
        notes: Mapping[str, FindingNote],
    ) -> Letter:
        """One recipient's email, or why it cannot be built (an address stored before the
        strict check, say): that recipient's delivery fails, never the others'."""
        kind: Literal["manager", "digest"] = "digest" if digest else "manager"
        try:
            message = build_weekly_email(
                sender=self.settings.smtp_from,
                recipient=recipient,
                iso_week=iso_week,
                as_of=as_of.isoformat(),
                findings=findings,
                accounts=accounts,
                charts=charts,
                names=names,
                digest=digest,
                console_url=self.settings.public_url,
                evaluation_id=run,
                notes=notes,
            )
            message["Date"] = formatdate(self.clock().timestamp(), usegmt=True)
            message["Message-ID"] = make_msgid(domain=_domain_of(self.settings.smtp_from))
        except (ValueError, HeaderParseError) as exc:
            log.warning("event=weekly_report.unbuildable week=%s error=%r", iso_week, str(exc))
            problem = (
                f"no email could be built for {recipient!r} ({exc}); correct the account "
                "manager's address in the customer's document"
            )
            return Letter(recipient, kind, len(findings), subject="", message=None, problem=problem)
        return Letter(recipient, kind, len(findings), str(message["Subject"]), message, None)

    async def _deliver(
        self, letter: Letter, iso_week: str, built_from: str, *, dry_run: bool, force: bool
    ) -> Delivery:
        """Claim, send and record one letter, under the recipient exactly as it is stored."""
        recipient = letter.recipient
        delivery = Delivery(
            recipient=recipient,
            kind=letter.kind,
            subject=letter.subject,
            findings=letter.findings,
            status="dry_run",
        )
        if letter.message is None:
            return delivery.model_copy(update={"status": "failed", "detail": letter.problem})
        if dry_run:  # what would be sent, to read before sending
            body = letter.message.get_body(preferencelist=("plain",))
            text = body.get_content() if isinstance(body, EmailMessage) else None
            return delivery.model_copy(update={"text": text})
        claimed_at = self.clock()
        refusal = await self.store.write(
            lambda con: repository.claim_delivery(
                con,
                iso_week=iso_week,
                recipient=recipient,
                kind=letter.kind,
                subject=letter.subject,
                findings=letter.findings,
                built_from=built_from,
                claimed_at=claimed_at,
                force=force,
            )
        )
        if refusal is not None:
            return delivery.model_copy(update={"status": "skipped", "detail": refusal})
        message = letter.message
        raw = message.as_bytes()
        try:
            delivery.status, delivery.detail = "sent", await self.mailer.send(message)
        except DeliveryFailed as exc:
            delivery.status = "failed"
            delivery.detail = f"{exc}; it will be retried within the hour"
            log.warning("event=weekly_report.send_failed week=%s error=%r", iso_week, str(exc))
        attempted_at = self.clock()
        await self.store.write(
            lambda con: repository.record_delivery(
                con,
                iso_week=iso_week,
                recipient=recipient,
                status=delivery.status,
                detail=delivery.detail,
                attempted_at=attempted_at,
                message_sha256=hashlib.sha256(raw).hexdigest(),
                message=raw,
            )
        )
        return delivery

    async def weeks(self, *, limit: int = 104) -> list[dict[str, Any]]:
        """The ISO weeks with deliveries, newest first, with how many were sent and failed."""
        return await self.store.read(lambda con: repository.weeks(con, limit=limit))

    async def deliveries(self, *, iso_week: str) -> list[DeliveryRecord]:
        """Each recipient's latest attempt for ``iso_week``; empty if none yet."""
        rows = await self.store.read(lambda con: repository.deliveries(con, iso_week=iso_week))
        return [DeliveryRecord.model_validate(row) for row in rows]

    async def delivered_message(self, *, iso_week: str, recipient: str) -> bytes:
        """One recipient's email of ``iso_week``, exactly as it was sent (or last attempted)."""
        message = await self.store.read(
            lambda con: repository.delivered_message(con, iso_week=iso_week, recipient=recipient)
        )
        if message is None:
            raise NotFound(
                f"No email to {recipient} was sent or attempted for {iso_week}; list the "
                f"week's deliveries with GET /v1/weekly-reports/{iso_week}."
            )
        return message


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"
