"""``statreport evaluate``: run a compliance evaluation on a running server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
from pydantic import TypeAdapter

from analytics.schemas import Finding
from scheduler.messages import describe
from statreport.http_cli import admin_http, admin_options, check, exit_on_http_errors


@click.command("evaluate")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Evaluate as of this day (default: yesterday, UTC).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings document as JSON.")
@admin_options
@exit_on_http_errors
def evaluate(
    as_of: Any, as_json: bool, server: str, ca_cert: Path | None, admin_token: str
) -> None:
    """Evaluate compliance on the server, keep the findings, and print them.

    Exit code 0 whatever was found: findings are data, not errors.
    """
    body = {"as_of": as_of.date().isoformat()} if as_of else {}
    with admin_http(server, ca_cert, admin_token) as http:
        result = check(http.post("/v1/evaluations", json=body))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"Findings as of {result['as_of']}: {len(result['findings'])}")
    for line in format_findings(result["findings"]):
        click.echo(line)


def format_findings(findings: list[dict[str, Any]]) -> list[str]:
    """One aligned line per finding, in the order given: its customer, the section of the
    weekly email it belongs to, and the same cells the email and the console show."""
    lines = [f"{'customer':<20} {'finding':<26} detail"]
    for finding in _FINDINGS.validate_python(findings):
        title, detail = describe(finding)
        lines.append(f"{finding.customer_id:<20} {title:<26} {detail}")
    return lines


_FINDINGS: TypeAdapter[list[Finding]] = TypeAdapter(list[Finding])


@click.command("statement")
@click.argument("customer_id")
@click.option("--from", "from_", required=True, type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--to", required=True, type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--format", "format_", type=click.Choice(["html", "csv"]), default="html")
@click.option(
    "--known-at",
    metavar="INSTANT",
    help="Show the figures as known at this instant (such as 2026-12-06T12:00:00Z; default "
    "now). The same --from, --to and --known-at give the same bytes every time.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The file to write.",
)
@admin_options
@exit_on_http_errors
def statement(
    customer_id: str,
    from_: Any,
    to: Any,
    format_: str,
    known_at: str | None,
    output: Path,
    server: str,
    ca_cert: Path | None,
    admin_token: str,
) -> None:
    """Write CUSTOMER_ID's statement of usage against entitlement, from --from to --to
    (both included, at most 400 days), to forward to the customer."""
    params = {"from": from_.date().isoformat(), "to": to.date().isoformat(), "format": format_}
    if known_at is not None:
        params["known_at"] = known_at
    with admin_http(server, ca_cert, admin_token) as http:
        response = http.get(f"/v1/customers/{customer_id}/statement", params=params)
    if not response.is_success:
        check(response)  # prints the problem's detail and exits 1
    output.write_bytes(response.content)
    again = response.headers.get("Content-Location", "")
    known = parse_qs(urlsplit(again).query).get("known_at", ["now"])[0]
    click.echo(
        f"wrote {output}: {customer_id}'s statement, {params['from']} to {params['to']}, "
        f"as known at {known}; the same again: {again}"
    )
