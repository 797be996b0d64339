"""Sending the weekly emails: SMTP (STARTTLS, implicit TLS or none), or an outbox of .eml files."""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from core.settings import Settings


class DeliveryFailed(Exception):
    """The message was not handed over; it counts as not delivered."""


@dataclass(frozen=True)
class Mailer:
    """Where weekly emails go: the SMTP server in the settings, or ``<data dir>/outbox``."""

    settings: Settings

    @property
    def outbox(self) -> Path:
        """The folder of .eml files used when no SMTP host is configured."""
        return self.settings.data_dir / "outbox"

    def describe(self) -> str:
        """Where messages go, for logs and the CLI."""
        if self.settings.smtp_host is None:
            return f"outbox {self.outbox}"
        return f"smtp {self.settings.smtp_host}:{self.settings.smtp_port}"

    def send(self, message: EmailMessage) -> str:
        """Hand one message over; return where it went. Raises ``DeliveryFailed``."""
        if self.settings.smtp_host is None:
            return self._write_eml(message)
        try:
            self._send_smtp(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        return self.describe()

    def _tls_context(self) -> ssl.SSLContext:
        cafile = self.settings.smtp_ca_cert
        return ssl.create_default_context(cafile=str(cafile) if cafile else None)

    def _send_smtp(self, message: EmailMessage) -> None:
        settings = self.settings
        host, port = settings.smtp_host or "", settings.smtp_port
        timeout = settings.smtp_timeout_seconds
        smtp: smtplib.SMTP
        if settings.smtp_security == "tls":
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=self._tls_context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if settings.smtp_security == "starttls":
                smtp.starttls(context=self._tls_context())
            if settings.smtp_user:
                password = (
                    settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                )
                smtp.login(settings.smtp_user, password)
            smtp.send_message(message)

    def _write_eml(self, message: EmailMessage) -> str:
        self.outbox.mkdir(parents=True, exist_ok=True)
        recipient = re.sub(r"[^A-Za-z0-9._@-]", "_", str(message["To"]))
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.outbox / f"{stamp}-{recipient}.eml"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(message.as_bytes())
        temporary.replace(path)
        return str(path)
