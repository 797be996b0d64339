"""Licence keys and the admin token: generated with enough entropy, kept only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from core.errors import Unauthenticated

LICENSE_KEY_PREFIX = "srk_"


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret; enough, since keys are random, not passwords."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_license_key() -> tuple[str, str]:
    """A new ``(key_id, license_key)``; the key carries 256 random bits."""
    return "key_" + secrets.token_hex(8), LICENSE_KEY_PREFIX + secrets.token_urlsafe(32)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


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
    """The admin token's hash and every licence key's hash, checked in constant time."""

    def __init__(self, *, admin_token: str, records: list[LicenseKeyRecord]) -> None:
        self._admin_hash = hash_secret(admin_token)
        self._keys: dict[str, LicenseKeyRecord] = {r.key_hash: r for r in records}

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

    def is_admin(self, token: str | None) -> bool:
        """True only for the admin token."""
        if token is None:
            return False
        return hmac.compare_digest(hash_secret(token), self._admin_hash)

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
            if hmac.compare_digest(presented, self._admin_hash):
                raise Unauthenticated(
                    "The admin token cannot send reports; use the customer's licence key."
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
        return LicenseHolder(key_id=record.key_id, customer_id=record.customer_id)

    def require_admin(self, authorization: str | None) -> None:
        """Pass only for the admin token; a licence key never works here."""
        token = bearer_token(authorization)
        if token is None:
            raise Unauthenticated(
                "Admin endpoints need 'Authorization: Bearer <admin token>' "
                "(the server's STATREPORT_ADMIN_TOKEN)."
            )
        if self.is_admin(token):
            return
        if hash_secret(token) in self._keys:
            raise Unauthenticated(
                "A licence key cannot be used on admin endpoints; use the admin token."
            )
        raise Unauthenticated("The admin token is wrong. Use the server's STATREPORT_ADMIN_TOKEN.")
