"""Every SQL statement of the webhooks: endpoints, the outbox's deliveries, the log."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from core.database import Connection
from core.repository import rows_as_dicts

_ENDPOINT = (
    "SELECT webhook_id, url, events, description, enabled, created_at, secret, "
    "previous_secret, previous_until, failing_since, disabled_reason FROM webhook_endpoints"
)


def endpoints(con: Connection) -> list[dict[str, Any]]:
    """Every endpoint, oldest first, secrets included (for the sender only)."""
    return rows_as_dicts(con.execute(_ENDPOINT + " ORDER BY created_at, webhook_id"))


def endpoint(con: Connection, *, webhook_id: str) -> dict[str, Any] | None:
    """One endpoint, or None."""
    rows = rows_as_dicts(con.execute(_ENDPOINT + " WHERE webhook_id = ?", [webhook_id]))
    return rows[0] if rows else None


def insert_endpoint(con: Connection, *, endpoint: dict[str, Any]) -> None:
    """Register a new endpoint."""
    con.execute(
        "INSERT INTO webhook_endpoints (webhook_id, url, events, description, enabled, "
        "created_at, secret) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            endpoint["webhook_id"],
            endpoint["url"],
            endpoint["events"],
            endpoint["description"],
            endpoint["enabled"],
            endpoint["created_at"],
            endpoint["secret"],
        ],
    )


def update_endpoint(con: Connection, *, webhook_id: str, changes: dict[str, Any]) -> None:
    """Set the given columns of one endpoint (names from this module's callers only)."""
    columns = ", ".join(f"{name} = ?" for name in changes)
    con.execute(
        f"UPDATE webhook_endpoints SET {columns} WHERE webhook_id = ?",  # noqa: S608 - our names
        [*changes.values(), webhook_id],
    )


def delete_endpoint(con: Connection, *, webhook_id: str) -> None:
    """Remove an endpoint and its deliveries."""
    con.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?", [webhook_id])
    con.execute("DELETE FROM webhook_endpoints WHERE webhook_id = ?", [webhook_id])


def due_deliveries(
    con: Connection, *, now: datetime, per_endpoint: int, limit: int
) -> list[dict[str, Any]]:
    """Pending deliveries whose time has come, the oldest ``per_endpoint`` of each enabled
    endpoint: one endpoint's backlog never hides another's."""
    return rows_as_dicts(
        con.execute(
            "SELECT webhook_id, event_id, attempts FROM ("
            "SELECT d.webhook_id, d.event_id, d.attempts, d.next_attempt_at, row_number() OVER "
            "(PARTITION BY d.webhook_id ORDER BY d.next_attempt_at, d.created_at) AS place "
            "FROM webhook_deliveries d JOIN webhook_endpoints w USING (webhook_id) "
            "WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND w.enabled) AS due "
            "WHERE place <= ? ORDER BY next_attempt_at LIMIT ?",
            [now, per_endpoint, limit],
        )
    )


def claim_due(
    con: Connection, *, keys: list[tuple[str, str]], now: datetime, until: datetime
) -> set[tuple[str, str]]:
    """Take the deliveries of ``keys`` that are still pending and due, making them due again
    only at ``until``: whichever process takes one sends it. A delivery whose attempt
    settles before then is recorded as usual; one whose process died is due again then."""
    rows = con.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE status = 'pending' "
        "AND next_attempt_at <= ? AND webhook_id || ' ' || event_id = ANY(?::VARCHAR[]) "
        "RETURNING webhook_id, event_id",
        [until, now, [f"{webhook_id} {event_id}" for webhook_id, event_id in keys]],
    ).fetchall()
    return {(row[0], row[1]) for row in rows}


def oldest_pending(con: Connection) -> datetime | None:
    """When the oldest pending delivery was created."""
    row = con.execute(
        "SELECT min(created_at) FROM webhook_deliveries WHERE status = 'pending'"
    ).fetchone()
    return None if row is None else row[0]


def event(con: Connection, *, event_id: str) -> dict[str, Any] | None:
    """One event of the outbox."""
    rows = rows_as_dicts(
        con.execute(
            "SELECT event_id, type, created_at, data FROM webhook_events WHERE event_id = ?",
            [event_id],
        )
    )
    return rows[0] if rows else None


def insert_event(
    con: Connection,
    *,
    event_id: str,
    kind: str,
    at: datetime,
    data: dict[str, Any],
) -> None:
    """Put one event in the outbox (a test's), if it is not there yet."""
    con.execute(
        "INSERT INTO webhook_events VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [event_id, kind, at, json.dumps(data, default=str)],
    )


def record_attempt(
    con: Connection,
    *,
    webhook_id: str,
    event_id: str,
    status: str,
    attempts: int,
    at: datetime,
    status_code: int | None,
    error: str | None,
    next_attempt_at: datetime | None,
) -> None:
    """What an attempt came to; a delivery that does not exist yet (a test's, a replay of
    an event the endpoint never had) is created."""
    con.execute(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, status, attempts, created_at, "
        "next_attempt_at, last_attempt_at, last_status_code, last_error, delivered_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (webhook_id, event_id) DO UPDATE SET "
        "status = excluded.status, attempts = excluded.attempts, "
        "next_attempt_at = excluded.next_attempt_at, last_attempt_at = excluded.last_attempt_at, "
        "last_status_code = excluded.last_status_code, last_error = excluded.last_error, "
        "delivered_at = coalesce(excluded.delivered_at, webhook_deliveries.delivered_at)",
        [
            webhook_id,
            event_id,
            status,
            attempts,
            at,
            next_attempt_at,
            at,
            status_code,
            error,
            at if status == "delivered" else None,
        ],
    )


def delivery(con: Connection, *, webhook_id: str, event_id: str) -> dict[str, Any] | None:
    """One delivery."""
    rows = deliveries(con, webhook_id=webhook_id, status=None, limit=1, event_id=event_id)
    return rows[0] if rows else None


def deliveries(
    con: Connection,
    *,
    webhook_id: str,
    status: str | None,
    limit: int,
    event_id: str | None = None,
) -> list[dict[str, Any]]:
    """An endpoint's deliveries, newest first, with their event."""
    sql = (
        "SELECT d.event_id, e.type, d.status, d.attempts, d.last_status_code, d.last_error, "
        "d.next_attempt_at, d.delivered_at, d.created_at, e.created_at AS event_created_at, "
        "e.data FROM webhook_deliveries d JOIN webhook_events e USING (event_id) "
        "WHERE d.webhook_id = ?"
    )
    params: list[Any] = [webhook_id]
    if status is not None:
        sql += " AND d.status = ?"
        params.append(status)
    if event_id is not None:
        sql += " AND d.event_id = ?"
        params.append(event_id)
    sql += " ORDER BY d.created_at DESC, d.event_id DESC LIMIT ?"
    params.append(limit)
    return rows_as_dicts(con.execute(sql, params))
