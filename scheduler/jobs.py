"""APScheduler 3 jobs: the daily evaluation, the daily archive, the weekly report, and its
catch-up."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from analytics import service as analytics_service
from scheduler.service import WeeklyReporter, iso_week_of

log = logging.getLogger("statreport.scheduler")

#: A run that could not start on time (process busy or down) may still start this late.
MISFIRE_GRACE_SECONDS = 6 * 3600


def weekly_trigger(cron: str, timezone: str) -> CronTrigger:
    """When the weekly report fires: ``cron`` in the report's time zone, DST included."""
    return CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))


#: The most fire times the catch-up looks at in its 8 days: a cron every minute has 11,520.
MAX_FIRE_TIMES = 20_000


def last_fire_time(trigger: CronTrigger, *, now: datetime) -> datetime | None:
    """The latest time ``trigger`` fired (or should have) in the 8 days up to ``now``.

    Walks the fire times as APScheduler's own scheduler does (each from the previous one, up
    to ``now``). Around a repeated wall-clock hour (the autumn DST change) the trigger can
    answer a time that does not move forward; the walk then asks again from a later start
    (a second, a minute, an hour, two hours on), so it always advances, and it is bounded
    whatever the trigger answers.
    """
    latest = None
    fire = trigger.get_next_fire_time(None, now - timedelta(days=8))
    for _ in range(MAX_FIRE_TIMES):
        if fire is None or fire > now:
            break
        latest = fire
        fire = trigger.get_next_fire_time(latest, now)
        for step in _STUCK_STEPS:
            if fire is None or fire > latest:
                break
            fire = trigger.get_next_fire_time(None, latest + step)
        else:
            if fire is not None and fire <= latest:
                log.error("event=weekly_report.cron_stuck at=%s", latest.isoformat())
                break
    return latest


#: The later starts that get a trigger past a time it repeats (a DST change moves a clock by
#: at most two hours).
_STUCK_STEPS = (
    timedelta(seconds=1),
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(hours=2, minutes=1),
)


async def weekly_report_job(reporter: WeeklyReporter) -> None:
    """The Monday run: evaluate as of yesterday and email every account manager."""
    async with reporter.store.exclusively("weekly-report") as mine:
        if not mine:
            log.info("event=scheduler.skipped job=weekly-report reason=another_process_runs_it")
            return
        await reporter.run()


async def daily_evaluation_job(reporter: WeeklyReporter) -> None:
    """Evaluate as of yesterday, so findings and episode history stay current."""
    async with reporter.store.exclusively("daily-evaluation") as mine:
        if not mine:
            log.info("event=scheduler.skipped job=daily-evaluation reason=another_process_runs_it")
            return
        await analytics_service.evaluate(
            reporter.store, as_of=reporter.default_as_of(), metrics=reporter.metrics
        )


#: The daily archive of old raw reports, given the day it runs (UTC); composed by the server,
#: since reports are ingest's and this package reads analytics only.
Archive = Callable[[date], Awaitable[object]]


async def daily_archive_job(reporter: WeeklyReporter, archive: Archive) -> None:
    """Move months of raw reports older than the retention to the Parquet archive."""
    async with reporter.store.exclusively("daily-archive") as mine:
        if not mine:
            log.info("event=scheduler.skipped job=daily-archive reason=another_process_runs_it")
            return
        await archive(reporter.clock().astimezone(UTC).date())


async def weekly_catch_up_job(reporter: WeeklyReporter) -> None:
    """Run this week's report if its time has passed and it has not completed.

    Covers a process that was down at the scheduled time (it runs when it comes back that
    week) and deliveries that failed (only the recipients not yet sent get an email).
    """
    now = reporter.clock()
    trigger = weekly_trigger(reporter.settings.report_cron, reporter.settings.report_timezone)
    fired = last_fire_time(trigger, now=now)
    if fired is None:
        return
    local_now = now.astimezone(reporter.timezone)
    if fired.isocalendar()[:2] != local_now.isocalendar()[:2]:
        return  # that run belonged to an earlier week
    iso_week = iso_week_of(local_now.date())
    born_at = await reporter.born_at()
    if born_at is not None and born_at > fired:
        return  # no catch-up before birth: this week's first run is a manual or the next one
    if await reporter.week_complete(iso_week=iso_week):
        return
    async with reporter.store.exclusively("weekly-report") as mine:
        if not mine:
            return  # another process is running this week's report
        if await reporter.week_complete(iso_week=iso_week):
            return
        log.info("event=weekly_report.catch_up week=%s scheduled=%s", iso_week, fired.isoformat())
        await reporter.run()


def start_scheduler(reporter: WeeklyReporter, *, archive: Archive) -> AsyncIOScheduler:
    """Start the jobs on the running event loop; the catch-up runs once right away."""
    settings = reporter.settings
    scheduler = AsyncIOScheduler(timezone=ZoneInfo(settings.report_timezone))
    common = {
        "replace_existing": True,
        "coalesce": True,
        "max_instances": 1,
        "misfire_grace_time": MISFIRE_GRACE_SECONDS,
        "kwargs": {"reporter": reporter},
    }
    scheduler.add_job(
        weekly_report_job,
        weekly_trigger(settings.report_cron, settings.report_timezone),
        id="weekly-report",
        **common,
    )
    scheduler.add_job(
        daily_evaluation_job,
        CronTrigger.from_crontab(
            settings.evaluation_cron, timezone=ZoneInfo(settings.report_timezone)
        ),
        id="daily-evaluation",
        **common,
    )
    scheduler.add_job(
        daily_archive_job,
        CronTrigger.from_crontab(
            settings.archive_cron, timezone=ZoneInfo(settings.report_timezone)
        ),
        id="daily-archive",
        **{**common, "kwargs": {"reporter": reporter, "archive": archive}},
    )
    scheduler.add_job(
        weekly_catch_up_job,
        IntervalTrigger(hours=1),
        id="weekly-catch-up",
        next_run_time=reporter.clock(),
        **common,
    )
    scheduler.start()
    return scheduler
