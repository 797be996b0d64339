"""``statreport demo``: the whole pipeline on a fresh data directory, in one command.

Over 400 lines because most of it is the sample data: twelve accounts, each in a situation
an account manager meets, with the arithmetic that puts it there."""

from __future__ import annotations

import random
import secrets
import shutil
import signal
import ssl
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import httpx
import uvicorn

from core.quarters import previous_quarter, quarter_bounds, quarter_of
from core.settings import Settings
from ingest.attestation import build_bundle
from phonehome.client import KeyRefused, Rejected, SendFailed, verify_context
from phonehome.simulate import SimulatedInstance, fleet_reports, seeded_uuid
from statreport.analytics_cli import format_findings
from statreport.attest_cli import DEFAULT_STATEMENT
from statreport.client_cli import send_fleet
from statreport.server import ServerDidNotStart, free_port, start_in_thread

DAYS = 90


#: The finding an account manager should see for a customer: (kind, status); status is
#: ``None`` for findings without one. A customer with none is compliant.
Situation = tuple[str, str | None]


@dataclass(frozen=True)
class DemoCustomer:
    """A sample customer: its order forms, its fleet, and the situation it is designed to be in."""

    customer_id: str
    name: str
    manager: str
    orders: list[dict[str, Any]]
    environments: tuple[str, ...]  # one per instance
    #: (instance number, days ago) -> that instance's peak of users that day; None: silent.
    peak_users: Callable[[int, int], int | None]
    situation: Situation | None
    metric: str | None = None  # the over-used metric, for an over-use situation
    air_gapped: bool = False
    air_gapped_since: date | None = None
    #: The instance a second installation also phones home as, for the last CLONE_DAYS days.
    cloned: int | None = None
    #: The instance the customer decommissioned RETIRED_DAYS ago, and staff then retired.
    retired: int | None = None


CLONE_DAYS, RETIRED_DAYS = 5, 20


PRODUCTION, NON_PRODUCTION = "production", "non_production"


def _order(
    order_id: str,
    start: date,
    end: date,
    *,
    packs: int,
    per_pack: int = 10,
    production: int = 2,
    non_production: int = 2,
    tenants: int = 5,
    worker_groups: int = 4,
    addons: list[dict[str, Any]] | None = None,
    counting: dict[str, str] | None = None,
) -> dict[str, Any]:
    order: dict[str, Any] = {
        "order_id": order_id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "entitlements": {
            "user_packs": packs,
            "users_per_pack": per_pack,
            "production_instances": production,
            "non_production_instances": non_production,
            "tenants": tenants,
            "worker_groups": worker_groups,
        },
        "addons": addons or [],
    }
    if counting is not None:
        order["counting"] = counting
    return order


def sample_customers(today: date) -> list[DemoCustomer]:
    """Twelve accounts, each in one situation an account manager meets, as of yesterday.

    Long on purpose: a table of twelve rows, each with its situation's arithmetic beside it,
    reads best as one list."""
    term_start, term_end = today - timedelta(days=290), today + timedelta(days=75)
    year = term_start.year
    return [
        DemoCustomer(
            "acme",
            "ACME Corp",
            "alice@vendor.example",
            [_order(f"OF-{year}-014", term_start, term_end, packs=5)],
            (PRODUCTION, PRODUCTION, NON_PRODUCTION),
            # 26 + 26 + 6 = 58 users of 50 for the last 8 days: material, 22 days left.
            lambda n, ago: (26 if ago <= 8 else 18) if n < 2 else 6,
            ("overuse", "in_window"),
            "users",
        ),
        DemoCustomer(
            "stark",
            "Stark Industries",
            "alice@vendor.example",
            [_order(f"OF-{year}-031", term_start, term_end, packs=4, per_pack=25, tenants=8)],
            (PRODUCTION, PRODUCTION, PRODUCTION, NON_PRODUCTION),
            # A third production instance on an order for two, installed 3 days ago.
            lambda n, ago: None if n == 2 and ago > 3 else 24,
            ("overuse", "in_window"),
            "production_instances",
        ),
        DemoCustomer(
            "initech",
            "Initech",
            "alice@vendor.example",
            [
                _order(
                    f"OF-{year}-022",
                    term_start,
                    term_end,
                    packs=4,
                    addons=[
                        {
                            "addon_id": "AO-22-1",
                            "effective": (today - timedelta(days=5)).isoformat(),
                            "entitlements": {"user_packs": 2},
                        }
                    ],
                )
            ],
            (PRODUCTION, PRODUCTION),
            # 48 users of 40 from 15 days ago, until an add-on of 2 packs 5 days ago.
            lambda n, ago: 24 if ago <= 15 else 18,
            ("overuse", "regularized"),
            "users",
        ),
        DemoCustomer(
            "hooli",
            "Hooli",
            "bob@vendor.example",
            [_order(f"OF-{year}-009", term_start, term_end, packs=5)],
            (PRODUCTION, PRODUCTION),
            # 54 users of 50 for 45 days: past its 30 days, though not material.
            lambda n, ago: 27 if ago <= 45 else 22,
            ("overuse", "overdue"),
            "users",
        ),
        DemoCustomer(
            "globex",
            "Globex",
            "bob@vendor.example",
            [_order(f"OF-{year}-040", term_start, term_end, packs=10, tenants=10)],
            (PRODUCTION, PRODUCTION, NON_PRODUCTION),
            lambda n, ago: 20 if ago > 12 else None,  # silent for the last 12 days
            ("telemetry_missing", None),
        ),
        DemoCustomer(
            "airco",
            "AirCo Systems",
            "carol@vendor.example",
            [_order(f"OF-{year}-052", term_start, term_end, packs=8)],
            (),  # air-gapped: it attests quarterly, and has not attested last quarter
            lambda n, ago: None,
            ("attestation_overdue", None),
            air_gapped=True,
            # Air-gapped since the quarter before the one it attested: two quarters missed.
            air_gapped_since=quarter_bounds(previous_quarter(_attested_quarter(today)))[0],
        ),
        DemoCustomer(
            "umbrella",
            "Umbrella",
            "carol@vendor.example",
            [_order(f"OF-{year}-003", term_start, today - timedelta(days=20), packs=5)],
            (PRODUCTION,),
            lambda n, ago: 30,  # its order ended 20 days ago and was not renewed
            ("no_active_subscription", None),
        ),
        DemoCustomer(
            "wayne",
            "Wayne Enterprises",
            "carol@vendor.example",
            [
                # Renewed back to back 60 days ago, with more users.
                _order(f"OF-{year}-011", term_start, today - timedelta(days=61), packs=8),
                _order(
                    f"OF-{year}-077",
                    today - timedelta(days=60),
                    term_end + timedelta(days=290),
                    packs=10,
                ),
            ],
            (PRODUCTION, PRODUCTION, NON_PRODUCTION),
            lambda n, ago: 5 if n == 2 else (35 if ago <= 60 else 30),
            None,
        ),
        DemoCustomer(
            "soylent",
            "Soylent",
            "bob@vendor.example",
            [
                _order(
                    f"OF-{year}-063",
                    term_start,
                    term_end,
                    packs=4,
                    counting={"users": "production"},
                )
            ],
            (PRODUCTION, PRODUCTION, NON_PRODUCTION),
            # 2 x 19 = 38 production users of 40: compliant under its "production" counting
            # rule, where summing the test instance's 15 too would make 53.
            lambda n, ago: 19 if n < 2 else 15,
            None,
        ),
        DemoCustomer(
            "cyberdyne",
            "Cyberdyne Systems",
            "alice@vendor.example",
            [_order(f"OF-{year}-058", term_start, term_end, packs=8)],
            (PRODUCTION, PRODUCTION, NON_PRODUCTION),
            # The second production instance stopped phoning home 10 days ago; the others go on.
            lambda n, ago: None if n == 1 and ago < 10 else 20,
            ("instance_silent", None),
        ),
        DemoCustomer(
            "tyrell",
            "Tyrell Corporation",
            "carol@vendor.example",
            [_order(f"OF-{year}-070", term_start, term_end, packs=6)],
            (PRODUCTION, NON_PRODUCTION),
            # A copy of the production instance, made 5 days ago, reports under its id.
            lambda n, ago: 25 if n == 0 else 8,
            ("instance_cloned", None),
            cloned=0,
        ),
        DemoCustomer(
            "massive",
            "Massive Dynamic",
            "bob@vendor.example",
            [_order(f"OF-{year}-066", term_start, term_end, packs=6)],
            (PRODUCTION, PRODUCTION, NON_PRODUCTION),
            # Its test instance was decommissioned 20 days ago and retired: nothing to chase.
            lambda n, ago: None if n == 2 and ago < RETIRED_DAYS else 18,
            None,
            retired=2,
        ),
    ]


#: Left in a directory the demo made, so that it starts over only there (SPEC §8 v2).
DEMO_MARKER = ".statreport-demo"


def _prepare(data_dir: Path) -> None:
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / DEMO_MARKER).is_file():
            raise click.UsageError(
                f"{data_dir} exists and was not made by 'statreport demo' (it holds no "
                f"{DEMO_MARKER} file), so nothing in it was touched. Pass another --data-dir; "
                "a real data directory is never wiped by the demo."
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / DEMO_MARKER).write_text(
        "Made by 'statreport demo', which deletes and remakes this directory when run again.\n"
    )


def demo_instances(
    customers: list[DemoCustomer], *, seed: int = 0
) -> dict[tuple[str, int], SimulatedInstance]:
    """Every sample customer's instances, by (customer_id, number in its ``environments``)."""
    rng = random.Random(seed)
    return {
        (customer.customer_id, number): SimulatedInstance(
            customer.customer_id, seeded_uuid(rng), environment, 0
        )
        for customer in customers
        for number, environment in enumerate(customer.environments)
    }


def demo_reports(
    customers: list[DemoCustomer], *, today: date, seed: int = 0
) -> dict[str, list[dict[str, Any]]]:
    """Every sample customer's reports: its instances phone home hourly over the last 90 days,
    and a clone, counting its own sequence from 1, over the last CLONE_DAYS days."""
    instances = demo_instances(customers, seed=seed)
    samples = {customer.customer_id: customer for customer in customers}
    number = {instance.instance_id: n for (_, n), instance in instances.items()}

    def peak(instance: SimulatedInstance, days_ago: int) -> int | None:
        sample = samples[instance.customer_id]
        return sample.peak_users(number[instance.instance_id], days_ago)

    fleets = [(list(instances.values()), DAYS, seed)]
    fleets += [
        ([instances[c.customer_id, c.cloned]], CLONE_DAYS, seed + 1)
        for c in customers
        if c.cloned is not None
    ]
    by_customer: dict[str, list[dict[str, Any]]] = {c.customer_id: [] for c in customers}
    for fleet, days, fleet_seed in fleets:
        for customer_id, report in fleet_reports(
            fleet, days=days, reports_per_day=24, end=today, seed=fleet_seed, peak_users=peak
        ):
            by_customer[customer_id].append(report)
    return by_customer


def _attested_quarter(today: date) -> str:
    """The latest due quarter is the one before the quarter of 30 days ago; the sample attests
    the one before that."""
    return previous_quarter(previous_quarter(quarter_of(today - timedelta(days=31))))


def _attest_earlier_quarter(
    admin: httpx.Client, customer: DemoCustomer, license_key: str, today: date
) -> tuple[str, int]:
    """Upload a signed attestation for the quarter before the one now overdue.

    Answers the quarter and how many of its reports were stored.
    """
    quarter = _attested_quarter(today)
    first, last = quarter_bounds(quarter)
    instance = SimulatedInstance(customer.customer_id, str(uuid.uuid4()), PRODUCTION, 30)
    days = (last - first).days + 1
    reports = [r for _, r in fleet_reports([instance], days=days, reports_per_day=4, end=last)]
    certification = {
        "officer_name": "Dana Scully",
        "officer_title": "Chief Information Security Officer",
        "certified_on": (last + timedelta(days=12)).isoformat(),
        "statement": DEFAULT_STATEMENT,
    }
    bundle = build_bundle(
        quarter=quarter, reports=reports, certification=certification, license_key=license_key
    )
    answer = admin.post(
        "/v1/attestations", json=bundle, headers={"Authorization": f"Bearer {license_key}"}
    )
    answer.raise_for_status()
    return quarter, answer.json()["stored"]


def _start(settings: Settings) -> tuple[uvicorn.Server, threading.Thread]:
    try:
        return start_in_thread(settings)
    except ServerDidNotStart as exc:
        raise click.ClickException(f"the demo server did not start: {exc}") from exc


def _create_customers(admin: httpx.Client, customers: list[DemoCustomer]) -> dict[str, str]:
    """Create each sample customer with its order forms; answer its licence key."""
    keys = {}
    for sample in customers:
        document = {
            "name": sample.name,
            "account_manager": sample.manager,
            "air_gapped": sample.air_gapped,
            "orders": sample.orders,
        }
        if sample.air_gapped_since is not None:
            document["air_gapped_since"] = sample.air_gapped_since.isoformat()
        admin.put(f"/v1/customers/{sample.customer_id}", json=document).raise_for_status()
        created = admin.post(f"/v1/customers/{sample.customer_id}/license-keys")
        keys[sample.customer_id] = created.raise_for_status().json()["license_key"]
    return keys


def _retire_decommissioned(admin: httpx.Client, customers: list[DemoCustomer], today: date) -> None:
    """Record the retirement of each sample's decommissioned instance, on its last report's day."""
    instances = demo_instances(customers)
    for sample in customers:
        if sample.retired is not None:
            instance = instances[sample.customer_id, sample.retired]
            retired_on = today - timedelta(days=RETIRED_DAYS)
            admin.post(
                f"/v1/instances/{instance.instance_id}/retire",
                json={"retired_on": retired_on.isoformat()},
            ).raise_for_status()
            click.echo(
                f"{sample.customer_id} decommissioned its {instance.environment} instance "
                f"{instance.instance_id}, retired as of {retired_on}",
                err=True,
            )


def _pipeline(url: str, verify: ssl.SSLContext, token: str, today: date) -> tuple[Any, Any]:
    """Customers, phone-home, attestation, evaluation, weekly emails: (findings, deliveries)."""
    customers = sample_customers(today)
    as_of = today - timedelta(days=1)
    with httpx.Client(
        base_url=url, verify=verify, headers={"Authorization": f"Bearer {token}"}, timeout=120
    ) as admin:
        keys = _create_customers(admin, customers)
        click.echo(f"created {len(customers)} customers, their order forms and keys", err=True)
        reports = demo_reports(customers, today=today)
        instances = sum(len(sample.environments) for sample in customers)
        stored, duplicates = send_fleet(
            url,
            verify,
            keys=keys,
            reports=reports,
            label=f"{instances} instances phoning home hourly for {DAYS} days",
        )
        click.echo(f"{stored:,} reports stored, {duplicates:,} duplicates", err=True)
        _retire_decommissioned(admin, customers, today)
        for sample in customers:
            if sample.air_gapped:
                key = keys[sample.customer_id]
                quarter, attested = _attest_earlier_quarter(admin, sample, key, today)
                click.echo(
                    f"{sample.customer_id} (air-gapped) uploaded its signed {quarter} "
                    f"attestation ({attested} reports stored), and none since",
                    err=True,
                )
        evaluation = admin.post("/v1/evaluations", json={"as_of": as_of.isoformat()})
        findings = evaluation.raise_for_status().json()["findings"]
        weekly = admin.post("/v1/weekly-reports", json={"as_of": as_of.isoformat(), "force": True})
        deliveries = weekly.raise_for_status().json()["deliveries"]
        click.echo(f"evaluated as of {as_of}; wrote the weekly emails", err=True)
    return findings, deliveries


def _command() -> str:
    """How the user can run statreport again: by name when it is on PATH, else by path."""
    invoked = Path(sys.argv[0])
    if shutil.which("statreport") or invoked.name != "statreport":
        return "statreport"
    return str(invoked)


def _console_tokens(url: str, verify: Any, root_token: str) -> tuple[str, str, str]:
    """A viewer's and an admin's named token, for trying the console as each, and a link to
    acme's own view, for trying it as acme's administrator would."""
    made = []
    with httpx.Client(
        base_url=url, verify=verify, headers={"Authorization": f"Bearer {root_token}"}
    ) as http:
        for name, role in (("demo-viewer", "viewer"), ("demo-admin", "admin")):
            response = http.post("/v1/tokens", json={"name": name, "role": role})
            response.raise_for_status()
            made.append(response.json()["token"])
        link = http.post("/v1/customers/acme/links", json={"note": "the demo"})
        link.raise_for_status()
    return made[0], made[1], link.json()["url"]


def _stop_on_signals() -> threading.Event:
    """An event set by Ctrl+C or SIGTERM. A shell starts a background job with SIGINT
    ignored, and Python then leaves it ignored: both signals are taken here explicitly, so
    ``kill -INT`` stops a demo started without a terminal too. Installed before the demo says
    it can be stopped, so that a signal sent on reading that is never lost."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def run_demo(data_dir: Path, *, serve: bool, port: int | None) -> None:
    """Set up, simulate, evaluate, email, print; then exit, or keep serving."""
    _prepare(data_dir)
    token = secrets.token_urlsafe(24)
    port = port or free_port()
    settings = Settings(
        data_dir=data_dir,
        port=port,
        admin_token=token,
        scheduler_enabled=False,
        log_level="warning",
        # A server that stays up: its emails link each finding to its evidence in the console.
        public_url=f"https://127.0.0.1:{port}" if serve else None,
    )
    server, thread = _start(settings)
    url = f"https://127.0.0.1:{settings.port}"
    today = datetime.now(UTC).date()
    click.echo(f"statreport demo: server on {url}, data in {data_dir}", err=True)
    try:
        try:
            findings, deliveries = _pipeline(url, verify_context(settings.cert_path), token, today)
        except httpx.HTTPStatusError as exc:
            raise click.ClickException(
                f"the demo server answered {exc.response.status_code} to "
                f"{exc.request.method} {exc.request.url.path}: {exc.response.text}"
            ) from exc
        except (SendFailed, KeyRefused, Rejected, httpx.TransportError) as exc:
            raise click.ClickException(f"talking to the demo server failed: {exc}") from exc
        as_of = today - timedelta(days=1)
        click.echo(f"\nFindings as of {as_of} ({len(findings)}):")
        for line in format_findings(findings):
            click.echo("  " + line)
        click.echo("\nWeekly emails (one per account manager; open them with a mail client):")
        for delivery in deliveries:
            click.echo(f"  {delivery['recipient']:<24} {delivery['subject']}")
            click.echo(f"    {delivery['detail']}")
        if not serve:
            click.echo(f"\nTo explore the API too: {_command()} demo --serve")
            return
        viewer, admin, view = _console_tokens(url, verify_context(settings.cert_path), token)
        click.echo(f"\nThe console: {url}/ui/ (the certificate is the demo's own, self-signed)")
        click.echo(f"  sign in as a viewer (reads everything): {viewer}")
        click.echo(f"  or as an admin (also changes things):  {admin}")
        click.echo(f"acme's own read-only view, as its administrator opens it: {view}")
        click.echo(f"The API's pages are at {url}/docs; from a shell:")
        click.echo(f"  export STATREPORT_TOKEN={admin}")
        click.echo(f"  {_command()} evaluate --server {url} --ca-cert {settings.cert_path}")
        stop = _stop_on_signals()
        click.echo("Press Ctrl+C to stop.")
        while thread.is_alive() and not stop.wait(0.5):
            pass
    finally:
        server.should_exit = True
        thread.join(timeout=30)
