"""Which engine holds the data, and the one connection interface every repository is given.

DuckDB (one file, one process) is the embedded default; PostgreSQL (SPEC §16 v3) is the
shared store for more than one process. Repositories write SQL in the dialect the two share
(``?`` and ``$name`` parameters, ``ON CONFLICT``, ``::`` casts) and keep what differs beside
it, chosen with ``engine_of``; nothing above the repositories knows which engine runs.

A PostgreSQL connection is psycopg's, wrapped so that it reads like DuckDB's: ``execute``
takes the same parameters and answers the same rows (JSON as its text, sums as integers).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol, cast
from urllib.parse import urlsplit, urlunsplit

import duckdb
import psycopg
import pyarrow as pa
from psycopg.types.string import TextLoader


class Engine(StrEnum):
    """The database engines statreport stores its data in."""

    DUCKDB = "duckdb"
    POSTGRESQL = "postgresql"


class Connection(Protocol):
    """What a repository may do with a connection, whichever the engine."""

    def execute(self, query: str, parameters: Any = None, /) -> Connection:
        """Run one statement with ``?`` (a list) or ``$name`` (a dict) parameters."""

    def executemany(self, query: str, parameters: Any = None, /) -> Connection:
        """Run one statement once per parameter row."""

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Every row of the last statement."""

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row of the last statement, or None."""

    @property
    def description(self) -> Any:
        """The last statement's columns: a sequence whose items start with the name."""


def engine_of(con: Connection) -> Engine:
    """The engine behind a connection."""
    return Engine.POSTGRESQL if isinstance(con, PostgresConnection) else Engine.DUCKDB


def duckdb_of(con: Connection) -> duckdb.DuckDBPyConnection:
    """The DuckDB connection itself, for what only DuckDB does (Arrow, appenders, files)."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        raise TypeError("this needs a DuckDB connection")
    return con


def postgres_of(con: Connection) -> psycopg.Connection[tuple[Any, ...]]:
    """The psycopg connection itself, for what only PostgreSQL does (``COPY``)."""
    if not isinstance(con, PostgresConnection):
        raise TypeError("this needs a PostgreSQL connection")
    return con.raw


def is_postgres_url(url: str | None) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) connection URL."""
    return url is not None and urlsplit(url).scheme in ("postgresql", "postgres")


def redacted(url: str) -> str:
    """A connection URL without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def staged(con: Connection, name: str, table: pa.Table) -> Iterator[None]:
    """``table`` readable under ``name`` by the statements run inside: registered with DuckDB,
    copied into a temporary table on PostgreSQL. Statements then read it alike."""
    if isinstance(con, duckdb.DuckDBPyConnection):
        con.register(name, table)
        try:
            yield
        finally:
            con.unregister(name)
        return
    raw = postgres_of(con)
    columns = ", ".join(f"{f.name} {_postgres_type(f.type)}" for f in table.schema)
    raw.execute(cast(Any, f"CREATE TEMP TABLE {name} ({columns})"))
    try:
        copy_rows(con, name, [f.name for f in table.schema], table.to_pylist())
        yield
    finally:
        raw.execute(cast(Any, f"DROP TABLE IF EXISTS {name}"))


def copy_rows(con: Connection, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None:
    """Append ``rows`` (tuples, or dicts by column) to a PostgreSQL table with ``COPY``."""
    raw = postgres_of(con)
    names = ", ".join(columns)
    with raw.cursor().copy(cast(Any, f"COPY {table} ({names}) FROM STDIN")) as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns] if isinstance(row, dict) else row)


def _postgres_type(arrow: pa.DataType) -> str:
    """The PostgreSQL type of a column staged from Arrow."""
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return "VARCHAR"
    if pa.types.is_date(arrow):
        return "DATE"
    if pa.types.is_timestamp(arrow):
        return "TIMESTAMPTZ"
    if pa.types.is_boolean(arrow):
        return "BOOLEAN"
    if pa.types.is_int64(arrow) or pa.types.is_uint32(arrow):
        return "BIGINT"
    if pa.types.is_integer(arrow):
        return "INTEGER"
    if pa.types.is_floating(arrow):
        return "DOUBLE PRECISION"
    if pa.types.is_null(arrow):
        return "VARCHAR"
    raise TypeError(f"no PostgreSQL type for Arrow's {arrow}")


def lock_for(con: Connection, name: str) -> None:
    """Hold a lock named ``name`` until the caller's transaction ends, so that writes of the
    same thing by two processes take turns: a PostgreSQL advisory lock. On DuckDB, whose one
    writer thread already runs writes one at a time, nothing."""
    if engine_of(con) is Engine.POSTGRESQL:
        con.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", [name]).fetchall()


#: The channel of licence keys and staff tokens: issued or revoked by any process.
KEYRING = "keyring"


def notify(con: Connection, channel: str) -> None:
    """Tell every other process, once the caller's transaction commits, that what
    ``channel`` names changed (``Store.follow``): a PostgreSQL ``NOTIFY``. On DuckDB, whose
    file one process owns, nothing."""
    if engine_of(con) is Engine.POSTGRESQL:
        con.execute(f"NOTIFY statreport_{channel}")


# -- PostgreSQL ------------------------------------------------------------------------------

#: A parameter (``?`` or ``$name``), a string literal, a quoted name or a ``%`` outside them.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|\$([A-Za-z_][A-Za-z0-9_]*|[0-9]+)|%")


@lru_cache(maxsize=1024)
def psycopg_sql(query: str) -> str:
    """A statement with DuckDB's parameters (``?``, ``$name``, ``$1``) in psycopg's (``%s``,
    ``%(name)s``, ``%(p1)s``: see ``_named``); a literal ``%`` doubled. Literals and quoted
    names are left alone."""

    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "?":
            return "%s"
        if text == "%":
            return "%%"
        if match.group(1) is not None:
            name = match.group(1)
            return f"%(p{name})s" if name.isdigit() else f"%({name})s"
        return text

    return _TOKENS.sub(replace, query)


_NUMBERED = re.compile(r"\$[0-9]+")


def _named(query: str, parameters: Any) -> Any:
    """DuckDB's numbered parameters (``$1``, reused as often as a statement likes) as the
    named ones ``psycopg_sql`` writes for them."""
    if isinstance(parameters, dict) or not _NUMBERED.search(query):
        return parameters
    return {f"p{n}": value for n, value in enumerate(parameters, start=1)}


class PostgresConnection:
    """A psycopg connection that answers like DuckDB's: ``execute(...).fetchall()``."""

    def __init__(self, raw: psycopg.Connection[tuple[Any, ...]]) -> None:
        self.raw = raw
        self._cursor = raw.cursor()

    def execute(self, query: str, parameters: Any = None, /) -> PostgresConnection:
        """Run one statement (parameters as DuckDB takes them)."""
        if parameters is None or len(parameters) == 0:
            self._cursor.execute(cast(Any, query))  # sent as it is: no parameter, no %
        else:
            self._cursor.execute(cast(Any, psycopg_sql(query)), _named(query, parameters))
        return self

    def executemany(self, query: str, parameters: Any = None, /) -> PostgresConnection:
        """Run one statement once per parameter row."""
        rows = [_named(query, row) for row in parameters or []]
        self._cursor.executemany(cast(Any, psycopg_sql(query)), rows)
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Every row of the last statement (none for a statement without rows)."""
        if self._cursor.description is None:
            return []
        return self._cursor.fetchall()

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row of the last statement, or None."""
        if self._cursor.description is None:
            return None
        return self._cursor.fetchone()

    @property
    def description(self) -> Sequence[Any] | None:
        """The last statement's columns."""
        return self._cursor.description

    def close(self) -> None:
        """Close the cursor; the connection belongs to whoever made it."""
        self._cursor.close()


def configure_postgres(raw: psycopg.Connection[Any]) -> None:
    """What every statreport connection to PostgreSQL is set to: JSON read as its text, as
    DuckDB answers it; days in UTC (SPEC §2)."""
    raw.adapters.register_loader("json", TextLoader)
    raw.adapters.register_loader("jsonb", TextLoader)
    # A sum of integers is numeric in PostgreSQL; statreport's sums are counts.
    raw.adapters.register_loader("numeric", _NumericAsInt)


class _NumericAsInt(psycopg.adapt.Loader):
    """``numeric`` as an ``int`` when whole (statreport's sums of counts), else a float."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        try:
            return int(text)
        except ValueError:
            return float(text)


def connect_postgres(url: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    """A new connection, configured (``configure_postgres``), in UTC."""
    raw = psycopg.connect(url, autocommit=autocommit, options="-c TimeZone=UTC")
    configure_postgres(raw)
    return raw
