"""Webhooks (SPEC §14): how fast the outbox drains, and what a dead receiver costs ingest.

One command: ``.venv/bin/python benchmarks/webhooks.py`` (needs ``wrk``, as ``make bench``).

1. **Drain.** 1,000 pending deliveries to a local receiver that answers 200 at once are
   put in a stopped server's outbox; the server starts, and the time until the receiver
   has them all, and the log says delivered, is printed.
2. **A dead receiver's cost to ingest.** Single reports at 32 connections for ``--seconds``,
   against two servers started from the same data: one with no webhook, one with 1,000
   pending deliveries to a receiver that accepts connections and never answers (each
   attempt waits its whole 10 s). Each round measures both back to back; the ratio of each
   round compares two figures taken under the same load of the machine.

Timing never fails anything: the figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import (  # noqa: E402
    ADMIN_TOKEN,
    LUA,
    provision,
    run_wrk,
    start,
    stop,
    wait_ready,
)
from core.tls import ensure_self_signed  # noqa: E402
from statreport.server import free_port  # noqa: E402

EVENTS = 1000


class Fast(BaseHTTPRequestHandler):
    """A receiver that answers 200 at once, counting what arrives."""

    arrived = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with Fast.lock:
            Fast.arrived += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def dead_receiver() -> tuple[int, list[socket.socket]]:
    """A port that accepts connections and never answers; the held sockets."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    held: list[socket.socket] = [listener]

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1], held


def server_env(data_dir: Path, port: int, cert: Path, key: Path) -> dict[str, str]:
    return {
        "STATREPORT_ADMIN_TOKEN": ADMIN_TOKEN,
        "STATREPORT_DATA_DIR": str(data_dir),
        "STATREPORT_PORT": str(port),
        "STATREPORT_TLS_CERT": str(cert),
        "STATREPORT_TLS_KEY": str(key),
        "STATREPORT_RATE_LIMIT_PER_MINUTE": "1000000000",
        "STATREPORT_LOG_LEVEL": "warning",
        "STATREPORT_SCHEDULER_ENABLED": "false",
        "STATREPORT_WEBHOOK_ALLOW_PRIVATE": "true",
        # The dead receiver's deliveries come back within a second of each 10 s timeout.
        "STATREPORT_WEBHOOK_RETRY_SCHEDULE": ",".join(["1"] * 50),
    }


def prepared(work: Path, name: str, cert: Path, key: Path, receiver: str | None) -> Path:
    """A data directory with a customer and a licence key (in ``token.json``), and, with a
    ``receiver``, an endpoint there with ``EVENTS`` pending deliveries."""
    data_dir = work / name
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    process = start(
        [sys.executable, "-m", "statreport", "serve"],
        server_env(data_dir, port, cert, key),
        work / f"{name}-setup.log",
    )
    try:
        wait_ready(url, cert, "/readyz")
        token, instances = provision(url, cert)
        webhook_id = None
        if receiver is not None:
            context = ssl.create_default_context(cafile=str(cert))
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            with httpx.Client(base_url=url, verify=context, headers=headers) as http:
                answer = http.post("/v1/webhooks", json={"url": receiver, "events": ["*"]})
                webhook_id = answer.raise_for_status().json()["webhook_id"]
    finally:
        stop(process)
    (data_dir / "token.json").write_text(json.dumps({"token": token, "instances": instances}))
    if webhook_id is not None:
        now = datetime.now(UTC)
        con = duckdb.connect(str(data_dir / "statreport.duckdb"))
        events = [f"evt_{uuid.uuid4().hex[:26]}" for _ in range(EVENTS)]
        con.executemany(
            "INSERT INTO webhook_events VALUES (?, 'webhook.test', ?, ?)",
            [
                [e, now, json.dumps({"webhook_id": webhook_id, "message": "benchmark"})]
                for e in events
            ],
        )
        con.executemany(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, status, attempts, created_at, "
            "next_attempt_at) VALUES (?, ?, 'pending', 0, ?, ?)",
            [[webhook_id, e, now, now] for e in events],
        )
        con.close()
    return data_dir


def drain(work: Path, cert: Path, key: Path) -> tuple[float, int]:
    """Seconds from start until the receiver has every event; how many it got."""
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Fast)
    receiver.daemon_threads = True
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    data_dir = prepared(work, "drain", cert, key, f"http://127.0.0.1:{receiver.server_address[1]}/")
    Fast.arrived = 0
    port = free_port()
    started = time.monotonic()
    process = start(
        [sys.executable, "-m", "statreport", "serve"],
        server_env(data_dir, port, cert, key),
        work / "drain.log",
    )
    try:
        while Fast.arrived < EVENTS and time.monotonic() - started < 300:
            time.sleep(0.01)
        took = time.monotonic() - started
    finally:
        stop(process)
        receiver.shutdown()
    return took, Fast.arrived


def ingest(
    data_dir: Path, work: Path, cert: Path, key: Path, *, seconds: float, run: int, script: Path
) -> tuple[float, float]:
    """Single reports at 32 connections against a server started from ``data_dir``: reports/s
    and p99 ms."""
    given = json.loads((data_dir / "token.json").read_text())
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    process = start(
        [sys.executable, "-m", "statreport", "serve"],
        server_env(data_dir, port, cert, key),
        work / f"ingest-{run}.log",
    )
    try:
        wait_ready(url, cert, "/readyz")
        figures = run_wrk(
            "single",
            url,
            script=script,
            token=given["token"],
            instances=given["instances"],
            connections=32,
            seconds=seconds,
            batch=0,
            run=run,
        )
    finally:
        stop(process)
    return figures.reports_per_s, figures.p99_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="per ingest measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are printed")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian) and run again")
    work = Path(tempfile.mkdtemp(prefix="statreport-bench-webhooks-"))
    cert, key = work / "tls" / "cert.pem", work / "tls" / "key.pem"
    ensure_self_signed(cert, key, host="127.0.0.1")
    script = work / "post.lua"
    script.write_text(LUA)

    took, got = drain(work, cert, key)
    print(
        f"drain: {got:,} of {EVENTS:,} pending deliveries to a local receiver in {took:.2f} s "
        f"({got / took:,.0f}/s), server start included",
        flush=True,
    )

    dead_port, held = dead_receiver()
    plain = prepared(work, "plain", cert, key, None)
    dead = prepared(work, "dead", cert, key, f"http://127.0.0.1:{dead_port}/")
    ratios: list[float] = []
    without: list[tuple[float, float]] = []
    with_dead: list[tuple[float, float]] = []
    run = 0
    for number in range(args.rounds):
        for data_dir, into in ((plain, without), (dead, with_dead)):
            run += 1
            # Each measurement starts from the same data: a copy, so that rounds are alike.
            copy = work / f"round-{run}"
            shutil.copytree(data_dir, copy)
            into.append(ingest(copy, work, cert, key, seconds=args.seconds, run=run, script=script))
        ratios.append(with_dead[-1][0] / without[-1][0])
        print(
            f"round {number + 1}: no webhook {without[-1][0]:,.0f} reports/s "
            f"(p99 {without[-1][1]:.1f} ms); "
            f"dead receiver {with_dead[-1][0]:,.0f} reports/s (p99 {with_dead[-1][1]:.1f} ms); "
            f"ratio {ratios[-1]:.2f}",
            flush=True,
        )
    print(
        f"median: dead receiver / no webhook = {statistics.median(ratios):.2f}x reports/s; "
        f"p99 {statistics.median(r[1] for r in without):.1f} ms → "
        f"{statistics.median(r[1] for r in with_dead):.1f} ms; "
        f"{len(held) - 1} connections held open by the dead receiver"
    )
    for sock in held:
        sock.close()


if __name__ == "__main__":
    main()
