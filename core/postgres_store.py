"""The store on PostgreSQL (SPEC §16 v3): the same writer thread and group commit as on DuckDB,
one per process, with any number of processes sharing the database.

What the single DuckDB writer guaranteed by being alone is kept across processes here:
- *acknowledged after commit*: a group's answers go out only after its ``COMMIT`` returned;
- *what was known when* (SPEC §11 v3): every write that makes something known holds a shared
  advisory lock (``STAMP_LOCK``) from before it is stamped until it commits, and each stamp is
  past the latest "as known at" instant any process handed out (``store_clock``). Handing out
  an instant takes the lock exclusively: every write stamped before it has committed by then,
  and every write after it is stamped later. So what was committed by an instant is exactly
  what carries a stamp at or before it, as on DuckDB, whatever the processes' clocks say
  (a clock behind the others' only makes its writes known a little later).
- reads run on a pool of connections; analytics reads a snapshot (``core.snapshot``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc_postgresql
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from core.database import (
    Connection,
    Engine,
    PostgresConnection,
    configure_postgres,
    connect_postgres,
    redacted,
)
from core.errors import StatreportError, StoreUnavailable
from core.migrations import migrate
from core.snapshot import Snapshot
from core.store import Store
from core.telemetry import StoreMetrics

log = logging.getLogger("statreport.store")

T = TypeVar("T")

#: The advisory lock every stamped write holds shared, and handing out an instant exclusively.
STAMP_LOCK = 7_361_820_002
#: PostgreSQL errors that mean "the database is unreachable or failing", answered with 503.
STORAGE_FAILURES: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.errors.AdminShutdown,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.DiskFull,
    psycopg.errors.InsufficientResources,
    PoolTimeout,
    adbc_driver_manager.OperationalError,
)
#: The next stamp: this process's now (as on DuckDB), past every instant handed out.
_NEXT_STAMP = "SELECT greatest(%s, handed_out + INTERVAL '1 microsecond') FROM store_clock"


def _job_key(job: str) -> int:
    """A job's advisory lock: a stable 63-bit number from its name."""
    return int.from_bytes(hashlib.sha256(f"statreport:{job}".encode()).digest()[:8]) >> 1


def _begin_snapshot(cursor: Any) -> None:
    """Begin a read-only repeatable-read transaction and take its snapshot now."""
    cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    cursor.execute("SELECT 1")
    cursor.fetchall()


class _Restamp(Exception):
    """An instant was handed out between a group's stamp and its lock: stamp it again."""


class PostgresStore(Store):
    """``Store`` on a PostgreSQL database shared by any number of processes."""

    engine = Engine.POSTGRESQL

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 8,
        commit_window_ms: float = 2.0,
        commit_max_reports: int = 5000,
        max_pending_reports: int = 100_000,
        retry_after_seconds: int = 5,
        metrics: StoreMetrics | None = None,
        group_commit: Any = None,
    ) -> None:
        super().__init__(
            Path("."),
            commit_window_ms=commit_window_ms,
            commit_max_reports=commit_max_reports,
            max_pending_reports=max_pending_reports,
            retry_after_seconds=retry_after_seconds,
            metrics=metrics,
            group_commit=group_commit,
        )
        self.url = url
        self._pool_size = pool_size
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] | None = None
        self._writer: PostgresConnection | None = None
        self._in_transaction = False
        self._arrow_connections: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._followers: list[threading.Thread] = []
        #: A group's stamp, taken before its transactions: each checks it under the lock.
        self._group_stamp: datetime | None = None

    @property
    def where(self) -> str:
        """The database, as logs and messages name it (no password)."""
        return redacted(self.url)

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Connect, migrate (once, whichever process starts first), start the writer."""
        try:
            self._connect()
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"Cannot connect to PostgreSQL at {self.where}: {exc}. Check "
                "STATREPORT_DATABASE_URL and that the server is running."
            ) from exc
        self._pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=self._pool_size,
            kwargs={"autocommit": True, "options": "-c TimeZone=UTC"},
            configure=configure_postgres,
            check=ConnectionPool.check_connection,
            timeout=10,
            name="statreport-readers",
            open=True,
        )
        self._start_writer()

    def _connect(self) -> None:
        writer = PostgresConnection(connect_postgres(self.url))
        migrate(writer, path=self.where)
        self._writer = writer
        if self._group_commit is not None:
            self._group_commit.load(writer)

    def _reconnect(self) -> None:
        """On the writer thread: a new connection after the old one broke (the server restarted,
        the network failed). Nothing committed is lost; what was not committed was not
        acknowledged."""
        if time.monotonic() - self._reopen_tried_at < 1.0:
            raise StoreUnavailable(
                "The database connection is being re-established; retry shortly.",
                retry_after=self._retry_after,
            )
        self._reopen_tried_at = time.monotonic()
        if self._writer is not None:
            with contextlib.suppress(psycopg.Error):
                self._writer.raw.close()
        self._writer = None
        try:
            self._connect()
        except (psycopg.Error, StoreUnavailable) as exc:
            log.error("event=store.reconnect_failed error=%r", str(exc))
            raise StoreUnavailable(
                "The database cannot be reached; nothing was written. Retry later; operators "
                f"should check PostgreSQL at {self.where}.",
                retry_after=self._retry_after,
            ) from exc
        log.warning("event=store.reconnected database=%s", self.where)

    def close_file(self) -> None:
        """Finish queued writes and close every connection."""
        self._closing.set()
        for follower in self._followers:
            follower.join(timeout=5)
        self._stop_writer()
        if self._writer is not None:
            with contextlib.suppress(psycopg.Error):
                self._writer.raw.close()
            self._writer = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        while not self._arrow_connections.empty():
            with contextlib.suppress(Exception):
                self._arrow_connections.get_nowait().close()

    # -- reads -------------------------------------------------------------------------------

    def _reader(self) -> ConnectionPool[psycopg.Connection[tuple[Any, ...]]]:
        if self._pool is None:
            raise StoreUnavailable("Storage is not open.", retry_after=self._retry_after)
        return self._pool

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` on a pooled connection in a worker thread (each statement sees what was
        committed when it started)."""

        def run() -> T:
            with self._reader().connection() as raw:
                con = PostgresConnection(raw)
                try:
                    return fn(con)
                finally:
                    con.close()

        try:
            return await asyncio.to_thread(run)
        except STORAGE_FAILURES as exc:
            raise self._unavailable("read", exc) from exc

    def hand_out(self, raw: psycopg.Connection[Any], at: datetime | None) -> datetime:
        """Hand out an "as known at" instant, holding the stamp lock exclusively (the caller
        holds it, by ``pg_advisory_lock``): ``at``, or the server's now."""
        row = raw.execute(
            "UPDATE store_clock SET handed_out = greatest(handed_out, %s) RETURNING handed_out"
            if at is not None
            else f"UPDATE store_clock SET handed_out = ({_NEXT_STAMP}) RETURNING handed_out",  # noqa: S608
            [at if at is not None else datetime.now(UTC)],
        ).fetchone()
        assert row is not None
        handed: datetime = at if at is not None else row[0]
        return handed

    async def known_at(self, at: datetime | None = None) -> datetime:
        """An instant to read "as known at" (see the module's note)."""

        def run() -> datetime:
            with self._reader().connection() as raw, self.stamp_lock(raw):
                return self.hand_out(raw, at)

        try:
            return await asyncio.to_thread(run)
        except STORAGE_FAILURES as exc:
            raise self._unavailable("read", exc) from exc

    @contextlib.contextmanager
    def stamp_lock(self, raw: psycopg.Connection[Any]) -> Any:
        """Hold the stamp lock exclusively: no stamped write is in flight meanwhile."""
        raw.execute("SELECT pg_advisory_lock(%s)", [STAMP_LOCK])
        try:
            yield
        finally:
            raw.execute("SELECT pg_advisory_unlock(%s)", [STAMP_LOCK])

    async def read_known(self, fn: Callable[[Connection], T]) -> tuple[datetime, T]:
        """Run the analytics read ``fn`` on a snapshot of exactly what was committed by the
        instant it returns with (see the module's note): the snapshot's transaction begins
        while the stamp lock is held."""

        def run() -> tuple[datetime, T]:
            with self._reader().connection() as clock, self._arrow_reader() as cursor:
                with self.stamp_lock(clock):
                    at = self.hand_out(clock, None)
                    _begin_snapshot(cursor)
                return at, self._in_snapshot(cursor, fn, customer_id=None)

        try:
            return await asyncio.to_thread(run)
        except STORAGE_FAILURES as exc:
            raise self._unavailable("read", exc) from exc

    async def analyze(self, fn: Callable[[Connection], T], *, customer_id: str | None = None) -> T:
        """Run the analytics read ``fn`` on a snapshot (``core.snapshot``), of one customer's
        rows when ``customer_id`` is given."""

        def run() -> T:
            with self._arrow_reader() as cursor:
                _begin_snapshot(cursor)
                return self._in_snapshot(cursor, fn, customer_id=customer_id)

        try:
            return await asyncio.to_thread(run)
        except STORAGE_FAILURES as exc:
            raise self._unavailable("read", exc) from exc

    def _in_snapshot(
        self, cursor: Any, fn: Callable[[Connection], T], *, customer_id: str | None
    ) -> T:
        snapshot = Snapshot(cursor, customer_id=customer_id)
        try:
            return fn(snapshot)
        finally:
            snapshot.close()
            cursor.execute("COMMIT")

    @contextlib.contextmanager
    def _arrow_reader(self) -> Iterator[Any]:
        """An ADBC cursor on a connection of this store's own (kept for the next read); a
        connection that failed is closed, not kept."""
        if self._pool is None:
            raise StoreUnavailable("Storage is not open.", retry_after=self._retry_after)
        try:
            connection = self._arrow_connections.get_nowait()
        except queue.Empty:
            connection = adbc_postgresql.connect(self.url, autocommit=True)
        cursor = connection.cursor()
        try:
            yield cursor
        except BaseException:
            cursor.close()
            with contextlib.suppress(Exception):
                connection.close()
            raise
        cursor.close()
        self._arrow_connections.put(connection)

    def follow(self, channel: str, changed: Callable[[], None]) -> None:
        """Call ``changed`` on a thread of its own whenever a process notifies ``channel``
        (``core.database.notify``), and each time the listening connection is made again
        (a notification may have been missed meanwhile)."""

        def listen() -> None:
            while not self._closing.is_set():
                try:
                    with connect_postgres(self.url) as raw:
                        raw.execute(f"LISTEN statreport_{channel}")
                        changed()
                        while not self._closing.is_set():
                            for _ in raw.notifies(timeout=1.0, stop_after=1):
                                changed()
                except psycopg.Error as exc:
                    log.warning("event=store.listen_failed channel=%s error=%r", channel, str(exc))
                    self._closing.wait(1.0)
                except Exception:
                    log.exception("event=store.follow_failed channel=%s", channel)
                    self._closing.wait(1.0)

        thread = threading.Thread(target=listen, name=f"follow-{channel}", daemon=True)
        thread.start()
        self._followers.append(thread)

    @contextlib.asynccontextmanager
    async def exclusively(self, job: str) -> AsyncIterator[bool]:
        """Whether this process runs ``job`` now: True for the one process that got the job's
        advisory lock (held until the block ends), False for the others meanwhile. A
        process that dies loses its lock with its connection."""
        pool = self._reader()
        raw = await asyncio.to_thread(pool.getconn)
        key = _job_key(job)
        try:
            row = await asyncio.to_thread(
                lambda: raw.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
            )
            held = bool(row and row[0])
            try:
                yield held
            finally:
                if held:
                    await asyncio.to_thread(
                        lambda: raw.execute("SELECT pg_advisory_unlock(%s)", [key])
                    )
        finally:
            await asyncio.to_thread(pool.putconn, raw)

    # -- writes ------------------------------------------------------------------------------

    def stamp(self) -> datetime:
        """The moment a write makes something known: now, past every instant handed out (see
        the module's note). Inside a write it is final; before one (a group's), the write checks
        it once it holds the lock (``_Restamp``)."""
        con = self._writer_connection()
        try:
            row = con.raw.execute(_NEXT_STAMP, [datetime.now(UTC)]).fetchone()
        except STORAGE_FAILURES as exc:
            self._failing = True
            raise self._unavailable("write", exc) from exc
        assert row is not None
        stamped: datetime = max(row[0], self._stamped)
        self._stamped = stamped
        if not self._in_transaction:
            self._group_stamp = stamped
        return stamped

    def _writer_connection(self) -> PostgresConnection:
        if self._writer is None or self._writer.raw.closed or self._writer.raw.broken:
            self._reconnect()
        assert self._writer is not None
        return self._writer

    def _transaction(self, fn: Callable[[Connection], T], *, single_statement: bool = False) -> T:
        """Run ``fn`` in one transaction on the writer's connection, holding the stamp lock
        shared; storage failures answer 503 (``single_statement`` changes nothing here)."""
        try:
            con = self._writer_connection()
            stamp = self._group_stamp
            con.execute("BEGIN")
            self._in_transaction = True
            try:
                con.execute("SELECT pg_advisory_xact_lock_shared(?)", [STAMP_LOCK]).fetchall()
                # A statement of its own, after the lock: one statement sees what was
                # committed when it began, which may be before the lock was granted.
                row = con.execute("SELECT handed_out FROM store_clock").fetchone()
                if stamp is not None and row is not None and stamp <= row[0]:
                    raise _Restamp
                result = fn(con)
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    con.execute("ROLLBACK")
                raise
            finally:
                self._in_transaction = False
        except STORAGE_FAILURES as exc:
            self._failing = True
            raise self._unavailable("write", exc) from exc
        self._failing = False
        self._last_commit_at = time.monotonic()
        return result

    def _commit_isolated(self, payloads: list[Any]) -> list[Any]:
        """The group commit, stamped again in the rare case an instant was handed out between
        its stamp and its lock."""
        for _ in range(5):
            try:
                return super()._commit_isolated(payloads)
            except _Restamp:
                continue
            finally:
                self._group_stamp = None
        return [
            StoreUnavailable("The store is busy; retry shortly.", retry_after=self._retry_after)
            for _ in payloads
        ]

    def _split_on(self, exc: Exception) -> bool:
        """A restamp is retried whole, never split."""
        return not isinstance(exc, _Restamp)

    def _unavailable(self, what: str, exc: Exception) -> StatreportError:
        log.error("event=store.%s_failed error=%r", what, str(exc))
        return StoreUnavailable(
            f"The database could not be {'read' if what == 'read' else 'written'} and nothing "
            f"was {'changed' if what == 'read' else 'written'}. Retry later; operators should "
            f"check PostgreSQL at {self.where}. ({type(exc).__name__})",
            retry_after=self._retry_after,
        )

    def cursor(self) -> Any:
        """Not on PostgreSQL: use ``read`` or ``write``."""
        raise TypeError("PostgresStore has no cursor(); use read() or write()")
