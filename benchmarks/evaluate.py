"""Compliance evaluation over 10M reports: wall time and peak RSS, against DuckDB's raw rollup.

One command: ``.venv/bin/python benchmarks/evaluate.py`` (``--customers`` and ``--days`` scale
it; the default is 2,000 customers x 5 instances x hourly x 42 days = 10,080,000 reports). The
data is generated straight into a real DuckDB file with statreport's schema. Then, each in its
own fresh process so that peak RSS is its own:

- the raw DuckDB ``GROUP BY`` daily rollup of the same table (the floor);
- the whole evaluation: the rollup, usage, entitlements, episodes and every finding.

It prints both, and their ratio. Then, unless ``--postgres ''``, it moves the same file into a
new PostgreSQL database with ``statreport migrate`` (timed) and measures the evaluation and
what the server answers again on PostgreSQL (SPEC §16): DuckDB over an ADBC snapshot, beside
the DuckDB file's figures of the same run. Timing never fails anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import polars as pl  # noqa: E402
import psycopg  # noqa: E402

from analytics.evidence import finding_evidence  # noqa: E402
from analytics.inputs import load_inputs  # noqa: E402
from analytics.repository import RAW_INSTANCE_DAYS  # noqa: E402
from analytics.service import compute_findings, evaluate  # noqa: E402
from analytics.statement import customer_statement  # noqa: E402
from core import instance_days  # noqa: E402
from core.postgres_store import PostgresStore  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.store import Store  # noqa: E402

#: DuckDB's memory cap as the server sets it by default (``STATREPORT_DUCKDB_MEMORY_LIMIT``).
MEMORY_LIMIT: str = Settings.model_fields["duckdb_memory_limit"].default


def generate(path: Path, *, customers: int, instances: int, days: int) -> int:
    """Fill a statreport database with customers, order forms and hourly reports."""
    store = Store(path)
    store.open()
    con = store.cursor()
    end = datetime.now(UTC).date() - timedelta(days=1)
    start = end - timedelta(days=days - 1)
    con.execute("SET threads TO 2")
    con.execute(
        "INSERT INTO customers (customer_id, name, account_manager, air_gapped, document, "
        "created_at, updated_at) SELECT 'c' || lpad(i::VARCHAR, 5, '0'), 'Customer ' || i, "
        "'am' || (i % 25) || '@vendor.example', false, '{}', now(), now() FROM range(?) t(i)",
        [customers],
    )
    # The document a statement shows: the customer's name and its one order form.
    con.execute(
        "UPDATE customers SET document = json_object('name', name, 'account_manager', "
        "account_manager, 'air_gapped', false, 'orders', json_array(json_object('order_id', "
        "'OF-1', 'start', ?::DATE - 200, 'end', ?::DATE + 200, 'entitlements', json_object("
        "'user_packs', 12, 'users_per_pack', 10, 'production_instances', 3, "
        "'non_production_instances', 2, 'tenants', 6), 'addons', json_array())))",
        [start, end],
    )
    con.execute(
        "INSERT INTO order_forms (customer_id, order_id, start_on, end_on, users_per_pack) "
        "SELECT customer_id, 'OF-1', ?::DATE - 200, ?::DATE + 200, 10 "
        "FROM customers",
        [start, end],
    )
    for item, quantity in (
        ("user_packs", 12),
        ("production_instances", 3),
        ("non_production_instances", 2),
        ("tenants", 6),
    ):
        con.execute(
            "INSERT INTO entitlements SELECT customer_id, 'OF-1', '', ?::DATE - 200, ?, ? "
            "FROM customers",
            [start, item, quantity],
        )
    con.execute(
        "CREATE TEMP TABLE fleet AS SELECT c.customer_id, i AS n, uuid() AS instance_id, "
        "CASE WHEN i < 3 THEN 'production' ELSE 'non_production' END AS environment, "
        "(hash(c.customer_id, i) % 30)::INTEGER AS base "
        "FROM customers c, range(?) t(i)",
        [instances],
    )
    con.execute(
        "INSERT INTO instances (instance_id, customer_id, first_seen_at) "
        "SELECT instance_id, customer_id, now() FROM fleet"
    )
    # Hourly reports; every 7th customer's first instance doubles its users on some days.
    con.execute(
        """
        INSERT INTO reports
        SELECT uuid(), f.customer_id, f.instance_id, f.environment, ts, ts::DATE, '1.1.3', h,
               (f.base + CASE WHEN f.n = 0 AND hash(f.customer_id) % 7 = 0
                              AND (h // 24) % 11 > 6 THEN 40 ELSE 0 END)::INTEGER,
               1 + (f.base % 3), 20 + f.base, 1, 5, 2,
               'phone_home', 'key_bench', now()
        FROM fleet f, range(?) t(h),
             LATERAL (SELECT ?::TIMESTAMPTZ + to_hours(h) AS ts)
        """,
        [days * 24, datetime.combine(start, datetime.min.time(), UTC)],
    )
    # The customers' order forms as kept since version 12, known from the start.
    for versions, table in (
        (
            "customer_versions",
            "SELECT customer_id, name, account_manager, air_gapped, "
            "air_gapped_since, document FROM customers",
        ),
        ("order_form_versions", "SELECT * FROM order_forms"),
        ("entitlement_versions", "SELECT * FROM entitlements"),
    ):
        seed = f"INSERT INTO {versions} SELECT *, TIMESTAMPTZ '2000-01-01 00:00:00+00', NULL "
        con.execute(seed + f"FROM ({table})")
    rollup = instance_days.rollup("reports", partial=False, known_at=_KNOWN_AT_DAYS_END)
    # In the order folds append them in.
    con.execute(f"INSERT INTO instance_days SELECT * FROM ({rollup}) ORDER BY usage_day")  # noqa: S608
    con.execute(_HISTORY)
    # Hourly reports sent as they were made arrived in order: ingest would have marked no
    # instance-day as having received one out of order (``ingest.frontier.Frontier``).
    con.execute("DELETE FROM instance_days_out_of_order")
    con.execute("CHECKPOINT")
    row = con.execute("SELECT count(*) FROM reports").fetchone()
    con.close()
    store.close_file()
    return int(row[0]) if row else 0


#: When a day's totals became known: the last hourly report of each day was committed five
#: minutes after midnight.
_KNOWN_AT_DAYS_END = "usage_day::TIMESTAMPTZ + INTERVAL 1 DAY + INTERVAL 5 MINUTE"
_BUCKET = "(usage_day::TIMESTAMPTZ + to_hours(2 * (b + 1)) + INTERVAL 5 MINUTE)"

#: The rows folds replaced, as ingest keeps them (``core.instance_days.FOLD``) when reports
#: arrive one by one, hourly, and the instance-days are folded every 2 hours (20,000 reports
#: of a 10,000-instance fleet): per instance-day and fold, the totals the fold replaced, and
#: the first of the two reports committed since (the second, the latest, becomes the
#: fold's result). About one kept row per report, stored in the order folds append them.
_HISTORY = f"""
INSERT INTO instance_days_replaced
WITH buckets AS (
    SELECT instance_id, usage_day, hour(generated_at) // 2 AS b, any_value(customer_id) AS c,
           arg_max(environment, generated_at) AS env, arg_max(product_version, generated_at) AS v,
           max(users) AS users, max(tenants) AS tenants, max(namespaces) AS namespaces,
           max(worker_groups) AS worker_groups, max(roles) AS roles,
           max(service_accounts) AS service_accounts, count(*) AS n,
           min(generated_at) AS first_at, max(generated_at) AS last_at,
           min(sequence) AS low, max(sequence) AS high, arg_min(report_id, generated_at) AS r
    FROM reports GROUP BY ALL
), folded AS (
    SELECT instance_id, usage_day, c, last(env) OVER w, last(v) OVER w, max(users) OVER w,
           max(tenants) OVER w, max(namespaces) OVER w, max(worker_groups) OVER w,
           max(roles) OVER w, max(service_accounts) OVER w, sum(n) OVER w, min(first_at) OVER w,
           max(last_at) OVER w, min(low) OVER w, max(high) OVER w, false,
           {_BUCKET} AS known_at, {_BUCKET} + INTERVAL 2 HOUR AS replaced_at, b
    FROM buckets WINDOW w AS (PARTITION BY instance_id, usage_day ORDER BY b)
)
SELECT * FROM (
SELECT * EXCLUDE (b) FROM folded WHERE b < 11
UNION ALL
SELECT r.instance_id, r.usage_day, r.customer_id, r.environment, r.product_version, r.users,
       r.tenants, r.namespaces, r.worker_groups, r.roles, r.service_accounts, 1,
       r.generated_at, r.generated_at, r.sequence, r.sequence, true,
       r.generated_at + INTERVAL 5 MINUTE,
       k.usage_day::TIMESTAMPTZ + to_hours(2 * (k.b + 1)) + INTERVAL 5 MINUTE
FROM reports r JOIN buckets k ON r.report_id = k.r
) ORDER BY replaced_at
"""  # noqa: S608 - constants


def sizes(path: Path, work: Path) -> tuple[float, float]:
    """The database file's size, and what its raw reports take as archive Parquet (MiB)."""
    parquet = work / "archive.parquet"
    con = duckdb.connect(str(path), read_only=True)
    con.execute(f"COPY reports TO '{parquet}' (FORMAT parquet)")
    con.close()
    mib = 1024 * 1024
    archive = parquet.stat().st_size / mib
    parquet.unlink()
    return path.stat().st_size / mib, archive


def open_store(path: Path, threads: int, postgres: str | None) -> Store:
    """The store the server would open: the DuckDB file, or the PostgreSQL database."""
    store = (
        PostgresStore(postgres)
        if postgres
        else Store(path, duckdb_threads=threads, memory_limit=MEMORY_LIMIT)
    )
    store.open()
    return store


def measure_served(
    mode: str, path: Path, threads: int, as_of: date, postgres: str | None = None
) -> dict[str, float]:
    """Evidence of one over-use finding, or a customer's 90-day statement, as the server
    answers them (its services on its store), after an evaluation that stores the findings."""
    store = open_store(path, threads, postgres)
    try:
        run = asyncio.run(evaluate(store, as_of=as_of))
        finding = next(f for f in run.findings if f.kind == "overuse")
        times = []
        for _ in range(2):  # the first call reads from disk; a running server's cache is warm
            started = time.perf_counter()
            if mode == "evidence":
                evidence = asyncio.run(
                    finding_evidence(store, finding_id=finding.finding_id, as_of=as_of)
                )
                rows = len(evidence.days or [])
            else:
                # As known now, or at noon a month before the run: then every row folded
                # since is read back from the kept ones.
                end = as_of if mode == "statement" else as_of - timedelta(days=30)
                known_at = None
                if mode == "statement_past":
                    known_at = datetime.combine(end, datetime.min.time(), UTC) + timedelta(hours=12)
                statement = asyncio.run(
                    customer_statement(
                        store,
                        customer_id=finding.customer_id,
                        start=end - timedelta(days=89),
                        end=end,
                        known_at=known_at,
                    )
                )
                rows = len(statement.csv.splitlines())
            times.append(time.perf_counter() - started)
    finally:
        store.close_file()
    return {"seconds": times[1], "cold_seconds": times[0], "rows": rows}


def peak_rss_mib() -> float:
    """This process's own peak RSS. Not ``getrusage``'s ``ru_maxrss``: Linux carries that
    high-water mark across ``exec``, so a child measured the parent's peak (the generator's
    1.4 GiB at 10M reports, 5 GiB at 40M) whatever it did itself."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def cache_file(path: Path) -> None:
    """Read the database file through once, untimed, so that every measurement starts with
    the file in the OS page cache and only the process cold. This machine's kernel pages out
    memory left idle (DAMON's ``pageout``), which left a varying part of the file on disk
    from one run to the next. The same evaluation of 40M reports took 1.40-1.98 s over 14
    runs without a read-through, and 1.26-1.60 s over 8 with one."""
    buffer = bytearray(1 << 20)  # small, so that it adds nothing to the peak RSS measured
    with path.open("rb", buffering=0) as file:
        while file.readinto(buffer):
            pass


#: What the server answers, measured after an evaluation.
SERVED = {
    "evidence": "evidence of one over-use finding, as known at its run",
    "statement": "a customer's 90-day statement, as known now",
    "statement_past": "the same, ending a month ago, as known at noon that day",
}


def measure(mode: str, path: Path, threads: int, as_of: date, postgres: str | None = None) -> None:
    """Child process: time one thing, report seconds and peak RSS as JSON."""
    if postgres:
        measure_postgres(mode, path, as_of, postgres)
        return
    cache_file(path)
    if mode in SERVED:
        result = measure_served(mode, path, threads, as_of)
        print(json.dumps({**result, "peak_mib": peak_rss_mib()}))
        return
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET threads TO {int(threads)}")
    con.execute("SET memory_limit = ?", [MEMORY_LIMIT])
    warm_up(con)
    started = time.perf_counter()
    if mode == "rollup":
        table = con.sql(
            RAW_INSTANCE_DAYS, params=[as_of - timedelta(days=400), as_of]
        ).to_arrow_table()
        rows = table.num_rows
    else:
        inputs = load_inputs(con, as_of=as_of)
        findings, _ = compute_findings(inputs, as_of=as_of)
        rows = len(findings)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mib": peak_rss_mib(), "rows": rows}))


def measure_postgres(mode: str, path: Path, as_of: date, postgres: str) -> None:
    """Child process, on PostgreSQL: the evaluation as the server runs it (its inputs read as
    known at an instant, through a snapshot), or what the server answers."""
    if mode in SERVED:
        result = measure_served(mode, path, 1, as_of, postgres)
        print(json.dumps({**result, "peak_mib": peak_rss_mib()}))
        return
    store = open_store(path, 1, postgres)
    try:
        warm_up(duckdb.connect())
        started = time.perf_counter()
        _, inputs = asyncio.run(store.read_known(lambda con: load_inputs(con, as_of=as_of)))
        read = time.perf_counter() - started
        findings, _ = compute_findings(inputs, as_of=as_of)
        seconds = time.perf_counter() - started
    finally:
        store.close_file()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "read_seconds": read,
                "peak_mib": peak_rss_mib(),
                "rows": len(findings),
            }
        )
    )


def move_to_postgres(path: Path, server: str, *, keep: bool) -> tuple[str, float | None]:
    """A database holding the file's data, by ``statreport migrate``; its URL and the seconds
    the migration took. With ``keep``, one migrated before (its name is fixed) is reused."""
    name = "statreport_eval_bench_kept" if keep else f"statreport_eval_bench_{int(time.time())}"
    url = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    with psycopg.connect(server, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if keep and exists:
            return url, None
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')  # a generated name
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "statreport",
            "migrate",
            "--data-dir",
            str(path.parent),
            "--to",
            url,
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return url, time.perf_counter() - started


def drop_database(server: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def warm_up(con: duckdb.DuckDBPyConnection) -> None:
    """Bring the process to where ``statreport serve`` is long before its daily evaluation,
    without reading any table: pyarrow imported (the server's ingest imports it), a result
    converted to Arrow and a Polars query run. Left in the timed part, these took 0.1-0.2 s
    of a fresh process's first evaluation, which the server never pays. The data stays
    cold."""
    import pyarrow  # noqa: F401

    table = con.sql("SELECT 1 AS warm").to_arrow_table()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    frame.lazy().group_by("warm").agg(pl.len()).collect()


def prepare(path: Path) -> tuple[int, date]:
    """Bring a kept database to this code's schema; its reports, and its last day (the day
    every measurement is as of: the day before the data was generated)."""
    store = Store(path)
    store.open()
    store.close_file()
    con = duckdb.connect(str(path), read_only=True)
    row = con.execute("SELECT count(*), max(usage_day) FROM reports").fetchone()
    con.close()
    assert row is not None
    return int(row[0]), row[1]


def run_child(
    mode: str, path: Path, threads: int, as_of: date, postgres: str | None = None
) -> dict[str, float]:
    command = [sys.executable, __file__, "--measure", mode, "--db", str(path)]
    command += ["--pg", postgres] if postgres else []
    output = subprocess.run(
        [*command, "--threads", str(threads), "--as-of", as_of.isoformat()],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--instances", type=int, default=5)
    parser.add_argument("--days", type=int, default=42)
    parser.add_argument("--rounds", type=int, default=2, help="measurements of each; best kept")
    parser.add_argument(
        "--keep",
        type=Path,
        help="generate the data into this folder once and keep it; later runs reuse it",
    )
    parser.add_argument(
        "--measure",
        choices=["rollup", "evaluation", *SERVED],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--pg", help=argparse.SUPPRESS)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "STATREPORT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server to measure the same on ('' leaves it out)",
    )
    parser.add_argument("--as-of", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument(
        "--threads",
        type=int,
        action="append",
        help="DuckDB threads to measure with (repeatable; default: 2, the machine's cores, "
        "and 1, statreport serve's default)",
    )
    args = parser.parse_args()
    thread_counts: list[int] = args.threads or [2, 1]
    if args.measure:
        measure(args.measure, args.db, thread_counts[0], args.as_of, args.pg)
        return

    work = args.keep or Path(tempfile.mkdtemp(prefix="statreport-eval-bench-"))
    path = work / "statreport.duckdb"
    if not path.exists():
        print(
            f"generating {args.customers} customers x {args.instances} instances x hourly x "
            f"{args.days} days ...",
            file=sys.stderr,
            flush=True,
        )
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        generate(path, customers=args.customers, instances=args.instances, days=args.days)
        elapsed = time.perf_counter() - started
        print(f"generated the reports in {elapsed:.0f} s", file=sys.stderr)
    count, as_of = prepare(path)
    database_mib, archive_mib = sizes(path, work)
    print()
    print(f"evaluation benchmark: {count:,} reports in a DuckDB file")
    print(
        f"database file {database_mib:,.0f} MiB; the same reports as archive Parquet "
        f"{archive_mib:,.0f} MiB"
    )
    print(f"{'':<44}{'seconds':>10}{'peak RSS MiB':>15}")
    evaluations: dict[int, float] = {}
    for threads in thread_counts:
        results: dict[str, dict[str, float]] = {}
        for mode in ("rollup", "evaluation"):
            runs = []
            for _ in range(args.rounds):
                print(f"measuring {mode} with {threads} thread(s) ...", file=sys.stderr, flush=True)
                runs.append(run_child(mode, path, threads, as_of))
            results[mode] = min(runs, key=lambda r: r["seconds"])
        rollup, evaluation = results["rollup"], results["evaluation"]
        evaluations[threads] = evaluation["seconds"]
        label = f"DuckDB threads = {threads}"
        print(f"{label}")
        print(
            f"{'  raw DuckDB daily rollup (GROUP BY)':<44}{rollup['seconds']:>10.2f}"
            f"{rollup['peak_mib']:>15.0f}"
        )
        print(
            f"{'  whole evaluation (' + str(int(evaluation['rows'])) + ' findings)':<44}"
            f"{evaluation['seconds']:>10.2f}{evaluation['peak_mib']:>15.0f}"
        )
        print(f"  evaluation / rollup = {evaluation['seconds'] / rollup['seconds']:.2f}x")
    print("served (threads = 1, as statreport serve; after an evaluation)")
    served: dict[str, dict[str, float]] = {}
    for mode, label in SERVED.items():
        print(f"measuring {mode} ...", file=sys.stderr, flush=True)
        runs = [run_child(mode, path, 1, as_of) for _ in range(args.rounds)]
        served[mode] = best = min(runs, key=lambda r: r["seconds"])
        print(
            f"{'  ' + label:<58}{best['seconds'] * 1000:>8.0f} ms "
            f"(first call, cold cache: {best['cold_seconds'] * 1000:.0f} ms)"
        )
    ratio = served["statement_past"]["seconds"] / served["statement"]["seconds"]
    print(f"  statement as known a month ago / as known now = {ratio:.2f}x")
    if args.postgres:
        print("moving the file into PostgreSQL with statreport migrate ...", file=sys.stderr)
        url, moved = move_to_postgres(path, args.postgres, keep=args.keep is not None)
        try:
            took = "kept from an earlier run" if moved is None else f"took {moved:.0f} s"
            print(f"PostgreSQL (statreport migrate of the file {took})")
            runs = []
            for _ in range(args.rounds):
                print("measuring evaluation on PostgreSQL ...", file=sys.stderr, flush=True)
                runs.append(run_child("evaluation", path, 1, as_of, url))
            best = min(runs, key=lambda r: r["seconds"])
            print(
                f"{'  whole evaluation (' + str(int(best['rows'])) + ' findings)':<44}"
                f"{best['seconds']:>10.2f}{best['peak_mib']:>15.0f}"
                f"   (reading its snapshot: {best['read_seconds']:.2f} s)"
            )
            on_duckdb = evaluations[1] if 1 in evaluations else min(evaluations.values())
            print(f"  PostgreSQL / DuckDB (threads = 1) = {best['seconds'] / on_duckdb:.2f}x")
            for mode, label in SERVED.items():
                print(f"measuring {mode} on PostgreSQL ...", file=sys.stderr, flush=True)
                runs = [run_child(mode, path, 1, as_of, url) for _ in range(args.rounds)]
                best = min(runs, key=lambda r: r["seconds"])
                print(
                    f"{'  ' + label:<58}{best['seconds'] * 1000:>8.0f} ms "
                    f"({best['seconds'] / served[mode]['seconds']:.2f}x DuckDB's)"
                )
        finally:
            if args.keep is None:
                drop_database(args.postgres, url)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
