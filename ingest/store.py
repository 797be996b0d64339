"""The DuckDB file: one writer thread with group commit, and cursors for readers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from ingest import repository
from ingest.errors import InstanceOwnedElsewhere, StatreportError, StoreUnavailable
from ingest.migrations import migrate
from ingest.repository import StagedReports
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
    """Reports of one request, waiting for the commit that will hold them."""

    staged: StagedReports
    future: asyncio.Future[list[bool]]
    loop: asyncio.AbstractEventLoop

    @property
    def size(self) -> int:
        return len(self.staged.reports)


@dataclass(slots=True)
class _PendingWrite:
    """An admin write: a function to run in its own transaction (or, for statements that
    cannot run inside one, such as ATTACH, on its own)."""

    fn: Callable[[duckdb.DuckDBPyConnection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    transaction: bool = True


@dataclass(slots=True)
class _Outcome:
    stored: list[bool] = field(default_factory=list)
    error: StatreportError | None = None


_STOP = object()


class Store:
    """Owns the DuckDB file. Every write runs on one writer thread, so writes never conflict.

    Reports are group-committed: the writer thread takes whatever requests are queued (waiting
    up to ``commit_window_ms`` for company), appends them in one statement, and only then
    resolves each request's future. It never waits for the event loop, so while the loop
    answers one group, the next is already being committed.
    """

    def __init__(
        self,
        path: Path,
        *,
        commit_window_ms: float = 2.0,
        commit_max_reports: int = 5000,
        max_pending_reports: int = 100_000,
        retry_after_seconds: int = 5,
        duckdb_threads: int = 1,
        metrics: StoreMetrics | None = None,
    ) -> None:
        self.path = path
        self._duckdb_threads = duckdb_threads
        self._window = commit_window_ms / 1000
        self._commit_max = commit_max_reports
        self._max_pending = max_pending_reports
        self._retry_after = retry_after_seconds
        self._metrics = metrics or StoreMetrics(registry=None)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._writer_con: duckdb.DuckDBPyConnection | None = None
        self._cursor_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_PendingIngest | _PendingWrite | object] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._pending = 0  # reports queued or being committed; touched on the loop thread only
        self._owners: dict[str, str] = {}  # touched on the writer thread only
        self._report_appender: duckdb.Appender | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open (or create) the database file, migrate its schema, start the writer."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            raise StoreUnavailable(
                f"Cannot open {self.path}: {exc}. Is another statreport running on this data "
                "directory? Stop it, or pass another --data-dir."
            ) from exc
        migrate(self._con, path=str(self.path))
        # Days are UTC days (SPEC §2), whatever the machine's zone.
        self._con.execute("SET TimeZone = 'UTC'")
        # DuckDB's own worker threads compete with the event loop and the writer for two
        # cores; small commits gain nothing from them (measured in benchmarks/ingest.py).
        self._con.execute(f"SET threads TO {int(self._duckdb_threads)}")
        self._writer_con = self._con.cursor()
        self._owners = repository.instance_owners(self._con)
        self._thread = threading.Thread(target=self._run_writer, name="duckdb-writer", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Finish queued writes, checkpoint, and close the file."""
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._writer_con is not None:
            with contextlib.suppress(duckdb.Error):
                self._writer_con.execute("CHECKPOINT")
        if self._con is not None:
            self._con.close()

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

    async def write(
        self, fn: Callable[[duckdb.DuckDBPyConnection], T], *, transaction: bool = True
    ) -> T:
        """Run ``fn`` on the writer thread, in one committed transaction unless told not to.

        Every write goes through the one writer thread, so writes never conflict and a
        function that reads and writes sees no other write in between.
        """
        if self._thread is None:
            raise StoreUnavailable("Storage is not open.", retry_after=self._retry_after)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_PendingWrite(fn, future, loop, transaction))
        return await future

    async def probe(self) -> bool:
        """True when a tiny write commits: storage accepts writes."""
        try:
            await self.write(lambda con: repository.touch_heartbeat(con, at=datetime.now(UTC)))
        except StatreportError:
            return False
        return True

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
        if self._thread is None:
            raise StoreUnavailable("Storage is not open.", retry_after=self._retry_after)
        if self._pending + len(reports) > self._max_pending:
            self._metrics.overloaded.inc()
            raise StoreUnavailable(
                "The server is overloaded and nothing was stored; retry after the delay in "
                "Retry-After.",
                retry_after=self._retry_after,
            )
        staged = repository.stage_reports(
            reports,
            customer_id=customer_id,
            key_id=key_id,
            source=source,
            received_at=datetime.now(UTC),
        )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[bool]] = loop.create_future()
        self._pending += len(reports)
        try:
            self._queue.put(_PendingIngest(staged, future, loop))
            return await future
        finally:
            self._pending -= len(reports)

    # -- the writer thread -------------------------------------------------------------------

    def _transaction(
        self, fn: Callable[[duckdb.DuckDBPyConnection], T], *, single_statement: bool = False
    ) -> T:
        """Run ``fn`` atomically on the writer connection, mapping storage failures to 503.

        ``single_statement`` skips BEGIN/COMMIT for a function that issues exactly one
        statement, which DuckDB commits atomically by itself: each extra call has to take the
        GIL back from the busy event loop, and those waits dominated the commit time.
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
            log.error("event=store.write_failed error=%r", str(exc))
            raise StoreUnavailable(
                "Storage is failing and nothing was written. Retry later; operators should "
                f"check the data directory's disk. ({type(exc).__name__})",
                retry_after=self._retry_after,
            ) from exc
        return result

    def _run_writer(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, _PendingWrite):
                self._run_admin_write(item)
                continue
            assert isinstance(item, _PendingIngest)
            group, stop = self._collect_group(item)
            self._commit_and_answer(group)
            if stop:
                return

    def _collect_group(self, first: _PendingIngest) -> tuple[list[_PendingIngest], bool]:
        """The first request plus whatever joins it within the window, up to the size cap."""
        group = [first]
        size = first.size
        deadline = time.monotonic() + self._window
        while size < self._commit_max:
            try:
                remaining = deadline - time.monotonic()
                item = self._queue.get(timeout=remaining) if remaining > 0 else None
                if item is None:
                    item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return group, True
            if isinstance(item, _PendingWrite):
                self._run_admin_write(item)
                continue
            assert isinstance(item, _PendingIngest)
            group.append(item)
            size += item.size
        return group, False

    def _run_admin_write(self, item: _PendingWrite) -> None:
        try:
            result = self._transaction(item.fn, single_statement=not item.transaction)
        except BaseException as exc:
            item.loop.call_soon_threadsafe(_settle, item.future, None, exc)
        else:
            item.loop.call_soon_threadsafe(_settle, item.future, result, None)

    def _commit_and_answer(self, group: list[_PendingIngest]) -> None:
        started = time.perf_counter()
        try:
            outcomes = self._commit_group(group)
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
        self._metrics.commit_reports.observe(sum(p.size for p in group))
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], _Outcome]]] = {}
        for pending, outcome in zip(group, outcomes, strict=True):
            by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
        for loop, answers in by_loop.items():
            # One wake-up of the event loop per commit, not one per request.
            loop.call_soon_threadsafe(_answer_all, answers)

    def _commit_group(self, group: Sequence[_PendingIngest]) -> list[_Outcome]:
        """Ownership checks, dedupe within the group, and one atomic append."""
        outcomes = [_Outcome() for _ in group]
        claims: dict[str, str] = {}
        accepted: list[StagedReports] = []
        for index, pending in enumerate(group):
            staged = pending.staged
            conflict = self._ownership_conflict(staged, claims)
            if conflict is not None:
                outcomes[index].error = conflict
                continue
            for report in staged.reports:
                if report["instance_id"] not in self._owners:
                    claims.setdefault(report["instance_id"], staged.customer_id)
            accepted.append(staged)

        # The first occurrence of a report_id in the group is the one that may be stored.
        seen: set[str] = set()
        firsts: list[list[bool]] = []
        for staged in accepted:
            flags = []
            for report in staged.reports:
                flags.append(report["report_id"] not in seen)
                seen.add(report["report_id"])
            firsts.append(flags)
        repeated = not all(all(flags) for flags in firsts)

        now = datetime.now(UTC)
        inserted: set[str]
        try:
            if repeated:
                raise repository.AlreadyStored
            self._transaction(
                lambda con: repository.append_reports(
                    con,
                    appender=self._appender(con),
                    staged=accepted,
                    new_instances=claims,
                    received_at=now,
                ),
                single_statement=not claims,
            )
            inserted = seen
        except repository.AlreadyStored:
            # Duplicates are rare (client retries); only then pay for ON CONFLICT ... RETURNING.
            parts = [
                (staged, [r for r, first in zip(staged.reports, flags, strict=True) if first])
                for staged, flags in zip(accepted, firsts, strict=True)
            ]
            inserted = self._transaction(
                lambda con: repository.insert_reports(
                    con, parts=parts, new_instances=claims, received_at=now
                )
            )
        self._owners.update(claims)
        stored = 0
        answers = iter(zip(accepted, firsts, strict=True))
        for outcome in outcomes:
            if outcome.error is not None:
                continue
            staged, flags = next(answers)
            outcome.stored = [
                first and report["report_id"] in inserted
                for report, first in zip(staged.reports, flags, strict=True)
            ]
            stored += sum(outcome.stored)
        self._metrics.reports_stored.inc(stored)
        self._metrics.reports_duplicate.inc(sum(len(f) for f in firsts) - stored)
        return outcomes

    def _appender(self, con: duckdb.DuckDBPyConnection) -> duckdb.Appender:
        if self._report_appender is None:
            self._report_appender = repository.report_appender(con)
        return self._report_appender

    def _ownership_conflict(
        self, staged: StagedReports, claims: dict[str, str]
    ) -> InstanceOwnedElsewhere | None:
        for report in staged.reports:
            owner = self._owners.get(report["instance_id"]) or claims.get(report["instance_id"])
            if owner is not None and owner != staged.customer_id:
                return InstanceOwnedElsewhere(
                    f"instance_id {report['instance_id']} already reports under another customer's "
                    "licence key, so nothing in this request was stored. An instance belongs to "
                    "one customer: send its reports with that customer's key, or give this "
                    "installation a new instance_id."
                )
        return None


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the request was cancelled (client went away)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _answer_all(answers: list[tuple[asyncio.Future[Any], _Outcome]]) -> None:
    for future, outcome in answers:
        _settle(future, outcome.stored, outcome.error)
