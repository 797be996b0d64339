"""Admin routes: customers and order forms, licence keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from core.dependencies import ActorDep, KeyringDep, SettingsDep, StaffOnly, StoreDep
from core.identifiers import CustomerIdPath, InstanceIdPath, KeyIdPath
from customers import links
from customers import service as customers
from customers.schemas import (
    Attestation,
    Customer,
    CustomerDocument,
    Instance,
    LicenseKeyCreated,
    Link,
    LinkCreated,
    LinkRequest,
    Retirement,
)

router = APIRouter(tags=["admin"], dependencies=[StaffOnly])


@router.put(
    "/v1/customers/{customer_id}",
    summary="Create or replace a customer and its orders",
    response_model_exclude_none=True,
)
async def put_customer(
    customer_id: CustomerIdPath, document: CustomerDocument, store: StoreDep, actor: ActorDep
) -> Customer:
    """Declarative upsert: the body is the whole customer, all order forms included."""
    return await customers.upsert_customer(
        store, customer_id=customer_id, document=document, actor=actor
    )


@router.get("/v1/customers", summary="List customers", response_model_exclude_none=True)
async def get_customers(store: StoreDep) -> list[Customer]:
    """Every customer with its order forms."""
    return await customers.list_customers(store)


@router.get("/v1/customers/{customer_id}", summary="One customer, with its licence keys")
async def get_customer(
    customer_id: CustomerIdPath, store: StoreDep, keyring: KeyringDep
) -> dict[str, Any]:
    """The stored document, its timestamps, and its keys' ids, created, revoked and last used."""
    return await customers.get_customer(store, customer_id=customer_id, keyring=keyring)


@router.post(
    "/v1/customers/{customer_id}/license-keys",
    status_code=201,
    summary="Issue a licence key (shown once)",
)
async def post_license_key(
    customer_id: CustomerIdPath, store: StoreDep, keyring: KeyringDep, actor: ActorDep
) -> LicenseKeyCreated:
    """The key is in this answer only; the server keeps its hash."""
    return await customers.create_license_key(store, keyring, customer_id=customer_id, actor=actor)


@router.delete("/v1/license-keys/{key_id}", status_code=204, summary="Revoke a licence key")
async def delete_license_key(
    key_id: KeyIdPath, store: StoreDep, keyring: KeyringDep, actor: ActorDep
) -> Response:
    """From now on, reports sent with this key get 401."""
    await customers.revoke_license_key(store, keyring, key_id=key_id, actor=actor)
    return Response(status_code=204)


@router.get(
    "/v1/customers/{customer_id}/attestations",
    summary="A customer's quarterly attestations, as first received",
)
async def get_attestations(customer_id: CustomerIdPath, store: StoreDep) -> list[Attestation]:
    """Newest quarter first: when each was first stored (sending it again changes nothing),
    the day it was due, whether it came late, and who certified it."""
    return await customers.attestations(store, customer_id=customer_id)


@router.get(
    "/v1/customers/{customer_id}/instances", summary="Every instance that reported for a customer"
)
async def get_instances(customer_id: CustomerIdPath, store: StoreDep) -> list[Instance]:
    """With their latest environment and version, first and last report, report count, last
    sequence, whether active on the latest finished day, and retirement."""
    return await customers.list_instances(store, customer_id=customer_id)


@router.post("/v1/instances/{instance_id}/retire", summary="Record that an instance was retired")
async def post_retirement(
    instance_id: InstanceIdPath, body: Retirement, store: StoreDep, actor: ActorDep
) -> Instance:
    """From the day after ``retired_on`` the activity window no longer carries the instance;
    a later report from it still counts. Audited."""
    return await customers.set_retirement(
        store, instance_id=instance_id, retired_on=body.retired_on, actor=actor
    )


@router.delete("/v1/instances/{instance_id}/retire", summary="Undo an instance's retirement")
async def delete_retirement(
    instance_id: InstanceIdPath, store: StoreDep, actor: ActorDep
) -> Instance:
    """The instance counts as before its retirement was recorded. Audited."""
    return await customers.set_retirement(
        store, instance_id=instance_id, retired_on=None, actor=actor
    )


LinkIdPath = Annotated[str, Path(pattern=r"^lnk_[0-9a-f]{16}$")]


@router.post(
    "/v1/customers/{customer_id}/links",
    status_code=201,
    summary="A read-only link to the customer's own view (its address is shown once)",
)
async def post_link(
    customer_id: CustomerIdPath,
    body: LinkRequest,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> LinkCreated:
    """For the customer's administrator: its findings, evidence, order forms, usage,
    instances, attestations and statements, nothing else, with no account, until it expires
    (1-90 days) or is revoked. Audited."""
    return await links.create(
        store,
        customer_id=customer_id,
        request=body,
        actor=actor,
        base_url=settings.public_url or str(request.base_url),
    )


@router.get("/v1/customers/{customer_id}/links", summary="A customer's links (never a token)")
async def get_links(customer_id: CustomerIdPath, store: StoreDep) -> list[Link]:
    """Newest first, with their views."""
    return await links.list_links(store, customer_id=customer_id)


@router.delete(
    "/v1/customers/{customer_id}/links/{link_id}",
    status_code=204,
    summary="Revoke a link at once, ending its sessions",
)
async def delete_link(
    customer_id: CustomerIdPath, link_id: LinkIdPath, store: StoreDep, actor: ActorDep
) -> Response:
    """It answers 410 from then on. Audited."""
    await links.revoke(store, customer_id=customer_id, link_id=link_id, actor=actor)
    return Response(status_code=204)
