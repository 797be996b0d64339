"""The ``statreport`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import uvicorn
from pydantic import ValidationError

from core.settings import Settings
from core.telemetry import configure_logging
from core.tls import TlsFilesInvalid
from statreport.admin_cli import (
    backup,
    customers_group,
    keys_group,
    links_group,
    tokens_group,
    weekly_report,
)
from statreport.analytics_cli import evaluate, statement
from statreport.attest_cli import attest_group
from statreport.client_cli import phone_home, simulate
from statreport.demo import run_demo
from statreport.migrate_cli import migrate_command
from statreport.server import MissingAdminToken, create_app, uvicorn_config

#: Exit codes scripts can rely on.
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _invalid_settings(error: ValidationError) -> str:
    """Each refused setting by its variable, what was wrong, and what it should be. Never the
    value: it may be a token or a password."""
    lines = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else ""
        field = Settings.model_fields.get(name)
        meaning = f"; it is {field.description}" if field is not None and field.description else ""
        lines.append(f"STATREPORT_{name.upper()}: {problem['msg']}{meaning}")
    return "invalid setting: " + "\n".join(lines)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="statreport")
def main() -> None:
    """statreport: the licensor's side of the Statistics Report pipeline."""


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data directory.")
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8443).")
@click.option("--tls-cert", type=click.Path(path_type=Path), help="PEM certificate.")
@click.option("--tls-key", type=click.Path(path_type=Path), help="PEM private key.")
@click.option(
    "--insecure-http",
    is_flag=True,
    default=None,
    help="Serve plain HTTP (only behind a TLS-terminating proxy).",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Log level."
)
def serve(**flags: Any) -> None:
    """Run the HTTPS API, the admin API and the scheduler in one process.

    Settings come from these flags or STATREPORT_* variables; STATREPORT_ADMIN_TOKEN is
    required.

    Exit codes: 0 stopped cleanly; 1 failed while running; 2 bad settings (no admin token,
    TLS files missing, unreadable or only one of the two given); 3 could not start (e.g.
    the data directory is locked by another statreport, or was written by a newer one):
    the log line event=store.refused says why.
    """
    overrides = {name: value for name, value in flags.items() if value is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise click.UsageError(_invalid_settings(exc)) from exc
    configure_logging(settings.log_level)
    try:
        app = create_app(settings)
        config = uvicorn_config(settings, app)
    except (MissingAdminToken, TlsFilesInvalid) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    scheme = "http" if settings.insecure_http else "https"
    click.echo(f"statreport listening on {scheme}://{settings.host}:{settings.port}", err=True)
    # The DuckDB writer thread takes the GIL back after each call; a shorter switch interval
    # than the default 5 ms hands it over sooner (measured: 2,680 -> 3,080 reports/s).
    sys.setswitchinterval(0.0005)
    server = uvicorn.Server(config)
    server.run()  # a failed startup exits 3 from inside uvicorn
    if not server.started:
        sys.exit(EXIT_FAILURE)


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("statreport-demo"),
    show_default=True,
    help="A fresh data directory (an earlier demo's is replaced).",
)
@click.option("--serve", is_flag=True, help="Keep the server running afterwards, for exploring.")
@click.option("--port", type=int, help="Port for --serve (default: any free port).")
def demo(data_dir: Path, serve: bool, port: int | None) -> None:
    """Show the whole pipeline: sample customers, 90 days of phone-home over HTTPS,
    evaluation, the weekly emails in the outbox, and the findings."""
    configure_logging("warning")
    run_demo(data_dir, serve=serve, port=port)


main.add_command(customers_group)
main.add_command(keys_group)
main.add_command(links_group)
main.add_command(tokens_group)
main.add_command(phone_home)
main.add_command(simulate)
main.add_command(evaluate)
main.add_command(statement)
main.add_command(weekly_report)
main.add_command(attest_group)
main.add_command(backup)
main.add_command(migrate_command)
