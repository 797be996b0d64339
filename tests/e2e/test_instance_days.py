"""Instance-days (SPEC §13 v2): kept in the commit that stores their reports, equal to what
the raw reports say however the reports arrive, and built for a data directory that had none."""

from __future__ import annotations

import itertools
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from core.migrations import MIGRATIONS
from core.store import Store
from core.telemetry import StoreMetrics
from core.usage_metrics import REPORT_METRICS
from ingest.writer import ReportCommit
from tests import clock
from tests.support import RunningServer, make_report, open_store, query

#: Its dates are literal (a calendar of late 2026): it runs on the day they were written for.
pytestmark = pytest.mark.moment(clock.WRITTEN_ON)

# Written out independently of the code under test: per instance and UTC day, what its
# reports say, with the environment and version of the day's latest report.
_FROM_REPORTS = f"""
    SELECT instance_id, usage_day, any_value(customer_id),
           arg_max(environment, generated_at), arg_max(product_version, generated_at),
           {", ".join(f"max({m})" for m in REPORT_METRICS)},
           count(*), min(generated_at), max(generated_at), min(sequence), max(sequence)
    FROM reports GROUP BY instance_id, usage_day ORDER BY instance_id, usage_day
"""  # noqa: S608
_KEPT = """
    SELECT instance_id, day, customer_id, environment, product_version,
           {metrics}, reports, first_generated_at, last_generated_at, min_sequence, max_sequence
    FROM instance_day_totals ORDER BY instance_id, day
""".format(metrics=", ".join(REPORT_METRICS))  # noqa: S608


_SECONDS = itertools.count(1)


def _report(rng: random.Random, instance: str, days_ago: int, hour: int) -> dict[str, Any]:
    """A report at a moment no other report of the test has (the day's latest is one)."""
    day = datetime.now(UTC) - timedelta(days=days_ago)
    moment = day.replace(hour=hour, minute=0, second=0) + timedelta(seconds=next(_SECONDS))
    return make_report(
        instance_id=instance,
        generated_at=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        environment=rng.choice(["production", "non_production"]),
        product_version=rng.choice(["1.1.3", "1.2.0"]),
        sequence=rng.randint(1, 500),
        metrics={"users": rng.randint(0, 90), "tenants": rng.randint(1, 9)},
    )


def test_instance_days_equal_the_reports_however_they_arrive(
    server: RunningServer, acme_key: str
) -> None:
    rng = random.Random(7)
    instances = [str(uuid.uuid4()) for _ in range(3)]
    singles = [
        _report(rng, rng.choice(instances), rng.randint(2, 5), rng.randint(1, 22))
        for _ in range(60)
    ]
    batch = [
        _report(rng, rng.choice(instances), rng.randint(2, 5), rng.randint(1, 22))
        for _ in range(40)
    ]
    # Late reports for days already summarized: a new peak, an earlier first report, a later
    # last one with another environment; resent copies must not count twice.
    late = [
        _report(rng, instances[0], 5, 0) | {"metrics": {"users": 95}},
        _report(rng, instances[0], 5, 23),
        *singles[:5],
        *batch[:5],
    ]
    with server.client(acme_key) as http, ThreadPoolExecutor(8) as pool:
        # Concurrent singles are committed in groups by the writer.
        answers = list(pool.map(lambda r: http.post("/v1/reports", json=r), singles))
        assert {a.status_code for a in answers} == {202}
        assert http.post("/v1/reports", json={"reports": batch}).status_code == 202
        answer = http.post("/v1/reports", json={"reports": late})
        assert answer.status_code == 202, answer.text
        assert (answer.json()["stored"], answer.json()["duplicates"]) == (2, 10)
    server.stop()
    kept = query(server.data_dir, _KEPT)
    assert kept == query(server.data_dir, _FROM_REPORTS)
    assert sum(row[-5] for row in kept) == len(singles) + len(batch) + 2
    assert max(row[5] for row in kept) == 95  # the late peak
    # Commits appended partial rows; a fold (here the one on opening) leaves one row a day
    # with the same totals.
    assert query(server.data_dir, "SELECT count(*) FROM instance_days")[0][0] > len(kept)
    metrics = StoreMetrics(registry=None)
    store = open_store(server.data_dir, group_commit=ReportCommit(metrics=metrics))
    store.close_file()
    assert query(server.data_dir, "SELECT count(*) FROM instance_days")[0][0] == len(kept)
    assert query(server.data_dir, _KEPT) == kept


def test_an_existing_data_directory_gets_its_instance_days_when_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "statreport.duckdb"
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
        "description VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    before = [m for m in MIGRATIONS if m[0] < 8]
    for number, description, sql in before:
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [number, description])
    con.execute(
        """
        INSERT INTO reports
        SELECT uuid(), 'acme', ('00000000-0000-4000-8000-00000000000' || (i % 3))::UUID,
               CASE WHEN i % 5 = 0 THEN 'non_production' ELSE 'production' END,
               TIMESTAMPTZ '2026-10-01 00:00:00+00' + to_minutes(i * 37),
               (TIMESTAMPTZ '2026-10-01 00:00:00+00' + to_minutes(i * 37))::DATE,
               '1.1.' || (i % 4), CASE WHEN i % 9 = 0 THEN NULL ELSE i END,
               (i * 7919) % 100, (i % 6) + 1, NULL, 2, 5, 1, 'phone_home', 'k1', now()
        FROM range(2000) t(i)
        """
    )
    con.close()
    store = Store(path)
    store.open()  # migrates
    store.close_file()
    kept = query(tmp_path, _KEPT)
    assert len(kept) == len({(row[0], row[1]) for row in kept}) > 100
    assert kept == query(tmp_path, _FROM_REPORTS)
    assert sum(row[-5] for row in kept) == 2000
    # Whether they arrived in order is not known: the clone check reads them all.
    marked = query(tmp_path, "SELECT instance_id, day FROM instance_days_out_of_order")
    assert sorted(marked) == sorted((row[0], row[1]) for row in kept)


def _at(instance: str, day: str, hour: int, sequence: int) -> dict[str, Any]:
    return make_report(
        instance_id=instance, generated_at=f"{day}T{hour:02d}:00:00Z", sequence=sequence
    )


def _out_of_order(data_dir: Path) -> set[tuple[str, str]]:
    rows = query(
        data_dir, "SELECT instance_id::VARCHAR, day::VARCHAR FROM instance_days_out_of_order"
    )
    return {(row[0], row[1]) for row in rows}


def test_only_instance_days_that_received_a_report_out_of_order_are_marked(
    server_factory: Any, tmp_path: Path
) -> None:
    """What the clone check reads raw: the instance-days marked here, across a restart."""
    in_order, late, batched, resent = (str(uuid.uuid4()) for _ in range(4))
    day = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    before = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    server = server_factory(data_dir=tmp_path / "data")
    key = server.add_customer("acme")
    first = _at(in_order, day, 1, 1)
    with server.client(key) as http:
        for report in [
            first,
            _at(in_order, day, 2, 2),
            _at(late, day, 5, 10),
            _at(late, before, 23, 11),  # generated before the one already stored
            _at(in_order, day, 3, 3),
        ]:
            assert http.post("/v1/reports", json=report).status_code == 202
        batch = [_at(batched, day, hour % 24, hour) for hour in range(60)]  # sent as Arrow
        assert http.post("/v1/reports", json={"reports": batch}).status_code == 202
    server.stop()
    assert _out_of_order(server.data_dir) == {(late, before), (batched, day)}

    # After a restart the frontier is read back from what is stored.
    server = server_factory(data_dir=tmp_path / "data")
    with server.client(key) as http:
        assert http.post("/v1/reports", json=_at(in_order, day, 4, 4)).status_code == 202
        assert http.post("/v1/reports", json=_at(in_order, day, 6, 2)).status_code == 202
        # A request with a report already stored goes the duplicates path: what it stores
        # counts as out of order, as a batch's reports do.
        answer = http.post("/v1/reports", json={"reports": [first, _at(resent, day, 7, 1)]})
        assert (answer.json()["stored"], answer.json()["duplicates"]) == (1, 1)
    server.stop()
    assert _out_of_order(server.data_dir) == {
        (late, before),
        (batched, day),
        (in_order, day),
        (resent, day),
    }
