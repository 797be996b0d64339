"""``statreport demo``: the whole pipeline on a fresh data directory, in one command."""

from __future__ import annotations

import secrets
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import httpx
import uvicorn

from ingest.client import PhoneHomeClient, verify_context
from ingest.settings import Settings
from statreport.analytics_cli import format_findings
from statreport.server import create_app, uvicorn_config

DAYS = 90


@dataclass(frozen=True)
class DemoCustomer:
    """A sample customer: its order forms and how its fleet behaves day by day."""

    customer_id: str
    name: str
    manager: str
    orders: list[dict[str, Any]]
    instances: int
    users: Callable[[int], int | None]  # day index (0 = 90 days ago) -> users per instance
    air_gapped: bool = False


def _order(start: date, end: date, packs: int, **extra: Any) -> dict[str, Any]:
    addons = extra.pop("addons", [])
    return {
        "order_id": f"OF-{start.year}-{secrets.randbelow(900) + 100}",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "entitlements": {
            "user_packs": packs,
            "users_per_pack": 10,
            "production_instances": 2,
            "non_production_instances": 2,
            "tenants": 5,
            **extra,
        },
        "addons": addons,
    }


def sample_customers(today: date) -> list[DemoCustomer]:
    """Seven accounts, one of each situation an account manager meets."""
    first = today - timedelta(days=DAYS)
    year_start, year_end = first - timedelta(days=200), today + timedelta(days=200)
    addon_day = today - timedelta(days=5)
    return [
        DemoCustomer(
            "acme",
            "ACME Corp",
            "alice@vendor.example",
            [_order(year_start, year_end, 5)],
            2,
            lambda d: 29 if d >= DAYS - 8 else 21,  # 58 users of 50 for 8 days
        ),
        DemoCustomer(
            "hooli",
            "Hooli",
            "bob@vendor.example",
            [_order(year_start, year_end, 5)],
            2,
            lambda d: 27 if d >= DAYS - 45 else 22,  # 54 of 50 for 45 days: overdue
        ),
        DemoCustomer(
            "initech",
            "Initech",
            "alice@vendor.example",
            [
                _order(
                    year_start,
                    year_end,
                    4,
                    addons=[
                        {
                            "addon_id": "AO-1",
                            "effective": addon_day.isoformat(),
                            "entitlements": {"user_packs": 2},
                        }
                    ],
                )
            ],
            2,
            lambda d: 24 if d >= DAYS - 15 else 18,  # 48 of 40, then the add-on covers it
        ),
        DemoCustomer(
            "globex",
            "Globex",
            "bob@vendor.example",
            [_order(year_start, year_end, 10, tenants=10)],  # 3 instances x 2 tenants
            3,
            lambda d: 20 if d < DAYS - 12 else None,  # silent for 12 days
        ),
        DemoCustomer(
            "airco",
            "AirCo Systems",
            "carol@vendor.example",
            [_order(year_start, year_end, 8)],
            0,
            lambda d: None,
            air_gapped=True,
        ),
        DemoCustomer(
            "umbrella",
            "Umbrella",
            "carol@vendor.example",
            [_order(year_start, today - timedelta(days=20), 5)],
            1,
            lambda d: 30,  # its order ended 20 days ago
        ),
        DemoCustomer(
            "wayne",
            "Wayne Enterprises",
            "carol@vendor.example",
            [_order(year_start, year_end, 10)],
            2,
            lambda d: 35,
        ),
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _prepare(data_dir: Path) -> None:
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / "statreport.duckdb").exists():
            raise click.UsageError(
                f"{data_dir} exists and is not a statreport data directory; pass another --data-dir"
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)


def _reports(customer: DemoCustomer, today: date) -> list[dict[str, Any]]:
    reports = []
    for instance in range(customer.instances):
        instance_id = str(uuid.uuid4())
        environment = "production" if instance < 2 else "non_production"
        for day_index in range(DAYS):
            users = customer.users(day_index)
            if users is None:
                continue
            day = today - timedelta(days=DAYS - day_index)
            reports.append(
                {
                    "schema_version": 1,
                    "report_id": str(uuid.uuid4()),
                    "instance_id": instance_id,
                    "environment": environment,
                    "generated_at": f"{day.isoformat()}T06:00:00Z",
                    "product_version": "1.1.3",
                    "sequence": day_index,
                    "metrics": {"users": users, "tenants": 2, "namespaces": 40, "worker_groups": 2},
                }
            )
    return reports


def run_demo(data_dir: Path, *, serve: bool, port: int | None) -> None:
    """Set up, simulate, evaluate, email, print; then exit, or keep serving."""
    _prepare(data_dir)
    token = secrets.token_urlsafe(24)
    settings = Settings(
        data_dir=data_dir,
        port=port or _free_port(),
        admin_token=token,
        scheduler_enabled=False,
        log_level="warning",
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(settings, app))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise click.ClickException("the demo server did not start; see the log above")
        time.sleep(0.05)
    url = f"https://127.0.0.1:{settings.port}"
    verify = verify_context(settings.cert_path)
    today = datetime.now(UTC).date()
    customers = sample_customers(today)
    click.echo(f"statreport demo: server on {url}, data in {data_dir}", err=True)
    with httpx.Client(
        base_url=url, verify=verify, headers={"Authorization": f"Bearer {token}"}, timeout=120
    ) as admin:
        keys = {}
        for sample in customers:
            document = {
                "name": sample.name,
                "account_manager": sample.manager,
                "air_gapped": sample.air_gapped,
                "orders": sample.orders,
            }
            admin.put(f"/v1/customers/{sample.customer_id}", json=document).raise_for_status()
            created = admin.post(f"/v1/customers/{sample.customer_id}/license-keys")
            keys[sample.customer_id] = created.raise_for_status().json()["license_key"]
        batches = [
            (sample.customer_id, chunk)
            for sample in customers
            for reports in [_reports(sample, today)]
            for chunk in (reports[i : i + 500] for i in range(0, len(reports), 500))
        ]
        total = sum(len(chunk) for _, chunk in batches)
        with click.progressbar(
            length=total, label=f"phoning home {DAYS} days of reports", file=sys.stderr
        ) as bar:
            for customer_id, chunk in batches:
                with PhoneHomeClient(url, license_key=keys[customer_id], verify=verify) as client:
                    client.send(chunk)
                bar.update(len(chunk))
        as_of = today - timedelta(days=1)
        evaluation = admin.post("/v1/evaluations", json={"as_of": as_of.isoformat()})
        findings = evaluation.raise_for_status().json()["findings"]
        weekly = admin.post("/v1/weekly-reports", json={"as_of": as_of.isoformat(), "force": True})
        deliveries = weekly.raise_for_status().json()["deliveries"]
    click.echo(f"\nFindings as of {as_of} ({len(findings)}):")
    for line in format_findings(findings, as_of=as_of):
        click.echo("  " + line)
    click.echo("\nWeekly emails (one per account manager):")
    for delivery in deliveries:
        click.echo(f"  {delivery['recipient']:<24} {delivery['subject']}\n    {delivery['detail']}")
    if serve:
        click.echo(f"\nServing {url} (certificate {settings.cert_path}); admin token: {token}")
        click.echo("Press Ctrl+C to stop.")
        try:
            while thread.is_alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    server.should_exit = True
    thread.join(timeout=30)
