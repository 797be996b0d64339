"""The DuckDB file: one writer thread with group commit, and cursors for readers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import duckdb

from ingest import repository
from ingest.errors import InstanceOwnedElsewhere, StatreportError, StoreUnavailable
from ingest.migrations import migrate
from ingest.repository import ReportRow
from ingest.schemas import StatisticsReport
from ingest.telemetry import StoreMetrics

log = logging.getLogger("statreport.store")

T = TypeVar("T")

#: DuckDB errors that mean "storage is failing", as opposed to a bug in a statement.
_STORAGE_FAILURES: tuple[type[Exception], ...] = (
    duckdb.OperationalError,
    duckdb.IOException,
    duckdb.TransactionException,
    duckdb.OutOfMemoryException,
    duckdb.FatalException,
    duckdb.InterruptException,
)


@dataclass(slots=True)
class _PendingIngest:
    customer_id: str
    key_id: str
    source: str
    reports: Sequence[StatisticsReport]
    future: asyncio.Future[list[bool]]


@dataclass(slots=True)
class _Outcome:
    stored: list[bool] = field(default_factory=list)
    error: StatreportError | None = None


class Store:
    """Owns the DuckDB file. Every write runs on one writer thread, so writes never conflict."""

    def __init__(
        self,
        path: Path,
        *,
        commit_window_ms: float = 2.0,
        commit_max_reports: int = 5000,
        max_pending_reports: int = 50_000,
        retry_after_seconds: int = 5,
        metrics: StoreMetrics | None = None,
    ) -> None:
        self.path = path
        self._window = commit_window_ms / 1000
        self._commit_max = commit_max_reports
        self._max_pending = max_pending_reports
        self._retry_after = retry_after_seconds
        self._metrics = metrics or StoreMetrics(registry=None)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._writer_con: duckdb.DuckDBPyConnection | None = None
        self._cursor_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-writer")
        self._queue: asyncio.Queue[_PendingIngest | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending = 0
        self._owners: dict[UUID, str] = {}
        self._report_appender: duckdb.Appender | None = None
        self.healthy = False

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open (or create) the database file and migrate its schema."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            raise StoreUnavailable(
                f"Cannot open {self.path}: {exc}. Is another statreport running on this data "
                "directory? Stop it, or pass another --data-dir."
            ) from exc
        migrate(self._con, path=str(self.path))
        self._con.execute("SET threads TO 1")
        self._writer_con = self._con.cursor()
        self._owners = repository.instance_owners(self._con)
        self.healthy = True

    async def start(self) -> None:
        """Start the group-commit writer; call from the event loop that serves requests."""
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run_writer(), name="group-commit-writer")

    async def close(self) -> None:
        """Finish queued writes, checkpoint, and close the file."""
        if self._queue is not None and self._task is not None:
            await self._queue.put(None)
            await self._task
        if self._writer_con is not None:
            with contextlib.suppress(duckdb.Error):
                await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._writer_con.execute, "CHECKPOINT"
                )
        self._executor.shutdown(wait=True)
        if self._con is not None:
            self._con.close()
        self.healthy = False

    # -- reads and writes --------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor for one reader thread."""
        if self._con is None:
            raise StoreUnavailable("Storage is not open.")
        with self._cursor_lock:
            return self._con.cursor()

    async def read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``fn`` on its own cursor in a worker thread."""

        def run() -> T:
            cur = self.cursor()
            try:
                return fn(cur)
            finally:
                cur.close()

        try:
            return await asyncio.to_thread(run)
        except _STORAGE_FAILURES as exc:
            raise StoreUnavailable(
                f"Storage could not be read: {exc}", retry_after=self._retry_after
            ) from exc

    async def write(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``fn`` in one transaction on the writer thread, and commit it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, fn)

    def _transaction(
        self, fn: Callable[[duckdb.DuckDBPyConnection], T], *, single_statement: bool = False
    ) -> T:
        """Run ``fn`` atomically on the writer connection, mapping storage failures to 503.

        ``single_statement`` skips BEGIN/COMMIT for a function that issues exactly one
        statement, which DuckDB commits atomically by itself: each extra call re-takes the GIL
        from the busy event loop, and that wait dominated the commit time.
        """
        con = self._writer_con
        if con is None:
            raise StoreUnavailable("Storage is not open.", retry_after=self._retry_after)
        try:
            if single_statement:
                result = fn(con)
            else:
                con.execute("BEGIN TRANSACTION")
                try:
                    result = fn(con)
                    con.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(duckdb.Error):
                        con.execute("ROLLBACK")
                    raise
        except _STORAGE_FAILURES as exc:
            self.healthy = False
            log.error("event=store.write_failed error=%r", str(exc))
            raise StoreUnavailable(
                "Storage is failing and nothing was written. Retry later; operators should "
                f"check the data directory's disk. ({type(exc).__name__})",
                retry_after=self._retry_after,
            ) from exc
        self.healthy = True
        return result

    async def probe(self) -> bool:
        """True when a tiny write commits: storage accepts writes."""
        try:
            await self.write(lambda con: repository.touch_heartbeat(con, at=datetime.now(UTC)))
        except StatreportError:
            return False
        return True

    # -- report ingest with group commit ---------------------------------------------------

    async def ingest(
        self,
        *,
        customer_id: str,
        key_id: str,
        reports: Sequence[StatisticsReport],
        source: str = "phone_home",
    ) -> list[bool]:
        """Store reports atomically; return per report True (stored) or False (duplicate).

        Returns only after the commit that holds them. Raises ``InstanceOwnedElsewhere``
        or ``StoreUnavailable``, in which case nothing of this call was stored.
        """
        if self._queue is None:
            raise StoreUnavailable("Storage is not started.", retry_after=self._retry_after)
        if self._pending + len(reports) > self._max_pending:
            self._metrics.overloaded.inc()
            raise StoreUnavailable(
                "The server is overloaded and nothing was stored; retry after the delay in "
                "Retry-After.",
                retry_after=self._retry_after,
            )
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._pending += len(reports)
        await self._queue.put(_PendingIngest(customer_id, key_id, source, reports, future))
        return await future

    async def _run_writer(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await queue.get()
            if first is None:
                break
            group = [first]
            size = len(first.reports)
            if self._window and queue.empty():
                # Let concurrent requests join this commit instead of paying their own fsync.
                await asyncio.sleep(self._window)
            while size < self._commit_max and not queue.empty():
                item = queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                group.append(item)
                size += len(item.reports)
            started = time.perf_counter()
            try:
                outcomes = await loop.run_in_executor(self._executor, self._commit_group, group)
            except StatreportError as exc:
                outcomes = [_Outcome(error=exc) for _ in group]
            except Exception as exc:  # a bug must fail its requests, never the writer
                log.exception("event=store.commit_crashed")
                failure = StoreUnavailable(
                    f"Storage failed unexpectedly ({type(exc).__name__}); nothing was stored.",
                    retry_after=self._retry_after,
                )
                outcomes = [_Outcome(error=failure) for _ in group]
            self._metrics.commit_seconds.observe(time.perf_counter() - started)
            self._metrics.commit_reports.observe(size)
            for pending, outcome in zip(group, outcomes, strict=True):
                self._pending -= len(pending.reports)
                if pending.future.done():
                    continue
                if outcome.error is not None:
                    pending.future.set_exception(outcome.error)
                else:
                    pending.future.set_result(outcome.stored)

    def _commit_group(self, group: Sequence[_PendingIngest]) -> list[_Outcome]:
        """Runs on the writer thread: ownership checks, dedupe, one transaction."""
        outcomes = [_Outcome() for _ in group]
        claims: dict[UUID, str] = {}
        accepted: list[int] = []
        for index, pending in enumerate(group):
            conflict = self._ownership_conflict(pending, claims)
            if conflict is not None:
                outcomes[index].error = conflict
                continue
            for report in pending.reports:
                if report.instance_id not in self._owners:
                    claims.setdefault(report.instance_id, pending.customer_id)
            accepted.append(index)

        rows: list[ReportRow] = []
        first_seen: set[UUID] = set()
        placements: list[tuple[int, UUID, bool]] = []  # (request, report_id, first in group)
        for index in accepted:
            pending = group[index]
            for report in pending.reports:
                first = report.report_id not in first_seen
                if first:
                    first_seen.add(report.report_id)
                    rows.append(
                        ReportRow(
                            report=report,
                            customer_id=pending.customer_id,
                            key_id=pending.key_id,
                            source=pending.source,
                        )
                    )
                placements.append((index, report.report_id, first))

        now = datetime.now(UTC)
        try:
            inserted = self._transaction(
                lambda con: repository.append_reports(
                    con,
                    appender=self._appender(con),
                    rows=rows,
                    new_instances=claims,
                    received_at=now,
                ),
                single_statement=not claims,
            )
        except repository.AlreadyStored:
            # Duplicates are rare (client retries); only then pay for ON CONFLICT ... RETURNING.
            inserted = self._transaction(
                lambda con: repository.insert_reports(
                    con, rows=rows, new_instances=claims, received_at=now
                )
            )
        self._owners.update(claims)
        for index, report_id, first in placements:
            outcomes[index].stored.append(first and report_id in inserted)
        stored = sum(sum(o.stored) for o in outcomes)
        self._metrics.reports_stored.inc(stored)
        self._metrics.reports_duplicate.inc(len(placements) - stored)
        return outcomes

    def _appender(self, con: duckdb.DuckDBPyConnection) -> duckdb.Appender:
        if self._report_appender is None:
            self._report_appender = repository.report_appender(con)
        return self._report_appender

    def _ownership_conflict(
        self, pending: _PendingIngest, claims: dict[UUID, str]
    ) -> InstanceOwnedElsewhere | None:
        for report in pending.reports:
            owner = self._owners.get(report.instance_id) or claims.get(report.instance_id)
            if owner is not None and owner != pending.customer_id:
                return InstanceOwnedElsewhere(
                    f"instance_id {report.instance_id} already reports under another customer's "
                    "licence key, so nothing in this request was stored. An instance belongs to "
                    "one customer: send its reports with that customer's key, or give this "
                    "installation a new instance_id."
                )
        return None
