"""An order's add-ons in forms (SPEC §3): add one, change it, remove it
(``console.document_forms``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from console.document_forms import (
    ADDON_ITEMS,
    ID_HINT,
    CustomerId,
    Field,
    Form,
    PartId,
    addon_index,
    day_field,
    order_index,
    quantities,
    save,
    show,
    stored_document,
)
from console.web import ConsoleRoute, FormDep, SessionDep, confirmation, confirmed
from core.dependencies import StoreDep
from core.usage_metrics import label

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)

# -- an add-on --------------------------------------------------------------------------------


def _addon_form(
    customer_id: str, order_id: str, addon: Mapping[str, Any], version: str, *, new: bool
) -> Form:
    entitled = addon.get("entitlements") or {}
    addon_id = str(addon.get("addon_id") or "")
    base = f"/ui/customers/{customer_id}/orders/{order_id}"
    return Form(
        title=f"New add-on to order {order_id}"
        if new
        else f"Add-on {addon_id} to order {order_id}",
        action=f"{base}/new-addon" if new else f"{base}/addons/{addon_id}",
        back=f"/ui/customers/{customer_id}#orders",
        submit="Add the add-on" if new else "Save the add-on",
        version=version,
        intro="Its quantities are added to the order's from the day it is effective; user "
        "packs hold as many users as the order's packs.",
        fieldsets=[
            (
                "Add-on",
                [
                    Field("addon_id", "Add-on id", addon_id, hint=ID_HINT + ".", required=True),
                    Field(
                        "effective",
                        "Effective from",
                        str(addon.get("effective") or ""),
                        kind="day",
                        hint="Within the order's term.",
                        required=True,
                    ),
                ],
            ),
            (
                "Adds",
                [
                    Field(
                        item,
                        label(item),
                        str(entitled.get(item) if entitled.get(item) is not None else ""),
                        kind="number",
                    )
                    for item in ADDON_ITEMS
                ],
            ),
        ],
    )


def _addon_of(form: Mapping[str, str]) -> dict[str, Any]:
    return {
        "addon_id": form.get("addon_id", "").strip(),
        "effective": day_field(form.get("effective", "")),
        "entitlements": quantities(form, ADDON_ITEMS),
    }


def _typed(form: Mapping[str, str]) -> dict[str, Any]:
    return {**_addon_of(form), "entitlements": {i: form.get(i, "") for i in ADDON_ITEMS}}


@router.get("/customers/{customer_id}/orders/{order_id}/new-addon")
async def new_addon(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    customer_id: CustomerId,
    order_id: PartId,
) -> HTMLResponse:
    """The form for a new add-on to an order (admins)."""
    session.staff.require_admin()
    document, version = await stored_document(store, customer_id)
    order_index(document, order_id)
    return show(request, session, _addon_form(customer_id, order_id, {}, version, new=True))


@router.post("/customers/{customer_id}/orders/{order_id}/new-addon")
async def add_addon(
    request: Request,
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    customer_id: CustomerId,
    order_id: PartId,
) -> Response:
    """Add an add-on to an order."""
    document, _ = await stored_document(store, customer_id)
    index = order_index(document, order_id)
    orders = list(document["orders"])
    addons = [*orders[index].get("addons", []), _addon_of(form)]
    orders[index] = {**orders[index], "addons": addons}
    return await save(
        request,
        session,
        store,
        customer_id=customer_id,
        document={**document, "orders": orders},
        form=_addon_form(customer_id, order_id, _typed(form), form.get("version", ""), new=True),
        prefix=("orders", index, "addons", len(addons) - 1),
        saved=f"Add-on {addons[-1]['addon_id']} added to order {order_id}.",
    )


@router.get("/customers/{customer_id}/orders/{order_id}/addons/{addon_id}")
async def addon(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    customer_id: CustomerId,
    order_id: PartId,
    addon_id: PartId,
) -> HTMLResponse:
    """The form of one add-on (admins)."""
    session.staff.require_admin()
    document, version = await stored_document(store, customer_id)
    stored = document["orders"][order_index(document, order_id)]
    found = stored["addons"][addon_index(stored, addon_id)]
    return show(request, session, _addon_form(customer_id, order_id, found, version, new=False))


@router.post("/customers/{customer_id}/orders/{order_id}/addons/{addon_id}")
async def save_addon(
    request: Request,
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    customer_id: CustomerId,
    order_id: PartId,
    addon_id: PartId,
) -> Response:
    """Save one add-on."""
    document, _ = await stored_document(store, customer_id)
    index = order_index(document, order_id)
    orders = list(document["orders"])
    addons = list(orders[index].get("addons", []))
    position = addon_index(orders[index], addon_id)
    addons[position] = _addon_of(form)
    orders[index] = {**orders[index], "addons": addons}
    drawn = _addon_form(customer_id, order_id, _typed(form), form.get("version", ""), new=False)
    drawn.action = f"/ui/customers/{customer_id}/orders/{order_id}/addons/{addon_id}"
    return await save(
        request,
        session,
        store,
        customer_id=customer_id,
        document={**document, "orders": orders},
        form=drawn,
        prefix=("orders", index, "addons", position),
        saved=f"Add-on {addons[position]['addon_id']} of order {order_id} saved.",
    )


@router.post("/customers/{customer_id}/orders/{order_id}/addons/{addon_id}/remove")
async def remove_addon(
    request: Request,
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    customer_id: CustomerId,
    order_id: PartId,
    addon_id: PartId,
) -> Response:
    """Remove an add-on, once confirmed."""
    document, version = await stored_document(store, customer_id)
    index = order_index(document, order_id)
    orders = list(document["orders"])
    position = addon_index(orders[index], addon_id)
    if not confirmed(form):
        return confirmation(
            request,
            session,
            title=f"Remove add-on {addon_id} from order {order_id}?",
            consequence=f"What {addon_id} adds leaves {customer_id}'s entitlements from the "
            "next evaluation on. The audit log keeps it, and the customer's page can put it "
            "back from there.",
            confirm_label=f"Remove {addon_id}",
            fields={"version": form.get("version", version)},
            back=f"/ui/customers/{customer_id}#orders",
        )
    removed = orders[index]["addons"][position]
    orders[index] = {
        **orders[index],
        "addons": [a for i, a in enumerate(orders[index]["addons"]) if i != position],
    }
    return await save(
        request,
        session,
        store,
        customer_id=customer_id,
        document={**document, "orders": orders},
        form=_addon_form(customer_id, order_id, removed, form.get("version", ""), new=False),
        prefix=("orders", index),
        saved=f"Add-on {addon_id} removed from order {order_id}.",
    )
