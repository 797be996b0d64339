"""The group commit of reports (SPEC §2): ownership, idempotency, one atomic append.

The store's single writer thread calls ``ReportCommit.commit`` with every request queued
together; only after it returns is any of them acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from core.database import Connection
from core.errors import InstanceOwnedElsewhere, InvalidPayload, ReportOwnedElsewhere
from core.store import Transact
from core.telemetry import StoreMetrics
from core.wording import refused
from ingest import repository
from ingest.frontier import REMEMBERED_DAYS, Frontier
from ingest.repository import StagedReports

#: Versions of a new instance's id (SPEC §2 v2): random or time-ordered, never the MAC-bearing
#: version 1 or the nil UUID. Instances first seen before version 2 keep the id they had.
_NEW_INSTANCE_VERSIONS = ("4", "7")

#: Fold the partial instance-days into totals after this many stored reports: often enough
#: that readers merge few partial rows, rarely enough that the fold's pause is not felt.
FOLD_AFTER_REPORTS = 20_000

log = logging.getLogger("statreport.store")

T = TypeVar("T")


class ReportCommit:
    """Commits groups of staged reports; it keeps every instance's owner in memory."""

    def __init__(self, *, metrics: StoreMetrics) -> None:
        self._metrics = metrics
        self._owners: dict[str, str] = {}  # touched on the writer thread only
        self._unfolded = 0  # reports stored since the instance-days were last folded
        self._appenders: repository.Appenders | None = None  # the writer connection's
        self._frontier = Frontier({})  # touched on the writer thread only

    def load(self, con: Connection) -> None:
        """Read every instance's owner when the store opens, and fold the instance-days."""
        self._owners = repository.instance_owners(con)
        self._frontier = Frontier(
            repository.instance_frontiers(con),
            repository.marked_since(con, day=_remembered_since()),
        )
        con.execute("BEGIN TRANSACTION")
        repository.fold_instance_days(con)
        con.execute("COMMIT")
        self._unfolded = 0

    def commit(self, transact: Transact, payloads: Sequence[Any], *, at: datetime) -> list[Any]:
        """Refusals, dedupe within the group, and one atomic append, stamped ``at``: the
        reports' ``received_at`` and when their instance-days became known (SPEC §11 v3).

        Answers each request with its stored flags, or the error that refuses it alone: an
        instance or a report_id of another customer (409), a new instance's id of a version
        that may carry host data (422).
        """
        try:
            return self._commit(transact, payloads, at=at)
        except repository.InstancesClaimed as claimed:
            # PostgreSQL: another process stored one of these new instances for another
            # customer meanwhile; now that its owner is known, the request is refused.
            self._owners.update(claimed.owners)
            return self._commit(transact, payloads, at=at)

    def _commit(self, transact: Transact, payloads: Sequence[Any], *, at: datetime) -> list[Any]:
        outcomes: list[Any] = [None] * len(payloads)
        report_owners: dict[str, str] = {}
        claims: dict[str, str] = {}
        for index, staged in enumerate(payloads):
            refusal = self._refusal(staged, report_owners, claims)
            if refusal is not None:
                outcomes[index] = refusal
                continue
            for report in staged.reports:
                report_owners.setdefault(report["report_id"], staged.customer_id)
                if report["instance_id"] not in self._owners:
                    claims.setdefault(report["instance_id"], staged.customer_id)
        accepted = [i for i, outcome in enumerate(outcomes) if outcome is None]
        firsts = _first_occurrences([payloads[i] for i in accepted])
        try:
            if not all(all(flags) for flags in firsts):
                raise repository.AlreadyStored
            self._append(transact, [payloads[i] for i in accepted], claims=claims, at=at)
            inserted = set(report_owners)
        except repository.AlreadyStored:
            # Duplicates are rare (client retries); only then pay for looking up who stored
            # them, and for ON CONFLICT ... RETURNING.
            stored_by = transact(
                lambda con: repository.report_owners(con, report_ids=list(report_owners)),
                single_statement=True,
            )
            for index in accepted:
                refusal = _stored_elsewhere(payloads[index], stored_by)
                if refusal is not None:
                    outcomes[index] = refusal
            accepted = [i for i in accepted if outcomes[i] is None]
            firsts = _first_occurrences([payloads[i] for i in accepted])
            inserted = self._insert(transact, [payloads[i] for i in accepted], firsts, at=at)
        stored = 0
        for index, flags in zip(accepted, firsts, strict=True):
            outcomes[index] = flags_stored = [
                first and report["report_id"] in inserted
                for report, first in zip(payloads[index].reports, flags, strict=True)
            ]
            stored += sum(flags_stored)
        self._metrics.reports_stored.inc(stored)
        self._metrics.reports_duplicate.inc(sum(len(f) for f in firsts) - stored)
        self._unfolded += stored
        if self._unfolded >= FOLD_AFTER_REPORTS:
            self._fold(transact)
        return outcomes

    def _fold(self, transact: Transact) -> None:
        """Fold the instance-days after a committed group. A failure leaves partial rows,
        which readers merge anyway: it is logged, and the group's answers stand. The
        frontier forgets the marks of days the clone check no longer reads."""
        self._frontier.forget_before(_remembered_since())
        try:
            transact(repository.fold_instance_days)
        except Exception:
            log.warning("event=instance_days.fold_failed", exc_info=True)
            return
        self._unfolded = 0

    def _append(
        self,
        transact: Transact,
        accepted: list[StagedReports],
        *,
        claims: dict[str, str],
        at: datetime,
    ) -> None:
        """The fast path: every report is new; one transaction appends them all, with the new
        instances ``claims`` names (found while checking the group)."""
        records = [s.record for s in accepted if s.record is not None]

        alone = not claims and not records

        def append(con: Connection) -> None:
            seconds = repository.append_reports(
                con,
                staged=accepted,
                new_instances=claims,
                received_at=at,
                own_transaction=alone,
                appenders=self._appenders_of(con),
                frontier=self._frontier,
            )
            self._metrics.instance_days_seconds.observe(seconds)
            for record in records:
                record(con, at)

        self._store(transact, append, claims=claims, single_statement=alone)

    def _insert(
        self,
        transact: Transact,
        accepted: list[StagedReports],
        firsts: list[list[bool]],
        *,
        at: datetime,
    ) -> set[str]:
        """The path with duplicates: the report_ids actually inserted."""
        claims = self._claims(accepted)
        parts = [
            (staged, [r for r, first in zip(staged.reports, flags, strict=True) if first])
            for staged, flags in zip(accepted, firsts, strict=True)
        ]
        records = [s.record for s in accepted if s.record is not None]

        def insert(con: Connection) -> set[str]:
            inserted = repository.insert_reports(
                con,
                parts=parts,
                new_instances=claims,
                received_at=at,
                appenders=self._appenders_of(con),
                frontier=self._frontier,
            )
            for record in records:
                record(con, at)
            return inserted

        return self._store(transact, insert, claims=claims)

    def _appenders_of(self, con: Connection) -> repository.Appenders:
        """The appenders of the writer's connection, made again after it was reopened."""
        if self._appenders is None or self._appenders.con is not con:
            self._appenders = repository.Appenders(con)
        return self._appenders

    def _store(
        self,
        transact: Transact,
        write: Callable[[Connection], T],
        *,
        claims: dict[str, str],
        single_statement: bool = False,
    ) -> T:
        """Run ``write`` as the group's transaction; only once it is stored do the instances
        it claims have owners and its out-of-order marks count as written."""
        try:
            result = transact(write, single_statement=single_statement)
        except BaseException:
            self._frontier.committed(stored=False)
            raise
        self._frontier.committed(stored=True)
        self._owners.update(claims)
        return result

    def _claims(self, accepted: Sequence[StagedReports]) -> dict[str, str]:
        """The instances this group reports for the first time, and their customers."""
        claims: dict[str, str] = {}
        for staged in accepted:
            for report in staged.reports:
                if report["instance_id"] not in self._owners:
                    claims.setdefault(report["instance_id"], staged.customer_id)
        return claims

    def _refusal(
        self, staged: StagedReports, report_owners: dict[str, str], claims: dict[str, str]
    ) -> InstanceOwnedElsewhere | ReportOwnedElsewhere | InvalidPayload | None:
        """Why this request cannot be stored beside the requests before it in the group."""
        errors: list[dict[str, Any]] = []
        for index, report in enumerate(staged.reports):
            instance_id = report["instance_id"]
            owner = self._owners.get(instance_id) or claims.get(instance_id)
            if owner is not None and owner != staged.customer_id:
                return InstanceOwnedElsewhere(
                    f"instance_id {instance_id} already reports under another customer's "
                    "licence key, so nothing in this request was stored. An instance belongs to "
                    "one customer: send its reports with that customer's key, or give this "
                    "installation a new instance_id."
                )
            other = report_owners.get(report["report_id"])
            if other is not None and other != staged.customer_id:
                return _report_conflict(report["report_id"])
            if owner is None and not random_uuid(instance_id):
                loc: list[Any] = ["reports", index, "instance_id"]
                errors.append({"loc": loc if staged.batch else loc[2:], "msg": VERSION_HELP})
        if errors:
            what = refused(len(errors), len(staged.reports), batch=staged.batch)
            return InvalidPayload(
                f"{what}: each names a new installation whose instance_id is not a version 4 "
                "or 7 UUID. Give the installation a random instance_id (such as Python's "
                "uuid.uuid4()).",
                errors=errors,
            )
        return None


VERSION_HELP = (
    "a new instance's id must be a random (version 4) or time-ordered (version 7) UUID; "
    "version 1 would carry the host's MAC address"
)


def _remembered_since() -> date:
    """The first day whose out-of-order marks the writer remembers."""
    return datetime.now(UTC).date() - timedelta(days=REMEMBERED_DAYS)


def random_uuid(text: str) -> bool:
    """Version 4 or 7 with the RFC 9562 variant; the text is validated lower-case UUID."""
    return text[14] in _NEW_INSTANCE_VERSIONS and text[19] in "89ab"


def _report_conflict(report_id: str) -> ReportOwnedElsewhere:
    return ReportOwnedElsewhere(
        f"report_id {report_id} is already used by another customer's installation, so nothing "
        "in this request was stored. Give each report a new random report_id."
    )


def _stored_elsewhere(
    staged: StagedReports, stored_by: dict[str, str]
) -> ReportOwnedElsewhere | None:
    for report in staged.reports:
        owner = stored_by.get(report["report_id"])
        if owner is not None and owner != staged.customer_id:
            return _report_conflict(report["report_id"])
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
