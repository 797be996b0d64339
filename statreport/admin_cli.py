"""Admin commands: customers and licence keys, through a running server's API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from core.wording import counted
from customers.schemas import READ_ONLY_FIELDS
from statreport.http_cli import admin_http, admin_options, check, exit_on_http_errors


@click.group("customers")
def customers_group() -> None:
    """Customers and their order forms."""


@customers_group.command("apply")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@admin_options
@exit_on_http_errors
def customers_apply(file: Path, server: str, ca_cert: Path | None, admin_token: str) -> None:
    """Create or replace customers from FILE.

    FILE is JSON: an object {"<customer_id>": <customer document>, ...}, each document as in
    PUT /v1/customers/{id}.
    """
    try:
        documents = json.loads(file.read_text())
    except ValueError as exc:
        raise click.UsageError(f"{file} is not valid JSON: {exc}") from exc
    if not isinstance(documents, dict) or not documents:
        raise click.UsageError(f"{file} must be a JSON object of customer_id to document")
    with admin_http(server, ca_cert, admin_token) as http:
        for customer_id, document in documents.items():
            stored = check(http.put(f"/v1/customers/{customer_id}", json=document))
            click.echo(
                f"applied {customer_id}: {counted(len(stored['orders']), 'order form')}, "
                f"account manager {stored['account_manager']}"
            )


@customers_group.command("list")
@admin_options
@exit_on_http_errors
def customers_list(server: str, ca_cert: Path | None, admin_token: str) -> None:
    """List customers."""
    with admin_http(server, ca_cert, admin_token) as http:
        customers = check(http.get("/v1/customers"))
    for customer in customers:
        click.echo(
            f"{customer['customer_id']:<24} {customer['name']:<30} "
            f"{customer['account_manager']:<30} orders={len(customer['orders'])}"
        )


@customers_group.command("show")
@click.argument("customer_id")
@admin_options
@exit_on_http_errors
def customers_show(customer_id: str, server: str, ca_cert: Path | None, admin_token: str) -> None:
    """Print CUSTOMER_ID's document as JSON, ready to edit and apply again.

    The read-only fields (timestamps, licence keys) are left out:
    statreport customers show acme > acme.json, edit it, then
    statreport customers apply with {"acme": <the edited document>}.
    """
    with admin_http(server, ca_cert, admin_token) as http:
        customer = check(http.get(f"/v1/customers/{customer_id}"))
    document = {k: v for k, v in customer.items() if k not in READ_ONLY_FIELDS}
    click.echo(json.dumps(document, indent=2))


@click.group("keys")
def keys_group() -> None:
    """Licence keys."""


@keys_group.command("create")
@click.argument("customer_id")
@admin_options
@exit_on_http_errors
def keys_create(customer_id: str, server: str, ca_cert: Path | None, admin_token: str) -> None:
    """Issue a licence key for CUSTOMER_ID. The key is printed once, on stdout."""
    with admin_http(server, ca_cert, admin_token) as http:
        created = check(http.post(f"/v1/customers/{customer_id}/license-keys"))
    click.echo(
        f"created key {created['key_id']} for {customer_id}; it is shown only now:", err=True
    )
    click.echo(created["license_key"])


@keys_group.command("revoke")
@click.argument("key_id")
@admin_options
@exit_on_http_errors
def keys_revoke(key_id: str, server: str, ca_cert: Path | None, admin_token: str) -> None:
    """Revoke licence key KEY_ID; its reports are refused from now on.

    Exit 0 revoked now; 1 an error, or the key was revoked already (nothing changed).
    """
    with admin_http(server, ca_cert, admin_token) as http:
        history = check(
            http.get("/v1/audit-log", params={"target": f"license_key:{key_id}", "limit": 1000})
        )
        earlier = [e for e in history if e["action"] == "license_key.revoke"]
        check(http.delete(f"/v1/license-keys/{key_id}"))
    if earlier:
        first = earlier[-1]
        click.echo(
            f"error: {key_id} was already revoked at {first['at']} by {first['actor']}; "
            "nothing changed",
            err=True,
        )
        sys.exit(1)
    click.echo(f"revoked {key_id}")


@click.group("links")
def links_group() -> None:
    """Links to a customer's own read-only view (findings, evidence, statements)."""


@links_group.command("create")
@click.argument("customer_id")
@click.option(
    "--days", type=click.IntRange(1, 90), default=30, show_default=True, help="How long it opens."
)
@click.option("--note", default="", help="For whom, for staff: 'Jane Doe, IT at Acme'.")
@admin_options
@exit_on_http_errors
def links_create(
    customer_id: str, days: int, note: str, server: str, ca_cert: Path | None, admin_token: str
) -> None:
    """Make a link to CUSTOMER_ID's view. The link is printed once, on stdout: send it to the
    customer's administrator."""
    with admin_http(server, ca_cert, admin_token) as http:
        created = check(
            http.post(
                f"/v1/customers/{customer_id}/links",
                json={"expires_in_days": days, "note": note},
            )
        )
    click.echo(
        f"created link {created['link_id']} for {customer_id}, open until "
        f"{created['expires_at']}; it is shown only now:",
        err=True,
    )
    click.echo(created["url"])


@links_group.command("list")
@click.argument("customer_id")
@admin_options
@exit_on_http_errors
def links_list(customer_id: str, server: str, ca_cert: Path | None, admin_token: str) -> None:
    """List CUSTOMER_ID's links with their views; never a link's address."""
    with admin_http(server, ca_cert, admin_token) as http:
        listed = check(http.get(f"/v1/customers/{customer_id}/links"))
    for link in listed:
        state = (
            f"revoked {link['revoked_at']}"
            if link["revoked_at"]
            else f"expires {link['expires_at']}"
        )
        click.echo(
            f"{link['link_id']}  {state}  views={link['views']}  "
            f"last_view={link['last_viewed_at'] or 'never'}  by={link['created_by']}  "
            f"note={link['note']!r}"
        )


@links_group.command("revoke")
@click.argument("customer_id")
@click.argument("link_id")
@admin_options
@exit_on_http_errors
def links_revoke(
    customer_id: str, link_id: str, server: str, ca_cert: Path | None, admin_token: str
) -> None:
    """Revoke LINK_ID of CUSTOMER_ID at once; browsers that opened it see that it ended."""
    with admin_http(server, ca_cert, admin_token) as http:
        check(http.delete(f"/v1/customers/{customer_id}/links/{link_id}"))
    click.echo(f"revoked {link_id}")


@click.group("tokens")
def tokens_group() -> None:
    """Named staff tokens: one per person, 'admin' or 'viewer' (an admin token is needed)."""


@tokens_group.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["viewer", "admin"]),
    default="viewer",
    show_default=True,
    help="'viewer' reads everything but the tokens; 'admin' also changes things.",
)
@admin_options
@exit_on_http_errors
def tokens_create(
    name: str, role: str, server: str, ca_cert: Path | None, admin_token: str
) -> None:
    """Create a token for NAME (lower-case letters, digits, '.', '_', '-'). The token is
    printed once, on stdout; give it to its holder as STATREPORT_TOKEN."""
    with admin_http(server, ca_cert, admin_token) as http:
        created = check(http.post("/v1/tokens", json={"name": name, "role": role}))
    click.echo(f"created {role} token {name}; it is shown only now:", err=True)
    click.echo(created["token"])


@tokens_group.command("list")
@admin_options
@exit_on_http_errors
def tokens_list(server: str, ca_cert: Path | None, admin_token: str) -> None:
    """List named tokens: name, role, created, last used (never the tokens)."""
    with admin_http(server, ca_cert, admin_token) as http:
        tokens = check(http.get("/v1/tokens"))
    click.echo(f"{'NAME':<24} {'ROLE':<7} {'CREATED':<26} LAST USED")
    for token in tokens:
        click.echo(
            f"{token['name']:<24} {token['role']:<7} {token['created_at']:<26} "
            f"{token['last_used_at'] or 'never'}"
        )


@tokens_group.command("revoke")
@click.argument("name")
@admin_options
@exit_on_http_errors
def tokens_revoke(name: str, server: str, ca_cert: Path | None, admin_token: str) -> None:
    """Revoke NAME's token: it is refused from now on, and its console sessions end."""
    with admin_http(server, ca_cert, admin_token) as http:
        check(http.delete(f"/v1/tokens/{name}"))
    click.echo(f"revoked {name}")


@click.command("weekly-report")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Evaluate as of this day (default: the latest UTC day that has fully ended).",
)
@click.option("--dry-run", is_flag=True, help="Render and report, send nothing.")
@click.option("--force", is_flag=True, help="Send even to managers already sent this ISO week.")
@admin_options
@exit_on_http_errors
def weekly_report(
    as_of: Any, dry_run: bool, force: bool, server: str, ca_cert: Path | None, admin_token: str
) -> None:
    """Run the weekly report on the server now and print each delivery.

    Exit codes: 0 nothing failed; 1 a request failed or an email could not be sent (it is
    retried within the hour).
    """
    body: dict[str, Any] = {"dry_run": dry_run, "force": force}
    if as_of:
        body["as_of"] = as_of.date().isoformat()
    with admin_http(server, ca_cert, admin_token) as http:
        run = check(http.post("/v1/weekly-reports", json=body))
    click.echo(f"weekly report {run['iso_week']} (as of {run['as_of']})")
    for delivery in run["deliveries"]:
        detail = f"  ({delivery['detail']})" if delivery["detail"] else ""
        click.echo(
            f"{delivery['status']:<8} {delivery['recipient']:<32} "
            f"findings={delivery['findings']:<4} {delivery['subject']}{detail}"
        )
    if any(d["status"] == "failed" for d in run["deliveries"]):
        sys.exit(1)


@click.command("backup")
@click.argument("name")
@admin_options
@exit_on_http_errors
def backup(name: str, server: str, ca_cert: Path | None, admin_token: str) -> None:
    """Write a consistent copy of the running server's database as NAME.

    NAME is a new file name in the server's backup directory (STATREPORT_BACKUP_DIR, by
    default <data dir>/backups/). To restore, stop the server and put the file in place of
    <data dir>/statreport.duckdb (removing any statreport.duckdb.wal).
    """
    with admin_http(server, ca_cert, admin_token) as http:
        made = check(http.post("/v1/backups", json={"destination": name}))
    click.echo(f"wrote {made['destination']}: {made['bytes']:,} bytes in {made['seconds']} s")
