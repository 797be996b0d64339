"""Retention (SPEC §13 v2): raw reports older than the retention move to Parquet, a month at
a time, and leave the database.

For each month whose last day is older than ``retention_days``, in this order:

1. its raw reports (merged with an earlier archive of the month, if a run was cut short) are
   written to ``<month>.parquet.tmp``, fsynced, and renamed over ``<month>.parquet``, and the
   folder is fsynced;
2. only then are they deleted from the database, at most ``DELETE_CHUNK`` reports of one day
   per transaction, so that ingest waits for one chunk's delete at most, never a whole
   month's (a 3 M-report month held the writer 5.8 s as one transaction).

A crash between the two, or amid the days, leaves each report in both places (the next run
merges them again, each report once, and deletes), never in neither. Instance-days stay in
the database for ever, so evaluations, usage and statements over archived days are
unchanged. A report older than 400 days is refused at ingest, so no report of an archived
month can arrive after it was archived, and ``report_id`` idempotency is unaffected.

Query the archive with DuckDB:
``SELECT * FROM read_parquet('<data dir>/archive/reports/*.parquet')``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path

from core.database import Connection
from core.files import replace_durably
from core.store import Store
from ingest import repository

log = logging.getLogger("statreport.archive")

#: The most raw reports one transaction of the archive deletes (about 0.1 s of the writer).
DELETE_CHUNK = 5_000


@dataclass(frozen=True)
class ArchivedMonth:
    """One month moved out of the database."""

    month: str  # YYYY-MM
    path: Path
    archived: int  # rows in the month's file
    deleted: int  # rows deleted from the database by this run


def month_path(archive_dir: Path, first: date) -> Path:
    """The one Parquet file of a month."""
    return archive_dir / f"{first:%Y-%m}.parquet"


async def archive_reports(
    store: Store,
    *,
    archive_dir: Path,
    today: date,
    retention_days: int,
    after_write: Callable[[Path], None] | None = None,
) -> list[ArchivedMonth]:
    """Move every month of raw reports older than ``retention_days`` to the archive.

    ``after_write`` is called between a month's fsynced file and its deletion (the fault
    tests crash the process there).
    """
    cutoff = today - timedelta(days=retention_days)
    months = await store.read(lambda con: repository.months_before(con, cutoff=cutoff))
    if not months:
        return []
    await asyncio.to_thread(archive_dir.mkdir, parents=True, exist_ok=True)
    done = []
    for first in months:
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        path = month_path(archive_dir, first)
        # Written by DuckDB, whichever engine stores the reports (on PostgreSQL, the month's
        # slice read into a snapshot).
        archived = await store.analyze(partial(_write_month, first=first, last=last, path=path))
        if after_write is not None:
            after_write(path)
        deleted = 0
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            while True:
                removed = await store.write(
                    partial(repository.delete_from_day, day=day, limit=DELETE_CHUNK)
                )
                deleted += removed
                if removed < DELETE_CHUNK:
                    break
        log.info(
            "event=archive.month month=%s archived=%d deleted=%d path=%s",
            f"{first:%Y-%m}",
            archived,
            deleted,
            path,
        )
        done.append(ArchivedMonth(f"{first:%Y-%m}", path, archived, deleted))
    return done


def _write_month(con: Connection, *, first: date, last: date, path: Path) -> int:
    """Write the month's file durably: to a temporary name, fsync, rename, fsync the folder."""
    partial = path.with_name(path.name + ".tmp")
    partial.unlink(missing_ok=True)
    kept = path if path.exists() else None
    count = repository.copy_month(con, first=first, last=last, kept=kept, to=partial)
    replace_durably(partial, path)
    return count
