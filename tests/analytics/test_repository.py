"""What the evaluation reads: instance-days, equal to the raw reports' daily rollup."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from analytics import repository
from core import instance_days
from core.store import Store


def _insert_reports(store: Store, *, first_hour: int, hours: int, instances: list[str]) -> None:
    """Hourly reports of ``instances``, from ``first_hour`` hours after 1 March 2026 on."""
    con = store.cursor()
    try:
        con.execute(
            """
            INSERT INTO reports
            SELECT uuid(), 'acme', i.id::UUID,
                   CASE WHEN h % 5 = 0 THEN 'non_production' ELSE 'production' END,
                   ts, ts::DATE, '1.1.3', h, (h * 7 + i.n) % 40, 1 + h % 3, NULL, 2, NULL, 5,
                   'phone_home', 'key_1', ts
            FROM (SELECT unnest(?) AS id, generate_subscripts(?, 1) AS n) i, range(?, ?) t(h),
                 LATERAL (SELECT TIMESTAMPTZ '2026-03-01 00:30:00+00' + to_hours(h) AS ts)
            """,
            [instances, instances, first_hour, first_hour + hours],
        )
    finally:
        con.close()


def test_the_evaluation_reads_what_the_raw_reports_roll_up_to(tmp_path: Path) -> None:
    """Folded and partial instance-days together read as the raw rollup would, with the
    instance ids as the lower-case text of the reports."""
    instances = [str(uuid.UUID(int=n + 1, version=4)).upper() for n in range(3)]
    store = Store(tmp_path / "statreport.duckdb")
    store.open()
    try:
        con = store.cursor()
        _insert_reports(store, first_hour=0, hours=60, instances=instances)
        con.execute(
            "INSERT INTO instance_days "
            + instance_days.rollup("reports", partial=False, known_at="now()")
        )
        # A later commit's partial rows: for 3 March, beside its folded rows; for 4 March, alone.
        con.execute("CREATE TEMP TABLE before AS SELECT report_id FROM reports")
        _insert_reports(store, first_hour=60, hours=20, instances=instances)
        con.execute(
            "CREATE TEMP TABLE later AS SELECT * FROM reports "
            "WHERE report_id NOT IN (SELECT report_id FROM before)"
        )
        con.execute(
            "INSERT INTO instance_days "
            + instance_days.rollup("later", partial=True, known_at="now()")
        )
        since, until = date(2026, 3, 1), date(2026, 3, 1) + timedelta(days=5)
        read = repository.instance_days(con, since=since, until=until)
        raw = pl.from_arrow(
            con.sql(repository.RAW_INSTANCE_DAYS, params=[since, until]).to_arrow_table()
        )
        con.close()
    finally:
        store.close_file()
    assert isinstance(raw, pl.DataFrame)
    assert read.height == 3 * 4  # 80 hours from 00:30 on the 1st: four days
    assert read.schema["instance_id"] == pl.String
    assert set(read["instance_id"]) == {instance.lower() for instance in instances}
    order = ["instance_id", "day"]
    assert_frame_equal(read.sort(order), raw.sort(order))
