"""Evaluation runs kept before version 2 of the contract, read after the upgrade."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import duckdb

from analytics import runs as analytics_runs
from analytics.schemas import finding_id
from core.migrations import MIGRATIONS
from core.store import Store


def test_evaluations_kept_before_version_7_become_runs_with_finding_ids(tmp_path: Path) -> None:
    path = tmp_path / "statreport.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
        "description VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    for number, description, sql in MIGRATIONS[:6]:
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [number, description])
    old = {
        "as_of": "2026-11-08",
        "evaluated_at": "2026-11-09T01:00:00Z",
        "findings": [
            {
                "kind": "telemetry_missing",
                "customer_id": "globex",
                "account_manager": "bob@vendor.example",
                "last_report_on": "2026-10-30",
            }
        ],
    }
    con.execute(
        "INSERT INTO evaluations VALUES ('2026-11-08', '2026-11-09T01:00:00Z', ?)",
        [json.dumps(old)],
    )
    con.close()
    store = Store(path)
    store.open()
    try:
        kept = asyncio.run(analytics_runs.stored_findings(store, as_of=date(2026, 11, 8)))
    finally:
        store.close_file()
    assert (kept.evaluation_id, kept.rules_version, kept.customers_version) == (
        "ev_20261108_v1",
        "1",
        None,
    )
    (finding,) = kept.findings
    assert finding.finding_id == finding_id({"kind": "telemetry_missing", "customer_id": "globex"})
