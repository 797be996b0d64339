"""How long ingest waits while the server does slow work (issue 32).

One command: ``.venv/bin/python benchmarks/stalls.py`` (``--reports`` scales the database;
the default is 3,000,000 reports). A real ``statreport serve`` over TLS gets one report every
20 ms from one client, which times each acknowledgement, through these phases in turn:

- the baseline: nothing else happens;
- a ``PUT`` of a customer document of 1,000 overlapping order forms (three times);
- a backup (``POST /v1/backups``) of the whole database;
- three unauthenticated 150 MiB ``PUT`` bodies in parallel, with the server's RSS before and
  after.

The archive is measured in the same process as its store (it is a scheduled job with no
route): a write every 20 ms is timed while a month of ``--reports`` reports moves to Parquet.

Each phase prints its longest and its median acknowledgement, and the longest's ratio to the
baseline's longest, measured in the same run. Timing never fails anything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from core import instance_days  # noqa: E402
from core.store import Store  # noqa: E402
from ingest.archive import archive_reports  # noqa: E402
from statreport.server import free_port  # noqa: E402

ADMIN = "stalls-benchmark-admin-token-0123456789"
RETENTION_DAYS = 800
INTERVAL = 0.02


def fill(database: Path, *, reports: int, month: date) -> None:
    """``reports`` raw reports of one customer spread over ``month``, with instance-days."""
    store = Store(database)
    store.open()
    con = store.cursor()
    hours = 28 * 24
    con.execute(
        """
        INSERT INTO reports
        SELECT uuid(), 'acme',
               ('00000000-0000-4000-8000-' || lpad((i % 500)::VARCHAR, 12, '0'))::UUID,
               'production', ts, ts::DATE, '1.1.3', i, (i * 7919) % 100, 1, NULL, 2, 5, 1,
               'phone_home', 'k1', ts
        FROM range(?) t(i),
             LATERAL (SELECT ?::TIMESTAMPTZ + to_seconds((i % ?) * 3600 + i // ?) AS ts)
        """,
        [reports, datetime.combine(month, datetime.min.time(), UTC), hours, hours],
    )
    con.execute(
        "INSERT INTO instance_days "
        + instance_days.rollup("reports", partial=False, known_at="now()")
    )
    con.close()
    store.close_file()


class Acks:
    """A client that sends one report every ``INTERVAL`` and times each acknowledgement."""

    def __init__(self, url: str, ca: Path, key: str) -> None:
        self.url, self.ca, self.key = url, ca, key
        self.latencies: list[tuple[float, float]] = []  # (sent at, seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Acks:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        instance = str(uuid.uuid4())
        with httpx.Client(
            base_url=self.url,
            verify=str(self.ca),
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=120,
        ) as http:
            sequence = 0
            while not self._stop.is_set():
                sequence += 1
                report = {
                    "schema_version": 1,
                    "report_id": str(uuid.uuid4()),
                    "instance_id": instance,
                    "environment": "production",
                    "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "product_version": "1.1.3",
                    "sequence": sequence,
                    "metrics": {"users": 40},
                }
                started = time.monotonic()
                response = http.post("/v1/reports", json=report)
                if response.status_code == 202:
                    self.latencies.append((started, time.monotonic() - started))
                self._stop.wait(INTERVAL)

    def between(self, start: float, end: float) -> list[float]:
        return [seconds for at, seconds in self.latencies if start <= at <= end]


def phase(acks: Acks, work: Callable[[], Any]) -> tuple[list[float], float]:
    """Run ``work`` while the client sends; the acknowledgements sent meanwhile, and its time."""
    time.sleep(0.5)
    start = time.monotonic()
    work()
    end = time.monotonic()
    time.sleep(0.5)
    return acks.between(start, end), end - start


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def orders_document() -> dict[str, Any]:
    orders = [
        {
            "order_id": f"OF-{n}",
            "start": f"2026-01-{1 + n % 28:02d}",
            "end": "2027-12-31",
            "entitlements": {"user_packs": 5, "users_per_pack": 10},
            "addons": [],
        }
        for n in range(1000)
    ]
    return {"name": "Big", "account_manager": "am@vendor.example", "orders": orders}


def line(name: str, latencies: list[float], baseline_max: float, extra: str = "") -> None:
    if not latencies:
        print(f"  {name:<34} no acknowledgement in the phase {extra}")
        return
    longest, median = max(latencies), statistics.median(latencies)
    print(
        f"  {name:<34} acks {len(latencies):>4}  median {median * 1000:7.1f} ms"
        f"  longest {longest * 1000:7.1f} ms  ({longest / baseline_max:5.1f}x baseline) {extra}"
    )


@contextlib.contextmanager
def served(data_dir: Path, backups: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **os.environ,
        "STATREPORT_ADMIN_TOKEN": ADMIN,
        "STATREPORT_DATA_DIR": str(data_dir),
        "STATREPORT_PORT": str(port),
        "STATREPORT_BACKUP_DIR": str(backups),
        "STATREPORT_SCHEDULER_ENABLED": "false",
        "STATREPORT_RATE_LIMIT_PER_MINUTE": "100000",
        "STATREPORT_RETENTION_DAYS": str(RETENTION_DAYS),
    }
    log = data_dir.parent / "serve.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "statreport", "serve"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url, ca = f"https://127.0.0.1:{port}", data_dir / "tls" / "cert.pem"
    deadline = time.monotonic() + 120
    while True:
        with contextlib.suppress(httpx.TransportError, OSError):
            if ca.exists() and httpx.get(url + "/readyz", verify=str(ca)).status_code == 200:
                break
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start: {log.read_text()}")
        time.sleep(0.2)
    try:
        yield url, ca, process
    finally:
        process.terminate()
        process.wait(timeout=60)


def server_phases(data_dir: Path, backups: Path) -> None:
    with served(data_dir, backups) as (url, ca, process):
        admin = httpx.Client(
            base_url=url, verify=str(ca), headers={"Authorization": f"Bearer {ADMIN}"}, timeout=600
        )
        customer = {
            "name": "ACME",
            "account_manager": "alice@vendor.example",
            "orders": [],
        }
        assert admin.put("/v1/customers/acme", json=customer).status_code == 200
        key = admin.post("/v1/customers/acme/license-keys").json()["license_key"]
        with Acks(url, ca, key) as acks:
            baseline, _ = phase(acks, lambda: time.sleep(5))
            baseline_max = max(baseline)
            print("ingest acknowledgements, one report every 20 ms:")
            line("baseline (nothing else)", baseline, baseline_max)

            document = orders_document()
            puts: list[float] = []

            def put_orders() -> None:
                for n in range(3):
                    started = time.monotonic()
                    response = admin.put(f"/v1/customers/big{n}", json=document)
                    assert response.status_code == 200, response.text
                    puts.append(time.monotonic() - started)

            during, _ = phase(acks, put_orders)
            line(
                "1,000-order PUT (x3)",
                during,
                baseline_max,
                f"[PUT {max(puts) * 1000:.0f} ms at most]",
            )

            def backup() -> None:
                response = admin.post("/v1/backups", json={"destination": "bench.duckdb"})
                assert response.status_code == 201, response.text

            during, took = phase(acks, backup)
            size = (backups / "bench.duckdb").stat().st_size / (1 << 20)
            line("backup", during, baseline_max, f"[{took:.1f} s, {size:.0f} MiB]")

            before = rss_mib(process.pid)
            body = b"x" * (150 << 20)

            def attack() -> None:
                def one() -> None:
                    with (
                        httpx.Client(verify=str(ca), timeout=60) as http,
                        contextlib.suppress(httpx.TransportError),
                    ):
                        http.put(f"{url}/v1/customers/acme", content=body)

                threads = [threading.Thread(target=one) for _ in range(3)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()

            during, _ = phase(acks, attack)
            after = rss_mib(process.pid)
            line(
                "3 x 150 MiB PUT, no token",
                during,
                baseline_max,
                f"[server RSS {before:.0f} -> {after:.0f} MiB]",
            )
        admin.close()


def archive_phase(data_dir: Path) -> None:
    """The archive of the month, timed against a write every 20 ms on the same store."""
    store = Store(data_dir / "statreport.duckdb")
    store.open()

    async def run() -> None:
        waits: list[tuple[float, float]] = []
        stop = asyncio.Event()

        async def writer() -> None:
            while not stop.is_set():
                started = time.monotonic()
                await store.write(lambda con: con.execute("SELECT 1").fetchall())
                waits.append((started, time.monotonic() - started))
                await asyncio.sleep(INTERVAL)

        task = asyncio.create_task(writer())
        await asyncio.sleep(3)
        baseline = [s for _, s in waits]
        start = time.monotonic()
        done = await archive_reports(
            store,
            archive_dir=data_dir / "archive" / "reports",
            today=datetime.now(UTC).date(),
            retention_days=RETENTION_DAYS,
        )
        end = time.monotonic()
        await asyncio.sleep(0.5)
        stop.set()
        await task
        during = [s for at, s in waits if start <= at <= end]
        moved = sum(month.deleted for month in done)
        print("a write on the store every 20 ms:")
        line("baseline (nothing else)", baseline, max(baseline))
        line(
            "archive of the month",
            during,
            max(baseline),
            f"[{end - start:.1f} s, {moved:,} reports moved]",
        )

    try:
        asyncio.run(run())
    finally:
        store.close_file()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--reports", type=int, default=3_000_000, help="raw reports in the database's one month"
    )
    args = parser.parse_args()
    if args.reports < 1:
        parser.error("--reports must be at least 1")
    today = datetime.now(UTC).date()
    month = (today - timedelta(days=RETENTION_DAYS + 60)).replace(day=1)
    with tempfile.TemporaryDirectory(prefix="statreport-stalls-") as work:
        data_dir = Path(work) / "data"
        data_dir.mkdir()
        print(f"filling a database with {args.reports:,} reports of {month:%Y-%m} ...", flush=True)
        fill(data_dir / "statreport.duckdb", reports=args.reports, month=month)
        server_phases(data_dir, Path(work) / "backups")
        archive_phase(data_dir)


if __name__ == "__main__":
    main()
