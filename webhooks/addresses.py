"""Where a webhook may be sent (SPEC §14): https, no credentials in the address, and a host
whose every address is public, checked when the endpoint is registered and again, resolved
afresh, at each send, which then connects to the address it checked, so that a DNS change
cannot reach inside the licensor's network."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class RefusedAddress(ValueError):
    """An address statreport will not send to, and why."""


@dataclass(frozen=True)
class Target:
    """Where one attempt connects: the checked address, and the name the certificate and
    the ``Host`` header carry."""

    url: str  # with the address in place of the name
    host_header: str
    server_name: str


def check_form(url: str, *, allow_private: bool) -> tuple[str, str, int]:
    """The scheme, host and port of a webhook URL, or why it is refused."""
    parts = urlsplit(url)
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise RefusedAddress(
            "a webhook URL must start with https:// (http is only for receivers inside your "
            "network, with STATREPORT_WEBHOOK_ALLOW_PRIVATE=true)"
        )
    if parts.username is not None or parts.password is not None:
        raise RefusedAddress(
            "a webhook URL carries no credentials; verify the signature instead of a password"
        )
    if not parts.hostname:
        raise RefusedAddress("a webhook URL names a host, such as https://hooks.example.com/x")
    if len(parts.hostname) > 253 or any(len(label) > 63 for label in parts.hostname.split(".")):
        raise RefusedAddress(
            "the webhook URL's host name is too long to be a name (at most 253 characters, "
            "63 between dots)"
        )
    if parts.fragment:
        raise RefusedAddress("a webhook URL has no #fragment")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise RefusedAddress(
            "the port of the webhook URL is not a number from 1 to 65535"
        ) from None
    return parts.scheme, parts.hostname, port


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL's host now and check every address it has; the first is the one to
    connect to."""
    scheme, host, port = check_form(url, allow_private=allow_private)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # no such name; a name IDNA cannot encode
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RefusedAddress(f"the host {host!r} does not resolve ({reason})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise RefusedAddress(f"the host {host!r} has no address")
    if not allow_private:
        inside = [a for a in addresses if not _public(a)]
        if inside:
            raise RefusedAddress(
                f"the host {host!r} resolves to {inside[0]}, a loopback, private, link-local or "
                "otherwise non-public address; statreport sends webhooks to public addresses "
                "only (STATREPORT_WEBHOOK_ALLOW_PRIVATE=true lifts this for a receiver inside "
                "your network)"
            )
    chosen = addresses[0]
    literal = f"[{chosen}]" if ":" in chosen else chosen
    parts = urlsplit(url)
    default = 443 if scheme == "https" else 80
    netloc = literal if port == default else f"{literal}:{port}"
    name = f"[{host}]" if ":" in host else host
    host_header = name if port == default else f"{name}:{port}"
    pinned = parts._replace(netloc=netloc).geturl()
    return Target(url=pinned, host_header=host_header, server_name=host)
