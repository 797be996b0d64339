"""What was known at an instant (SPEC §11 v3): the instance-days read "as known at" any earlier
instant are what the current view answered then, whatever was committed and folded since."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from core import instance_days
from core.migrations import migrate
from ingest.repository import _REPORT_SCHEMA as REPORT_SCHEMA
from ingest.repository import fold_instance_days
from tests.core.test_instance_days import START, report_rows

#: What a reader sees of the totals, in a stable order.
_READ = (
    "SELECT instance_id::VARCHAR, day, environment, users, tenants, reports, "
    "first_generated_at, last_generated_at, min_sequence, max_sequence FROM {source} "
    "ORDER BY instance_id, day"
)


def _now(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(_READ.format(source="instance_day_totals")).fetchall()


def _known_at(con: duckdb.DuckDBPyConnection, at: datetime) -> list[tuple[Any, ...]]:
    source = f"({instance_days.known_at_totals('day >= $since')})"
    return con.execute(
        _READ.format(source=source), {"known_at": at, "since": START.date()}
    ).fetchall()


def _commit(con: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]], at: datetime) -> None:
    table = pa.Table.from_arrays(
        [
            pa.array(column, type=field.type)
            for column, field in zip(zip(*rows, strict=True), REPORT_SCHEMA, strict=True)
        ],
        schema=REPORT_SCHEMA,
    )
    con.register("stored_reports", table)
    con.execute(instance_days.APPEND_RETURNING_LATEST, [at]).fetchall()
    con.unregister("stored_reports")


@settings(max_examples=60, deadline=None)
@given(
    rows=report_rows(),
    cuts=st.lists(st.integers(1, 39), max_size=8, unique=True),
    folds=st.lists(st.booleans(), min_size=9, max_size=9),
)
def test_every_earlier_instant_reads_as_the_view_answered_then(
    rows: list[tuple[Any, ...]], cuts: list[int], folds: list[bool]
) -> None:
    """Reports committed in groups (late ones for old days among them, since a group is any
    slice of reports in random order), with folds in between: at each commit's stamp, and
    just before it, the read "as known at" gives what the view gave at that moment."""
    con = duckdb.connect()
    migrate(con, path=":memory:")
    con.execute("SET TimeZone = 'UTC'")
    bounds = [0, *sorted(c for c in cuts if c < len(rows)), len(rows)]
    answers: list[tuple[datetime, list[tuple[Any, ...]]]] = []
    stamp = START + timedelta(days=1)
    for n, (first, last) in enumerate(itertools.pairwise(bounds)):
        if first == last:
            continue
        stamp += timedelta(minutes=7)
        answers.append((stamp - timedelta(microseconds=1), _now(con)))
        _commit(con, rows[first:last], stamp)
        if folds[n]:
            fold_instance_days(con)
        answers.append((stamp, _now(con)))
    fold_instance_days(con)
    for at, answer in answers:
        assert _known_at(con, at) == answer, at
    assert _known_at(con, stamp) == _now(con)


def test_a_fold_keeps_only_rows_that_were_an_answer() -> None:
    """A partial row folded with nothing before it becomes the folded row; nothing is kept.
    A row replaced by a later one is kept, with the instant it was replaced."""
    con = duckdb.connect()
    migrate(con, path=":memory:")
    con.execute("SET TimeZone = 'UTC'")
    row = (
        "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
        "acme",
        "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
        "production",
        START,
        START.date(),
        "1.1.3",
        1,
        5,
        *[None] * 5,
        "phone_home",
        "key_1",
        START,
    )
    first, second = START + timedelta(hours=1), START + timedelta(hours=2)
    _commit(con, [row], first)
    fold_instance_days(con)
    assert con.execute("SELECT count(*) FROM instance_days_replaced").fetchall() == [(0,)]
    later = ("0f8fad5b-d9cb-469f-a165-70867728950e", *row[1:4], START + timedelta(minutes=5))
    _commit(con, [(*later, *row[5:7], 2, 9, *row[9:])], second)
    fold_instance_days(con)
    kept = con.execute("SELECT users, known_at, replaced_at FROM instance_days_replaced").fetchall()
    assert kept == [(5, first, second)]
    assert _known_at(con, first)[0][3] == 5
    assert _known_at(con, second)[0][3] == 9
    assert _known_at(con, first - timedelta(microseconds=1)) == []
