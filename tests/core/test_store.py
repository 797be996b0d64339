"""The DuckDB store: schema versions, and what it refuses."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from core.database import Connection
from core.errors import SchemaTooNew, StoreUnavailable
from core.migrations import LATEST_VERSION
from core.store import Store, Transact
from tests.support import ADMIN_TOKEN


def test_a_new_file_gets_the_latest_schema_and_reopening_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "statreport.duckdb"
    for _ in range(2):
        store = Store(path)
        store.open()
        store.close_file()
    con = duckdb.connect(str(path))
    versions = con.execute("SELECT version FROM schema_migrations").fetchall()
    assert versions == [(v,) for v in range(1, LATEST_VERSION + 1)]


def _newer_database(path: Path) -> None:
    store = Store(path)
    store.open()
    store.cursor().execute(
        "INSERT INTO schema_migrations VALUES (?, 'from the future', now())", [LATEST_VERSION + 1]
    )
    store.close_file()


def test_a_database_from_a_newer_statreport_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "statreport.duckdb"
    _newer_database(path)
    with pytest.raises(SchemaTooNew, match=f"schema version {LATEST_VERSION + 1}.*Upgrade"):
        Store(path).open()


def test_serve_refuses_a_newer_data_directory_with_a_clear_message(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _newer_database(data_dir / "statreport.duckdb")
    result = subprocess.run(
        [sys.executable, "-m", "statreport", "serve", "--data-dir", str(data_dir), "--port", "0"],
        env={"PATH": "/usr/bin:/bin", "STATREPORT_ADMIN_TOKEN": ADMIN_TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3  # uvicorn's "startup failed"
    assert "event=store.refused" in result.stderr
    assert "Upgrade statreport" in result.stderr


def test_a_file_locked_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "statreport.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    with holder, holder.stdout:
        try:
            assert holder.stdout.readline().strip() == "ok"
            with pytest.raises(StoreUnavailable, match="another statreport running"):
                Store(path).open()
        finally:
            holder.kill()


class _Refuses:
    """A group commit that fails, as a bug would, whenever a group holds the payload "bad"."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []

    def load(self, con: Connection) -> None:
        """Nothing to load."""

    def commit(self, transact: Transact, payloads: Sequence[Any], *, at: datetime) -> list[Any]:
        self.groups.append(list(payloads))
        if "bad" in payloads:
            raise ValueError("a value the database cannot take")
        return [f"stored {p}" for p in payloads]


def test_one_bad_request_fails_alone_and_its_neighbours_are_committed(tmp_path: Path) -> None:
    committer = _Refuses()
    store = Store(tmp_path / "statreport.duckdb", commit_window_ms=200, group_commit=committer)
    store.open()

    async def send_together() -> list[Any]:
        return await asyncio.gather(
            *(store.submit(p, size=1) for p in ("a", "bad", "c")), return_exceptions=True
        )

    try:
        answers = asyncio.run(send_together())
    finally:
        store.close_file()
    assert committer.groups[0] == ["a", "bad", "c"]  # they shared one group first
    assert answers[0] == "stored a"
    assert isinstance(answers[1], StoreUnavailable)
    assert answers[2] == "stored c"
