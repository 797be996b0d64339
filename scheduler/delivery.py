"""Sending the weekly emails: SMTP (STARTTLS, implicit TLS or none), or an outbox of .eml files."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import smtplib
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from core.files import fsync_path
from core.settings import Settings


class DeliveryFailed(Exception):
    """The message was not handed over; it counts as not delivered."""


@dataclass(frozen=True)
class Mailer:
    """Where weekly emails go: the SMTP server in the settings, or ``<data dir>/outbox``.

    Sends run on threads of their own, never on the pool that reads the database, so a slow
    or silent SMTP server cannot stall the API; each whole conversation has a deadline.
    """

    settings: Settings
    _senders: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="smtp"),
        repr=False,
    )

    @property
    def outbox(self) -> Path:
        """The folder of .eml files used when no SMTP host is configured."""
        return self.settings.data_dir / "outbox"

    def describe(self) -> str:
        """Where messages go, for logs and the CLI."""
        if self.settings.smtp_host is None:
            return f"outbox {self.outbox}"
        return f"smtp {self.settings.smtp_host}:{self.settings.smtp_port}"

    async def send(self, message: EmailMessage) -> str:
        """Hand one message over; return where it went. Raises ``DeliveryFailed``."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._senders, self.send_now, message)

    def send_now(self, message: EmailMessage) -> str:
        """``send`` on the calling thread."""
        if self.settings.smtp_host is None:
            try:
                return self._write_eml(message)
            except OSError as exc:
                raise DeliveryFailed(
                    f"the outbox {self.outbox} could not be written ({exc.strerror}); "
                    "check the data directory's disk and permissions"
                ) from exc
        try:
            self._send_smtp(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        return self.describe()

    def shutdown(self) -> None:
        """Stop taking sends (the ones under way finish within their deadline)."""
        self._senders.shutdown(wait=False, cancel_futures=True)

    def _tls_context(self) -> ssl.SSLContext:
        cafile = self.settings.smtp_ca_cert
        return ssl.create_default_context(cafile=str(cafile) if cafile else None)

    def _send_smtp(self, message: EmailMessage) -> None:
        settings = self.settings
        timeout = settings.smtp_timeout_seconds
        smtp: smtplib.SMTP
        if settings.smtp_security == "tls":
            smtp = smtplib.SMTP_SSL(timeout=timeout, context=self._tls_context())
        else:
            smtp = smtplib.SMTP(timeout=timeout)
        # Connected below, under the watchdog; smtplib takes the TLS server name from _host,
        # which only its constructor sets.
        smtp._host = settings.smtp_host or ""  # type: ignore[attr-defined]
        # A server that trickles a byte at a time never trips the per-read timeout: close the
        # socket when the whole conversation's time is up, which fails the blocked read.
        expired = threading.Event()
        watchdog = threading.Timer(timeout, _abort, args=(smtp, expired))
        watchdog.daemon = True
        watchdog.start()
        try:
            self._converse(smtp, message)
        except (OSError, smtplib.SMTPException) as exc:
            if expired.is_set():
                raise DeliveryFailed(
                    f"the SMTP conversation took longer than {timeout} s "
                    "(STATREPORT_SMTP_TIMEOUT_SECONDS) and was abandoned"
                ) from exc
            raise
        finally:
            watchdog.cancel()

    def _converse(self, smtp: smtplib.SMTP, message: EmailMessage) -> None:
        settings = self.settings
        with smtp:
            smtp.connect(settings.smtp_host or "", settings.smtp_port)
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
        try:
            # Temporary file, fsync, rename: a crash leaves the whole message or none.
            with open(temporary, "wb") as handle:
                handle.write(message.as_bytes())
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(path)
        except OSError:
            temporary.unlink(missing_ok=True)
            raise
        fsync_path(self.outbox)
        return str(path)


def _abort(smtp: smtplib.SMTP, expired: threading.Event) -> None:
    expired.set()
    sock = smtp.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(2)
        sock.close()
