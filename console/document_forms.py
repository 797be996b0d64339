"""Editing a customer's document (SPEC §3) with forms instead of JSON: the fields of a form,
what was typed, and saving the whole document changed in one part.

A form changes one part of the document. The whole document is then validated by the model
``PUT /v1/customers/{id}`` uses, so the messages are the API's, shown beside the fields they
are about, and saved through the same audited service. A form carries the version of the
customer it was drawn from: a change someone else made since is refused (409), never saved
over. The pages are ``console/pages/customer_forms.py`` (a customer), ``order_forms.py`` and
``addon_forms.py``; the JSON document stays on the customer's page as the advanced view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, get_args

from fastapi import Path, Request
from pydantic import TypeAdapter, ValidationError
from starlette.responses import HTMLResponse, Response

from console.sessions import COOKIE, Session
from console.web import actor, page, see_other, sessions_of
from core.errors import Conflict, NotFound
from core.identifiers import ID_PATTERN, Identifier
from core.problems import describe_validation_errors
from core.store import Store
from customers import service as customers
from customers.schemas import (
    READ_ONLY_FIELDS,
    AddonEntitlements,
    CountingRule,
    CustomerDocument,
    OrderEntitlements,
)

CustomerId = Annotated[str, Path(pattern=ID_PATTERN)]
PartId = Annotated[str, Path(pattern=ID_PATTERN)]

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
CUSTOMER_ID = TypeAdapter(Identifier)
ID_HINT = "letters, digits, '.', '_' and '-', starting with a letter or digit"


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


def quantity(value: str) -> int | str | None:
    """A quantity field: empty is "not sold" (None); a whole number is itself; anything else
    is left for the model to refuse in its own words."""
    value = value.strip().replace(",", "").replace("_", "")
    if not value:
        return None
    return int(value) if value.isdigit() else value


def quantities(form: Mapping[str, str], items: tuple[str, ...]) -> dict[str, Any]:
    read = {item: quantity(form.get(item, "")) for item in items}
    return {item: value for item, value in read.items() if value is not None}


def day_field(value: str) -> str | None:
    """A day field: empty is absent; anything else is left for the model to judge."""
    return value.strip() or None


# -- the document, and where its errors belong ------------------------------------------------


async def stored_document(store: Store, customer_id: str) -> tuple[dict[str, Any], str]:
    """The stored document as the API takes it, and the version it is."""
    stored = await customers.get_customer(store, customer_id=customer_id)
    document = {k: v for k, v in stored.items() if k not in READ_ONLY_FIELDS}
    return document, str(stored["updated_at"])


def order_index(document: Mapping[str, Any], order_id: str) -> int:
    """Where order ``order_id`` is in the document; 404 when it is gone."""
    for index, order in enumerate(document.get("orders", [])):
        if order["order_id"] == order_id:
            return index
    raise NotFound(f"Customer has no order form {order_id!r}; it may have been removed.")


def addon_index(order: Mapping[str, Any], addon_id: str) -> int:
    """Where add-on ``addon_id`` is in its order; 404 when it is gone."""
    for index, addon in enumerate(order.get("addons", [])):
        if addon["addon_id"] == addon_id:
            return index
    raise NotFound(
        f"Order {order['order_id']} has no add-on {addon_id!r}; it may have been removed."
    )


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def place_errors(form: Form, exc: ValidationError, prefix: tuple[Any, ...]) -> None:
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


async def save(
    request: Request,
    session: Session,
    store: Store,
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
        version = None if create else datetime.fromisoformat(form.version)
    except ValueError:
        form.errors.append(
            "This form does not say which version of the customer it was drawn from; nothing "
            "was saved. Reload the customer's page and make the change again."
        )
        return show(request, session, form, status=409)
    try:
        valid = CustomerDocument.model_validate(document)
        await customers.upsert_customer(
            store,
            customer_id=customer_id,
            document=valid,
            actor=actor(session),
            version=version,
            create=create,
        )
    except ValidationError as exc:
        place_errors(form, exc, prefix)
        return show(request, session, form, status=422)
    except Conflict as exc:
        form.errors.append(exc.detail)
        return show(request, session, form, status=409)
    await sessions_of(request).show_once(request.cookies.get(COOKIE), f"saved:{customer_id}", saved)
    return see_other(f"/ui/customers/{customer_id}#saved")


def show(request: Request, session: Session, form: Form, *, status: int = 200) -> HTMLResponse:
    """The form's page, with what the last attempt said."""
    return page(request, "customer_form.html.j2", session=session, form=form, status=status)
