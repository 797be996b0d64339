"""The instance-days rollup is written twice, once per engine: DuckDB's ``GROUP BY`` for large
groups and the migration, Python for the small groups of single reports. They agree."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from core import instance_days
from core.usage_metrics import REPORT_METRICS
from ingest.repository import _REPORT_SCHEMA as REPORT_SCHEMA

INSTANCES = [str(uuid.UUID(int=n + 1, version=4)) for n in range(3)]
START = datetime(2026, 3, 1, tzinfo=UTC)
#: When the rows became known (``Store.stamp``).
KNOWN = datetime(2026, 3, 2, 0, 5, tzinfo=UTC)


@st.composite
def report_rows(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Reports of a few instances over a few days, each moment once (a tie of the latest
    moment has no defined environment in either engine)."""
    minutes = draw(st.lists(st.integers(0, 3 * 24 * 60), min_size=1, max_size=40, unique=True))
    rows = []
    for minute in minutes:
        moment = START + timedelta(minutes=minute)
        rows.append(
            (
                str(uuid.uuid4()),
                "acme",
                draw(st.sampled_from(INSTANCES)),
                draw(st.sampled_from(["production", "non_production"])),
                moment,
                moment.date(),
                draw(st.sampled_from(["1.1.3", "1.2.0"])),
                draw(st.none() | st.integers(0, 50)),
                draw(st.integers(0, 500)),  # users is always reported
                *[draw(st.none() | st.integers(0, 500)) for _ in REPORT_METRICS[1:]],
                "phone_home",
                "key_1",
                START,
            )
        )
    return rows


def _by_sql(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    table = pa.Table.from_arrays(
        [
            pa.array(column, type=field.type)
            for column, field in zip(zip(*rows, strict=True), REPORT_SCHEMA, strict=True)
        ],
        schema=REPORT_SCHEMA,
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("staged", table)
    found = con.execute(
        instance_days.rollup("staged", partial=True, known_at="?"), [KNOWN]
    ).fetchall()
    return sorted((str(row[0]), *row[1:]) for row in found)


def _key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (str(row[0]), *row[1:])


@settings(max_examples=200, deadline=None)
@given(report_rows())
def test_the_python_rollup_agrees_with_duckdbs(rows: list[tuple[Any, ...]]) -> None:
    assert sorted(_key(row) for row in instance_days.rollup_rows(rows, known_at=KNOWN)) == _by_sql(
        rows
    )


def test_one_report_is_its_own_instance_day() -> None:
    moment = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    row = ("r", "acme", INSTANCES[0], "production", moment, date(2026, 3, 1), "1.1.3", 7)
    metrics = (58, None, 3, 1, 4, 2)
    (day,) = instance_days.rollup_rows(
        [(*row, *metrics, "phone_home", "key_1", moment)], known_at=KNOWN
    )
    assert day == (
        INSTANCES[0],
        date(2026, 3, 1),
        "acme",
        "production",
        "1.1.3",
        *metrics,
        1,
        moment,
        moment,
        7,
        7,
        True,
        KNOWN,
    )
