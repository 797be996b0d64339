"""Every SQL statement of the kernel: the audit log, the readiness heartbeat, backups."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import duckdb


def rows_as_dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The rows of an executed query, each as a dict by column name."""
    names = [column[0] for column in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def append_audit(
    con: duckdb.DuckDBPyConnection,
    *,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    before: Any,
    after: Any,
) -> None:
    """Record one admin change, in the caller's transaction."""
    con.execute(
        "INSERT INTO audit_log (changed_at, actor, action, target, before, after) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            at,
            actor,
            action,
            target,
            None if before is None else json.dumps(before, default=_json_default, sort_keys=True),
            None if after is None else json.dumps(after, default=_json_default, sort_keys=True),
        ],
    )


def audit_entries(
    con: duckdb.DuckDBPyConnection, *, target: str | None, limit: int
) -> list[dict[str, Any]]:
    """The newest audit entries first, optionally for one target: ``customer:acme``, or a bare
    id (``acme``) for every kind of target with that id."""
    sql = "SELECT audit_id, changed_at, actor, action, target, before, after FROM audit_log"
    params: list[Any] = []
    if target is not None and ":" in target:
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
        }
        for r in con.execute(sql, params).fetchall()
    ]


def touch_heartbeat(con: duckdb.DuckDBPyConnection, *, at: datetime) -> None:
    """A tiny committed write that proves storage accepts writes."""
    con.execute("INSERT OR REPLACE INTO heartbeat VALUES (1, ?)", [at])


def copy_database(con: duckdb.DuckDBPyConnection, *, destination: str) -> None:
    """Copy every table, constraint and sequence into a new DuckDB file at ``destination``."""
    row = con.execute("SELECT current_database()").fetchone()
    assert row is not None
    source = str(row[0]).replace('"', '""')
    con.execute("ATTACH ? AS statreport_backup", [destination])
    try:
        con.execute(f'COPY FROM DATABASE "{source}" TO statreport_backup')
    finally:
        con.execute("DETACH statreport_backup")
