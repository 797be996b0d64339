"""The frontier of each instance's reports (``ingest.frontier.Frontier``): every instance whose
sequence went back had an instance-day marked as received out of order."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.frontier import Frontier
from tests.core.test_instance_days import INSTANCES, START


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
    frontier = Frontier({})
    marked: set[tuple[str, date]] = set()
    bounds = [0, *cuts, len(rows)]
    for number, (begin, end) in enumerate(itertools.pairwise(bounds)):
        if number == restart:  # what the store reads when it opens: every stored report
            stored = rows[:begin]
            frontier = Frontier(
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
