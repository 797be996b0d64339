"""Fixtures: each test gets its own data directory and its own real server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine

from statreport.server import free_port
from tests import clock
from tests.smtp import Recorder, start_smtp
from tests.support import (
    DATABASES,
    TEST_DATABASE_URL,
    RunningServer,
    new_database,
    postgres_reachable,
    start_thread_server,
)

ServerFactory = Callable[..., RunningServer]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "both_engines: the test's servers run on DuckDB and again on PostgreSQL (SPEC §16), "
        "when STATREPORT_TEST_DATABASE_URL's server is reachable",
    )
    config.addinivalue_line(
        "markers",
        "duckdb_only(why): a test of what only the DuckDB file has (in a both_engines module)",
    )
    config.addinivalue_line(
        "markers",
        f"{clock.MARK}(when, tick=True): run at this moment (ISO 8601 with an offset) instead of "
        "on the wall clock; on a module, its fixtures run there too (tests/clock.py)",
    )


@pytest.fixture(autouse=True, scope="module")
def _module_moment(request: pytest.FixtureRequest) -> Iterator[None]:
    """A module marked ``moment`` runs, fixtures and all, at that moment."""
    marker = request.node.get_closest_marker(clock.MARK)
    if marker is None:
        yield
        return
    when, tick = clock.marker_moment(marker)
    with clock.at(when, tick=tick):
        yield


@pytest.fixture(autouse=True)
def moment(request: pytest.FixtureRequest) -> Iterator[time_machine.Traveller | None]:
    """The test's moved clock, or None on the wall clock. A test marked ``moment`` starts at
    its moment; a test in a marked module goes on from where the module's clock is. Either
    way ``moment.move_to(...)`` moves it for this test only."""
    marker = request.node.get_closest_marker(clock.MARK)
    if marker is None:
        yield None
        return
    when, tick = clock.marker_moment(marker)
    if not any(m.name == clock.MARK for m in request.node.own_markers):
        when = datetime.now(UTC)
    with clock.at(when, tick=tick) as coordinates:
        yield coordinates


#: The storage-touching tests, run on both engines (SPEC §16): every test of these folders
#: that starts a server, but those of ``RUN_ONCE``.
BOTH_ENGINES = ("tests/e2e/", "tests/console/", "tests/fuzz/")
#: Run once: what only the DuckDB file has (backups of it), tests of HTTP that store nothing,
#: and the tests that choose their PostgreSQL databases themselves.
RUN_ONCE = (
    "tests/e2e/test_backup.py",
    "tests/e2e/test_tls_files.py",
    "tests/e2e/test_proxies.py",
    "tests/e2e/test_docs.py",
    "tests/e2e/test_postgres.py",
    "tests/e2e/test_migrate.py",
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that starts servers runs on each engine it is for: DuckDB; PostgreSQL too when
    it is marked ``both_engines`` (and not ``duckdb_only``); or the one engine
    ``STATREPORT_TEST_ENGINE`` names for the whole run."""
    if "engine" not in metafunc.fixturenames:
        return
    forced = os.environ.get("STATREPORT_TEST_ENGINE")
    path = Path(str(metafunc.definition.fspath)).relative_to(Path(__file__).parent.parent)
    storage = str(path).startswith(BOTH_ENGINES) and str(path) not in RUN_ONCE
    if forced:
        engines = [forced]
    elif (storage or metafunc.definition.get_closest_marker("both_engines")) and not (
        metafunc.definition.get_closest_marker("duckdb_only")
    ):
        engines = ["duckdb", "postgresql"]
    else:
        return  # DuckDB, the fixture's default
    metafunc.parametrize(
        "engine", engines, indirect=True, ids=engines if len(engines) > 1 else None
    )


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """The engine a test's servers keep their data in (``pytest_generate_tests``). Without a
    reachable PostgreSQL a developer's machine skips its runs, loudly; CI fails them."""
    chosen: str = getattr(request, "param", "duckdb")
    only = request.node.get_closest_marker("duckdb_only")
    if chosen == "postgresql" and only is not None:
        pytest.skip(f"DuckDB only: {only.args[0] if only.args else 'the DuckDB file'}")
    if chosen == "postgresql" and not postgres_reachable():
        reason = f"no PostgreSQL server at {TEST_DATABASE_URL} (STATREPORT_TEST_DATABASE_URL)"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"{reason}; CI=true, so the PostgreSQL runs may not be skipped")
        pytest.skip(reason)
    return chosen


@pytest.fixture
def server_factory(tmp_path: Path, engine: str) -> Iterator[ServerFactory]:
    """Start real TLS servers with chosen settings; all are stopped after the test. On
    PostgreSQL each server gets a database of its own, dropped after the test."""
    started: list[RunningServer] = []
    drops: list[Callable[[], None]] = []

    def start(**overrides: Any) -> RunningServer:
        data_dir = overrides.pop("data_dir", tmp_path / f"data{len(started)}")
        if data_dir in DATABASES and "database_url" not in overrides:
            overrides["database_url"] = DATABASES[data_dir]  # the same server, restarted
        elif engine == "postgresql" and "database_url" not in overrides:
            url, drop = new_database()
            drops.append(drop)
            overrides["database_url"] = url
        server = start_thread_server(data_dir, **overrides)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    for drop in drops:
        drop()


@pytest.fixture
def server(server_factory: ServerFactory) -> RunningServer:
    """A real server over TLS with default settings."""
    return server_factory()


@pytest.fixture
def acme_key(server: RunningServer) -> str:
    """A licence key of the customer 'acme'."""
    return server.add_customer("acme")


@pytest.fixture
def smtp() -> Iterator[tuple[int, Recorder]]:
    """A real SMTP server (aiosmtpd) on a free port, and what it receives."""
    port = free_port()
    controller, recorder = start_smtp(port)
    yield port, recorder
    controller.stop()
