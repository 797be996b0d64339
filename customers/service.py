"""Customers, their order forms and licence keys: the admin side, every change audited."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from core import repository as audit_repository
from core.auth import Actor, Keyring, LicenseKeyRecord, hash_secret, new_license_key
from core.database import Connection
from core.days import latest_finished_day
from core.errors import Conflict, InvalidPayload, NotFound
from core.quarters import attestation_due_on
from core.store import Store
from core.usage_metrics import ACTIVITY_DAYS
from core.wording import counted
from customers import repository
from customers.schemas import (
    Attestation,
    Customer,
    CustomerDocument,
    Instance,
    LicenseKeyCreated,
)

log = logging.getLogger("statreport.admin")


async def upsert_customer(
    store: Store,
    *,
    customer_id: str,
    document: CustomerDocument,
    actor: Actor,
    version: datetime | None = None,
    create: bool = False,
) -> Customer:
    """Create or replace a customer and all its order forms, in one audited transaction.

    With ``create``, only a new customer is written; with ``version`` (the ``updated_at`` the
    change was drawn from), only that version is replaced: a form opened before a colleague's
    change is refused (409), never saved over it."""

    def write(con: Connection) -> dict[str, Any]:
        before = repository.customer_row(con, customer_id=customer_id)
        if create and before is not None:
            raise Conflict(
                f"A customer {customer_id!r} already exists; open its page to change it, or "
                "choose another id."
            )
        if version is not None and (before is None or before["updated_at"] != version):
            raise Conflict(
                f"Customer {customer_id!r} was changed by someone else since this form was "
                "opened; nothing was saved. Reload its page, then make the change again."
            )
        now = store.stamp()  # what the evaluation knows from now on (SPEC §11 v3)
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


async def get_customer(
    store: Store, *, customer_id: str, keyring: Keyring | None = None
) -> dict[str, Any]:
    """One customer with its licence keys (ids and dates only; with ``keyring``, the uses of
    the last minute not yet written included)."""

    def read(con: Connection) -> dict[str, Any] | None:
        row = repository.customer_row(con, customer_id=customer_id)
        if row is None:
            return None
        customer = Customer.model_validate(row).model_dump(mode="json", exclude_none=True)
        keys = repository.customer_license_keys(con, customer_id=customer_id)
        used = keyring.last_used().keys if keyring is not None else {}
        customer["license_keys"] = [
            {**key, "last_used_at": used.get(key["key_id"], key["last_used_at"])} for key in keys
        ]
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
    store: Store, keyring: Keyring, *, customer_id: str, actor: Actor
) -> LicenseKeyCreated:
    """Issue a key for a customer; only its hash is stored."""
    key_id, license_key = new_license_key()
    record = LicenseKeyRecord(
        key_id=key_id, customer_id=customer_id, key_hash=hash_secret(license_key), revoked=False
    )

    def write(con: Connection) -> bool:
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


async def revoke_license_key(store: Store, keyring: Keyring, *, key_id: str, actor: Actor) -> None:
    """Revoke a key; reports sent with it are refused from now on."""

    def write(con: Connection) -> bool:
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


def _instance(row: dict[str, Any], *, as_of: date) -> Instance:
    """An instance's row, with whether it was active on ``as_of`` (SPEC §5: a report within
    the activity window, and no retirement between that report and ``as_of``)."""
    last = row["last_report_by_as_of"]
    retired_on = row["retired_on"]
    active = (
        last is not None
        and (as_of - last).days < ACTIVITY_DAYS
        and not (retired_on is not None and last <= retired_on < as_of)
    )
    return Instance.model_validate({**row, "active_on_as_of": active})


def instance_state(instance: Instance, *, now: datetime) -> tuple[str, str]:
    """An instance's state in words, and the rule behind them: what the console shows."""
    today, as_of = now.astimezone(UTC).date(), latest_finished_day(now)
    rule = (
        f"Active on a finished day (here {as_of}, UTC): it reported that day or on one of the "
        f"{ACTIVITY_DAYS - 1} days before, and was not retired by then. Only active instances "
        "count towards usage."
    )
    if instance.retired_on is not None and instance.last_report_on <= instance.retired_on:
        return f"retired {instance.retired_on}", "Recorded as decommissioned that day: " + rule
    if instance.last_report_on >= today:
        state = "reported today"
        if instance.active_on_as_of:
            state += f", active on {as_of}"
        return state, rule
    if instance.active_on_as_of:
        return f"active on {as_of}", rule
    silent = (today - instance.last_report_on).days
    return f"silent {counted(silent, 'day')}", rule


async def list_instances(store: Store, *, customer_id: str) -> list[Instance]:
    """Every instance that ever reported for a customer; 404 for an unknown customer."""
    as_of = latest_finished_day()

    def read(con: Connection) -> list[dict[str, Any]] | None:
        if repository.customer_row(con, customer_id=customer_id) is None:
            return None
        return repository.instances(con, customer_id=customer_id, as_of=as_of)

    rows = await store.read(read)
    if rows is None:
        raise NotFound(f"No customer {customer_id!r}. List customers with GET /v1/customers.")
    return [_instance(row, as_of=as_of) for row in rows]


@dataclass(frozen=True, slots=True)
class FleetSummary:
    """One customer's instances at a glance."""

    active_instances: int
    last_report_on: date | None


async def fleet_summary(store: Store, *, customer_ids: list[str]) -> dict[str, FleetSummary]:
    """Per customer of ``customer_ids`` that ever reported: its instances active on the latest
    finished day and its latest report day, by the same rule as ``list_instances``."""
    as_of = latest_finished_day()
    rows = await store.read(
        lambda con: repository.instances(con, customer_ids=customer_ids, as_of=as_of)
    )
    summary: dict[str, FleetSummary] = {}
    for row in rows:
        instance = _instance(row, as_of=as_of)
        before = summary.get(row["customer_id"], FleetSummary(0, None))
        summary[row["customer_id"]] = FleetSummary(
            before.active_instances + instance.active_on_as_of,
            max(filter(None, (before.last_report_on, instance.last_report_on))),
        )
    return summary


async def attestations(store: Store, *, customer_id: str) -> list[Attestation]:
    """A customer's attestations as first received, newest quarter first, each with the day it
    was due and whether it came late; 404 for an unknown customer."""

    def read(con: Connection) -> list[dict[str, Any]] | None:
        if repository.customer_row(con, customer_id=customer_id) is None:
            return None
        return repository.customer_attestations(con, customer_id=customer_id)

    rows = await store.read(read)
    if rows is None:
        raise NotFound(f"No customer {customer_id!r}. List customers with GET /v1/customers.")
    return [
        Attestation(
            **row,
            due_on=attestation_due_on(row["quarter"]),
            late=row["received_at"].astimezone(UTC).date() > attestation_due_on(row["quarter"]),
        )
        for row in rows
    ]


async def set_retirement(
    store: Store, *, instance_id: str, retired_on: date | None, actor: Actor
) -> Instance:
    """Record that an installation was decommissioned on ``retired_on`` (None: undo it), in one
    audited transaction. 404 for an unknown instance; 422 for a day before its first report
    or after today."""
    now = datetime.now(UTC)
    today, as_of = now.date(), latest_finished_day(now)

    def write(con: Connection) -> dict[str, Any]:
        rows = repository.instances(con, instance_id=instance_id, as_of=as_of)
        if not rows:
            raise NotFound(
                f"No instance {instance_id} has reported. List a customer's instances with "
                "GET /v1/customers/{id}/instances."
            )
        (before,) = rows
        if retired_on is not None and not before["first_report_on"] <= retired_on <= today:
            raise InvalidPayload(
                f"retired_on {retired_on} is outside {before['first_report_on']} (the instance's "
                f"first report) to {today} (today, UTC); give the day it was decommissioned.",
                errors=[{"loc": ["body", "retired_on"], "msg": "outside first report to today"}],
            )
        repository.set_retirement(con, instance_id=instance_id, retired_on=retired_on)
        (after,) = repository.instances(con, instance_id=instance_id, as_of=as_of)
        audit_repository.append_audit(
            con,
            at=store.stamp(),  # a retirement is known from its audit entry (SPEC §11 v3)
            actor=actor,
            action="instance.retire" if retired_on is not None else "instance.unretire",
            target=f"instance:{instance_id}",
            before={"customer_id": before["customer_id"], "retired_on": before["retired_on"]},
            after={"customer_id": after["customer_id"], "retired_on": after["retired_on"]},
        )
        return after

    row = await store.write(write)
    log.info(
        "event=instance.retirement instance=%s retired_on=%s actor=%s",
        instance_id,
        retired_on,
        actor,
    )
    return _instance(row, as_of=as_of)
