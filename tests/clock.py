"""Time in the tests: one way to move it for each kind of process.

- In this process (a test, and the servers it starts in a thread): ``time-machine``.
- In a server started as a child process (``spawn_server``): libfaketime, started from the
  moment this process is at, so both sides agree.

A test about a fixed calendar fact (the worked example's November, a DST change, a quarter's
last day) keeps its literal dates and is marked ``@pytest.mark.moment("2026-11-23T08:00:00Z")``,
on the test or on its module (``pytestmark``); it then runs at that moment, its clock ticking
from there (``tick=False`` holds it still). A test that needs "a quarter that has not ended"
or "a report 401 days old" derives it from today instead. ``statreport serve`` has no setting
that fakes time: nothing here reaches production code.

The suite is checked on other days by running it under libfaketime (``make test-calendar``);
certificates made for a moved clock are valid from 2000 to 2099, since OpenSSL (in the test's
HTTP client and in Chromium) reads the real clock, not time-machine's.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import libfaketime  # type: ignore[import-untyped]
import time_machine
from cryptography import x509

from core.tls import self_signed_certificate

#: The marker that runs a test (or a module's tests) at a chosen moment.
MARK = "moment"

#: The moment the suite's literal dates were written around: a Sunday in early December 2026,
#: after the worked example's November and inside 2026Q4.
WRITTEN_ON = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

_travels: list[time_machine.Traveller] = []


def parse(value: datetime | str) -> datetime:
    """A marker's moment: an aware datetime or ISO 8601 text with an offset."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError(f"a moment needs an offset (…Z or …+00:00): {value!r}")
    return moment


@contextmanager
def at(moment: datetime | str, *, tick: bool = True) -> Iterator[time_machine.Traveller]:
    """This process's clock at ``moment`` until the block ends."""
    with time_machine.travel(parse(moment), tick=tick) as coordinates:
        _travels.append(coordinates)
        try:
            yield coordinates
        finally:
            _travels.pop()


def travelling() -> time_machine.Traveller | None:
    """The innermost moved clock, or None on the wall clock."""
    return _travels[-1] if _travels else None


def marker_moment(marker: Any) -> tuple[datetime, bool]:
    """A ``moment`` marker's arguments: the moment and whether its clock ticks."""
    return parse(marker.args[0]), bool(marker.kwargs.get("tick", True))


def faketime_environment(faketime: str) -> dict[str, str]:
    """What a child process needs to run on a moved clock: libfaketime preloaded, with
    ``FAKETIME`` (``+400d`` ahead, or ``@2026-10-26 09:00:00`` to start there and tick).

    The library is the build that PyPI's ``libfaketime`` package carries, with the monotonic
    clock left real. Debian 12's libfaketime 0.9.10 cannot run this suite: faking the
    monotonic clock, it never ends Python's timed lock waits (``queue.get(timeout=0.2)``
    waits for ever, so the first group commit hangs); not faking it, ``time.sleep`` fails
    with EINVAL.
    """
    _, additions = libfaketime.get_reload_information()
    environment = {str(k): str(v) for k, v in additions.items()}
    preload = [*environment["LD_PRELOAD"].split(":"), *os.environ.get("LD_PRELOAD", "").split(":")]
    environment["LD_PRELOAD"] = ":".join(p for p in dict.fromkeys(preload) if p)
    environment["FAKETIME"] = faketime
    environment["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    return environment


def child_environment() -> dict[str, str]:
    """The environment additions that put a child process (a server a test starts) on this
    process's clock: from the moment this process is at, ticking; none on the wall clock."""
    if travelling() is None:
        return {}
    # "@" starts the child's clock at this local time and lets it run; the child inherits TZ.
    local = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return faketime_environment(f"@{local}")


def main(argv: list[str]) -> int:
    """``python -m tests.clock +400d COMMAND…``: run a command with the clock moved (the suite
    on another day: ``make test-calendar``)."""
    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        print(
            "usage: python -m tests.clock +400d COMMAND [ARGS...]"
            "  (or -30d, '@2027-01-01 00:00:00')"
        )
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    os.execvpe(argv[1], argv[1:], {**os.environ, **faketime_environment(argv[0])})  # noqa: S606


_CERTIFICATE: tuple[bytes, bytes] | None = None


def place_certificate(cert_path: Path, key_path: Path) -> None:
    """A self-signed localhost certificate valid 2000-2099, where the server looks for its own
    (it then makes none), for a server whose clock is moved away from OpenSSL's."""
    global _CERTIFICATE
    if _CERTIFICATE is None:
        _CERTIFICATE = self_signed_certificate(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
            not_before=datetime(2000, 1, 1, tzinfo=UTC),
            not_after=datetime(2099, 12, 31, tzinfo=UTC),
        )
    if cert_path.exists() and key_path.exists():
        return
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert, key = _CERTIFICATE
    key_path.write_bytes(key)
    key_path.chmod(0o600)
    cert_path.write_bytes(cert)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
