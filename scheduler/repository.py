"""Every SQL statement of the weekly report: runs and deliveries, once per ISO week."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from core.database import Connection, lock_for
from core.repository import rows_as_dicts

#: A claim not completed within this long was left by a crash mid-send, and is released.
CLAIM_EXPIRES = timedelta(hours=1)


def claim_delivery(
    con: Connection,
    *,
    iso_week: str,
    recipient: str,
    kind: str,
    subject: str,
    findings: int,
    built_from: str,
    claimed_at: datetime,
    force: bool,
) -> str | None:
    """Claim one recipient's email of ``iso_week`` before sending it, in the caller's
    transaction. Returns None when claimed, or why not: another run is sending it right now,
    or it was sent already (``force`` sends again, but never beside a live claim). Claims
    of the same email by two processes take turns (``lock_for``)."""
    lock_for(con, f"weekly:{iso_week}:{recipient}")
    row = con.execute(
        "SELECT status, attempted_at FROM weekly_deliveries WHERE iso_week = ? AND recipient = ?",
        [iso_week, recipient],
    ).fetchone()
    if row is not None:
        status, attempted_at = row
        if status == "sending" and attempted_at > claimed_at - CLAIM_EXPIRES:
            return f"another run is sending it since {attempted_at:%H:%M:%S} UTC"
        if status == "sent" and not force:
            return f"already sent for {iso_week}; use force to send again"
    con.execute(
        "INSERT INTO weekly_deliveries (iso_week, recipient, kind, subject, findings, "
        "status, detail, attempted_at, built_from) VALUES (?, ?, ?, ?, ?, 'sending', NULL, ?, ?) "
        "ON CONFLICT (iso_week, recipient) DO UPDATE SET kind = excluded.kind, "
        "subject = excluded.subject, findings = excluded.findings, status = excluded.status, "
        "detail = excluded.detail, attempted_at = excluded.attempted_at, "
        "built_from = excluded.built_from, message_sha256 = NULL, message = NULL",
        [iso_week, recipient, kind, subject, findings, claimed_at, built_from],
    )
    return None


def record_delivery(
    con: Connection,
    *,
    iso_week: str,
    recipient: str,
    status: str,
    detail: str | None,
    attempted_at: datetime,
    message_sha256: str,
    message: bytes,
) -> None:
    """Complete a claim: sent, or failed (which releases it, so the send is retried)."""
    con.execute(
        "UPDATE weekly_deliveries SET status = ?, detail = ?, attempted_at = ?, "
        "message_sha256 = ?, message = ? WHERE iso_week = ? AND recipient = ?",
        [status, detail, attempted_at, message_sha256, message, iso_week, recipient],
    )


def record_run(con: Connection, *, iso_week: str, as_of: date, ran_at: datetime) -> None:
    """Mark the week's report as run."""
    con.execute(
        "INSERT INTO weekly_runs VALUES (?, ?, ?) ON CONFLICT (iso_week) DO UPDATE SET "
        "as_of = excluded.as_of, ran_at = excluded.ran_at",
        [iso_week, as_of, ran_at],
    )


def unsent_recipients(con: Connection, *, iso_week: str, recipients: Iterable[str]) -> set[str]:
    """The recipients who have not been sent ``iso_week``'s email yet."""
    sent = {
        row[0]
        for row in con.execute(
            "SELECT recipient FROM weekly_deliveries WHERE iso_week = ? AND status = 'sent'",
            [iso_week],
        ).fetchall()
    }
    return set(recipients) - sent


def weeks(con: Connection, *, limit: int) -> list[dict[str, Any]]:
    """The ISO weeks with deliveries, newest first: how many were sent and how many failed."""
    cursor = con.execute(
        "SELECT iso_week, count(*) FILTER (WHERE status = 'sent') AS sent, "
        "count(*) FILTER (WHERE status = 'failed') AS failed, "
        "count(*) FILTER (WHERE status = 'sending') AS sending, "
        "max(attempted_at) AS last_attempt FROM weekly_deliveries "
        "GROUP BY iso_week ORDER BY iso_week DESC LIMIT ?",
        [limit],
    )
    return rows_as_dicts(cursor)


def deliveries(con: Connection, *, iso_week: str) -> list[dict[str, Any]]:
    """Every recipient's latest attempt for one week."""
    cursor = con.execute(
        "SELECT recipient, kind, subject, findings, status, detail, attempted_at, built_from, "
        "message_sha256 FROM weekly_deliveries WHERE iso_week = ? ORDER BY recipient",
        [iso_week],
    )
    return rows_as_dicts(cursor)


def delivered_message(con: Connection, *, iso_week: str, recipient: str) -> bytes | None:
    """The message of one recipient's latest attempt of one week, byte for byte."""
    row = con.execute(
        "SELECT message FROM weekly_deliveries WHERE iso_week = ? AND recipient = ?",
        [iso_week, recipient],
    ).fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


def database_born_at(con: Connection) -> datetime | None:
    """When the data directory's database was created (its first migration)."""
    row = con.execute("SELECT min(applied_at) FROM schema_migrations").fetchone()
    return None if row is None else row[0]


def last_successful_run_at(con: Connection) -> datetime | None:
    """When the latest weekly run none of whose deliveries failed was made."""
    row = con.execute(
        "SELECT max(r.ran_at) FROM weekly_runs r WHERE NOT EXISTS (SELECT 1 FROM "
        "weekly_deliveries d WHERE d.iso_week = r.iso_week AND d.status = 'failed')"
    ).fetchone()
    return None if row is None else row[0]
