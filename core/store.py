"""The DuckDB file: one writer thread with group commit, and cursors for readers.

Over 400 lines on purpose: one class owns the connection, the writer thread and its queue,
and the stamps of what became known when; their invariants (one writer, commits in order,
every stamp after every instant handed out) hold only together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import duckdb

from core import repository
from core.database import Connection, Engine
from core.errors import StatreportError, StoreUnavailable
from core.migrations import migrate
from core.telemetry import StoreMetrics

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


class Transact(Protocol):
    """Runs a function atomically on the writer's connection (``Store._transaction``)."""

    def __call__(self, fn: Callable[[Connection], T], *, single_statement: bool = False) -> T: ...


class GroupCommit(Protocol):
    """A kind of write that the writer thread commits many requests of at once.

    ``commit`` gets the payloads of a group, in arrival order, and answers each one: its
    result, or the ``StatreportError`` that fails that request alone. Raising fails the
    whole group. It runs on the writer thread only.
    """

    def load(self, con: Connection) -> None:
        """Read what the committer keeps in memory, when the store opens."""

    def commit(self, transact: Transact, payloads: Sequence[Any], *, at: datetime) -> list[Any]:
        """Commit the group's payloads, stamped ``at`` (``Store.stamp``); one answer (or
        error) per payload."""


@dataclass(slots=True)
class _PendingGroupItem:
    """One request's payload, waiting for the group commit that will hold it."""

    payload: Any
    size: int
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


@dataclass(slots=True)
class _PendingWrite:
    """An admin write: a function to run in its own transaction (or, for statements that
    cannot run inside one, such as ATTACH, on its own)."""

    fn: Callable[[Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    transaction: bool = True


_STOP = object()
#: How long a commit (or a probe's answer) vouches for storage accepting writes.
_PROBE_FRESH_SECONDS = 1.0
#: How often the writer tries to reopen a database DuckDB invalidated.
_REOPEN_EVERY_SECONDS = 1.0
#: Most requests in one group, whatever their size: the group's time stays bounded.
_GROUP_MAX_REQUESTS = 2000
#: The smallest step between two stamps.
_TICK = timedelta(microseconds=1)


class Store:
    """Owns the DuckDB file. Every write runs on one writer thread, so writes never conflict.

    Requests of the ``group_commit`` kind (reports, for ingest) are group-committed: the
    writer thread takes whatever is queued (waiting up to ``commit_window_ms`` for company),
    hands the group to the committer, and only then resolves each request's future. It never
    waits for the event loop, so while the loop answers one group, the next is already being
    committed.
    """

    #: The engine behind the store: what an operator backs up, and how.
    engine = Engine.DUCKDB

    def __init__(
        self,
        path: Path,
        *,
        commit_window_ms: float = 2.0,
        commit_max_reports: int = 5000,
        max_pending_reports: int = 100_000,
        retry_after_seconds: int = 5,
        duckdb_threads: int = 1,
        memory_limit: str | None = None,
        metrics: StoreMetrics | None = None,
        group_commit: GroupCommit | None = None,
    ) -> None:
        self.path = path
        self._duckdb_threads = duckdb_threads
        self._memory_limit = memory_limit
        self._window = commit_window_ms / 1000
        self._commit_max = commit_max_reports
        self._max_pending = max_pending_reports
        self._retry_after = retry_after_seconds
        self._metrics = metrics or StoreMetrics(registry=None)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._writer_con: duckdb.DuckDBPyConnection | None = None
        self._cursor_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_PendingGroupItem | _PendingWrite | object] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._pending = 0  # group items' sizes queued or committing; loop thread only
        self._group_commit = group_commit
        # Written by the writer thread, read by probes on the loop: single assignments.
        self._last_commit_at = float("-inf")
        self._failing = False
        self._probe: asyncio.Future[bool] | None = None
        self._probe_started_at = float("-inf")
        self._invalidated = False
        self._reopen_tried_at = float("-inf")
        #: The latest stamp handed out (``stamp``); the writer thread's alone.
        self._stamped = datetime.min.replace(tzinfo=UTC)

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open (or create) the database file, migrate its schema, start the writer."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connect()
        self._start_writer()

    def _start_writer(self) -> None:
        self._thread = threading.Thread(target=self._run_writer, name="store-writer", daemon=True)
        self._thread.start()

    def _stop_writer(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    @property
    def where(self) -> str:
        """The database, as logs and messages name it."""
        return str(self.path)

    def _connect(self) -> None:
        try:
            con = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            raise StoreUnavailable(
                f"Cannot open {self.path}: {exc}. Is another statreport running on this data "
                "directory? Stop it, or pass another --data-dir."
            ) from exc
        migrate(con, path=str(self.path))
        # Days are UTC days (SPEC §2), whatever the machine's zone.
        con.execute("SET TimeZone = 'UTC'")
        # DuckDB's own worker threads compete with the event loop and the writer for two
        # cores; small commits gain nothing from them (measured in benchmarks/ingest.py).
        con.execute(f"SET threads TO {int(self._duckdb_threads)}")
        if self._memory_limit is not None:
            # Beyond it a large query spills to <database>.tmp/ instead of growing.
            con.execute("SET memory_limit = ?", [self._memory_limit])
        with self._cursor_lock:
            self._con = con
        self._writer_con = con.cursor()
        # Stamps go on from the latest stored, even if the wall clock stepped back meanwhile.
        self._stamped = max(self._stamped, repository.latest_stamp(con))
        if self._group_commit is not None:
            self._group_commit.load(con)

    @property
    def invalidated(self) -> bool:
        """True while DuckDB has invalidated the database (a fatal error, such as a checkpoint
        on a full disk) and reopening it has not succeeded yet."""
        return self._invalidated

    def _reopen(self) -> None:
        """On the writer thread: close every connection and open the file again, which
        replays its write-ahead log. DuckDB requires this after a fatal error; nothing
        committed is lost."""
        if time.monotonic() - self._reopen_tried_at < _REOPEN_EVERY_SECONDS:
            raise StoreUnavailable(
                "Storage failed fatally and is being reopened; retry shortly.",
                retry_after=self._retry_after,
            )
        self._reopen_tried_at = time.monotonic()
        for con in (self._writer_con, self._con):
            if con is not None:
                with contextlib.suppress(duckdb.Error):
                    con.close()
        with self._cursor_lock:
            self._con = None
        self._writer_con = None
        try:
            self._connect()
        except (duckdb.Error, StoreUnavailable) as exc:
            log.error("event=store.reopen_failed error=%r", str(exc))
            raise StoreUnavailable(
                "Storage failed fatally and could not be reopened yet (is the disk full?); "
                "retry later.",
                retry_after=self._retry_after,
            ) from exc
        self._invalidated = False
        log.warning("event=store.reopened path=%s", self.path)

    async def close(self) -> None:
        """Finish queued writes, checkpoint, and close the file."""
        await asyncio.to_thread(self.close_file)

    def close_file(self) -> None:
        """``close`` for a caller without an event loop (tools, tests)."""
        self._stop_writer()
        if self._writer_con is not None:
            with contextlib.suppress(duckdb.Error):
                self._writer_con.execute("CHECKPOINT")
            self._writer_con = None
        if self._con is not None:
            self._con.close()
            self._con = None

    # -- reads and writes --------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor for one reader thread."""
        with self._cursor_lock:  # the writer may be reopening the file
            if self._con is None:
                raise StoreUnavailable("Storage is not open.", retry_after=self._retry_after)
            return self._con.cursor()

    async def read(self, fn: Callable[[Connection], T]) -> T:
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

    async def analyze(self, fn: Callable[[Connection], T], *, customer_id: str | None = None) -> T:
        """Run an analytics read, written in DuckDB's SQL: on DuckDB, a read (``customer_id``,
        the one customer it is about, changes nothing here; a snapshot of PostgreSQL loads
        only that customer's rows)."""
        return await self.read(fn)

    def follow(self, channel: str, changed: Callable[[], None]) -> None:
        """Call ``changed`` (from another thread) whenever another process says ``channel``
        changed (``core.database.notify``): never, on a DuckDB file one process owns."""

    @contextlib.asynccontextmanager
    async def exclusively(self, job: str) -> AsyncIterator[bool]:
        """Whether this process may run ``job`` now, for as long as the block runs: one
        process owns a DuckDB file, so always; on PostgreSQL, the process that holds the
        job's lock (``PostgresStore``)."""
        yield True

    async def write(self, fn: Callable[[Connection], T], *, transaction: bool = True) -> T:
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

    # -- what was known when (SPEC §11 v3) ---------------------------------------------------

    def stamp(self) -> datetime:
        """The moment a write makes something known: a report's instance-days, an audited
        change, an attestation. Call it on the writer thread only, inside a write.

        Stamps only rise, and each is later than every stamp and every ``known_at`` handed out
        before it. Writes commit one after another on the writer thread, so what was
        committed by an instant is exactly what carries a stamp at or before it: that is how
        the store answers "as known at" an instant, whatever arrived afterwards.
        """
        self._stamped = max(datetime.now(UTC), self._stamped + _TICK)
        return self._stamped

    async def known_at(self, at: datetime | None = None) -> datetime:
        """An instant to read "as known at": ``at`` (not after now), or now. Every later write
        is stamped after it, so the answer for it can no longer change."""

        def hold(_: Connection) -> datetime:
            if at is None:
                return self.stamp()
            self._stamped = max(self._stamped, at)
            return at

        return await self.write(hold, transaction=False)

    async def read_known(self, fn: Callable[[Connection], T]) -> tuple[datetime, T]:
        """Run ``fn`` in a worker thread on a snapshot of exactly what was committed by the
        instant it returns with: the snapshot is taken on the writer thread, between two
        commits, when that instant is stamped. What ``fn`` reads in the current tables is
        then what a read "as known at" that instant gives, for ever after."""
        cur = self.cursor()

        def begin(_: Connection) -> datetime:
            cur.execute("BEGIN TRANSACTION")
            # DuckDB's snapshot starts at a transaction's first read, not at BEGIN.
            cur.execute("SELECT count(*) FROM schema_migrations").fetchall()
            return self.stamp()

        def run() -> T:
            try:
                return fn(cur)
            finally:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("COMMIT")

        try:
            at = await self.write(begin, transaction=False)
            return at, await asyncio.to_thread(run)
        except _STORAGE_FAILURES as exc:
            raise StoreUnavailable(
                f"Storage could not be read: {exc}", retry_after=self._retry_after
            ) from exc
        finally:
            cur.close()

    async def probe(self) -> bool:
        """True while storage accepts writes; at most one probe write a second, whoever asks.

        A commit of the writer's own within the last second, with no storage failure since,
        answers without writing. Otherwise every caller shares one heartbeat write, and its
        answer stands for a second: a readiness flood costs the writer nothing.
        """
        now = time.monotonic()
        if not self._failing and now - self._last_commit_at < _PROBE_FRESH_SECONDS:
            return True
        if self._probe is None or (
            self._probe.done() and now - self._probe_started_at >= _PROBE_FRESH_SECONDS
        ):
            self._probe_started_at = now
            self._probe = asyncio.ensure_future(self._probe_write())
        return await asyncio.shield(self._probe)

    async def _probe_write(self) -> bool:
        self._metrics.probe_writes.inc()
        try:
            await self.write(lambda con: repository.touch_heartbeat(con, at=datetime.now(UTC)))
        except StatreportError:
            return False
        return True

    async def submit(self, payload: Any, *, size: int) -> Any:
        """Commit ``payload`` with whatever else is queued; return the committer's answer.

        Returns only after the commit that holds it. ``size`` (reports, for ingest) counts
        toward the overload limit: beyond it, ``StoreUnavailable`` and nothing is queued.
        """
        if self._thread is None or self._group_commit is None:
            raise StoreUnavailable("Storage is not open.", retry_after=self._retry_after)
        if self._pending + size > self._max_pending:
            self._metrics.overloaded.inc()
            raise StoreUnavailable(
                "The server is overloaded and nothing was stored; retry after the delay in "
                "Retry-After.",
                retry_after=self._retry_after,
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending += size
        try:
            self._queue.put(_PendingGroupItem(payload, size, future, loop))
            return await future
        finally:
            self._pending -= size

    # -- the writer thread -------------------------------------------------------------------

    def _transaction(self, fn: Callable[[Connection], T], *, single_statement: bool = False) -> T:
        """Run ``fn`` atomically on the writer connection, mapping storage failures to 503.

        ``single_statement`` skips BEGIN/COMMIT for a function that issues exactly one
        statement, which DuckDB commits atomically by itself: each extra call has to take the
        GIL back from the busy event loop, and those waits dominated the commit time.
        """
        if self._invalidated:
            self._reopen()
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
            self._failing = True
            if isinstance(exc, duckdb.FatalException):
                # DuckDB refuses every later statement on this database instance.
                self._invalidated = True
            log.error("event=store.write_failed error=%r", str(exc))
            raise StoreUnavailable(
                "Storage is failing and nothing was written. Retry later; operators should "
                f"check the data directory's disk. ({type(exc).__name__})",
                retry_after=self._retry_after,
            ) from exc
        self._failing = False
        self._last_commit_at = time.monotonic()
        return result

    def _run_writer(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, _PendingWrite):
                self._run_admin_write(item)
                continue
            assert isinstance(item, _PendingGroupItem)
            group, deferred, stop = self._collect_group(item)
            self._commit_and_answer(group)
            for write in deferred:
                self._run_admin_write(write)
            if stop:
                return

    def _collect_group(
        self, first: _PendingGroupItem
    ) -> tuple[list[_PendingGroupItem], list[_PendingWrite], bool]:
        """The first request plus what joins it within the window, bounded in size and count.

        Past the window it takes only what was already queued then, so a steady stream of
        requests cannot keep a group open. Admin writes met on the way are returned, to run
        after the group's commit, never inside the collection.
        """
        group = [first]
        deferred: list[_PendingWrite] = []
        size = first.size
        deadline = time.monotonic() + self._window
        backlog: int | None = None  # what was queued when the window closed
        while size < self._commit_max and len(group) + len(deferred) < _GROUP_MAX_REQUESTS:
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    item = self._queue.get(timeout=remaining)
                else:
                    if backlog is None:
                        backlog = self._queue.qsize()
                    if backlog <= 0:
                        break
                    backlog -= 1
                    item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return group, deferred, True
            if isinstance(item, _PendingWrite):
                deferred.append(item)
                continue
            assert isinstance(item, _PendingGroupItem)
            group.append(item)
            size += item.size
        return group, deferred, False

    def _commit_isolated(self, payloads: list[Any]) -> list[Any]:
        """Commit a group; if it fails for a reason other than storage, commit each request
        alone, so that one bad request fails only itself, never its neighbours."""
        assert self._group_commit is not None
        try:
            return self._group_commit.commit(self._transaction, payloads, at=self.stamp())
        except StatreportError as exc:
            return [exc for _ in payloads]
        except Exception as exc:  # a bug must fail its requests, never the writer
            if not self._split_on(exc):
                raise
            if len(payloads) > 1:
                log.warning("event=store.group_split reason=%s", type(exc).__name__)
                return [answer for p in payloads for answer in self._commit_isolated([p])]
            log.exception("event=store.commit_crashed")
            return [
                StoreUnavailable(
                    f"Storage failed unexpectedly ({type(exc).__name__}); nothing was stored.",
                    retry_after=self._retry_after,
                )
            ]

    def _split_on(self, exc: Exception) -> bool:
        """Whether a group that failed with ``exc`` is committed again request by request."""
        return True

    def _run_admin_write(self, item: _PendingWrite) -> None:
        try:
            result = self._transaction(item.fn, single_statement=not item.transaction)
        except BaseException as exc:
            item.loop.call_soon_threadsafe(_settle, item.future, None, exc)
        else:
            item.loop.call_soon_threadsafe(_settle, item.future, result, None)

    def _commit_and_answer(self, group: list[_PendingGroupItem]) -> None:
        started = time.perf_counter()
        outcomes = self._commit_isolated([p.payload for p in group])
        self._metrics.commit_seconds.observe(time.perf_counter() - started)
        self._metrics.commit_reports.observe(sum(p.size for p in group))
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for pending, outcome in zip(group, outcomes, strict=True):
            by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
        for loop, answers in by_loop.items():
            # One wake-up of the event loop per commit, not one per request.
            loop.call_soon_threadsafe(_answer_all, answers)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the request was cancelled (client went away)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _answer_all(answers: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, outcome in answers:
        if isinstance(outcome, BaseException):
            _settle(future, None, outcome)
        else:
            _settle(future, outcome, None)
