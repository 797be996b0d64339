"""Ingest throughput over real HTTPS: statreport on DuckDB, on PostgreSQL with one and with two
processes, vs a bare endpoint vs a naive one.

One command: ``make bench`` (or ``.venv/bin/python benchmarks/ingest.py``). It needs ``wrk``
(Debian package ``wrk``) as the load generator, in its own process, and a PostgreSQL server
(``--postgres``, default the machine's local one; ``--postgres ''`` leaves it out). It prints
reports/s, p50 and p99 for each server, the batch endpoint's reports/s, and the ratios, all
from this one run. Two processes are measured with two wrk processes at once, one on each, with
half the connections each (what a proxy in front of them would spread); their reports/s add
up and the p99 is the worse of the two.
Each of ``--rounds`` rounds measures statreport and the bare endpoint back to back, so that
each round's ratio compares two figures taken under the same load of the machine. Timing
never fails anything: the figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import duckdb
import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.database import connect_postgres  # noqa: E402
from core.tls import ensure_self_signed  # noqa: E402
from statreport.server import free_port  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-" + uuid.uuid4().hex

LUA = r"""
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

function init(args)
  batch = tonumber(args[1])
  generated = args[2]
  token = args[3]
  run = tonumber(args[4])
  instances = {}
  for i = 5, #args do table.insert(instances, args[i]) end
  ok = 0
  bad = 0
  counter = 0
  math.randomseed(run * 1000 + id)
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
end

local function report()
  counter = counter + 1
  local rid = string.format("%08x-%04x-4%03x-8%03x-%012x",
    math.random(0, 2147483647), run % 65536, math.random(0, 4095), id, counter)
  return string.format(
    '{"schema_version":1,"report_id":"%s","instance_id":"%s","environment":"production",' ..
    '"generated_at":"%s","product_version":"1.1.3","sequence":%d,' ..
    '"metrics":{"users":%d,"tenants":3,"namespaces":120,"worker_groups":4}}',
    rid, instances[(counter % #instances) + 1], generated, counter, 40 + counter % 20)
end

function request()
  local body
  if batch > 0 then
    local parts = {}
    for i = 1, batch do parts[i] = report() end
    body = '{"reports":[' .. table.concat(parts, ",") .. ']}'
  else
    body = report()
  end
  return wrk.format("POST", "/v1/reports", headers, body)
end

function response(status, headers, body)
  if status == 202 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local total_ok, total_bad = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_bad = total_bad + t:get("bad")
  end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,"p50_us":%d,"p99_us":%d,' ..
    '"socket_errors":%d}\n',
    summary.requests, summary.duration, total_ok, total_bad,
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


@dataclass
class Figures:
    """One measured run."""

    name: str
    reports_per_s: float
    p50_ms: float
    p99_ms: float
    bad: int
    socket_errors: int
    #: Reports answered 202: each must be in the server's file afterwards.
    acknowledged: int
    #: The most reports stored whose 202 was not counted: those in flight when wrk stopped.
    most_in_flight: int


def wait_ready(url: str, ca: Path, path: str) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + path, verify=context, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        return subprocess.Popen(
            cmd, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_wrk(
    name: str,
    url: str,
    *,
    script: Path,
    token: str,
    instances: list[str],
    connections: int,
    seconds: float,
    batch: int,
    run: int,
) -> Figures:
    generated = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        "--",
        str(batch),
        generated,
        token,
        str(run),
        *instances,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr.strip()}")
    output = done.stdout
    line = next(x for x in output.splitlines() if x.startswith("WRKJSON "))
    raw = json.loads(line.removeprefix("WRKJSON "))
    seconds_run = raw["duration_us"] / 1e6
    per_request = max(batch, 1)
    return Figures(
        name=name,
        reports_per_s=raw["ok"] * per_request / seconds_run,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        bad=raw["bad"],
        socket_errors=raw["socket_errors"],
        acknowledged=raw["ok"] * per_request,
        most_in_flight=connections * per_request,
    )


def run_wrk_on_both(name: str, urls: list[str], *, connections: int, **options: Any) -> Figures:
    """wrk on each of ``urls`` at once, ``connections`` split between them: one figure for the
    processes together (reports/s added, the worse p50 and p99)."""
    results: list[Figures] = []
    each = max(1, connections // len(urls))
    threads = [
        threading.Thread(
            target=lambda url=url, n=n: results.append(
                run_wrk(name, url, connections=each, **{**options, "run": options["run"] * 10 + n})
            )
        )
        for n, url in enumerate(urls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Figures(
        name=name,
        reports_per_s=sum(f.reports_per_s for f in results),
        p50_ms=max(f.p50_ms for f in results),
        p99_ms=max(f.p99_ms for f in results),
        bad=sum(f.bad for f in results),
        socket_errors=sum(f.socket_errors for f in results),
        acknowledged=sum(f.acknowledged for f in results),
        most_in_flight=sum(f.most_in_flight for f in results),
    )


def provision(url: str, ca: Path) -> tuple[str, list[str]]:
    context = ssl.create_default_context(cafile=str(ca))
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=url, verify=context, headers=headers) as http:
        document = {
            "name": "Benchmark",
            "account_manager": "bench@vendor.example",
            "orders": [],
        }
        http.put("/v1/customers/bench", json=document).raise_for_status()
        key = http.post("/v1/customers/bench/license-keys").json()["license_key"]
    return key, [str(uuid.uuid4()) for _ in range(64)]


#: What the server's ``/metrics`` says its commits took, in all and on instance-days.
_COMMIT_SUMS = ("statreport_commit_seconds_sum", "statreport_commit_instance_days_seconds_sum")


def commit_seconds(url: str, ca: Path) -> tuple[float, float]:
    """Seconds statreport's commits have taken so far, and of those its instance-days'."""
    context = ssl.create_default_context(cafile=str(ca))
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    text = httpx.get(f"{url}/metrics", verify=context, headers=headers).raise_for_status().text
    sums = dict.fromkeys(_COMMIT_SUMS, 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in sums:
            sums[name] = float(value)
    return sums[_COMMIT_SUMS[0]], sums[_COMMIT_SUMS[1]]


def share(before: tuple[float, float], after: tuple[float, float]) -> float:
    """The instance-days' share of the commit time spent between two readings."""
    commits, days = after[0] - before[0], after[1] - before[1]
    return days / commits if commits > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument(
        "--connections", type=int, default=32, help="wrk's connections for single reports"
    )
    parser.add_argument("--batch", type=int, default=500, help="reports in each batch")
    parser.add_argument(
        "--batch-connections", type=int, default=4, help="wrk's connections for batches"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of measurements; medians are printed"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "STATREPORT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server to make the benchmark's databases on ('' leaves it out)",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian) and run again")

    work = Path(tempfile.mkdtemp(prefix="statreport-bench-"))
    cert, key_file = work / "tls" / "cert.pem", work / "tls" / "key.pem"
    ensure_self_signed(cert, key_file, host="127.0.0.1")
    script = work / "post.lua"
    script.write_text(LUA)
    databases = make_databases(args.postgres) if args.postgres else {}
    servers, urls = start_servers(work, cert, key_file, databases)
    plain = ["single", "bare"]
    batches = ["batch"]
    if databases:
        plain += ["pg1", "pg2"]
        batches += ["pg1batch", "pg2batch"]
    stored_by: dict[str, list[Figures]] = {}  # every run against each database, warm-ups too
    rounds: list[dict[str, Figures]] = [{} for _ in range(args.rounds)]
    shares: dict[str, list[float]] = {"single": [], "batch": []}
    try:
        wait_ready(urls["statreport"], cert, "/readyz")
        for name in ("pg_one", "pg_two_a", "pg_two_b"):
            if name in urls:
                wait_ready(urls[name], cert, "/readyz")
        wait_ready(urls["bare"], cert, "/docs")
        wait_ready(urls["naive"], cert, "/docs")
        credentials: dict[str, tuple[str, list[str]]] = {
            target: provision(urls[target], cert)
            for target in ("statreport", "pg_one", "pg_two_a")
            if target in urls
        }
        credentials["pg_two_b"] = credentials.get("pg_two_a", ("", []))
        time.sleep(1)  # the second process hears of the key (statreport follows the keyring)

        def measure(name: str, *, run: int, seconds: float) -> Figures:
            batch = name.endswith("batch")
            targets = TARGETS[name]
            # The baselines take any token, and the same instances as statreport's.
            token, instances = credentials.get(targets[0], credentials["statreport"])
            options: dict[str, Any] = {
                "script": script,
                "token": token,
                "instances": instances,
                "connections": args.batch_connections if batch else args.connections,
                "seconds": seconds,
                "batch": args.batch if batch else 0,
                "run": run,
            }
            if len(targets) > 1:
                figures = run_wrk_on_both(LABELS[name], [urls[t] for t in targets], **options)
            else:
                figures = run_wrk(LABELS[name], urls[targets[0]], **options)
            database = STORES.get(targets[0])
            if database is not None:
                stored_by.setdefault(database, []).append(figures)
            return figures

        for run, name in enumerate([*plain, "naive"]):  # warm-up
            measure(name, run=100 + run, seconds=2)
        # Batches come after every round of single reports: the checkpoints of their
        # hundreds of thousands of rows would otherwise fall into the next single-report run.
        plans = [[*plain, *(["naive"] if n == 0 else [])] for n in range(args.rounds)]
        plans += [batches for _ in range(args.rounds)]
        runs = 0
        for number, plan in enumerate(plans):
            for key in plan:  # the naive endpoint is slow, and only a reference: once
                print(
                    f"round {number % args.rounds + 1} of {args.rounds}: measuring "
                    f"{LABELS[key]} ...",
                    file=sys.stderr,
                    flush=True,
                )
                before = commit_seconds(urls["statreport"], cert)
                runs += 1
                figures = measure(key, run=1000 + runs, seconds=args.seconds)  # ids: unique
                rounds[number % args.rounds][key] = figures
                if key in ("single", "batch"):
                    shares[key].append(share(before, commit_seconds(urls["statreport"], cert)))
    finally:
        for process in servers.values():
            stop(process)

    con = duckdb.connect(str(work / "statreport" / "statreport.duckdb"), read_only=True)
    row = con.execute("SELECT count(*) FROM reports").fetchall()
    stored = {"duckdb": int(row[0][0])}
    con.close()
    for name, url in databases.items():
        with connect_postgres(url) as pg:
            (count,) = pg.execute("SELECT count(*) FROM reports").fetchone() or (0,)
        stored[name] = int(count)
    drop_databases(args.postgres, databases)
    shutil.rmtree(work, ignore_errors=True)
    if not report(args, rounds, shares, stored=stored, stored_by=stored_by):
        sys.exit("a database does not hold exactly the reports sent: a durability defect")


#: Which servers each measurement loads, and which database each server writes.
TARGETS = {
    "single": ["statreport"],
    "batch": ["statreport"],
    "bare": ["bare"],
    "naive": ["naive"],
    "pg1": ["pg_one"],
    "pg1batch": ["pg_one"],
    "pg2": ["pg_two_a", "pg_two_b"],
    "pg2batch": ["pg_two_a", "pg_two_b"],
}
STORES = {"statreport": "duckdb", "pg_one": "one", "pg_two_a": "two", "pg_two_b": "two"}


def make_databases(server: str) -> dict[str, str]:
    """A new database for the one-process and one for the two-process PostgreSQL runs."""
    made = {}
    with psycopg.connect(server, autocommit=True) as admin:
        for name in ("one", "two"):
            database = f"statreport_bench_{name}_{uuid.uuid4().hex[:8]}"
            admin.execute(f'CREATE DATABASE "{database}"')  # a generated name
            made[name] = urlunsplit(urlsplit(server)._replace(path=f"/{database}"))
    return made


def drop_databases(server: str, databases: dict[str, str]) -> None:
    with psycopg.connect(server, autocommit=True) as admin:
        for url in databases.values():
            name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_servers(
    work: Path, cert: Path, key_file: Path, databases: dict[str, str]
) -> tuple[dict[str, subprocess.Popen[bytes]], dict[str, str]]:
    """statreport on DuckDB, the baselines, and statreport on PostgreSQL (one process on one
    database, two on the other), each on its own port."""
    python = sys.executable
    tls_args = ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key_file)]
    uvicorn_args = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    uvicorn_args += ["--log-level", "warning"]
    names = ["statreport", "bare", "naive"]
    if databases:
        names += ["pg_one", "pg_two_a", "pg_two_b"]
    ports = {name: free_port() for name in names}
    urls = {name: f"https://127.0.0.1:{port}" for name, port in ports.items()}

    def statreport(name: str, extra: dict[str, str]) -> subprocess.Popen[bytes]:
        return start(
            [python, "-m", "statreport", "serve"],
            {
                "STATREPORT_ADMIN_TOKEN": ADMIN_TOKEN,
                "STATREPORT_DATA_DIR": str(work / name),
                "STATREPORT_PORT": str(ports[name]),
                "STATREPORT_TLS_CERT": str(cert),
                "STATREPORT_TLS_KEY": str(key_file),
                "STATREPORT_RATE_LIMIT_PER_MINUTE": "1000000000",
                "STATREPORT_LOG_LEVEL": "warning",
                **extra,
            },
            work / f"{name}.log",
        )

    servers = {
        "statreport": statreport("statreport", {}),
        "bare": start(
            [
                python,
                "-m",
                "uvicorn",
                "--factory",
                "benchmarks.baselines:bare_app",
                "--port",
                str(ports["bare"]),
                *tls_args,
                *uvicorn_args,
            ],
            {},
            work / "bare.log",
        ),
        "naive": start(
            [
                python,
                "-m",
                "uvicorn",
                "--factory",
                "benchmarks.baselines:naive_app",
                "--port",
                str(ports["naive"]),
                *tls_args,
                *uvicorn_args,
            ],
            {"BENCH_NAIVE_DB": str(work / "naive.duckdb")},
            work / "naive.log",
        ),
    }
    if databases:
        servers["pg_one"] = statreport("pg_one", {"STATREPORT_DATABASE_URL": databases["one"]})
        for name in ("pg_two_a", "pg_two_b"):
            servers[name] = statreport(name, {"STATREPORT_DATABASE_URL": databases["two"]})
    return servers, urls


#: What each measurement is, as printed.
LABELS = {
    "single": "statreport durable, single reports",
    "pg1": "PostgreSQL, 1 process, single reports",
    "pg2": "PostgreSQL, 2 processes, single reports",
    "bare": "bare FastAPI 202 (ceiling)",
    "naive": "naive: one DuckDB transaction per report",
    "batch": "statreport durable, batches",
    "pg1batch": "PostgreSQL, 1 process, batches",
    "pg2batch": "PostgreSQL, 2 processes, batches",
}


def _spread(values: Sequence[float], fmt: str, unit: str = "") -> str:
    """The median, and the range when there is more than one value."""
    middle = format(statistics.median(values), fmt) + unit
    if len(values) == 1:
        return middle
    return f"{middle} ({format(min(values), fmt)}{unit}-{format(max(values), fmt)}{unit})"


def report(
    args: argparse.Namespace,
    rounds: list[dict[str, Figures]],
    shares: dict[str, list[float]],
    *,
    stored: dict[str, int],
    stored_by: dict[str, list[Figures]],
) -> bool:
    """Print each configuration's median figures over the rounds, and the ratios; whether
    each database's ``stored`` rows are every report that the runs ``stored_by`` on it got a
    202 for."""
    print()
    print(
        f"ingest benchmark: {args.connections} connections ({args.batch_connections} for "
        f"batches of {args.batch}), {args.seconds:.0f} s each, HTTPS, {len(rounds)} round(s); "
        "median (min-max)"
    )
    print(f"{'server':<44}{'reports/s':>26}{'p50 ms':>9}{'p99 ms':>9}{'non-202':>9}")
    for key, label in LABELS.items():
        runs = [measured[key] for measured in rounds if key in measured]
        if not runs:
            continue
        print(
            f"{label:<44}{_spread([f.reports_per_s for f in runs], ',.0f'):>26}"
            f"{statistics.median(f.p50_ms for f in runs):>9.1f}"
            f"{statistics.median(f.p99_ms for f in runs):>9.1f}"
            f"{sum(f.bad + f.socket_errors for f in runs):>9}"
        )
    print()

    def ratios(top: str, bottom: str) -> list[float]:
        return [
            m[top].reports_per_s / max(m[bottom].reports_per_s, 1e-9)
            for m in rounds
            if top in m and bottom in m
        ]

    durable = ratios("single", "bare")
    each = " ".join(f"{r:.2f}x" for r in durable)
    print(f"durable / bare, each round: {each} (median {statistics.median(durable):.2f}x)")
    print(f"durable / naive = {statistics.median(ratios('single', 'naive')):.1f}x")
    print(f"batch / single = {_spread(ratios('batch', 'single'), '.1f', 'x')}")
    if ratios("pg2", "single"):
        print(
            f"PostgreSQL, 2 processes / DuckDB, 1 process: single reports "
            f"{_spread(ratios('pg2', 'single'), '.2f', 'x')}, batches "
            f"{_spread(ratios('pg2batch', 'batch'), '.2f', 'x')}"
        )
        print(
            f"PostgreSQL, 1 process / DuckDB, 1 process: single reports "
            f"{_spread(ratios('pg1', 'single'), '.2f', 'x')}, batches "
            f"{_spread(ratios('pg1batch', 'batch'), '.2f', 'x')}"
        )
        print(f"PostgreSQL, 2 processes / bare = {_spread(ratios('pg2', 'bare'), '.2f', 'x')}")
    print(
        f"instance-days' share of commit time (DuckDB): {_spread(shares['single'], '.0%')} with "
        f"single reports, {_spread(shares['batch'], '.0%')} with batches"
    )
    whole = True
    for database, runs in stored_by.items():
        acknowledged = sum(f.acknowledged for f in runs)
        in_flight = sum(f.most_in_flight for f in runs)
        # A request still in flight when a run of wrk stops is stored, but its 202 is not
        # counted.
        ok = acknowledged <= stored[database] <= acknowledged + in_flight
        whole = whole and ok
        if ok:
            verdict = (
                f"every 202 is there, and {stored[database] - acknowledged:,} reports of "
                f"requests still in flight when wrk stopped (at most {in_flight:,} could be)"
            )
        else:
            verdict = "MISSING REPORTS" if stored[database] < acknowledged else "MORE ROWS"
        print(
            f"{database}: reports acknowledged with 202: {acknowledged:,}; rows stored: "
            f"{stored[database]:,}: {verdict}"
        )
    return whole


if __name__ == "__main__":
    main()
