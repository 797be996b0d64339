"""``statreport migrate --to postgresql://…``: a DuckDB data directory, copied into an empty
PostgreSQL database and verified (SPEC §16 v3). The DuckDB file is only read."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc_postgresql
import click
import duckdb
import psycopg
import pyarrow as pa

from core import repository
from core.database import PostgresConnection, connect_postgres, redacted
from core.migrations import LATEST_VERSION, current_version, migrate

#: Rows copied at a time: a few tens of MiB of Arrow.
BATCH_ROWS = 200_000
#: Exit codes: what a script can tell apart (refused: nothing copied; failed: a copy to drop).
EXIT_REFUSED, EXIT_MISMATCH = 1, 3


class Refused(click.ClickException):
    """Nothing was copied: the reason, and what to do."""

    exit_code = EXIT_REFUSED


@click.command("migrate")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="STATREPORT_DATA_DIR",
    default=Path("./statreport-data"),
    show_default=True,
    help="The data directory whose statreport.duckdb is copied (only read).",
)
@click.option(
    "--to",
    "url",
    required=True,
    metavar="postgresql://…",
    help="The empty PostgreSQL database to copy it into.",
)
def migrate_command(data_dir: Path, url: str) -> None:
    """Copy a DuckDB data directory into an empty PostgreSQL database, then verify every
    table's rows (count and checksum).

    Stop statreport serve first (it holds the file). The DuckDB file is opened read-only and
    left as it was; a database that already holds tables is refused. Afterwards set
    STATREPORT_DATABASE_URL to the same URL and start statreport serve: see
    docs/operations.md, "Scaling out". Exit codes: 0 copied and verified, 1 refused (nothing
    copied), 3 the copy failed or a table did not verify (drop the database and run again).
    """
    started = time.monotonic()
    source = _open_source(data_dir)
    try:
        target = _open_target(url)
    except psycopg.OperationalError as exc:
        raise Refused(f"Cannot connect to {redacted(url)}: {exc}") from exc
    with source, target:
        con = PostgresConnection(target)
        tables = _tables(source)
        click.echo(
            f"copying {len(tables)} tables of {data_dir / 'statreport.duckdb'} into {redacted(url)}"
        )
        try:
            migrate(con, path=redacted(url))
            with adbc_postgresql.connect(url) as arrow:
                for table in tables:
                    _copy_table(source, arrow, con, table)
            _after_copy(source, con)
            click.echo("  analyzing the tables for PostgreSQL's planner ...")
            con.execute("ANALYZE")
        except (psycopg.Error, duckdb.Error, adbc_driver_manager.Error) as exc:
            click.echo(
                f"The copy failed ({type(exc).__name__}: {exc}). Drop the database and run "
                "again; the DuckDB file is as it was.",
                err=True,
            )
            sys.exit(EXIT_MISMATCH)
        mismatched = _verify(source, url, tables)
    seconds = time.monotonic() - started
    if mismatched:
        click.echo(
            f"NOT VERIFIED: {', '.join(mismatched)} differ. Drop the database and run again; "
            "the DuckDB file is as it was.",
            err=True,
        )
        sys.exit(EXIT_MISMATCH)
    click.echo(
        f"copied and verified {len(tables)} tables in {seconds:.1f} s. Now start statreport "
        f"with STATREPORT_DATABASE_URL={redacted(url)}."
    )


def _open_source(data_dir: Path) -> duckdb.DuckDBPyConnection:
    path = data_dir / "statreport.duckdb"
    if not path.exists():
        raise Refused(f"There is no {path}: pass the data directory with --data-dir.")
    try:
        source = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise Refused(
            f"Cannot open {path} read-only: {exc}. Stop statreport serve on this data "
            "directory first."
        ) from exc
    source.execute("SET TimeZone = 'UTC'")
    version = current_version(source)
    if version != LATEST_VERSION:
        source.close()
        raise Refused(
            f"{path} has schema version {version}, this statreport {LATEST_VERSION}: start "
            "statreport serve on it once (it upgrades the schema), stop it, then migrate."
        )
    return source


def _open_target(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    target = connect_postgres(url)
    (count,) = target.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchone() or (0,)
    if count:
        target.close()
        raise Refused(
            f"{redacted(url)} already holds {count} tables; nothing was copied. Migrate into a "
            "new, empty database (createdb statreport)."
        )
    return target


def _tables(source: duckdb.DuckDBPyConnection) -> list[str]:
    """Every table of the DuckDB file but the migrations' own, which PostgreSQL has."""
    rows = source.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "AND table_name <> 'schema_migrations' ORDER BY table_name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _copy_table(
    source: duckdb.DuckDBPyConnection, arrow: Any, con: PostgresConnection, table: str
) -> None:
    """Copy one table in batches: Arrow into an unlogged staging table (ADBC's binary
    ``COPY``), then into the table with each column cast to its type."""
    ((rows,),) = source.execute(f"SELECT count(*) FROM {table}").fetchall()  # noqa: S608
    columns = con.execute(
        "SELECT column_name, format_type(a.atttypid, a.atttypmod) "
        "FROM information_schema.columns c JOIN pg_attribute a "
        "ON a.attrelid = c.table_name::regclass AND a.attname = c.column_name "
        "WHERE c.table_schema = 'public' AND c.table_name = ? ORDER BY c.ordinal_position",
        [table],
    ).fetchall()
    casts = ", ".join(f"{name}::{kind}" for name, kind in columns)
    names = ", ".join(name for name, _ in columns)
    stage = f"_migrating_{table}"
    with click.progressbar(length=rows, label=f"  {table:<28}", show_pos=True) as bar:
        reader = source.sql(f"SELECT {names} FROM {table}").to_arrow_reader(BATCH_ROWS)  # noqa: S608
        for batch in reader:
            with arrow.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {stage}")
                cursor.adbc_ingest(stage, pa.Table.from_batches([batch]), mode="create")
            arrow.commit()
            con.execute(f"INSERT INTO {table} ({names}) SELECT {casts} FROM {stage}")  # noqa: S608
            bar.update(batch.num_rows)
    con.execute(f"DROP TABLE IF EXISTS {stage}")


def _after_copy(source: duckdb.DuckDBPyConnection, con: PostgresConnection) -> None:
    """What PostgreSQL keeps that DuckDB's file does not: the sequences past the copied ids,
    the clock of stamps past the latest one, every instance's frontier."""
    for sequence, table, column in (
        ("audit_ids", "audit_log", "audit_id"),
        ("finding_note_ids", "finding_notes", "note_id"),
    ):
        con.execute(
            f"SELECT setval('{sequence}', coalesce((SELECT max({column}) FROM {table}), 0) + 1, "  # noqa: S608
            "false)"
        )
    con.execute(
        "UPDATE store_clock SET handed_out = greatest(handed_out, ?)",
        [repository.latest_stamp(source)],
    )
    con.execute(
        "INSERT INTO instance_frontiers SELECT instance_id, max(last_generated_at), "
        "max(max_sequence) FROM instance_day_totals GROUP BY instance_id"
    )


def _verify(source: duckdb.DuckDBPyConnection, url: str, tables: list[str]) -> list[str]:
    """Each table's count and checksum on both sides, computed alike: by DuckDB, over the
    file's rows and over the rows read back from PostgreSQL. Answers the tables that differ."""
    mismatched = []
    with adbc_postgresql.connect(url) as arrow, arrow.cursor() as cursor:
        for table in tables:
            expected = _checksum(source, table)
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - a listed name
            copied = duckdb.connect()
            copied.execute("SET TimeZone = 'UTC'")
            copied.register(table, cursor.fetch_arrow_table().replace_schema_metadata(None))
            actual = _checksum(copied, table)
            copied.close()
            same = expected == actual
            click.echo(
                f"  verified {table:<28} {expected[0]:>12,} rows {'ok' if same else 'DIFFERENT'}"
            )
            if not same:
                mismatched.append(table)
    return mismatched


def _checksum(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    """A table's rows, and the XOR of each row's hash as DuckDB writes the row as text."""
    ((rows, digest),) = con.execute(
        f"SELECT count(*), coalesce(bit_xor(hash(t::VARCHAR)), 0) FROM {table} t"  # noqa: S608
    ).fetchall()
    return int(rows), int(digest)
