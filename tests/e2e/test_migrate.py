"""``statreport migrate --to postgresql://…`` (SPEC §16 v3): a DuckDB data directory moves into
an empty PostgreSQL database, verified, and a server on it answers as the DuckDB one did, to
the byte; the DuckDB file is left as it was."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from core.database import connect_postgres
from statreport import migrate_cli
from tests.conftest import ServerFactory
from tests.e2e.test_weekly import MONDAY, populate
from tests.support import (
    RunningServer,
    evaluate,
    make_report,
    new_database,
    post,
    postgres_reachable,
)

pytestmark = pytest.mark.moment(MONDAY, tick=False)


@pytest.fixture
def empty_database() -> Iterator[str]:
    if not postgres_reachable():
        pytest.skip("no PostgreSQL server (STATREPORT_TEST_DATABASE_URL)")
    url, drop = new_database()
    yield url
    drop()


def migrate(data_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statreport", "migrate", "--data-dir", str(data_dir), "--to", url],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def answers(server: RunningServer, evaluation_id: str) -> dict[str, Any]:
    """What a dispute reads: the run, one finding's evidence as the run knew it, the statement
    as known at the run (HTML and CSV), the customer's instances."""
    with server.admin() as http:
        run = http.get(f"/v1/evaluations/{evaluation_id}").json()
        finding = next(f for f in run["findings"] if f["kind"] == "overuse")
        period = {"from": "2026-11-01", "to": "2026-11-22", "known_at": run["known_at"]}
        return {
            "run": run,
            "evidence": http.get(
                f"/v1/findings/{finding['finding_id']}/evidence",
                params={"evaluation_id": evaluation_id},
            ).json(),
            "statement": http.get("/v1/customers/acme/statement", params=period).content,
            "rows": http.get(
                "/v1/customers/acme/statement", params={**period, "format": "csv"}
            ).content,
            "instances": http.get("/v1/customers/hooli/instances").json(),
        }


def test_a_data_directory_moves_to_postgresql_and_answers_the_same_to_the_byte(
    server_factory: ServerFactory, tmp_path: Path, empty_database: str
) -> None:
    duck = server_factory(data_dir=tmp_path / "duck")
    populate(duck)
    key = duck.keys["acme"]
    run = evaluate(duck, "2026-11-22")
    before = answers(duck, run["evaluation_id"])
    duck.stop()
    file = tmp_path / "duck" / "statreport.duckdb"
    digest = hashlib.sha256(file.read_bytes()).hexdigest()

    moved = migrate(tmp_path / "duck", empty_database)
    assert moved.returncode == 0, moved.stderr
    assert "copied and verified 28 tables" in moved.stdout
    assert "verified reports" in moved.stdout
    assert hashlib.sha256(file.read_bytes()).hexdigest() == digest  # only read

    shared = server_factory(data_dir=tmp_path / "pg", database_url=empty_database)
    assert answers(shared, run["evaluation_id"]) == before
    assert post(shared, key, make_report()).status_code == 202  # the keys came along
    again = evaluate(shared, "2026-11-22")  # and new runs are made from the same rows
    assert again["findings"] == run["findings"]

    refused = migrate(tmp_path / "duck", empty_database)
    assert refused.returncode == migrate_cli.EXIT_REFUSED
    assert "already holds" in refused.stderr
    assert "nothing was copied" in refused.stderr


def test_a_row_that_differs_is_found_by_the_verification(
    server_factory: ServerFactory, tmp_path: Path, empty_database: str
) -> None:
    duck = server_factory(data_dir=tmp_path / "duck")
    duck.add_customer("acme")
    duck.stop()
    assert migrate(tmp_path / "duck", empty_database).returncode == 0
    source = duckdb.connect(str(tmp_path / "duck" / "statreport.duckdb"), read_only=True)
    tables = ["customers", "license_keys"]
    assert migrate_cli._verify(source, empty_database, tables) == []
    with connect_postgres(empty_database) as raw:
        raw.execute("UPDATE customers SET name = 'Someone else'")
    assert migrate_cli._verify(source, empty_database, tables) == ["customers"]
    source.close()


def test_what_cannot_be_migrated_is_refused_with_the_fix(
    server_factory: ServerFactory, tmp_path: Path, empty_database: str
) -> None:
    missing = migrate(tmp_path / "nowhere", empty_database)
    assert missing.returncode == migrate_cli.EXIT_REFUSED
    assert "--data-dir" in missing.stderr
    running = server_factory(data_dir=tmp_path / "duck")
    busy = migrate(tmp_path / "duck", empty_database)  # the server holds the file
    assert busy.returncode == migrate_cli.EXIT_REFUSED
    assert "Stop statreport serve" in busy.stderr
    running.stop()
    unreachable = migrate(tmp_path / "duck", "postgresql://nobody:secret-pw@127.0.0.1:1/none")
    assert unreachable.returncode == migrate_cli.EXIT_REFUSED
    assert "Cannot connect" in unreachable.stderr
    assert "secret-pw" not in unreachable.stderr
