"""Customers, their order forms and licence keys: the admin side, every change audited."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import duckdb

from core import repository as audit_repository
from core.auth import Keyring, LicenseKeyRecord, hash_secret, new_license_key
from core.errors import NotFound
from core.store import Store
from customers import repository
from customers.schemas import Customer, CustomerDocument, LicenseKeyCreated

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
        audit_repository.append_audit(
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
        audit_repository.append_audit(
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
            audit_repository.append_audit(
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
