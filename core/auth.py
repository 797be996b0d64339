"""Licence keys, the root token and named staff tokens: generated with enough entropy, kept only
as hashes, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from core.errors import Forbidden, Unauthenticated

LICENSE_KEY_PREFIX = "srk_"
STAFF_TOKEN_PREFIX = "srt_"  # noqa: S105 (a prefix, not a secret)
ROOT = "root"


class Role(StrEnum):
    """What a staff token may do: a viewer reads, an admin also changes."""

    ADMIN = "admin"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class Staff:
    """Who is calling the admin API or the console: a named token, or ``root``."""

    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        """True when this person may change things."""
        return self.role is Role.ADMIN

    def require_admin(self, what: str = "This change") -> None:
        """Raise ``Forbidden`` naming the role, unless an admin is calling."""
        if not self.is_admin:
            raise Forbidden(
                f"{what} needs an admin token; the token '{self.name}' has the role "
                f"'{self.role}', which may only read. Ask an admin to do it, or for "
                "an admin token."
            )


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change, for the audit log: the token's name, and whom it said it acted for
    (``X-Statreport-Actor``), recorded beside the name, never instead of it."""

    name: str
    on_behalf_of: str | None = None

    def __str__(self) -> str:
        return self.name if self.on_behalf_of is None else f"{self.name}({self.on_behalf_of})"


@dataclass(frozen=True, slots=True)
class StaffTokenRecord:
    """A stored staff token: its hash only, never the token."""

    name: str
    role: Role
    token_hash: str


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret; enough, since keys are random, not passwords."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_license_key() -> tuple[str, str]:
    """A new ``(key_id, license_key)``; the key carries 256 random bits."""
    return "key_" + secrets.token_hex(8), LICENSE_KEY_PREFIX + secrets.token_urlsafe(32)


def new_staff_token() -> str:
    """A new staff token; 256 random bits."""
    return STAFF_TOKEN_PREFIX + secrets.token_urlsafe(32)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Uses:
    """When named tokens and licence keys were last used, by name and key id."""

    tokens: dict[str, datetime] = field(default_factory=dict)
    keys: dict[str, datetime] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.tokens or self.keys)

    def since(self, written: Uses) -> Uses:
        """The uses newer than ``written``'s."""
        return Uses(
            {k: v for k, v in self.tokens.items() if written.tokens.get(k) != v},
            {k: v for k, v in self.keys.items() if written.keys.get(k) != v},
        )


@dataclass(frozen=True, slots=True)
class LicenseKeyRecord:
    """A stored licence key: its hash only, never the key."""

    key_id: str
    customer_id: str
    key_hash: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class LicenseHolder:
    """Who sent a report: the customer that owns the key, never anything in the body."""

    key_id: str
    customer_id: str


class Keyring:
    """The root token's hash, every staff token's and every licence key's hash, checked in
    constant time."""

    def __init__(
        self,
        *,
        admin_token: str,
        records: list[LicenseKeyRecord],
        staff: Sequence[StaffTokenRecord] = (),
    ) -> None:
        self._admin_hash = hash_secret(admin_token)
        self._keys: dict[str, LicenseKeyRecord] = {r.key_hash: r for r in records}
        self._staff: dict[str, StaffTokenRecord] = {r.token_hash: r for r in staff}
        # When each token and key was last used, noted here as it happens (a dict write on the
        # hot path) and written to the database once a minute (``staff.tokens.write_uses``).
        self._used = Uses()
        self._written = Uses()

    def replace(
        self, *, records: list[LicenseKeyRecord], staff: Sequence[StaffTokenRecord]
    ) -> None:
        """Take every key and token as stored now: what another process issued or revoked
        (SPEC §16 v3). When each was last used stays as noted."""
        self._keys = {r.key_hash: r for r in records}
        self._staff = {r.token_hash: r for r in staff}

    def add_staff(self, record: StaffTokenRecord) -> None:
        """Make a new staff token usable."""
        self._staff[record.token_hash] = record

    def revoke_staff(self, name: str) -> None:
        """Make a staff token unusable from now on."""
        for token_hash, record in list(self._staff.items()):
            if record.name == name:
                del self._staff[token_hash]

    def staff_named(self, name: str) -> Staff | None:
        """The staff member of a current token by name (``root`` included), or None once
        revoked: a console session ends with its token."""
        if name == ROOT:
            return Staff(ROOT, Role.ADMIN)
        for record in self._staff.values():
            if record.name == name:
                return Staff(record.name, record.role)
        return None

    def last_used(self) -> Uses:
        """When each token and key was last used since the server started."""
        return self._used

    def unwritten_uses(self) -> Uses:
        """The uses not yet written to the database."""
        return self._used.since(self._written)

    def uses_written(self, uses: Uses) -> None:
        """Note that ``uses`` are in the database."""
        self._written.tokens.update(uses.tokens)
        self._written.keys.update(uses.keys)

    def staff(self, token: str | None) -> Staff:
        """The staff member behind a root or named token, or ``Unauthenticated`` saying what
        to fix. Licence keys never work here."""
        if token is None:
            raise Unauthenticated(
                "Send a staff token as 'Authorization: Bearer <token>': the server's "
                "STATREPORT_ADMIN_TOKEN, or a named token from 'statreport tokens create'."
            )
        presented = hash_secret(token)
        if hmac.compare_digest(presented, self._admin_hash):
            return Staff(ROOT, Role.ADMIN)
        record = self._staff.get(presented)
        if record is not None and hmac.compare_digest(record.token_hash, presented):
            self._used.tokens[record.name] = _now()
            return Staff(record.name, record.role)
        if presented in self._keys:
            raise Unauthenticated(
                "A licence key cannot be used on admin endpoints; use a staff token."
            )
        raise Unauthenticated(
            "This token is not known or has been revoked. Use the server's "
            "STATREPORT_ADMIN_TOKEN, or ask an admin for a named token."
        )

    def add(self, record: LicenseKeyRecord) -> None:
        """Make a new key usable."""
        self._keys[record.key_hash] = record

    def revoke(self, key_id: str) -> None:
        """Make a key unusable from now on."""
        for key_hash, record in list(self._keys.items()):
            if record.key_id == key_id:
                self._keys[key_hash] = LicenseKeyRecord(
                    key_id=record.key_id,
                    customer_id=record.customer_id,
                    key_hash=record.key_hash,
                    revoked=True,
                )

    def license_holder(self, authorization: str | None) -> LicenseHolder:
        """The customer behind a licence key, or ``Unauthenticated`` saying what to fix."""
        token = bearer_token(authorization)
        if token is None:
            raise Unauthenticated(
                "Send the licence key as 'Authorization: Bearer <license key>'. Your licence "
                "administrator can issue one."
            )
        presented = hash_secret(token)
        # Look up by hash, then compare in constant time; the admin hash is never in this table.
        record = self._keys.get(presented)
        if record is None or not hmac.compare_digest(record.key_hash, presented):
            if hmac.compare_digest(presented, self._admin_hash) or presented in self._staff:
                raise Unauthenticated(
                    "A staff token cannot send reports; use the customer's licence key."
                )
            raise Unauthenticated(
                "This licence key is not known. Check that the instance is configured with the "
                "key issued to your organisation."
            )
        if record.revoked:
            raise Unauthenticated(
                f"Licence key {record.key_id} has been revoked. Configure the instance with a "
                "current key; your account manager can issue one."
            )
        self._used.keys[record.key_id] = _now()
        return LicenseHolder(key_id=record.key_id, customer_id=record.customer_id)
