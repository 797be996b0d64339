"""A run reads exactly what was known at its instant (SPEC §11 v3): while reports keep being
committed, the snapshot the evaluation reads and a later read "as known at" the run's
``known_at`` hold the same instance-days, order forms and attestations."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from polars.testing import assert_frame_equal

from analytics import repository
from analytics.inputs import EvaluationInputs, load_inputs, read_inputs
from core.database import Connection
from core.postgres_store import PostgresStore
from core.store import Store
from core.telemetry import StoreMetrics
from ingest.repository import stage_reports
from ingest.schemas import StatisticsReport
from ingest.writer import ReportCommit
from tests.support import make_report, new_database, postgres_reachable

#: Instances that report over and over, each report a new maximum for its day now and then.
INSTANCES = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(4)]


@pytest.fixture(params=["duckdb", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Store]]:
    """One store on a DuckDB file; or two on one PostgreSQL database, as two processes."""
    if request.param == "duckdb":
        made = [Store(tmp_path / "statreport.duckdb", commit_window_ms=0.5, group_commit=_commit())]
        drop = None
    else:
        if not postgres_reachable():
            pytest.skip("no PostgreSQL server (STATREPORT_TEST_DATABASE_URL)")
        url, drop = new_database()
        made = [PostgresStore(url, commit_window_ms=0.5, group_commit=_commit()) for _ in range(2)]
    for store in made:
        store.open()
    yield made
    for store in made:
        store.close_file()
    if drop is not None:
        drop()


def _commit() -> ReportCommit:
    return ReportCommit(metrics=StoreMetrics(registry=None))


def test_a_runs_snapshot_is_what_a_later_read_as_known_at_its_instant_gives(
    stores: list[Store],
) -> None:
    """On PostgreSQL, two stores (as two processes) commit reports while one reads a run's
    snapshot and the other reads as known at its instant."""
    store, other = stores[0], stores[-1]
    today = datetime.now(UTC).date()

    async def sender(n: int, stop: asyncio.Event) -> int:
        sent = 0
        while not stop.is_set():
            moment = datetime.now(UTC) - timedelta(hours=n)
            report = cast(
                StatisticsReport,
                make_report(
                    instance_id=INSTANCES[n],
                    generated_at=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    metrics={"users": sent},  # each a new peak of its day
                ),
            )
            staged = stage_reports([report], customer_id="acme", key_id="k1", source="phone_home")
            await stores[n % len(stores)].submit(staged, size=1)
            sent += 1
        return sent

    def read(con: Connection) -> tuple[EvaluationInputs, list[dict[str, Any]]]:
        """What a run reads, and how many reports each instance had sent."""
        counted = repository.reporting_instances(
            con, customer_id="acme", since=today - timedelta(days=1), until=today
        )
        return read_inputs(con, as_of=today), counted

    async def compare() -> tuple[int, int]:
        stop = asyncio.Event()
        senders = [asyncio.create_task(sender(n, stop)) for n in range(len(INSTANCES))]
        await asyncio.sleep(0.2)
        checked = 0
        try:
            for _ in range(30):
                at, (run, counted) = await store.read_known(read)
                await asyncio.sleep(0.05)  # more commits land after the run's instant
                later = await other.analyze(
                    lambda con: load_inputs(con, as_of=today, known_at=at)  # noqa: B023
                )
                assert counted == await other.analyze(
                    lambda con: repository.reporting_instances(
                        con,
                        customer_id="acme",
                        since=today - timedelta(days=1),
                        until=today,
                        known_at=at,  # noqa: B023
                    )
                )
                order = ["instance_id", "day"]
                assert_frame_equal(
                    run.instance_days.sort(order),
                    later.instance_days.sort(order),
                    check_dtypes=False,
                )
                assert run.customers_version == later.customers_version
                checked += run.instance_days.height
        finally:
            stop.set()
        return checked, sum(await asyncio.gather(*senders))

    checked, sent = asyncio.run(compare())
    assert checked > 0
    assert sent > 100  # reports were committed all along
