"""Which instance-days received a report out of order (SPEC §6 v2, ``instance_cloned``): what
the clone check reads the raw sequences of, and nothing else."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from core.instance_days import DAY, GENERATED, INSTANCE, SEQUENCE

#: How many days of marks the writer remembers: the clone check's window and a day more.
REMEMBERED_DAYS = 8


class Frontier:
    """Per instance, the latest ``generated_at`` and the highest ``sequence`` of the reports it
    has sent so far, in the order they arrived: what tells which instance-days received a
    report out of order (SPEC §6 v2, ``instance_cloned``).

    A report with a sequence arrives *in order* when both its ``generated_at`` and its
    sequence are past the frontier. If every report of an instance in a window of days
    arrived in order, then ordered by ``generated_at`` its sequences only rise: take two of
    them, a generated before b; had b arrived first, a would not have been past the
    frontier. So only instances with an instance-day in the window that received a report
    out of order can have a sequence regression there; the clone check reads the raw
    sequences of those alone. A frontier that is too far ahead only marks more days (a
    group that failed to commit, a restart that counts reports without a sequence): it errs
    towards reading more, never less.
    """

    def __init__(
        self,
        latest: dict[str, tuple[datetime, int | None]],
        marked: Iterable[tuple[str, date]] = (),
    ) -> None:
        self._latest = latest
        #: Instance-days already marked, so that each is written once.
        self._marked = set(marked)
        #: Marks handed out for a commit that has not ended yet.
        self._pending: set[tuple[str, date]] = set()

    def out_of_order(self, reports: Iterable[Sequence[Any]]) -> set[tuple[str, date]]:
        """The (instance, day)s of ``reports`` (rows in the column order of ``reports``, in
        the order they arrived) that arrived out of order and were not marked before; the
        frontier moves past them."""
        marked: set[tuple[str, date]] = set()
        for report in reports:
            sequence = report[SEQUENCE]
            if sequence is None:  # never compared; nothing to order
                continue
            instance, moment = report[INSTANCE], report[GENERATED]
            latest = self._latest.get(instance)
            if latest is not None and (
                moment <= latest[0] or (latest[1] is not None and sequence <= latest[1])
            ):
                marked.add((instance, report[DAY]))
            self._move(instance, moment, sequence)
        return self._new(marked)

    def all_out_of_order(
        self, days: Iterable[tuple[str, date, datetime, int | None]]
    ) -> set[tuple[str, date]]:
        """Count each (instance, day, latest moment, highest sequence) of reports stored
        without being checked one by one (a batch) as out of order, and move the frontier
        past them; the instance-days not marked before."""
        summary = list(days)
        for instance, _, moment, sequence in summary:
            self._move(instance, moment, sequence)
        return self._new({(instance, day) for instance, day, _, _ in summary})

    def adopt(self, latest: dict[str, tuple[datetime, int | None]], instances: set[str]) -> None:
        """Take the stored frontiers of ``instances`` as they are (PostgreSQL: what every
        process committed, read under a row lock), forgetting what this process thought."""
        for instance in instances:
            stored = latest.get(instance)
            if stored is None:
                self._latest.pop(instance, None)
            else:
                self._latest[instance] = stored

    def of(self, instances: set[str]) -> list[tuple[str, datetime, int | None]]:
        """The frontiers of ``instances`` that are known."""
        return [(i, *self._latest[i]) for i in sorted(instances) if i in self._latest]

    def forget_before(self, day: date) -> None:
        """Forget the marks of days before ``day``: they are stored, and remembering them only
        saves writing one again for a report that late."""
        self._marked = {mark for mark in self._marked if mark[1] >= day}

    def committed(self, stored: bool) -> None:
        """The commit the marks handed out since the last call were for has ended: remember
        them if it was ``stored``, else forget them, so that its retry writes them again."""
        if stored:
            self._marked |= self._pending
        self._pending = set()

    def _move(self, instance: str, moment: datetime, sequence: int | None) -> None:
        """Move the instance's frontier past a report (or the latest of several)."""
        latest = self._latest.get(instance)
        if latest is None:
            self._latest[instance] = (moment, sequence)
            return
        moment_before, sequence_before = latest
        highest = sequence_before if sequence is None else sequence
        if sequence is not None and sequence_before is not None:
            highest = max(sequence, sequence_before)
        self._latest[instance] = (max(moment, moment_before), highest)

    def _new(self, marked: set[tuple[str, date]]) -> set[tuple[str, date]]:
        new = marked - self._marked - self._pending
        self._pending |= new
        return new
