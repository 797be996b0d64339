"""Fixtures: each test gets its own data directory and its own real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine

from statreport.server import free_port
from tests import clock
from tests.smtp import Recorder, start_smtp
from tests.support import RunningServer, start_thread_server

ServerFactory = Callable[..., RunningServer]


def pytest_configure(config: pytest.Config) -> None:
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


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start real TLS servers with chosen settings; all are stopped after the test."""
    started: list[RunningServer] = []

    def start(**overrides: Any) -> RunningServer:
        data_dir = overrides.pop("data_dir", tmp_path / f"data{len(started)}")
        server = start_thread_server(data_dir, **overrides)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


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
