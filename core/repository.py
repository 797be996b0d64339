"""Every SQL statement of the kernel: the audit log, the readiness heartbeat, backups."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from core.auth import Actor
from core.database import Connection


def rows_as_dicts(cursor: Connection) -> list[dict[str, Any]]:
    """The rows of an executed query, each as a dict by column name."""
    names = [column[0] for column in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def append_audit(
    con: Connection,
    *,
    at: datetime,
    actor: Actor,
    action: str,
    target: str,
    before: Any,
    after: Any,
) -> None:
    """Record one admin change, in the caller's transaction."""
    con.execute(
        "INSERT INTO audit_log (changed_at, actor, on_behalf_of, action, target, before, after) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            at,
            actor.name,
            actor.on_behalf_of,
            action,
            target,
            None if before is None else json.dumps(before, default=_json_default, sort_keys=True),
            None if after is None else json.dumps(after, default=_json_default, sort_keys=True),
        ],
    )


def latest_stamp(con: Connection) -> datetime:
    """The latest moment anything stored was stamped with (``Store.stamp``), or the earliest
    instant when nothing was."""
    ((latest,),) = con.execute(
        "SELECT greatest((SELECT max(known_at) FROM instance_days), "
        "(SELECT max(changed_at) FROM audit_log), (SELECT max(received_at) FROM attestations), "
        "(SELECT max(known_at) FROM evaluation_runs))"
    ).fetchall()
    return latest if latest is not None else datetime.min.replace(tzinfo=UTC)


def touch_heartbeat(con: Connection, *, at: datetime) -> None:
    """A tiny committed write that proves storage accepts writes."""
    con.execute(
        "INSERT INTO heartbeat VALUES (1, ?) "
        "ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at",
        [at],
    )
