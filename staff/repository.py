"""Every SQL statement of the staff domain: named tokens and when they were used, the audit
log as read, backups."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from core.auth import Role, StaffTokenRecord, Uses
from core.database import KEYRING, Connection, notify
from core.repository import rows_as_dicts

_ENTRY = (
    "SELECT audit_id, changed_at, actor, action, target, before, after, on_behalf_of FROM audit_log"
)


def audit_entries(
    con: Connection, *, target: str | None, limit: int, audit_id: int | None = None
) -> list[dict[str, Any]]:
    """The newest audit entries first, optionally for one target: ``customer:acme``, or a bare
    id (``acme``) for every kind of target with that id; or the one entry ``audit_id``."""
    sql = _ENTRY
    params: list[Any] = []
    if audit_id is not None:
        sql += " WHERE audit_id = ?"
        params.append(audit_id)
    elif target is not None and ":" in target:
        sql += " WHERE target = ?"
        params.append(target)
    elif target is not None:
        sql += " WHERE target = ? OR substr(target, strpos(target, ':') + 1) = ?"
        params += [target, target]
    sql += " ORDER BY audit_id DESC LIMIT ?"
    params.append(limit)
    return [
        {
            "audit_id": r[0],
            "at": r[1],
            "actor": r[2],
            "action": r[3],
            "target": r[4],
            "before": None if r[5] is None else json.loads(r[5]),
            "after": None if r[6] is None else json.loads(r[6]),
            "on_behalf_of": r[7],
        }
        for r in con.execute(sql, params).fetchall()
    ]


def copy_database(con: Connection, *, destination: str) -> None:
    """Copy every table, constraint and sequence into a new DuckDB file at ``destination``."""
    row = con.execute("SELECT current_database()").fetchone()
    assert row is not None
    source = str(row[0]).replace('"', '""')
    con.execute("ATTACH ? AS statreport_backup", [destination])
    try:
        con.execute(f'COPY FROM DATABASE "{source}" TO statreport_backup')
    finally:
        con.execute("DETACH statreport_backup")


def staff_tokens(con: Connection) -> list[StaffTokenRecord]:
    """Every current named token's hash, for the keyring."""
    return [
        StaffTokenRecord(name=r[0], role=Role(r[1]), token_hash=r[2])
        for r in con.execute(
            "SELECT name, role, token_hash FROM staff_tokens ORDER BY name"
        ).fetchall()
    ]


def staff_token_rows(con: Connection) -> list[dict[str, Any]]:
    """Every current named token, without its hash, by name."""
    return rows_as_dicts(
        con.execute("SELECT name, role, created_at, last_used_at FROM staff_tokens ORDER BY name")
    )


def staff_token_row(con: Connection, name: str) -> dict[str, Any] | None:
    """One named token, without its hash, or None."""
    rows = rows_as_dicts(
        con.execute(
            "SELECT name, role, created_at, last_used_at FROM staff_tokens WHERE name = ?", [name]
        )
    )
    return rows[0] if rows else None


def insert_staff_token(
    con: Connection, *, name: str, role: Role, token_hash: str, at: datetime
) -> None:
    """Store a new named token's hash."""
    con.execute(
        "INSERT INTO staff_tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
        [name, role.value, token_hash, at],
    )
    notify(con, KEYRING)


def delete_staff_token(con: Connection, name: str) -> None:
    """Forget a revoked token's hash."""
    con.execute("DELETE FROM staff_tokens WHERE name = ?", [name])
    notify(con, KEYRING)


def record_uses(con: Connection, uses: Uses) -> None:
    """Record when named tokens and licence keys were last used, in the caller's transaction."""
    if uses.tokens:
        con.executemany(
            "UPDATE staff_tokens SET last_used_at = greatest(coalesce(last_used_at, $1), $1) "
            "WHERE name = $2",
            [[at, name] for name, at in uses.tokens.items()],
        )
    if uses.keys:
        con.executemany(
            "UPDATE license_keys SET last_used_at = greatest(coalesce(last_used_at, $1), $1) "
            "WHERE key_id = $2",
            [[at, key_id] for key_id, at in uses.keys.items()],
        )
