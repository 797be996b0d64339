"""A customer's order forms in forms (SPEC §3): add one, change its term, quantities and
counting rules, remove it (``console.document_forms``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from console.document_forms import (
    ID_HINT,
    ORDER_ITEMS,
    RULE_WORDS,
    CustomerId,
    Field,
    Form,
    PartId,
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
from customers.schemas import CountedMetric

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)

# -- an order form --------------------------------------------------------------------------


def _order_form(customer_id: str, order: Mapping[str, Any], version: str, *, new: bool) -> Form:
    entitled = order.get("entitlements") or {}
    counting = order.get("counting") or {}
    quantities = [
        Field(
            item,
            label(item),
            str(entitled.get(item, "") if entitled.get(item) is not None else ""),
            kind="number",
            hint="How many users one pack holds." if item == "users_per_pack" else "",
        )
        for item in ORDER_ITEMS
    ]
    rules = [
        Field(
            f"counting.{metric}",
            f"{label(metric)}, counted as",
            str(counting.get(metric, "sum")),
            kind="select",
            options=list(RULE_WORDS.items()),
        )
        for metric in get_args(CountedMetric)
    ]
    order_id = str(order.get("order_id") or "")
    return Form(
        title=f"New order form for {customer_id}" if new else f"Order form {order_id}",
        action=f"/ui/customers/{customer_id}/new-order"
        if new
        else f"/ui/customers/{customer_id}/orders/{order_id}",
        back=f"/ui/customers/{customer_id}#orders",
        submit="Add the order form" if new else "Save the order form",
        version=version,
        intro="An empty quantity is not sold: that metric is not compared with anything. "
        "A reported metric adds up over the customer's active instances as its counting rule "
        "says; orders whose terms overlap must count alike.",
        fieldsets=[
            (
                "Order",
                [
                    Field(
                        "order_id",
                        "Order id",
                        order_id,
                        hint=f"As on the signed order form; {ID_HINT}.",
                        required=True,
                    ),
                    Field(
                        "start", "Starts", str(order.get("start") or ""), kind="day", required=True
                    ),
                    Field(
                        "end",
                        "Ends",
                        str(order.get("end") or ""),
                        kind="day",
                        hint="Its last day: the order is in force up to and including it.",
                        required=True,
                    ),
                ],
            ),
            ("Entitlements", quantities),
            ("How each metric is counted across instances", rules),
        ],
    )


def _order_of(form: Mapping[str, str], before: Mapping[str, Any]) -> dict[str, Any]:
    """The order the form describes; add-ons come from the stored order, and a rule the
    document named explicitly stays named."""
    named = before.get("counting") or {}
    counting = {
        metric: rule
        for metric in get_args(CountedMetric)
        if (rule := form.get(f"counting.{metric}", "sum")) != "sum" or metric in named
    }
    return {
        "order_id": form.get("order_id", "").strip(),
        "start": day_field(form.get("start", "")),
        "end": day_field(form.get("end", "")),
        "entitlements": quantities(form, ORDER_ITEMS),
        "addons": list(before.get("addons", [])),
        **({"counting": counting} if counting else {}),
    }


@router.get("/customers/{customer_id}/new-order")
async def new_order(
    request: Request, session: SessionDep, store: StoreDep, customer_id: CustomerId
) -> HTMLResponse:
    """The form for a new order form (admins)."""
    session.staff.require_admin()
    _, version = await stored_document(store, customer_id)
    return show(request, session, _order_form(customer_id, {}, version, new=True))


@router.post("/customers/{customer_id}/new-order")
async def add_order(
    request: Request, form: FormDep, session: SessionDep, store: StoreDep, customer_id: CustomerId
) -> Response:
    """Add an order form to the customer's document."""
    document, _ = await stored_document(store, customer_id)
    order = _order_of(form, {})
    orders = [*document.get("orders", []), order]
    return await save(
        request,
        session,
        store,
        customer_id=customer_id,
        document={**document, "orders": orders},
        form=_order_form(customer_id, {**order, **_raw(form)}, form.get("version", ""), new=True),
        prefix=("orders", len(orders) - 1),
        saved=f"Order form {order['order_id']} added.",
    )


def _raw(form: Mapping[str, str]) -> dict[str, Any]:
    """What was typed, to show again beside an error exactly as it was typed."""
    return {
        "entitlements": {item: form.get(item, "") for item in ORDER_ITEMS},
        "counting": {
            metric: form.get(f"counting.{metric}", "sum") for metric in get_args(CountedMetric)
        },
    }


@router.get("/customers/{customer_id}/orders/{order_id}")
async def order(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    customer_id: CustomerId,
    order_id: PartId,
) -> HTMLResponse:
    """The form of one order form (admins)."""
    session.staff.require_admin()
    document, version = await stored_document(store, customer_id)
    stored = document["orders"][order_index(document, order_id)]
    return show(request, session, _order_form(customer_id, stored, version, new=False))


@router.post("/customers/{customer_id}/orders/{order_id}")
async def save_order(
    request: Request,
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    customer_id: CustomerId,
    order_id: PartId,
) -> Response:
    """Save one order form; its add-ons stay as they are."""
    document, _ = await stored_document(store, customer_id)
    index = order_index(document, order_id)
    orders = list(document["orders"])
    orders[index] = _order_of(form, orders[index])
    drawn = _order_form(
        customer_id, {**orders[index], **_raw(form)}, form.get("version", ""), new=False
    )
    drawn.action = f"/ui/customers/{customer_id}/orders/{order_id}"
    return await save(
        request,
        session,
        store,
        customer_id=customer_id,
        document={**document, "orders": orders},
        form=drawn,
        prefix=("orders", index),
        saved=f"Order form {orders[index]['order_id']} saved.",
    )


@router.post("/customers/{customer_id}/orders/{order_id}/remove")
async def remove_order(
    request: Request,
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    customer_id: CustomerId,
    order_id: PartId,
) -> Response:
    """Remove an order form and its add-ons, once confirmed."""
    document, version = await stored_document(store, customer_id)
    index = order_index(document, order_id)
    if not confirmed(form):
        addons = len(document["orders"][index].get("addons", []))
        return confirmation(
            request,
            session,
            title=f"Remove order form {order_id}?",
            consequence=f"Order {order_id} and its {addons} add-on{'s' if addons != 1 else ''} "
            f"leave {customer_id}'s document: from the next evaluation, the days it covered "
            "are compared without its entitlements. The audit log keeps it, and the "
            "customer's page can put it back from there.",
            confirm_label=f"Remove {order_id}",
            fields={"version": form.get("version", version)},
            back=f"/ui/customers/{customer_id}#orders",
        )
    orders = [o for i, o in enumerate(document["orders"]) if i != index]
    return await save(
        request,
        session,
        store,
        customer_id=customer_id,
        document={**document, "orders": orders},
        form=_order_form(
            customer_id, document["orders"][index], form.get("version", ""), new=False
        ),
        prefix=("orders",),
        saved=f"Order form {order_id} removed.",
    )
