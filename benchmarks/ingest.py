"""Ingest throughput over real HTTPS: statreport vs a bare endpoint vs a naive one.

One command: ``make bench`` (or ``.venv/bin/python benchmarks/ingest.py``). It needs ``wrk``
(Debian package ``wrk``) as the load generator, in its own process. It prints reports/s, p50
and p99 for each server, the batch endpoint's reports/s, and the ratios, all from this one run.
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
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
    python = sys.executable
    tls_args = ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key_file)]
    uvicorn_args = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    uvicorn_args += ["--log-level", "warning"]

    ports = {name: free_port() for name in ("statreport", "bare", "naive")}
    urls = {name: f"https://127.0.0.1:{port}" for name, port in ports.items()}
    servers = {
        "statreport": start(
            [python, "-m", "statreport", "serve"],
            {
                "STATREPORT_ADMIN_TOKEN": ADMIN_TOKEN,
                "STATREPORT_DATA_DIR": str(work / "statreport"),
                "STATREPORT_PORT": str(ports["statreport"]),
                "STATREPORT_TLS_CERT": str(cert),
                "STATREPORT_TLS_KEY": str(key_file),
                "STATREPORT_RATE_LIMIT_PER_MINUTE": "1000000000",
                "STATREPORT_LOG_LEVEL": "warning",
            },
            work / "statreport.log",
        ),
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
    stored_by: list[Figures] = []  # every run against statreport, warm-up included
    rounds: list[dict[str, Figures]] = [{} for _ in range(args.rounds)]
    shares: dict[str, list[float]] = {"single": [], "batch": []}
    try:
        wait_ready(urls["statreport"], cert, "/readyz")
        wait_ready(urls["bare"], cert, "/docs")
        wait_ready(urls["naive"], cert, "/docs")
        token, instances = provision(urls["statreport"], cert)

        def measure(name: str, *, run: int, seconds: float) -> Figures:
            batch = name == "batch"
            return run_wrk(
                LABELS[name],
                urls["statreport" if name in ("single", "batch") else name],
                script=script,
                token=token,
                instances=instances,
                connections=args.batch_connections if batch else args.connections,
                seconds=seconds,
                batch=args.batch if batch else 0,
                run=run,
            )

        for run, name in enumerate(("single", "bare", "naive")):  # warm-up
            warm = measure(name, run=100 + run, seconds=2)
            stored_by += [warm] if name == "single" else []
        # Batches come after every round of single reports: the checkpoints of their
        # hundreds of thousands of rows would otherwise fall into the next single-report run.
        plans = [["single", "bare", *(["naive"] if n == 0 else [])] for n in range(args.rounds)]
        plans += [["batch"] for _ in range(args.rounds)]
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
                    stored_by.append(figures)
                    shares[key].append(share(before, commit_seconds(urls["statreport"], cert)))
    finally:
        for process in servers.values():
            stop(process)

    con = duckdb.connect(str(work / "statreport" / "statreport.duckdb"), read_only=True)
    row = con.execute("SELECT count(*) FROM reports").fetchone()
    stored = int(row[0]) if row else 0
    con.close()
    shutil.rmtree(work, ignore_errors=True)
    if not report(args, rounds, shares, stored=stored, stored_by=stored_by):
        sys.exit("the file does not hold exactly the reports sent: a durability defect")


#: What each measurement is, as printed.
LABELS = {
    "single": "statreport durable, single reports",
    "bare": "bare FastAPI 202 (ceiling)",
    "naive": "naive: one DuckDB transaction per report",
    "batch": "statreport durable, batches",
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
    stored: int,
    stored_by: list[Figures],
) -> bool:
    """Print each configuration's median figures over the rounds, and the ratios; whether
    the ``stored`` rows are every report that the runs ``stored_by`` got a 202 for."""
    acknowledged = sum(f.acknowledged for f in stored_by)
    in_flight = sum(f.most_in_flight for f in stored_by)
    print()
    print(
        f"ingest benchmark: {args.connections} connections ({args.batch_connections} for "
        f"batches of {args.batch}), {args.seconds:.0f} s each, HTTPS, {len(rounds)} round(s); "
        "median (min-max)"
    )
    print(f"{'server':<44}{'reports/s':>26}{'p50 ms':>9}{'p99 ms':>9}{'non-202':>9}")
    for key, label in LABELS.items():
        runs = [measured[key] for measured in rounds if key in measured]
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
    print(
        f"instance-days' share of commit time: {_spread(shares['single'], '.0%')} with single "
        f"reports, {_spread(shares['batch'], '.0%')} with batches"
    )
    # A request still in flight when a run of wrk stops is stored, but its 202 is not counted.
    whole = acknowledged <= stored <= acknowledged + in_flight
    if whole:
        verdict = (
            f"every 202 is there, and {stored - acknowledged:,} reports of requests still in "
            f"flight when wrk stopped (at most {in_flight:,} could be)"
        )
    else:
        verdict = "MISSING REPORTS" if stored < acknowledged else "MORE ROWS THAN SENT"
    print(
        f"reports statreport acknowledged with 202: {acknowledged:,}; rows in its DuckDB file: "
        f"{stored:,}: {verdict}"
    )
    return whole


if __name__ == "__main__":
    main()
