"""Customers, their order forms and licence keys: the admin side, every change audited."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ingest import repository
from ingest.auth import Keyring, hash_secret, new_license_key
from ingest.errors import Conflict, InvalidPayload, NotFound
from ingest.repository import LicenseKeyRecord
from ingest.schemas import (
    AuditEntry,
    BackupMade,
    Customer,
    CustomerDocument,
    LicenseKeyCreated,
)
from ingest.store import Store

log = logging.getLogger("statreport.admin")


async def upsert_customer(
    store: Store, *, customer_id: str, document: CustomerDocument, actor: str
) -> Customer:
    """Create or replace a customer and all its order forms, in one audited transaction."""

    def write(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        before = repository.customer_row(con, customer_id=customer_id)
        now = datetime.now(UTC)
        created_at = before["created_at"] if before else now
        repository.replace_customer(
            con, customer_id=customer_id, document=document, created_at=created_at, updated_at=now
        )
        after = repository.customer_row(con, customer_id=customer_id)
        repository.append_audit(
            con,
            at=now,
            actor=actor,
            action="customer.create" if before is None else "customer.update",
            target=f"customer:{customer_id}",
            before=before,
            after=after,
        )
        assert after is not None
        return after

    stored = await store.write(write)
    log.info("event=customer.upserted customer=%s actor=%s", customer_id, actor)
    return Customer.model_validate(stored)


async def get_customer(store: Store, *, customer_id: str) -> dict[str, Any]:
    """One customer with its licence keys (ids and dates only)."""

    def read(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
        row = repository.customer_row(con, customer_id=customer_id)
        if row is None:
            return None
        customer = Customer.model_validate(row).model_dump(mode="json", exclude_none=True)
        customer["license_keys"] = repository.customer_license_keys(con, customer_id=customer_id)
        return customer

    found = await store.read(read)
    if found is None:
        raise NotFound(f"No customer {customer_id!r}. Create it with PUT /v1/customers/{{id}}.")
    return found


async def list_customers(store: Store) -> list[Customer]:
    """Every customer, by id."""
    rows = await store.read(repository.customer_rows)
    return [Customer.model_validate(row) for row in rows]


async def create_license_key(
    store: Store, keyring: Keyring, *, customer_id: str, actor: str
) -> LicenseKeyCreated:
    """Issue a key for a customer; only its hash is stored."""
    key_id, license_key = new_license_key()
    record = LicenseKeyRecord(
        key_id=key_id, customer_id=customer_id, key_hash=hash_secret(license_key), revoked=False
    )

    def write(con: duckdb.DuckDBPyConnection) -> bool:
        if repository.customer_row(con, customer_id=customer_id) is None:
            return False
        now = datetime.now(UTC)
        repository.insert_license_key(con, record=record, created_at=now)
        repository.append_audit(
            con,
            at=now,
            actor=actor,
            action="license_key.create",
            target=f"license_key:{key_id}",
            before=None,
            after={"key_id": key_id, "customer_id": customer_id},
        )
        return True

    if not await store.write(write):
        raise NotFound(
            f"No customer {customer_id!r}; create it with PUT /v1/customers/{{id}} before "
            "issuing keys."
        )
    keyring.add(record)
    log.info("event=license_key.created key_id=%s customer=%s actor=%s", key_id, customer_id, actor)
    return LicenseKeyCreated(key_id=key_id, customer_id=customer_id, license_key=license_key)


async def revoke_license_key(store: Store, keyring: Keyring, *, key_id: str, actor: str) -> None:
    """Revoke a key; reports sent with it are refused from now on."""

    def write(con: duckdb.DuckDBPyConnection) -> bool:
        before = repository.license_key(con, key_id=key_id)
        if before is None:
            return False
        if before["revoked_at"] is None:
            now = datetime.now(UTC)
            repository.revoke_license_key(con, key_id=key_id, at=now)
            repository.append_audit(
                con,
                at=now,
                actor=actor,
                action="license_key.revoke",
                target=f"license_key:{key_id}",
                before=before,
                after=repository.license_key(con, key_id=key_id),
            )
        return True

    if not await store.write(write):
        raise NotFound(
            f"No licence key {key_id!r}. List a customer's keys with GET /v1/customers/{{id}}."
        )
    keyring.revoke(key_id)
    log.info("event=license_key.revoked key_id=%s actor=%s", key_id, actor)


async def audit_log(store: Store, *, target: str | None, limit: int) -> list[AuditEntry]:
    """The newest admin changes first."""
    rows = await store.read(lambda con: repository.audit_entries(con, target=target, limit=limit))
    return [AuditEntry.model_validate(row) for row in rows]


async def backup(store: Store, *, destination: str, actor: str) -> BackupMade:
    """Write a consistent copy of the database to a new file while the server runs."""
    target = Path(destination)
    if not target.is_absolute():
        raise InvalidPayload(
            f"destination {destination!r} must be an absolute path on the server's machine.",
            errors=[{"loc": ["body", "destination"], "msg": "must be an absolute path"}],
        )

    def copy(con: duckdb.DuckDBPyConnection) -> int:
        # On the writer thread: no write can land between the first table copied and the last.
        if target.exists():
            raise Conflict(f"{target} already exists; choose a new file name. Nothing was written.")
        if not target.parent.is_dir():
            raise InvalidPayload(
                f"The folder {target.parent} does not exist on the server's machine; create it.",
                errors=[{"loc": ["body", "destination"], "msg": "its folder does not exist"}],
            )
        repository.copy_database(con, destination=str(target))
        return target.stat().st_size

    started = time.perf_counter()
    size = await store.write(copy, transaction=False)
    seconds = time.perf_counter() - started
    await store.write(
        lambda con: repository.append_audit(
            con,
            at=datetime.now(UTC),
            actor=actor,
            action="database.backup",
            target=f"backup:{target}",
            before=None,
            after={"destination": str(target), "bytes": size},
        )
    )
    log.info("event=backup.written path=%s bytes=%d seconds=%.2f", target, size, seconds)
    return BackupMade(destination=str(target), bytes=size, seconds=round(seconds, 3))
