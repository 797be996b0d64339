"""Instance-side commands: the reference phone-home client and the fleet simulator."""

from __future__ import annotations

import json
import ssl
import sys
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from core.usage_metrics import REPORT_METRICS
from ingest.schemas import MAX_BATCH
from phonehome.client import (
    KeyRefused,
    PhoneHomeClient,
    Rejected,
    SendFailed,
    Spool,
    build_report,
    flush,
)
from phonehome.simulate import fleet, fleet_reports
from statreport.http_cli import (
    admin_http,
    admin_options,
    check,
    exit_on_http_errors,
    server_options,
    verify_for,
)

EXIT_SPOOLED = 1
EXIT_REJECTED = 3


@click.command("phone-home")
@server_options
@click.option(
    "--license-key",
    envvar="STATREPORT_LICENSE_KEY",
    show_envvar=True,
    help="This installation's licence key; prefer the environment variable. "
    "Not needed with --dry-run.",
)
@click.option(
    "--spool",
    "spool_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("statreport-spool"),
    show_default=True,
    help="Where unsent reports and the instance's identity are kept.",
)
@click.option(
    "--environment",
    type=click.Choice(["production", "non_production"]),
    default="production",
    show_default=True,
)
@click.option("--product-version", default="1.1.3", show_default=True)
@click.option("--users", type=click.IntRange(0, 10_000_000), help="Human users (required).")
@click.option("--tenants", type=click.IntRange(0, 10_000_000))
@click.option("--namespaces", type=click.IntRange(0, 10_000_000))
@click.option("--worker-groups", type=click.IntRange(0, 10_000_000))
@click.option("--roles", type=click.IntRange(0, 10_000_000))
@click.option("--service-accounts", type=click.IntRange(0, 10_000_000))
@click.option("--flush-only", is_flag=True, help="Only send what is already spooled.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the report exactly as it would be sent, and send and spool nothing.",
)
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=500, show_default=True)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=8, show_default=True)
def phone_home(
    server: str,
    ca_cert: Path | None,
    license_key: str | None,
    spool_dir: Path,
    environment: str,
    product_version: str,
    flush_only: bool,
    dry_run: bool,
    batch_size: int,
    max_attempts: int,
    **metrics: int | None,
) -> None:
    """Spool this installation's Statistics Report, then send the whole backlog.

    The report is written to the spool before anything is sent, so nothing is lost when the
    server is unreachable: the next run sends it. Transient failures are retried with
    exponential backoff and full jitter, honouring Retry-After.

    Exit codes: 0 everything sent; 1 reports remain spooled (server unreachable, overloaded,
    or the key was refused); 2 usage error; 3 some reports were refused for good and moved
    to <spool>/rejected with the reason.

    --dry-run shows an administrator everything this installation would send: the report
    is printed as JSON on stdout, and nothing is spooled or sent. On an installation that has
    never reported, it creates the random instance_id (<spool>/instance.json) that the next
    run then sends, so that what it shows is what will leave.
    """
    spool = Spool(spool_dir)
    if dry_run:
        if flush_only:
            raise click.UsageError("--dry-run shows a new report; it cannot go with --flush-only")
        report = _new_report(spool, environment, product_version, metrics, advance=False)
        click.echo(json.dumps(report, indent=2))
        return
    if not license_key:
        raise click.UsageError("--license-key or STATREPORT_LICENSE_KEY is required")
    if not flush_only:
        report = _new_report(spool, environment, product_version, metrics, advance=True)
        spool.add(report)
        click.echo(
            f"spooled report {report['report_id']} (sequence {report['sequence']})", err=True
        )
    with PhoneHomeClient(
        server,
        license_key=license_key,
        verify=verify_for(server, ca_cert),
        max_attempts=max_attempts,
    ) as client:
        summary = flush(spool, client, batch_size=batch_size)
    click.echo(
        f"sent: {summary.stored} stored, {summary.duplicates} duplicates, "
        f"{summary.rejected} rejected, {summary.remaining} still spooled"
    )
    if summary.error:
        click.echo(f"error: {summary.error}", err=True)
        sys.exit(EXIT_SPOOLED)
    if summary.rejected:
        click.echo(f"see {spool.rejected_dir} for the refused reports and why", err=True)
        sys.exit(EXIT_REJECTED)


def _new_report(
    spool: Spool,
    environment: str,
    product_version: str,
    metrics: dict[str, int | None],
    *,
    advance: bool,
) -> dict[str, Any]:
    if metrics.get("users") is None:
        raise click.UsageError("--users is required (or pass --flush-only)")
    instance_id, sequence = spool.next_identity(advance=advance)
    counts = {name: value for name, value in metrics.items() if value is not None}
    return build_report(
        instance_id=instance_id,
        sequence=sequence,
        environment=environment,
        product_version=product_version,
        metrics={name: counts[name] for name in REPORT_METRICS if name in counts},
    )


@click.command("simulate")
@admin_options
@click.option("--customers", type=click.IntRange(1, 100_000), default=3, show_default=True)
@click.option(
    "--instances",
    type=click.IntRange(1, 1_000_000),
    default=10,
    show_default=True,
    help="Instances in the fleet, dealt round-robin to the customers.",
)
@click.option("--days", type=click.IntRange(1, 400), default=90, show_default=True)
@click.option("--reports-per-day", type=click.IntRange(1, 288), default=1, show_default=True)
@click.option("--prefix", default="sim", show_default=True, help="Customer id prefix.")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="With the same prefix and seed, a rerun sends the same reports again (all duplicates); "
    "another prefix or seed makes another fleet.",
)
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=500, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True)
@exit_on_http_errors
def simulate(
    server: str,
    ca_cert: Path | None,
    admin_token: str,
    customers: int,
    instances: int,
    days: int,
    reports_per_day: int,
    prefix: str,
    seed: int,
    batch_size: int,
    concurrency: int,
) -> None:
    """Create simulated customers and send a fleet's reports over HTTPS.

    INSTANCES installations of CUSTOMERS customers report REPORTS_PER_DAY times a day over
    the last DAYS days. Each customer gets an order form and a licence key first.
    """
    customer_ids = [f"{prefix}-{index:04d}" for index in range(customers)]
    instance_fleet = fleet(customers=customer_ids, instances=instances, seed=seed)
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for customer_id, report in fleet_reports(
        instance_fleet, days=days, reports_per_day=reports_per_day, seed=seed
    ):
        by_customer[customer_id].append(report)
    keys = _provision(server, ca_cert, admin_token, customer_ids, days=days)
    try:
        stored, duplicates = send_fleet(
            server,
            verify_for(server, ca_cert),
            keys=keys,
            reports=by_customer,
            batch_size=batch_size,
            concurrency=concurrency,
        )
    except (SendFailed, KeyRefused, Rejected) as exc:
        click.echo(f"error: sending failed: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"simulated {instances} instances of {customers} customers over {days} days: "
        f"{stored} reports stored, {duplicates} duplicates"
    )


def send_fleet(
    server: str,
    verify: ssl.SSLContext | bool,
    *,
    keys: Mapping[str, str],
    reports: Mapping[str, list[dict[str, Any]]],
    batch_size: int = 500,
    concurrency: int = 4,
    label: str = "sending reports",
) -> tuple[int, int]:
    """Send each customer's reports with its licence key, in batches, with a progress bar.

    Answers (stored, duplicates); raises what ``PhoneHomeClient.send`` raises.
    """
    jobs = [
        (customer_id, batch[start : start + batch_size])
        for customer_id, batch in reports.items()
        for start in range(0, len(batch), batch_size)
    ]
    total = sum(len(batch) for _, batch in jobs)
    clients = {
        customer_id: PhoneHomeClient(server, license_key=key, verify=verify)
        for customer_id, key in keys.items()
    }
    stored = duplicates = 0
    try:
        with (
            ThreadPoolExecutor(max_workers=concurrency) as pool,
            click.progressbar(length=total, label=label, file=sys.stderr) as bar,
        ):
            futures = {
                pool.submit(clients[customer_id].send, batch): len(batch)
                for customer_id, batch in jobs
            }
            for future in as_completed(futures):
                result = future.result()
                stored += result.stored
                duplicates += result.duplicates
                bar.update(futures[future])
    finally:
        for client in clients.values():
            client.close()
    return stored, duplicates


def _provision(
    server: str, ca_cert: Path | None, admin_token: str, customer_ids: list[str], *, days: int
) -> dict[str, str]:
    keys: dict[str, str] = {}
    today = datetime.now(UTC).date()
    with admin_http(server, ca_cert, admin_token) as http:
        for index, customer_id in enumerate(customer_ids):
            document = {
                "name": f"Simulated customer {index}",
                "account_manager": f"am{index % 3}@vendor.example",
                "orders": [
                    {
                        "order_id": f"OF-{customer_id}",
                        "start": (today - timedelta(days=days + 30)).isoformat(),
                        "end": (today + timedelta(days=335)).isoformat(),
                        "entitlements": {
                            "user_packs": 20,
                            "users_per_pack": 10,
                            "production_instances": 5,
                            "non_production_instances": 5,
                            "tenants": 10,
                            "worker_groups": 10,
                        },
                    }
                ],
            }
            check(http.put(f"/v1/customers/{customer_id}", json=document))
            keys[customer_id] = check(http.post(f"/v1/customers/{customer_id}/license-keys"))[
                "license_key"
            ]
    return keys
