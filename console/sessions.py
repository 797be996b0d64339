"""Console sessions (SPEC §12): server-side, 12 hours, ended on sign-out or with their token.

A session is a random id in a cookie; the database keeps only its hash, the token's name and
a CSRF token, so that any process behind a proxy serves it (SPEC §16 v3). A value to show
once (a new token, a webhook's secret) is kept sealed with a key derived from the session's
id, which only the browser holds: the database alone cannot read it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic_core import to_jsonable_python

from console import repository
from core.auth import Keyring, Staff
from core.ratelimit import RateLimiter
from core.store import Store

COOKIE = "statreport_session"
LIFETIME_SECONDS = 12 * 3600
#: Failed sign-ins allowed per address and minute; the next one answers 429.
FAILED_SIGN_INS_PER_MINUTE = 5


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    """Who is signed in, and the CSRF token every changing form of theirs must carry."""

    staff: Staff
    csrf: str
    expires_at: datetime

    def csrf_matches(self, presented: str | None) -> bool:
        """True when a form carries this session's CSRF token (compared in constant time)."""
        return presented is not None and hmac.compare_digest(presented, self.csrf)


class Sessions:
    """The console's sessions, kept in the store."""

    def __init__(
        self,
        keyring: Keyring,
        store: Store,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._keyring = keyring
        self._store = store
        self._clock = clock
        # Failed sign-ins per hashed address: kept in memory for a minute, never stored.
        self.failures = RateLimiter(per_minute=FAILED_SIGN_INS_PER_MINUTE)

    async def start(self, staff: Staff) -> str:
        """A new session for ``staff``; answers the id for the cookie (shown only here)."""
        session_id = secrets.token_urlsafe(32)
        expires_at = self._clock() + timedelta(seconds=LIFETIME_SECONDS)
        await self._store.write(
            lambda con: repository.insert_session(
                con,
                session_hash=_digest(session_id),
                name=staff.name,
                csrf=secrets.token_urlsafe(32),
                expires_at=expires_at,
            )
        )
        return session_id

    async def get(self, session_id: str | None) -> Session | None:
        """The live session of a cookie, with its token's current role; None once it has
        expired, been ended, or its token was revoked."""
        if not session_id:
            return None
        key = _digest(session_id)
        row = await self._store.read(lambda con: repository.session(con, session_hash=key))
        if row is None:
            return None
        name, csrf, expires_at = row
        staff = self._keyring.staff_named(name)
        if expires_at <= self._clock() or staff is None:
            await self._store.write(lambda con: repository.delete_session(con, session_hash=key))
            return None
        return Session(staff=staff, csrf=csrf, expires_at=expires_at)

    async def show_once(self, session_id: str | None, what: str, value: Any) -> None:
        """Keep ``value`` (as JSON) for the session's next page that asks for ``what``."""
        if not session_id:
            return
        key = _digest(session_id)
        sealed = _seal(session_id, json.dumps(to_jsonable_python(value)))

        def keep(con: Any) -> None:
            stored = repository.once(con, session_hash=key)
            if stored is not None:
                values = json.loads(stored)
                values[what] = sealed
                repository.set_once(con, session_hash=key, once=json.dumps(values))

        await self._store.write(keep)

    async def take_once(self, session_id: str | None, what: str) -> Any:
        """The value kept by ``show_once``, forgotten as it is taken; None if there is none."""
        if not session_id:
            return None
        key = _digest(session_id)

        def take(con: Any) -> str | None:
            stored = repository.once(con, session_hash=key)
            values = json.loads(stored) if stored else {}
            if what not in values:
                return None
            sealed: str = values.pop(what)
            repository.set_once(con, session_hash=key, once=json.dumps(values))
            return sealed

        sealed = await self._store.write(take)
        if sealed is None:
            return None
        opened = _open(session_id, sealed)
        return None if opened is None else json.loads(opened)

    async def end(self, session_id: str | None) -> None:
        """Sign out: the cookie no longer opens anything, even if it is replayed."""
        if session_id:
            key = _digest(session_id)
            await self._store.write(lambda con: repository.delete_session(con, session_hash=key))


def _key(session_id: str) -> bytes:
    return hashlib.sha256(f"statreport-console-once:{session_id}".encode()).digest()


def _seal(session_id: str, text: str) -> str:
    nonce = os.urandom(12)
    return base64.b64encode(
        nonce + AESGCM(_key(session_id)).encrypt(nonce, text.encode(), None)
    ).decode()


def _open(session_id: str, sealed: str) -> str | None:
    raw = base64.b64decode(sealed)
    try:
        return AESGCM(_key(session_id)).decrypt(raw[:12], raw[12:], None).decode()
    except InvalidTag:
        return None


def address_key(host: str | None) -> str:
    """The failed-sign-in counter's key for a client address: a hash, never the address."""
    return _digest(host or "unknown")
