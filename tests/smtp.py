"""A real SMTP server for the tests (aiosmtpd), recording what arrives."""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests import clock

USER, PASSWORD = "statreport", "s3cret-for-tests"


@dataclass
class Received:
    """One message as the SMTP server got it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    authenticated_as: str | None


@dataclass
class Recorder:
    """The aiosmtpd handler: keeps every message."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        assert isinstance(content, bytes)
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        login = (
            session.auth_data.login.decode()
            if isinstance(session.auth_data, LoginPassword)
            else None
        )
        self.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, login)
        )
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)


def _authenticate(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    if isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (USER, PASSWORD):
        return AuthResult(success=True, auth_data=auth_data)
    return AuthResult(success=False, handled=False)


def start_smtp(port: int, *, tls_dir: Path | None = None) -> tuple[Controller, Recorder]:
    """Plain SMTP, or (with ``tls_dir``) STARTTLS required and AUTH required after it."""
    recorder = Recorder()
    kwargs: dict[str, Any] = {}
    if tls_dir is not None:
        cert, key = tls_dir / "smtp-cert.pem", tls_dir / "smtp-key.pem"
        # The test's SMTP server: a certificate valid whatever the clock (tests/clock.py).
        clock.place_certificate(cert, key)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        kwargs = {
            "tls_context": context,
            "require_starttls": True,
            "authenticator": _authenticate,
            "auth_require_tls": True,
            "auth_required": True,
        }
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller, recorder
