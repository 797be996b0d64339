"""The group commit of reports (SPEC §2): ownership, idempotency, one atomic append.

The store's single writer thread calls ``ReportCommit.commit`` with every request queued
together; only after it returns is any of them acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb

from core.errors import InstanceOwnedElsewhere
from core.store import Transact
from core.telemetry import StoreMetrics
from ingest import repository
from ingest.repository import StagedReports


class ReportCommit:
    """Commits groups of staged reports; it keeps every instance's owner in memory."""

    def __init__(self, *, metrics: StoreMetrics) -> None:
        self._metrics = metrics
        self._owners: dict[str, str] = {}  # touched on the writer thread only
        self._report_appender: duckdb.Appender | None = None

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read every instance's owner when the store opens."""
        self._owners = repository.instance_owners(con)
        self._report_appender = None

    def commit(self, transact: Transact, payloads: Sequence[Any]) -> list[Any]:
        """Ownership checks, dedupe within the group, and one atomic append.

        Answers each request with its stored flags, or the ``InstanceOwnedElsewhere`` that
        refuses it alone.
        """
        outcomes: list[Any] = [None] * len(payloads)
        claims: dict[str, str] = {}
        accepted: list[StagedReports] = []
        for index, staged in enumerate(payloads):
            conflict = self._ownership_conflict(staged, claims)
            if conflict is not None:
                outcomes[index] = conflict
                continue
            for report in staged.reports:
                if report["instance_id"] not in self._owners:
                    claims.setdefault(report["instance_id"], staged.customer_id)
            accepted.append(staged)

        firsts = _first_occurrences(accepted)
        inserted = self._store(transact, accepted=accepted, firsts=firsts, claims=claims)
        self._owners.update(claims)
        stored = 0
        answers = iter(zip(accepted, firsts, strict=True))
        for index, outcome in enumerate(outcomes):
            if outcome is not None:
                continue
            staged, flags = next(answers)
            outcomes[index] = flags_stored = [
                first and report["report_id"] in inserted
                for report, first in zip(staged.reports, flags, strict=True)
            ]
            stored += sum(flags_stored)
        self._metrics.reports_stored.inc(stored)
        self._metrics.reports_duplicate.inc(sum(len(f) for f in firsts) - stored)
        return outcomes

    def _store(
        self,
        transact: Transact,
        *,
        accepted: list[StagedReports],
        firsts: list[list[bool]],
        claims: dict[str, str],
    ) -> set[str]:
        """Append the group in one statement; the report_ids actually inserted."""
        now = datetime.now(UTC)
        try:
            if not all(all(flags) for flags in firsts):
                raise repository.AlreadyStored
            transact(
                lambda con: repository.append_reports(
                    con,
                    appender=self._appender(con),
                    staged=accepted,
                    new_instances=claims,
                    received_at=now,
                ),
                single_statement=not claims,
            )
            return {r["report_id"] for staged in accepted for r in staged.reports}
        except repository.AlreadyStored:
            # Duplicates are rare (client retries); only then pay for ON CONFLICT ... RETURNING.
            parts = [
                (staged, [r for r, first in zip(staged.reports, flags, strict=True) if first])
                for staged, flags in zip(accepted, firsts, strict=True)
            ]
            return transact(
                lambda con: repository.insert_reports(
                    con, parts=parts, new_instances=claims, received_at=now
                )
            )

    def _appender(self, con: duckdb.DuckDBPyConnection) -> duckdb.Appender:
        if self._report_appender is None:
            self._report_appender = repository.report_appender(con)
        return self._report_appender

    def _ownership_conflict(
        self, staged: StagedReports, claims: dict[str, str]
    ) -> InstanceOwnedElsewhere | None:
        for report in staged.reports:
            owner = self._owners.get(report["instance_id"]) or claims.get(report["instance_id"])
            if owner is not None and owner != staged.customer_id:
                return InstanceOwnedElsewhere(
                    f"instance_id {report['instance_id']} already reports under another customer's "
                    "licence key, so nothing in this request was stored. An instance belongs to "
                    "one customer: send its reports with that customer's key, or give this "
                    "installation a new instance_id."
                )
        return None


def _first_occurrences(accepted: Sequence[StagedReports]) -> list[list[bool]]:
    """Per report, whether it is its report_id's first occurrence in the group: the one that
    may be stored."""
    seen: set[str] = set()
    firsts: list[list[bool]] = []
    for staged in accepted:
        flags = []
        for report in staged.reports:
            flags.append(report["report_id"] not in seen)
            seen.add(report["report_id"])
        firsts.append(flags)
    return firsts
