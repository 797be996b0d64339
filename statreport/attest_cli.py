"""``statreport attest``: export a signed quarterly bundle, and verify one offline."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx

from core.errors import StatreportError
from core.quarters import quarter_bounds
from core.wording import counted
from ingest.attestation import build_bundle, verify_bundle
from ingest.schemas import usage_day
from phonehome.attestation import reports_of_quarter
from phonehome.client import Spool
from statreport.http_cli import check, exit_on_http_errors, server_options, verify_for

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_STATEMENT = "I certify that these figures are complete and accurate."


def _license_key_option(help_text: str) -> Callable[[F], F]:
    """``--license-key``, from ``STATREPORT_LICENSE_KEY`` so that it stays out of ``ps``."""
    return click.option(
        "--license-key",
        envvar="STATREPORT_LICENSE_KEY",
        required=True,
        show_envvar=True,
        help=help_text,
    )


@click.group("attest")
def attest_group() -> None:
    """Quarterly attestations for air-gapped installations: a signed bundle of a quarter's
    reports, carried to statreport instead of phoning home."""


def _load_reports(spool_dir: Path | None, reports_file: Path | None) -> list[dict[str, Any]]:
    if reports_file is not None:
        reports = []
        for number, line in enumerate(reports_file.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    reports.append(json.loads(line))
                except ValueError as exc:
                    raise click.UsageError(f"{reports_file}:{number} is not JSON: {exc}") from exc
        return reports
    assert spool_dir is not None
    return [report for _, report in Spool(spool_dir).pending()]


@attest_group.command("export")
@click.option("--quarter", required=True, help="The quarter to attest, e.g. 2026Q3.")
@click.option(
    "--spool",
    "spool_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The phone-home client's spool of this installation (its unsent reports).",
)
@click.option(
    "--reports",
    "reports_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Or a JSONL file of reports, one per line.",
)
@click.option("--officer-name", prompt="Certifying officer's name")
@click.option("--officer-title", prompt="Certifying officer's title")
@click.option(
    "--certified-on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=date.today().isoformat(),
    show_default=True,
)
@click.option("--statement", default=DEFAULT_STATEMENT, show_default=True)
@_license_key_option("This installation's licence key; it signs the bundle.")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the bundle (default: attestation-<quarter>.json).",
)
def attest_export(
    quarter: str,
    spool_dir: Path | None,
    reports_file: Path | None,
    officer_name: str,
    officer_title: str,
    certified_on: Any,
    statement: str,
    license_key: str,
    output: Path | None,
) -> None:
    """Build, certify and sign the bundle of QUARTER's reports.

    Only reports generated (UTC) inside the quarter are included. Upload the file with
    POST /v1/attestations, or check it first with 'statreport attest verify'.
    """
    if (spool_dir is None) == (reports_file is None):
        raise click.UsageError("give exactly one of --spool or --reports")
    try:
        first, last = quarter_bounds(quarter)
    except (ValueError, IndexError) as exc:
        raise click.UsageError(f"--quarter {quarter!r} is not like 2026Q3") from exc
    reports = reports_of_quarter(_load_reports(spool_dir, reports_file), quarter=quarter)
    if not reports:
        raise click.UsageError(f"no report generated in {quarter} ({first} to {last}) was found")
    certification = {
        "officer_name": officer_name,
        "officer_title": officer_title,
        "certified_on": certified_on.date().isoformat(),
        "statement": statement,
    }
    bundle = build_bundle(
        quarter=quarter, reports=reports, certification=certification, license_key=license_key
    )
    target = output or Path(f"attestation-{quarter}.json")
    target.write_text(json.dumps(bundle, ensure_ascii=False, indent=1))
    click.echo(f"wrote {target}: {counted(len(reports), 'report')} of {quarter}, signed")


@attest_group.command("verify")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_license_key_option("The licence key the bundle should be signed with.")
def attest_verify(file: Path, license_key: str) -> None:
    """Check a bundle without a server: exit 0 and a summary, or 1 and what is wrong."""
    try:
        bundle = verify_bundle(file.read_bytes(), license_key=license_key)
    except StatreportError as exc:
        click.echo(f"invalid: {exc.detail}", err=True)
        sys.exit(1)
    days = sorted(usage_day(report) for report in bundle.reports)
    officer = bundle.certification
    click.echo(f"valid attestation for {bundle.quarter}")
    click.echo(f"  reports:    {len(bundle.reports)}")
    click.echo(f"  instances:  {len({r['instance_id'] for r in bundle.reports})}")
    click.echo(f"  days:       {days[0]} to {days[-1]}")
    click.echo(
        f"  certified:  {officer.officer_name}, {officer.officer_title}, on {officer.certified_on}"
    )


@attest_group.command("upload")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_license_key_option("This installation's licence key, which signed the bundle.")
@server_options
@exit_on_http_errors
def attest_upload(file: Path, license_key: str, server: str, ca_cert: Path | None) -> None:
    """Upload a signed bundle (POST /v1/attestations); sending it again is harmless.

    Exit 0 stored (or already there); 1 refused, with the server's reason.
    """
    with httpx.Client(
        base_url=server.rstrip("/"), verify=verify_for(server, ca_cert), timeout=300.0
    ) as http:
        answer = check(
            http.post(
                "/v1/attestations",
                content=file.read_bytes(),
                headers={
                    "Authorization": f"Bearer {license_key}",
                    "Content-Type": "application/json",
                },
            )
        )
    click.echo(
        f"uploaded {file}: {counted(answer['stored'], 'report')} stored, "
        f"{answer['duplicates']} already there"
    )
