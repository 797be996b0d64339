"""Console sessions (SPEC §12): server-side, 12 hours, ended on sign-out or with their token.

A session is a random id in a cookie; the server keeps only its hash, the token's name and a
CSRF token. Sessions live in memory: a restart signs everyone out, which is the safe failure.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.auth import Keyring, Staff
from core.ratelimit import RateLimiter

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
    expires_at: float

    def csrf_matches(self, presented: str | None) -> bool:
        """True when a form carries this session's CSRF token (compared in constant time)."""
        return presented is not None and hmac.compare_digest(presented, self.csrf)


@dataclass(slots=True)
class _Stored:
    name: str
    csrf: str
    expires_at: float
    # A secret to show on the next page only (a new key or token), so that the page after a
    # change is reached by a redirect and reloading it changes nothing.
    once: dict[str, Any] = field(default_factory=dict)


class Sessions:
    """Every open console session, by the hash of its id."""

    def __init__(self, keyring: Keyring, *, clock: Callable[[], float] = time.time) -> None:
        self._keyring = keyring
        self._clock = clock
        self._sessions: dict[str, _Stored] = {}
        # Failed sign-ins per hashed address: kept in memory for a minute, never stored.
        self.failures = RateLimiter(per_minute=FAILED_SIGN_INS_PER_MINUTE)

    def start(self, staff: Staff) -> str:
        """A new session for ``staff``; answers the id for the cookie (shown only here)."""
        self._forget_expired()
        session_id = secrets.token_urlsafe(32)
        self._sessions[_digest(session_id)] = _Stored(
            name=staff.name,
            csrf=secrets.token_urlsafe(32),
            expires_at=self._clock() + LIFETIME_SECONDS,
        )
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        """The live session of a cookie, with its token's current role; None once it has
        expired, been ended, or its token was revoked."""
        if not session_id:
            return None
        key = _digest(session_id)
        stored = self._sessions.get(key)
        if stored is None:
            return None
        staff = self._keyring.staff_named(stored.name)
        if stored.expires_at <= self._clock() or staff is None:
            del self._sessions[key]
            return None
        return Session(staff=staff, csrf=stored.csrf, expires_at=stored.expires_at)

    def show_once(self, session_id: str | None, what: str, value: Any) -> None:
        """Keep ``value`` for the session's next page that asks for ``what``."""
        stored = self._sessions.get(_digest(session_id or ""))
        if stored is not None:
            stored.once[what] = value

    def take_once(self, session_id: str | None, what: str) -> Any:
        """The value kept by ``show_once``, forgotten as it is taken; None if there is none."""
        stored = self._sessions.get(_digest(session_id or ""))
        return None if stored is None else stored.once.pop(what, None)

    def end(self, session_id: str | None) -> None:
        """Sign out: the cookie no longer opens anything, even if it is replayed."""
        if session_id:
            self._sessions.pop(_digest(session_id), None)

    def _forget_expired(self) -> None:
        now = self._clock()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]


def address_key(host: str | None) -> str:
    """The failed-sign-in counter's key for a client address: a hash, never the address."""
    return _digest(host or "unknown")
