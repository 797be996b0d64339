"""``statreport evaluate``: run a compliance evaluation on a running server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click

from analytics.schemas import overage_share, time_left
from core.wording import counted
from statreport.http_cli import admin_http, admin_options, check, exit_on_http_errors

_STATUS_LABEL = {"overdue": "OVERDUE", "in_window": "in window", "regularized": "regularized"}


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
    """One aligned line per finding, in the order given."""
    lines = [f"{'customer':<20} {'finding':<24} {'metric':<24} {'detail'}"]
    for finding in findings:
        kind = finding["kind"]
        if kind == "overuse":
            share = overage_share(finding["overage_pct"])
            days = finding["days_left"]
            left = time_left(days) + ("" if days < 0 else " left")
            detail = (
                f"{finding['peak_usage']} used / {finding['entitled']} entitled ({share}"
                f"{', material' if finding['material'] else ''}); since {finding['started_on']}, "
            )
            if finding["status"] == "regularized":
                detail += f"ended {finding['ended_on']} ({finding['resolution']})"
            else:
                detail += f"deadline {finding['deadline']} ({left})"
            label = "over-use " + _STATUS_LABEL[finding["status"]]
            metric = finding["metric"]
        elif kind == "telemetry_missing":
            label, metric = "telemetry missing", "-"
            detail = f"last report {finding['last_report_on'] or 'never'}"
        elif kind == "instance_cloned":
            label, metric = "instance cloned", "-"
            detail = (
                f"{finding['instance_id']}: {finding['regressions']} sequence regressions "
                f"since {finding['first_regression_at']}"
            )
        elif kind == "instance_silent":
            label, metric = "instance silent", "-"
            detail = (
                f"{finding['instance_id']} ({finding['environment']}): last report "
                f"{finding['last_report_on']}"
            )
        elif kind == "attestation_overdue":
            label, metric = "attestation overdue", "-"
            detail = f"{finding['quarter']} was due {finding['due_on']}"
        else:
            label, metric = "no active subscription", "-"
            detail = (
                f"{counted(finding['instances'], 'instance')} reporting; last order ended "
                f"{finding['last_order_end'] or 'never'}"
            )
        lines.append(f"{finding['customer_id']:<20} {label:<24} {metric:<24} {detail}")
    return lines


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
