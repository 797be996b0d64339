"""Which deliveries the sender takes next (SPEC §14): one endpoint's backlog never hides
another's, on a real DuckDB file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from core.migrations import migrate
from webhooks import repository


def test_a_backlog_of_one_endpoint_leaves_room_for_the_others(tmp_path: Path) -> None:
    path = tmp_path / "statreport.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, path=str(path))
    now = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    for webhook_id in ("wh_dead", "wh_live", "wh_off"):
        repository.insert_endpoint(
            con,
            endpoint={
                "webhook_id": webhook_id,
                "url": "https://hooks.example.com/",
                "events": ["*"],
                "description": "",
                "enabled": webhook_id != "wh_off",
                "created_at": now,
                "secret": "whsec_x",
            },
        )
    backlog = [(f"evt_dead{n:04d}", "wh_dead", now - timedelta(hours=1)) for n in range(500)]
    rows = [*backlog, ("evt_live", "wh_live", now), ("evt_off", "wh_off", now)]
    rows += [("evt_later", "wh_live", now + timedelta(minutes=5))]
    for event_id, webhook_id, due in rows:
        repository.insert_event(con, event_id=event_id, kind="webhook.test", at=now, data={})
        con.execute(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, status, attempts, "
            "created_at, next_attempt_at) VALUES (?, ?, 'pending', 0, ?, ?)",
            [webhook_id, event_id, now, due],
        )
    taken = repository.due_deliveries(con, now=now, per_endpoint=8, limit=128)
    assert [d["event_id"] for d in taken if d["webhook_id"] == "wh_live"] == ["evt_live"]
    assert sum(d["webhook_id"] == "wh_dead" for d in taken) == 8  # the oldest of the backlog
    assert all(d["webhook_id"] != "wh_off" for d in taken)  # a disabled endpoint waits
    assert "evt_later" not in {d["event_id"] for d in taken}  # not due yet
