"""``statreport backup``: a consistent copy while the server runs, and restoring it."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from statreport.cli import main
from tests.conftest import ServerFactory
from tests.support import ADMIN_TOKEN, assert_problem, make_report, post, query


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
                "copy.duckdb",
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
    shutil.copy(server.data_dir / "backups" / "copy.duckdb", restored / "statreport.duckdb")
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


def test_a_restored_backup_takes_new_changes_reports_and_evaluations(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory()
    key = server.add_customer("acme")
    assert post(server, key, make_report()).status_code == 202
    with server.admin() as http:
        assert http.post("/v1/evaluations", json={}).status_code == 200
        assert http.post("/v1/backups", json={"destination": "copy.duckdb"}).status_code == 201
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(server.data_dir / "backups" / "copy.duckdb", restored / "statreport.duckdb")
    second = server_factory(data_dir=restored)
    newcomer = second.add_customer("globex")  # audited: the audit ids carry on
    assert post(second, newcomer, make_report()).json()["stored"] == 1
    with second.admin() as http:
        assert http.post("/v1/evaluations", json={}).status_code == 200
        entries = http.get("/v1/audit-log").json()
    # The copy was taken before the backup's own audit entry; the new entries follow on from
    # the copied ones, so the audit id sequence carried over.
    assert [(e["audit_id"], e["action"], e["target"]) for e in entries] == [
        (4, "license_key.create", entries[0]["target"]),
        (3, "customer.create", "customer:globex"),
        (2, "license_key.create", entries[2]["target"]),
        (1, "customer.create", "customer:acme"),
    ]


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("bk/../../../../etc/x", "not a path"),
        ("/etc/x", "not a path"),
        ("..", "not '.' or '..'"),
        ("copy\x00.duckdb", "plain file name"),
        ("x" * 300, "up to 255"),
    ],
)
def test_a_backup_name_is_a_plain_file_name(
    server_factory: ServerFactory, name: str, needle: str
) -> None:
    server = server_factory()
    with server.admin() as http:
        assert_problem(http.post("/v1/backups", json={"destination": name}), 422, needle)
    backups = server.data_dir / "backups"
    assert not backups.exists() or list(backups.iterdir()) == []


def test_a_backup_never_overwrites(server_factory: ServerFactory, tmp_path: Path) -> None:
    backups = tmp_path / "elsewhere"
    server = server_factory(backup_dir=backups)
    backups.mkdir()
    existing = backups / "exists.duckdb"
    existing.write_bytes(b"precious")
    with server.admin() as http:
        assert_problem(
            http.post("/v1/backups", json={"destination": "exists.duckdb"}), 409, "already exists"
        )
        made = http.post("/v1/backups", json={"destination": "new.duckdb"}).json()
    assert existing.read_bytes() == b"precious"
    assert made["destination"] == str(backups / "new.duckdb")
