"""``statreport backup``: a consistent copy while the server runs, and restoring it."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from click.testing import CliRunner

from statreport.cli import main
from tests.conftest import ServerFactory
from tests.support import ADMIN_TOKEN, assert_problem, make_report, query


def test_a_backup_under_load_restores_to_a_working_server(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory(rate_limit_per_minute=100_000)
    key = server.add_customer("acme")
    acknowledged: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with server.client(key) as http:
            while not stop.is_set():
                report = make_report()
                if http.post("/v1/reports", json=report).status_code == 202:
                    acknowledged.append(report["report_id"])

    sender = threading.Thread(target=load)
    sender.start()
    try:
        while len(acknowledged) < 50:
            stop.wait(0.01)
        result = CliRunner().invoke(
            main,
            [
                "backup",
                str(tmp_path / "copy.duckdb"),
                "--server",
                server.url,
                "--ca-cert",
                str(server.ca_cert),
            ],
            env={"STATREPORT_ADMIN_TOKEN": ADMIN_TOKEN},
        )
        during = len(acknowledged)
    finally:
        stop.set()
        sender.join()
    assert result.exit_code == 0, result.output
    assert "wrote " in result.output

    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(tmp_path / "copy.duckdb", restored / "statreport.duckdb")
    copied = {row[0] for row in query(restored, "SELECT report_id::VARCHAR FROM reports")}
    assert set(acknowledged[:50]) <= copied  # acknowledged before the backup started
    assert len(copied) <= during + 1
    # The copy is a complete data directory: a server starts on it and keeps the key.
    second = server_factory(data_dir=restored)
    with second.client(key) as http:
        again = http.post("/v1/reports", json=make_report(report_id=acknowledged[0]))
    assert again.json()["duplicates"] == 1
    with second.admin() as http:
        actions = [e["action"] for e in http.get("/v1/audit-log").json()]
    assert actions[:2] == ["license_key.create", "customer.create"]  # before the backup


def test_a_backup_never_overwrites_and_needs_an_absolute_path(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory()
    existing = tmp_path / "exists.duckdb"
    existing.write_bytes(b"precious")
    with server.admin() as http:
        assert_problem(
            http.post("/v1/backups", json={"destination": str(existing)}), 409, "already exists"
        )
        assert_problem(
            http.post("/v1/backups", json={"destination": "relative.duckdb"}), 422, "absolute"
        )
        missing = tmp_path / "nowhere" / "copy.duckdb"
        assert_problem(
            http.post("/v1/backups", json={"destination": str(missing)}), 422, "does not exist"
        )
    assert existing.read_bytes() == b"precious"
