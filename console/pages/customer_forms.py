"""A new customer, its account details, and putting its document back as it was before a
change (SPEC §3), in forms (``console.document_forms``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.responses import HTMLResponse, Response

from console.document_forms import (
    CUSTOMER_ID,
    ID_HINT,
    CustomerId,
    Field,
    Form,
    day_field,
    save,
    show,
    stored_document,
)
from console.web import ConsoleRoute, FormDep, SessionDep, confirmation, confirmed
from core.dependencies import StoreDep
from core.errors import NotFound
from customers.schemas import READ_ONLY_FIELDS
from staff import audit

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)

# -- a new customer, and its account details ---------------------------------------------------


def _details_fields(values: Mapping[str, Any]) -> list[Field]:
    return [
        Field("name", "Name", str(values.get("name") or ""), required=True),
        Field(
            "account_manager",
            "Account manager",
            str(values.get("account_manager") or ""),
            kind="email",
            hint="Gets the weekly email of this customer's findings.",
            required=True,
        ),
        Field(
            "air_gapped",
            "Air-gapped: sends a signed quarterly attestation instead of phoning home",
            "true" if values.get("air_gapped") in (True, "true", "on") else "",
            kind="checkbox",
        ),
        Field(
            "air_gapped_since",
            "Air-gapped since",
            str(values.get("air_gapped_since") or ""),
            kind="day",
            hint="Quarters that end before it owe no attestation; empty: the start of its "
            "earliest order.",
        ),
    ]


def _details_of(form: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": form.get("name", ""),
        "account_manager": form.get("account_manager", "").strip(),
        "air_gapped": form.get("air_gapped") in ("true", "on"),
        "air_gapped_since": day_field(form.get("air_gapped_since", "")),
    }


def _new_customer_form(values: Mapping[str, Any]) -> Form:
    return Form(
        title="New customer",
        action="/ui/new-customer",
        back="/ui/customers",
        submit="Create the customer",
        version="",
        intro="Its order forms and licence keys are added on its page once it exists.",
        fieldsets=[
            (
                "Customer",
                [
                    Field(
                        "customer_id",
                        "Customer id",
                        str(values.get("customer_id") or ""),
                        hint=f"How reports and the API name it; {ID_HINT}. It cannot change.",
                        required=True,
                    ),
                    *_details_fields(values),
                ],
            )
        ],
    )


@router.get("/new-customer")
async def new_customer(
    request: Request,
    session: SessionDep,
    customer_id: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    """The form for a new customer (admins)."""
    session.staff.require_admin()
    return show(request, session, _new_customer_form({"customer_id": customer_id}))


@router.post("/new-customer")
async def create_customer(
    request: Request, form: FormDep, session: SessionDep, store: StoreDep
) -> Response:
    """Create a customer with no order forms yet, as ``PUT /v1/customers/{id}`` does for an
    id not taken."""
    drawn = _new_customer_form(form)
    customer_id = form.get("customer_id", "").strip()
    try:
        CUSTOMER_ID.validate_python(customer_id)
    except ValidationError:
        drawn.fields()["customer_id"].error = (
            f"must be 1 to 64 {ID_HINT}" if customer_id else "give the customer an id"
        )
        return show(request, session, drawn, status=422)
    return await save(
        request,
        session,
        store,
        customer_id=customer_id,
        document={**_details_of(form), "orders": []},
        form=drawn,
        prefix=(),
        saved=f"Customer {customer_id} created. Add its order forms below, then issue it a "
        "licence key.",
        create=True,
    )


def _details_form(customer_id: str, values: Mapping[str, Any], version: str) -> Form:
    return Form(
        title=f"Account details of {customer_id}",
        action=f"/ui/customers/{customer_id}/details",
        back=f"/ui/customers/{customer_id}",
        submit="Save the account details",
        version=version,
        fieldsets=[("Account", _details_fields(values))],
    )


@router.get("/customers/{customer_id}/details")
async def details(
    request: Request, session: SessionDep, store: StoreDep, customer_id: CustomerId
) -> HTMLResponse:
    """The form for a customer's name, account manager and air-gapped status (admins)."""
    session.staff.require_admin()
    document, version = await stored_document(store, customer_id)
    return show(request, session, _details_form(customer_id, document, version))


@router.post("/customers/{customer_id}/details")
async def save_details(
    request: Request, form: FormDep, session: SessionDep, store: StoreDep, customer_id: CustomerId
) -> Response:
    """Save the account details; the order forms stay as they are."""
    document, _ = await stored_document(store, customer_id)
    return await save(
        request,
        session,
        store,
        customer_id=customer_id,
        document={**document, **_details_of(form)},
        form=_details_form(customer_id, form, form.get("version", "")),
        prefix=(),
        saved="Account details saved.",
    )


# -- putting back an earlier version ----------------------------------------------------------


@router.post("/customers/{customer_id}/restore")
async def restore(
    request: Request, form: FormDep, session: SessionDep, store: StoreDep, customer_id: CustomerId
) -> Response:
    """Put back the document as it was before an audited change (the undo of a removal, or
    of any edit), once confirmed; the restoring is itself a change in the audit log."""
    try:
        audit_id = int(form.get("audit_id", ""))
    except ValueError:
        raise NotFound("Name the audit entry to restore from (audit_id).") from None
    entry = await audit.audit_entry(store, audit_id=audit_id)
    earlier = entry.before if entry.action == "customer.update" else None
    if entry.target != f"customer:{customer_id}" or not isinstance(earlier, dict):
        raise NotFound(
            f"Audit entry {audit_id} holds no earlier document of {customer_id}; choose one of "
            "its changes in the audit log."
        )
    _, version = await stored_document(store, customer_id)
    when = entry.at.strftime("%Y-%m-%d %H:%M:%S UTC")
    if not confirmed(form):
        return confirmation(
            request,
            session,
            title=f"Put back {customer_id}'s document as it was before {when}?",
            consequence=f"Its account details, order forms and add-ons become again what they "
            f"were before {entry.actor}'s change ({entry.action}) of {when}; every later "
            "change to them is undone. The audit log keeps the document as it is now.",
            confirm_label="Put it back",
            fields={"audit_id": str(audit_id), "version": version},
            back=f"/ui/audit?target=customer:{customer_id}",
        )
    document = {k: v for k, v in earlier.items() if k not in READ_ONLY_FIELDS}
    drawn = _details_form(customer_id, document, form.get("version", ""))
    drawn.title = f"Putting back {customer_id}'s document"
    return await save(
        request,
        session,
        store,
        customer_id=customer_id,
        document=document,
        form=drawn,
        prefix=(),
        saved=f"The document is again as it was before {entry.actor}'s change of {when}.",
    )
