"""Every SQL statement of the console: its sessions (SPEC §12), kept in the database so that
any process behind a proxy serves them (SPEC §16 v3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.database import Connection


def insert_session(
    con: Connection, *, session_hash: str, name: str, csrf: str, expires_at: datetime
) -> None:
    """A new session; sessions that have expired are forgotten on the way."""
    con.execute(
        "DELETE FROM console_sessions WHERE expires_at <= ?", [datetime.now(expires_at.tzinfo)]
    )
    con.execute(
        "INSERT INTO console_sessions (session_hash, name, csrf, expires_at, once) "
        "VALUES (?, ?, ?, ?, '{}')",
        [session_hash, name, csrf, expires_at],
    )


def session(con: Connection, *, session_hash: str) -> tuple[Any, ...] | None:
    """A session's token name, CSRF token and expiry, or None."""
    return con.execute(
        "SELECT name, csrf, expires_at FROM console_sessions WHERE session_hash = ?",
        [session_hash],
    ).fetchone()


def delete_session(con: Connection, *, session_hash: str) -> None:
    """End a session."""
    con.execute("DELETE FROM console_sessions WHERE session_hash = ?", [session_hash])


def once(con: Connection, *, session_hash: str) -> str | None:
    """A session's values to show once (JSON of sealed texts by what they are)."""
    row = con.execute(
        "SELECT once FROM console_sessions WHERE session_hash = ?", [session_hash]
    ).fetchone()
    return None if row is None else str(row[0])


def set_once(con: Connection, *, session_hash: str, once: str) -> None:
    """Replace a session's values to show once, in the caller's transaction."""
    con.execute("UPDATE console_sessions SET once = ? WHERE session_hash = ?", [once, session_hash])
