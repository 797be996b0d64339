"""Forms for a customer's document (SPEC §3): a new customer, its account details, an order
form, an add-on, and removing one.

A form changes one part of the document. The whole document is then validated by the model
``PUT /v1/customers/{id}`` uses, so the messages are the API's, shown beside the fields they
are about, and saved through the same audited service. A form carries the version of the
customer it was drawn from: a change someone else made since is refused (409), never saved
over. The JSON document stays on the customer's page as the advanced view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Path, Query, Request
from pydantic import TypeAdapter, ValidationError
from starlette.responses import HTMLResponse, Response

from console.sessions import COOKIE, Session
from console.web import (
    ConsoleRoute,
    FormDep,
    SessionDep,
    actor,
    confirmation,
    confirmed,
    page,
    see_other,
    sessions_of,
)
from core.dependencies import StoreDep
from core.errors import Conflict, NotFound
from core.identifiers import ID_PATTERN, Identifier
from core.problems import describe_validation_errors
from core.usage_metrics import label
from customers import service as customers
from customers.schemas import (
    READ_ONLY_FIELDS,
    AddonEntitlements,
    CountedMetric,
    CountingRule,
    CustomerDocument,
    OrderEntitlements,
)
from staff import audit

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)

CustomerId = Annotated[str, Path(pattern=ID_PATTERN)]
PartId = Annotated[str, Path(pattern=ID_PATTERN)]

#: The quantities of an add-on, and of an order (which also sets the pack size), in order.
ADDON_ITEMS = tuple(AddonEntitlements.model_fields)
ORDER_ITEMS = ("user_packs", "users_per_pack", *ADDON_ITEMS[1:])
assert set(ORDER_ITEMS) == set(OrderEntitlements.model_fields)
#: How each counting rule reads beside its metric.
RULE_WORDS = {
    "sum": "sum of every instance (default)",
    "production": "production instances only",
    "max_instance": "largest single instance",
}
assert set(RULE_WORDS) == set(get_args(CountingRule))
_CUSTOMER_ID = TypeAdapter(Identifier)
_ID_HINT = "letters, digits, '.', '_' and '-', starting with a letter or digit"


@dataclass
class Field:
    """One input of a form, with what the last attempt said about it."""

    name: str
    label: str
    value: str = ""
    kind: str = "text"  # text, email, day, number, checkbox or select
    hint: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    required: bool = False
    error: str = ""


@dataclass
class Form:
    """A whole form: its fields in fieldsets, and the errors no single field owns."""

    title: str
    action: str
    back: str
    submit: str
    version: str
    fieldsets: list[tuple[str, list[Field]]]
    errors: list[str] = field(default_factory=list)
    intro: str = ""

    def fields(self) -> dict[str, Field]:
        return {f.name: f for _, fields in self.fieldsets for f in fields}


# -- reading a form ---------------------------------------------------------------------------


def _quantity(value: str) -> int | str | None:
    """A quantity field: empty is "not sold" (None); a whole number is itself; anything else
    is left for the model to refuse in its own words."""
    value = value.strip().replace(",", "").replace("_", "")
    if not value:
        return None
    return int(value) if value.isdigit() else value


def _quantities(form: Mapping[str, str], items: tuple[str, ...]) -> dict[str, Any]:
    read = {item: _quantity(form.get(item, "")) for item in items}
    return {item: value for item, value in read.items() if value is not None}


def _day(value: str) -> str | None:
    return value.strip() or None


# -- the document, and where its errors belong ------------------------------------------------


async def _document(store: Any, customer_id: str) -> tuple[dict[str, Any], str]:
    """The stored document as the API takes it, and the version it is."""
    stored = await customers.get_customer(store, customer_id=customer_id)
    document = {k: v for k, v in stored.items() if k not in READ_ONLY_FIELDS}
    return document, str(stored["updated_at"])


def _order_index(document: Mapping[str, Any], order_id: str) -> int:
    for index, order in enumerate(document.get("orders", [])):
        if order["order_id"] == order_id:
            return index
    raise NotFound(f"Customer has no order form {order_id!r}; it may have been removed.")


def _addon_index(order: Mapping[str, Any], addon_id: str) -> int:
    for index, addon in enumerate(order.get("addons", [])):
        if addon["addon_id"] == addon_id:
            return index
    raise NotFound(
        f"Order {order['order_id']} has no add-on {addon_id!r}; it may have been removed."
    )


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _place_errors(form: Form, exc: ValidationError, prefix: tuple[Any, ...]) -> None:
    """Put each error beside the field it is about (its location under ``prefix``, the part
    of the document this form edits), and the others above the form, with their place."""
    fields = form.fields()
    for error in describe_validation_errors(exc.errors()):
        loc = tuple(error["loc"])
        rest = loc[len(prefix) :] if loc[: len(prefix)] == prefix else None
        name = None
        if rest:
            if rest[0] in ("entitlements", "counting") and len(rest) > 1:
                name = f"counting.{rest[1]}" if rest[0] == "counting" else str(rest[1])
            elif isinstance(rest[0], str):
                name = rest[0]
        message = _message(error["msg"])
        if name in fields and not fields[name].error:
            fields[name].error = message
        elif rest == () or not loc:  # about this part as a whole
            form.errors.append(message)
        else:
            form.errors.append(f"{'.'.join(str(part) for part in loc)}: {message}")


async def _save(
    request: Request,
    session: Session,
    store: Any,
    *,
    customer_id: str,
    document: dict[str, Any],
    form: Form,
    prefix: tuple[Any, ...],
    saved: str,
    create: bool = False,
) -> Response:
    """Validate and save the changed document; on an error, the form again (422 or 409) with
    the messages beside its fields, and nothing saved."""
    try:
        valid = CustomerDocument.model_validate(document)
        await customers.upsert_customer(
            store,
            customer_id=customer_id,
            document=valid,
            actor=actor(session),
            version=None if create else datetime.fromisoformat(form.version),
            create=create,
        )
    except ValidationError as exc:
        _place_errors(form, exc, prefix)
        return _show(request, session, form, status=422)
    except Conflict as exc:
        form.errors.append(exc.detail)
        return _show(request, session, form, status=409)
    sessions_of(request).show_once(request.cookies.get(COOKIE), f"saved:{customer_id}", saved)
    return see_other(f"/ui/customers/{customer_id}#saved")


def _show(request: Request, session: Session, form: Form, *, status: int = 200) -> HTMLResponse:
    return page(request, "customer_form.html.j2", session=session, form=form, status=status)


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
        "air_gapped_since": _day(form.get("air_gapped_since", "")),
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
                        hint=f"How reports and the API name it; {_ID_HINT}. It cannot change.",
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
    return _show(request, session, _new_customer_form({"customer_id": customer_id}))


@router.post("/new-customer")
async def create_customer(
    request: Request, form: FormDep, session: SessionDep, store: StoreDep
) -> Response:
    """Create a customer with no order forms yet, as ``PUT /v1/customers/{id}`` does for an
    id not taken."""
    drawn = _new_customer_form(form)
    customer_id = form.get("customer_id", "").strip()
    try:
        _CUSTOMER_ID.validate_python(customer_id)
    except ValidationError:
        drawn.fields()["customer_id"].error = (
            f"must be 1 to 64 {_ID_HINT}" if customer_id else "give the customer an id"
        )
        return _show(request, session, drawn, status=422)
    return await _save(
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
    document, version = await _document(store, customer_id)
    return _show(request, session, _details_form(customer_id, document, version))


@router.post("/customers/{customer_id}/details")
async def save_details(
    request: Request, form: FormDep, session: SessionDep, store: StoreDep, customer_id: CustomerId
) -> Response:
    """Save the account details; the order forms stay as they are."""
    document, _ = await _document(store, customer_id)
    return await _save(
        request,
        session,
        store,
        customer_id=customer_id,
        document={**document, **_details_of(form)},
        form=_details_form(customer_id, form, form.get("version", "")),
        prefix=(),
        saved="Account details saved.",
    )


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
                        hint=f"As on the signed order form; {_ID_HINT}.",
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
        "start": _day(form.get("start", "")),
        "end": _day(form.get("end", "")),
        "entitlements": _quantities(form, ORDER_ITEMS),
        "addons": list(before.get("addons", [])),
        **({"counting": counting} if counting else {}),
    }


@router.get("/customers/{customer_id}/new-order")
async def new_order(
    request: Request, session: SessionDep, store: StoreDep, customer_id: CustomerId
) -> HTMLResponse:
    """The form for a new order form (admins)."""
    session.staff.require_admin()
    _, version = await _document(store, customer_id)
    return _show(request, session, _order_form(customer_id, {}, version, new=True))


@router.post("/customers/{customer_id}/new-order")
async def add_order(
    request: Request, form: FormDep, session: SessionDep, store: StoreDep, customer_id: CustomerId
) -> Response:
    """Add an order form to the customer's document."""
    document, _ = await _document(store, customer_id)
    order = _order_of(form, {})
    orders = [*document.get("orders", []), order]
    return await _save(
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
    document, version = await _document(store, customer_id)
    stored = document["orders"][_order_index(document, order_id)]
    return _show(request, session, _order_form(customer_id, stored, version, new=False))


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
    document, _ = await _document(store, customer_id)
    index = _order_index(document, order_id)
    orders = list(document["orders"])
    orders[index] = _order_of(form, orders[index])
    drawn = _order_form(
        customer_id, {**orders[index], **_raw(form)}, form.get("version", ""), new=False
    )
    drawn.action = f"/ui/customers/{customer_id}/orders/{order_id}"
    return await _save(
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
    document, version = await _document(store, customer_id)
    index = _order_index(document, order_id)
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
    return await _save(
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
                    Field("addon_id", "Add-on id", addon_id, hint=_ID_HINT + ".", required=True),
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
        "effective": _day(form.get("effective", "")),
        "entitlements": _quantities(form, ADDON_ITEMS),
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
    document, version = await _document(store, customer_id)
    _order_index(document, order_id)
    return _show(request, session, _addon_form(customer_id, order_id, {}, version, new=True))


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
    document, _ = await _document(store, customer_id)
    index = _order_index(document, order_id)
    orders = list(document["orders"])
    addons = [*orders[index].get("addons", []), _addon_of(form)]
    orders[index] = {**orders[index], "addons": addons}
    return await _save(
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
    document, version = await _document(store, customer_id)
    stored = document["orders"][_order_index(document, order_id)]
    found = stored["addons"][_addon_index(stored, addon_id)]
    return _show(request, session, _addon_form(customer_id, order_id, found, version, new=False))


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
    document, _ = await _document(store, customer_id)
    index = _order_index(document, order_id)
    orders = list(document["orders"])
    addons = list(orders[index].get("addons", []))
    position = _addon_index(orders[index], addon_id)
    addons[position] = _addon_of(form)
    orders[index] = {**orders[index], "addons": addons}
    drawn = _addon_form(customer_id, order_id, _typed(form), form.get("version", ""), new=False)
    drawn.action = f"/ui/customers/{customer_id}/orders/{order_id}/addons/{addon_id}"
    return await _save(
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
    document, version = await _document(store, customer_id)
    index = _order_index(document, order_id)
    orders = list(document["orders"])
    position = _addon_index(orders[index], addon_id)
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
    return await _save(
        request,
        session,
        store,
        customer_id=customer_id,
        document={**document, "orders": orders},
        form=_addon_form(customer_id, order_id, removed, form.get("version", ""), new=False),
        prefix=("orders", index),
        saved=f"Add-on {addon_id} removed from order {order_id}.",
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
    if entry.target != f"customer:{customer_id}" or not isinstance(entry.before, dict):
        raise NotFound(
            f"Audit entry {audit_id} holds no earlier document of {customer_id}; choose one of "
            "its changes in the audit log."
        )
    _, version = await _document(store, customer_id)
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
    document = {k: v for k, v in entry.before.items() if k not in READ_ONLY_FIELDS}
    drawn = _details_form(customer_id, document, form.get("version", ""))
    drawn.title = f"Putting back {customer_id}'s document"
    return await _save(
        request,
        session,
        store,
        customer_id=customer_id,
        document=document,
        form=drawn,
        prefix=(),
        saved=f"The document is again as it was before {entry.actor}'s change of {when}.",
    )
