"""Every SQL statement of the weekly report: runs and deliveries, once per ISO week."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import duckdb


def sent_recipients(con: duckdb.DuckDBPyConnection, *, iso_week: str) -> set[str]:
    """Recipients whose weekly email for ``iso_week`` was delivered."""
    rows = con.execute(
        "SELECT recipient FROM weekly_deliveries WHERE iso_week = ? AND status = 'sent'",
        [iso_week],
    ).fetchall()
    return {row[0] for row in rows}


def record_delivery(
    con: duckdb.DuckDBPyConnection,
    *,
    iso_week: str,
    recipient: str,
    kind: str,
    subject: str,
    findings: int,
    status: str,
    detail: str | None,
    attempted_at: datetime,
) -> None:
    """Keep the latest attempt for one recipient of one week."""
    con.execute(
        "INSERT OR REPLACE INTO weekly_deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [iso_week, recipient, kind, subject, findings, status, detail, attempted_at],
    )


def record_run(
    con: duckdb.DuckDBPyConnection, *, iso_week: str, as_of: date, ran_at: datetime
) -> None:
    """Mark the week's report as run."""
    con.execute("INSERT OR REPLACE INTO weekly_runs VALUES (?, ?, ?)", [iso_week, as_of, ran_at])


def week_complete(con: duckdb.DuckDBPyConnection, *, iso_week: str) -> bool:
    """True once the week's run happened and none of its deliveries failed."""
    ran = con.execute("SELECT count(*) FROM weekly_runs WHERE iso_week = ?", [iso_week]).fetchone()
    failed = con.execute(
        "SELECT count(*) FROM weekly_deliveries WHERE iso_week = ? AND status = 'failed'",
        [iso_week],
    ).fetchone()
    return bool(ran and ran[0]) and not (failed and failed[0])


def deliveries(con: duckdb.DuckDBPyConnection, *, iso_week: str) -> list[dict[str, Any]]:
    """Every recipient's latest attempt for one week."""
    cursor = con.execute(
        "SELECT recipient, kind, subject, findings, status, detail, attempted_at "
        "FROM weekly_deliveries WHERE iso_week = ? ORDER BY recipient",
        [iso_week],
    )
    names = [c[0] for c in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
