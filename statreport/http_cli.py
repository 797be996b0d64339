"""What the CLI's server-talking commands share: options, the HTTP client, error reporting."""

from __future__ import annotations

import functools
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx

from phonehome.client import verify_context

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_SERVER = "https://127.0.0.1:8443"
DEFAULT_CA = Path("statreport-data/tls/cert.pem")


def server_options(function: F) -> F:
    """``--server`` and ``--ca-cert``."""
    function = click.option(
        "--ca-cert",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="STATREPORT_CA_CERT",
        help="Certificate to trust (default: ./statreport-data/tls/cert.pem when present, "
        "else the system CAs) [env STATREPORT_CA_CERT].",
    )(function)
    return click.option(
        "--server",
        default=DEFAULT_SERVER,
        show_default=True,
        envvar="STATREPORT_SERVER",
        help="Base URL of the statreport server [env STATREPORT_SERVER].",
    )(function)


def admin_options(function: F) -> F:
    """Server options plus a staff token (from the environment, never the command line)."""
    function = click.option(
        "--token",
        "--admin-token",
        "admin_token",
        envvar=["STATREPORT_TOKEN", "STATREPORT_ADMIN_TOKEN"],
        required=True,
        help="Your named token (statreport tokens create), or the server's root token; prefer "
        "the environment [env STATREPORT_TOKEN, else STATREPORT_ADMIN_TOKEN].",
    )(function)
    return server_options(function)


def verify_for(server: str, ca_cert: Path | None) -> Any:
    """The TLS verification to use for ``server``."""
    if server.startswith("http://"):
        return False
    if ca_cert is None and DEFAULT_CA.exists():
        ca_cert = DEFAULT_CA
    if ca_cert is not None and not ca_cert.exists():
        raise click.UsageError(f"--ca-cert {ca_cert} does not exist")
    return verify_context(ca_cert)


def admin_http(server: str, ca_cert: Path | None, admin_token: str) -> httpx.Client:
    """An HTTP client for the admin API; the audit log records the token's name, and the
    login name as whom it acted on behalf of."""
    return httpx.Client(
        base_url=server.rstrip("/"),
        verify=verify_for(server, ca_cert),
        timeout=60.0,
        headers={
            "Authorization": f"Bearer {admin_token}",
            "X-Statreport-Actor": _actor(),
        },
    )


def _actor() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        return "cli"
    cleaned = "".join(c for c in name if c.isalnum() or c in "._@+-")[:64]
    return cleaned or "cli"


def exit_on_http_errors(function: F) -> F:
    """Turn transport and HTTP errors into one clear line and exit code 1."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except httpx.ConnectError as exc:
            hint = (
                "the server's certificate is not trusted: pass --ca-cert <data dir>/tls/cert.pem"
                if "CERTIFICATE_VERIFY_FAILED" in str(exc)
                else "is 'statreport serve' running there?"
            )
            click.echo(f"error: cannot connect to the server ({exc}); {hint}", err=True)
            sys.exit(1)
        except httpx.TransportError as exc:
            click.echo(f"error: the request failed ({exc}); retry later", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def check(response: httpx.Response) -> Any:
    """The JSON of a 2xx answer; otherwise print the problem's detail and exit 1."""
    if response.is_success:
        return response.json() if response.content else None
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    click.echo(f"error: HTTP {response.status_code}: {detail}", err=True)
    sys.exit(1)
