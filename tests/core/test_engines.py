"""The two engines hold the same schema, and the SQL both speak reaches psycopg intact."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import duckdb
import pytest

from core.database import PostgresConnection, connect_postgres, psycopg_sql
from core.migrations import LATEST_VERSION, POSTGRES_MIGRATIONS, migrate
from tests.support import new_database, postgres_reachable

#: What only PostgreSQL has: the shared clock of stamps and the frontier of instances across
#: processes (core/postgres_store.py, ingest/repository.py).
POSTGRES_ONLY = {"store_clock", "instance_frontiers"}

_COLUMNS = (
    "SELECT table_name, column_name FROM information_schema.columns "
    "WHERE table_schema IN ('main', 'public') ORDER BY table_name, ordinal_position"
)


@pytest.fixture
def postgres() -> Iterator[PostgresConnection]:
    if not postgres_reachable():
        pytest.skip("no PostgreSQL server (STATREPORT_TEST_DATABASE_URL)")
    url, drop = new_database()
    raw = connect_postgres(url)
    try:
        yield PostgresConnection(raw)
    finally:
        raw.close()
        drop()


def _schema(rows: list[tuple[str, str]]) -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def test_both_engines_have_the_same_tables_and_columns_in_the_same_order(
    postgres: PostgresConnection,
) -> None:
    duck = duckdb.connect()
    assert migrate(duck, path=":memory:") == LATEST_VERSION
    assert migrate(postgres, path="test") == LATEST_VERSION
    on_duckdb = _schema([(str(t), str(c)) for t, c in duck.execute(_COLUMNS).fetchall()])
    on_postgres = _schema([(str(t), str(c)) for t, c in postgres.execute(_COLUMNS).fetchall()])
    assert set(on_postgres) - set(on_duckdb) == POSTGRES_ONLY
    for table, columns in on_duckdb.items():
        assert on_postgres.get(table) == columns, table
    assert POSTGRES_MIGRATIONS[-1][0] == LATEST_VERSION


def test_two_processes_migrating_at_once_migrate_once(postgres: PostgresConnection) -> None:
    """The second waits on the advisory lock and then finds the schema current."""
    url = postgres.raw.info.dsn
    other = PostgresConnection(connect_postgres(url))
    postgres.execute("SELECT pg_advisory_lock(7361820001)")

    answers: list[int] = []
    waiting = threading.Thread(target=lambda: answers.append(migrate(other, path="b")))
    waiting.start()
    waiting.join(timeout=1)
    assert waiting.is_alive()  # held back by the first's lock
    postgres.execute("SELECT pg_advisory_unlock(7361820001)")
    assert migrate(postgres, path="a") == LATEST_VERSION
    waiting.join(timeout=30)
    assert answers == [LATEST_VERSION]
    versions = postgres.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    assert versions == [(number,) for number, _, _ in POSTGRES_MIGRATIONS]
    other.raw.close()


@pytest.mark.parametrize(
    ("duckdb_sql", "psycopg_form"),
    [
        ("SELECT ? , ?", "SELECT %s , %s"),
        ("WHERE a = $name AND b = $name", "WHERE a = %(name)s AND b = %(name)s"),
        ("SELECT '?' || ?, 'it''s $x'", "SELECT '?' || %s, 'it''s $x'"),
        ("SELECT 5 % 2, ?", "SELECT 5 %% 2, %s"),
        ('SELECT "odd?name" FROM t WHERE x = ?', 'SELECT "odd?name" FROM t WHERE x = %s'),
    ],
)
def test_parameters_become_psycopgs_and_literals_are_left_alone(
    duckdb_sql: str, psycopg_form: str
) -> None:
    assert psycopg_sql(duckdb_sql) == psycopg_form


def test_numbered_parameters_may_be_used_twice(postgres: PostgresConnection) -> None:
    assert psycopg_sql("SELECT $1, $2, $1") == "SELECT %(p1)s, %(p2)s, %(p1)s"
    assert postgres.execute(
        "SELECT $1::INTEGER + $2::INTEGER + $1::INTEGER", [1, 10]
    ).fetchall() == [(12,)]
