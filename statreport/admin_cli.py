"""Admin commands: customers and licence keys, through a running server's API."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

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
                f"applied {customer_id}: {len(stored['orders'])} order form(s), "
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
    """Revoke licence key KEY_ID; its reports are refused from now on."""
    with admin_http(server, ca_cert, admin_token) as http:
        check(http.delete(f"/v1/license-keys/{key_id}"))
    click.echo(f"revoked {key_id}")
    sys.stdout.flush()
