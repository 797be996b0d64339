"""Fixtures: each test gets its own data directory and its own real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import RunningServer, start_thread_server

ServerFactory = Callable[..., RunningServer]


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
