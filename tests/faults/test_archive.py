"""Retention (SPEC §13 v2): old months of raw reports move to Parquet, and the archive plus the
database hold every report exactly once, even when the process dies between the two steps."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from core import instance_days
from core.store import Store
from ingest.archive import archive_reports

RETENTION = 401
TODAY = datetime.now(UTC).date()


def _aged_data_dir(data_dir: Path) -> int:
    """A data directory whose reports span the last 30 months: 4 a day from 3 instances."""
    store = Store(data_dir / "statreport.duckdb")
    store.open()
    con = store.cursor()
    con.execute(
        """
        INSERT INTO reports
        SELECT uuid(), 'acme', ('00000000-0000-4000-8000-00000000000' || (i % 3))::UUID,
               'production', ts, ts::DATE, '1.1.3', i, (i * 7919) % 100, 1, NULL, 2, 5, 1,
               'phone_home', 'k1', ts
        FROM range(? * 4) t(i),
             LATERAL (SELECT ?::TIMESTAMPTZ + to_hours(i * 6) AS ts)
        """,
        [30 * 31, datetime.combine(TODAY - timedelta(days=30 * 31), datetime.min.time(), UTC)],
    )
    con.execute(
        "INSERT INTO instance_days "
        + instance_days.rollup("reports", partial=False, known_at="now()")
    )
    con.execute("INSERT INTO instance_days_out_of_order SELECT instance_id, day FROM instance_days")
    row = con.execute("SELECT count(*) FROM reports").fetchone()
    con.close()
    store.close_file()
    return int(row[0]) if row else 0


def _holdings(data_dir: Path) -> tuple[int, int, int]:
    """(rows in the archive and the database together, distinct report_ids among them, rows
    left in the database)."""
    con = duckdb.connect(str(data_dir / "statreport.duckdb"), read_only=True)
    files = sorted((data_dir / "archive" / "reports").glob("*.parquet"))
    archive = "SELECT report_id FROM read_parquet(?)" if files else "SELECT NULL::UUID AS report_id"
    params = [[str(f) for f in files]] if files else []
    try:
        row = con.execute(
            f"SELECT count(*), count(DISTINCT report_id) FROM ("  # noqa: S608
            f"SELECT report_id FROM reports UNION ALL {archive}) WHERE report_id IS NOT NULL",
            params,
        ).fetchone()
        left = con.execute("SELECT count(*) FROM reports").fetchone()
    finally:
        con.close()
    assert row is not None
    assert left is not None
    return int(row[0]), int(row[1]), int(left[0])


def _days(data_dir: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(data_dir / "statreport.duckdb"), read_only=True)
    try:
        return con.execute("SELECT * FROM instance_day_totals ORDER BY instance_id, day").fetchall()
    finally:
        con.close()


def _archive(data_dir: Path) -> list[str]:
    store = Store(data_dir / "statreport.duckdb")
    store.open()
    try:
        done = asyncio.run(
            archive_reports(
                store,
                archive_dir=data_dir / "archive" / "reports",
                today=TODAY,
                retention_days=RETENTION,
            )
        )
    finally:
        store.close_file()
    return [month.month for month in done]


def test_old_months_move_to_parquet_and_every_report_stays_exactly_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    total = _aged_data_dir(data_dir)
    days_before = _days(data_dir)
    months = _archive(data_dir)
    cutoff = TODAY - timedelta(days=RETENTION)
    # Every month wholly older than the retention, and no other.
    assert months
    assert months[-1] == f"{(cutoff.replace(day=1) - timedelta(days=1)):%Y-%m}"
    assert sorted(p.stem for p in (data_dir / "archive" / "reports").glob("*.parquet")) == months
    rows, distinct, left = _holdings(data_dir)
    assert rows == distinct == total
    assert 0 < left < total
    con = duckdb.connect(str(data_dir / "statreport.duckdb"), read_only=True)
    oldest_left = con.execute("SELECT min(usage_day) FROM reports").fetchone()
    oldest_mark = con.execute("SELECT min(day) FROM instance_days_out_of_order").fetchone()
    con.close()
    assert oldest_left == (cutoff.replace(day=1),)
    assert oldest_mark == oldest_left  # a mark only says whether to read raw reports
    assert _days(data_dir) == days_before  # instance-days are kept for ever
    assert _archive(data_dir) == []  # nothing more to do until a month ages


def test_a_crash_between_writing_a_month_and_deleting_it_loses_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    total = _aged_data_dir(data_dir)
    # A real process runs the archive and dies (os._exit, no cleanup) right after the first
    # month's file is written and fsynced, before its rows are deleted.
    crash = textwrap.dedent(
        f"""
        import asyncio, os, sys
        from datetime import date
        from pathlib import Path
        from core.store import Store
        from ingest.archive import archive_reports
        data_dir = Path({str(data_dir)!r})
        store = Store(data_dir / "statreport.duckdb")
        store.open()
        asyncio.run(archive_reports(
            store, archive_dir=data_dir / "archive" / "reports",
            today=date.fromisoformat({TODAY.isoformat()!r}), retention_days={RETENTION},
            after_write=lambda path: os._exit(9),
        ))
        """
    )
    died = subprocess.run(
        [sys.executable, "-c", crash], cwd=Path(__file__).parents[2], check=False, timeout=120
    )
    assert died.returncode == 9
    rows, distinct, left = _holdings(data_dir)
    assert distinct == total  # nothing lost
    assert rows > total  # the month is in both places
    assert left == total
    # The next run merges the month again and finishes the job: exactly once.
    assert _archive(data_dir)
    rows, distinct, left = _holdings(data_dir)
    assert rows == distinct == total
    assert left < total


def test_a_month_already_archived_is_merged_not_overwritten(tmp_path: Path) -> None:
    """If a month's file exists and more of its reports are still in the database (a run cut
    short, or rows restored from a backup), the file keeps both."""
    data_dir = tmp_path / "data"
    total = _aged_data_dir(data_dir)
    _archive(data_dir)
    con = duckdb.connect(str(data_dir / "statreport.duckdb"))
    first = sorted((data_dir / "archive" / "reports").glob("*.parquet"))[0]
    # Put half of the first month's reports back, as a restore from a backup would.
    con.execute(
        "INSERT INTO reports SELECT * FROM read_parquet(?) WHERE sequence % 2 = 0", [str(first)]
    )
    con.close()
    _archive(data_dir)
    rows, distinct, _ = _holdings(data_dir)
    assert rows == distinct == total
    assert date.fromisoformat(first.stem + "-01") < TODAY
