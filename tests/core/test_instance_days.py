"""The instance-days rollup is written twice, once per engine: DuckDB's ``GROUP BY`` for large
groups and the migration, Python for the small groups of single reports. They agree."""

from __future__ import annotations

import itertools
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


@st.composite
def arrivals(
    draw: st.DrawFn,
) -> tuple[list[tuple[Any, ...]], list[int], set[int], set[int], int | None]:
    """Reports of a few instances, in the order they arrive: in runs of rising sequences (one
    installation), interleaved (two sharing an id), restored from a backup, or late. With
    the commits they arrive in, which of those went as batches, which failed once and were
    retried, and where the server restarted."""
    rows = []
    for instance in INSTANCES:
        moments = sorted(draw(st.lists(st.integers(0, 3 * 24 * 60), max_size=15)))
        sequences = draw(
            st.lists(st.none() | st.integers(0, 30), min_size=len(moments), max_size=len(moments))
        )
        for minute, sequence in zip(moments, sequences, strict=True):
            moment = START + timedelta(minutes=minute)
            rows.append(
                (
                    str(uuid.uuid4()),
                    "acme",
                    instance,
                    "production",
                    moment,
                    moment.date(),
                    "1.1.3",
                    sequence,
                )
            )
    order = draw(st.permutations(range(len(rows))))
    arrived = [rows[n] for n in order]
    cuts = sorted(draw(st.sets(st.integers(1, max(len(arrived), 1)), max_size=6)))
    batches = draw(st.sets(st.integers(0, len(cuts)), max_size=3))
    failed = draw(st.sets(st.integers(0, len(cuts)), max_size=2))
    restart = draw(st.none() | st.integers(0, len(cuts)))
    return arrived, cuts, batches, failed, restart


def _regressions(rows: list[tuple[Any, ...]], first: date, last: date) -> dict[str, int]:
    """The clone check's own definition (``analytics.repository.sequence_regressions``)."""
    found: dict[str, int] = {}
    for instance in INSTANCES:
        mine = sorted(
            (row[4], row[7])
            for row in rows
            if row[2] == instance and row[7] is not None and first <= row[5] <= last
        )
        found[instance] = sum(
            1
            for (moment_before, before), (moment, sequence) in itertools.pairwise(mine)
            if sequence < before and moment > moment_before
        )
    return found


@settings(max_examples=300, deadline=None)
@given(arrivals(), st.integers(0, 3), st.integers(0, 3))
def test_every_instance_whose_sequence_went_back_had_a_report_out_of_order(
    arrival: tuple[list[tuple[Any, ...]], list[int], set[int], set[int], int | None],
    start: int,
    length: int,
) -> None:
    rows, cuts, batches, failed, restart = arrival
    frontier = instance_days.Frontier({})
    marked: set[tuple[str, date]] = set()
    bounds = [0, *cuts, len(rows)]
    for number, (begin, end) in enumerate(itertools.pairwise(bounds)):
        if number == restart:  # what the store reads when it opens: every stored report
            stored = rows[:begin]
            frontier = instance_days.Frontier(
                {
                    instance: (
                        max(row[4] for row in stored if row[2] == instance),
                        max(
                            (row[7] for row in stored if row[2] == instance and row[7] is not None),
                            default=None,
                        ),
                    )
                    for instance in {row[2] for row in stored}
                }
            )
        group = rows[begin:end]
        if number in batches:  # a batch: every instance-day counts, the frontier moves past
            days = {(row[2], row[5]) for row in group}
            latest = [
                (
                    instance,
                    day,
                    max(row[4] for row in group if (row[2], row[5]) == (instance, day)),
                    max(
                        (
                            r[7]
                            for r in group
                            if (r[2], r[5]) == (instance, day) and r[7] is not None
                        ),
                        default=None,
                    ),
                )
                for instance, day in days
            ]
            frontier.all_out_of_order(latest)
            marked |= days
        else:
            if number in failed:  # a commit that fails, then its retry
                frontier.out_of_order(group)
                frontier.committed(stored=False)
            marked |= frontier.out_of_order(group)
        frontier.committed(stored=True)
    first = START.date() + timedelta(days=start)
    last = first + timedelta(days=length)
    for instance, count in _regressions(rows, first, last).items():
        if count:
            assert any(
                (instance, first + timedelta(days=n)) in marked for n in range(length + 1)
            ), (instance, count)
