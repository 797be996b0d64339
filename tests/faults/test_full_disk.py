"""A full disk, including a checkpoint on a full disk: 503s, an honest /readyz, recovery once
space returns, and no acknowledged report lost. Needs root, for a small tmpfs."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import make_report, query, spawn_server

SIZE_MB = 48


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; run the fault suite as root (CI does)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, *, leave: int) -> Path:
    stat = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))
    return filler


def test_a_checkpoint_on_a_full_disk_is_survived_and_recovered_from(
    small_disk: Path, tmp_path: Path
) -> None:
    data_dir = small_disk / "data"
    child = spawn_server(
        data_dir,
        log_dir=tmp_path,  # off the small disk, so that the log can tell what happened
        STATREPORT_RATE_LIMIT_PER_MINUTE="1000000",
        STATREPORT_MIN_FREE_DISK_MB="2",
    )
    server = child.server
    wal = data_dir / "statreport.duckdb.wal"
    acknowledged: list[str] = []
    statuses: dict[int, int] = {}
    try:
        key = server.add_customer("acme")
        with server.client(key) as http:

            def send(count: int) -> int:
                reports = [make_report() for _ in range(count)]
                response = http.post("/v1/reports", json={"reports": reports})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 202:
                    acknowledged.extend(r["report_id"] for r in reports)
                return response.status_code

            # Grow the write-ahead log towards DuckDB's checkpoint threshold (16 MiB), then
            # leave too little room for the checkpoint that follows it.
            while not wal.exists() or wal.stat().st_size < 11_000_000:
                assert send(500) == 202
            filler = _fill(small_disk, leave=7_000_000)
            for _ in range(120):  # until the checkpoint has failed fatally, as intended
                send(500)
                if "FATAL Error" in child.log_path.read_text():
                    break
            assert statuses.get(503, 0) > 0, statuses  # the disk did fill
            assert [http.get("/readyz").status_code for _ in range(10)] == [503] * 10
            # Alive all along: a liveness probe must not restart it in mid-recovery (§9 v3).
            assert [http.get("/healthz").status_code for _ in range(10)] == [200] * 10
            assert "FATAL Error" in child.log_path.read_text(), "no checkpoint failed"

            filler.unlink()
            deadline = time.monotonic() + 20
            while http.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the server did not recover"
                time.sleep(0.2)
            assert http.get("/healthz").status_code == 200
            assert send(10) == 202  # it takes reports again, without a restart
    finally:
        child.terminate()
    print(f"answers {statuses}; {len(acknowledged)} acknowledged")
    stored = {row[0] for row in query(data_dir, "SELECT report_id::VARCHAR FROM reports")}
    assert set(acknowledged) <= stored
