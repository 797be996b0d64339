"""Customers: the list, one customer's page and its changes (order forms, licence keys,
retirements), and its statement."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import AwareDatetime, ValidationError
from starlette.responses import HTMLResponse, Response

from analytics import runs
from analytics.schemas import Finding, OveruseFinding
from console.overview import customer_overview, period, statement_answer
from console.sessions import COOKIE, Session
from console.web import (
    PAGE_ROWS,
    ConsoleRoute,
    FormDep,
    SessionDep,
    actor,
    confirmation,
    confirmed,
    page,
    pager,
    parse_day,
    see_other,
    sessions_of,
    validation_text,
)
from core.auth import Keyring
from core.days import latest_finished_day
from core.dependencies import KeyringDep, SettingsDep, StoreDep
from core.errors import InvalidPayload, NotFound
from core.identifiers import ID_PATTERN, UUID_PATTERN
from core.store import Store
from customers import links
from customers import service as customers
from customers.schemas import READ_ONLY_FIELDS, CustomerDocument, LinkRequest
from scheduler.messages import SECTIONS

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)

CustomerId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.get("/customers")
async def customer_list(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    q: Annotated[str, Query(max_length=200)] = "",
    start: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HTMLResponse:
    """Every customer with its account manager, worst finding, active instances and last
    report, a page at a time; ``q`` searches ids, names and account managers."""
    listed = await customers.list_customers(store)
    needle = q.strip().lower()
    if needle:
        listed = [
            c
            for c in listed
            if needle in c.customer_id.lower()
            or needle in c.name.lower()
            or needle in c.account_manager.lower()
        ]
    shown = listed[start : start + PAGE_ROWS]
    fleet = await customers.fleet_summary(store, customer_ids=[c.customer_id for c in shown])
    run = await runs.newest_run(store)
    worst: dict[str, dict[str, Any]] = {}
    for finding in run.findings if run else []:  # in the SPEC's order: the first is the worst
        worst.setdefault(finding.customer_id, _label(finding))
    return page(
        request,
        "customers.html.j2",
        session=session,
        customers=shown,
        pages=pager(request, start, len(listed)),
        fleet=fleet,
        worst=worst,
        q=q,
        run=run,
    )


def _label(finding: Finding) -> dict[str, Any]:
    """A finding in a few words, with the section of the weekly email it belongs to."""
    section = next(spec.title for spec in SECTIONS if spec.matches(finding))
    words = f"{section}: {finding.metric}" if isinstance(finding, OveruseFinding) else section
    return {"text": words, "kind": finding.kind, "finding_id": finding.finding_id}


@router.get("/customers/{customer_id}")
async def customer_page(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    keyring: KeyringDep,
    customer_id: CustomerId,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    """One customer: orders, charts, instances, episodes, attestations, keys, statement."""
    once = sessions_of(request).take_once
    new_key = await once(request.cookies.get(COOKIE), f"key:{customer_id}")
    saved = await once(request.cookies.get(COOKIE), f"saved:{customer_id}")
    return await _customer_page(
        request,
        session,
        store,
        keyring,
        customer_id,
        from_=from_,
        to=to,
        new_key=new_key,
        saved=saved,
    )


async def _customer_page(
    request: Request,
    session: Session,
    store: Store,
    keyring: Keyring,
    customer_id: str,
    *,
    from_: str | None = None,
    to: str | None = None,
    status: int = 200,
    document_text: str | None = None,
    document_errors: list[str] | None = None,
    new_key: dict[str, str] | None = None,
    saved: str | None = None,
) -> HTMLResponse:
    start, end = period(from_, to)
    try:
        shown = await customer_overview(
            store, customer_id=customer_id, start=start, end=end, keyring=keyring
        )
    except NotFound:
        raise NotFound(
            f"No customer {customer_id!r}. An admin creates it with New customer on the "
            "Customers page."
        ) from None
    customer, run = shown["customer"], shown["run"]
    # The document changed after what the newest run knew: its findings may be out of date.
    updated = datetime.fromisoformat(customer["updated_at"])
    stale = run is not None and (run.known_at or run.evaluated_at) < updated
    editable = {k: v for k, v in customer.items() if k not in READ_ONLY_FIELDS}
    return page(
        request,
        "customer.html.j2",
        session=session,
        status=status,
        saved=saved,
        stale=stale,
        default_as_of=latest_finished_day(),
        version=customer["updated_at"],
        evidence_base="/ui/findings/",
        page_base=f"/ui/customers/{customer_id}",
        statement_base=f"/ui/customers/{customer_id}/statement",
        links=await links.list_links(store, customer_id=customer_id),
        new_link=await sessions_of(request).take_once(
            request.cookies.get(COOKIE), f"link:{customer_id}"
        ),
        now=datetime.now(UTC),
        document_text=document_text or json.dumps(editable, indent=2),
        document_errors=document_errors,
        new_key=new_key,
        **shown,
    )


@router.post("/customers/{customer_id}/document")
async def replace_document(
    request: Request,
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    keyring: KeyringDep,
    customer_id: CustomerId,
) -> Response:
    """Replace the customer document, as ``PUT /v1/customers/{id}`` does; errors are shown
    beside the document and nothing is saved."""
    text = form.get("document", "")
    try:
        document = CustomerDocument.model_validate(json.loads(text))
        await customers.upsert_customer(
            store, customer_id=customer_id, document=document, actor=actor(session)
        )
    except ValueError as exc:  # not JSON, or a ValidationError
        errors = (
            validation_text(exc)
            if isinstance(exc, ValidationError)
            else [f"The document is not JSON: {exc}"]
        )
        return await _bad_document(request, session, store, keyring, customer_id, text, errors)
    except InvalidPayload as exc:
        errors = [exc.detail, *validation_text(exc)]
        return await _bad_document(request, session, store, keyring, customer_id, text, errors)
    await sessions_of(request).show_once(
        request.cookies.get(COOKIE),
        f"saved:{customer_id}",
        "the whole document replaced: its order forms and add-ons are now as shown below.",
    )
    return see_other(f"/ui/customers/{customer_id}#saved")


async def _bad_document(
    request: Request,
    session: Session,
    store: Store,
    keyring: Keyring,
    customer_id: str,
    text: str,
    errors: list[str],
) -> HTMLResponse:
    return await _customer_page(
        request,
        session,
        store,
        keyring,
        customer_id,
        status=422,
        document_text=text,
        document_errors=errors,
    )


@router.post("/customers/{customer_id}/license-keys")
async def issue_key(
    request: Request,
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    keyring: KeyringDep,
    customer_id: CustomerId,
) -> Response:
    """Issue a licence key; the customer's page shows it once (never in a URL)."""
    created = await customers.create_license_key(
        store, keyring, customer_id=customer_id, actor=actor(session)
    )
    await sessions_of(request).show_once(
        request.cookies.get(COOKIE),
        f"key:{customer_id}",
        {"key_id": created.key_id, "license_key": created.license_key},
    )
    return see_other(f"/ui/customers/{customer_id}#keys")


@router.post("/customers/{customer_id}/links")
async def make_link(
    request: Request,
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    customer_id: CustomerId,
) -> Response:
    """A link to the customer's own view, as ``POST /v1/customers/{id}/links`` makes it; the
    customer's page shows its address once."""
    days = form.get("expires_in_days", "").strip()
    asked = LinkRequest.model_validate(
        {"note": form.get("note", ""), "expires_in_days": int(days) if days.isdigit() else days}
    )
    created = await links.create(
        store,
        customer_id=customer_id,
        request=asked,
        actor=actor(session),
        base_url=settings.public_url or str(request.base_url),
    )
    await sessions_of(request).show_once(
        request.cookies.get(COOKIE), f"link:{customer_id}", created
    )
    return see_other(f"/ui/customers/{customer_id}#view")


@router.post("/customers/{customer_id}/links/{link_id}/revoke")
async def revoke_link(
    request: Request,
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    customer_id: CustomerId,
    link_id: Annotated[str, Path(pattern=r"^lnk_[0-9a-f]{16}$")],
) -> Response:
    """Revoke a link to the customer's view, once confirmed."""
    if not confirmed(form):
        return confirmation(
            request,
            session,
            title=f"Revoke the link {link_id}?",
            consequence="It stops opening the customer's view at once, and so does every "
            "browser that opened it: they see that the link has ended and whom to ask. A "
            "revoked link cannot be restored; make a new one instead.",
            confirm_label=f"Revoke {link_id}",
            fields={},
            back=f"/ui/customers/{customer_id}#view",
        )
    await links.revoke(store, customer_id=customer_id, link_id=link_id, actor=actor(session))
    return see_other(f"/ui/customers/{customer_id}#view")


@router.post("/license-keys/{key_id}/revoke")
async def revoke_key(
    request: Request,
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    keyring: KeyringDep,
    key_id: Annotated[str, Path(pattern=ID_PATTERN)],
) -> Response:
    """Revoke a licence key, as ``DELETE /v1/license-keys/{id}`` does, once confirmed."""
    customer_id = form.get("customer_id", "")
    back = f"/ui/customers/{customer_id}#keys"
    if not confirmed(form):
        return confirmation(
            request,
            session,
            title=f"Revoke licence key {key_id}?",
            consequence=f"Every report sent with {key_id} is refused from then on (401): the "
            f"installations of {customer_id} that use it stop phoning home until they are given "
            "a new key. A revoked key cannot be restored; issue a new one instead.",
            confirm_label=f"Revoke {key_id}",
            fields={"customer_id": customer_id},
            back=back,
        )
    await customers.revoke_license_key(store, keyring, key_id=key_id, actor=actor(session))
    return see_other(back)


@router.post("/instances/{instance_id}/retire")
async def retire_instance(
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    instance_id: Annotated[str, Path(pattern=UUID_PATTERN)],
    request: Request,
) -> Response:
    """Record (once confirmed) or, without a day, undo a retirement, as
    ``/v1/instances/{id}/retire`` does."""
    retired_on = parse_day(form.get("retired_on"), field="retired_on")
    if retired_on is not None and not confirmed(form):
        customer_id = form.get("customer_id", "")
        return confirmation(
            request,
            session,
            title=f"Retire instance {instance_id}?",
            consequence=f"It is recorded as decommissioned on {retired_on}: from that day the "
            "activity window no longer carries its last report, so it stops counting, and it "
            "is no longer reported as silent. A report it sends later counts again. Undo "
            "retirement on the customer's page takes it back.",
            confirm_label=f"Retire it as of {retired_on}",
            fields={"customer_id": customer_id, "retired_on": retired_on.isoformat()},
            back=f"/ui/customers/{customer_id}#instance-{instance_id}",
        )
    instance = await customers.set_retirement(
        store, instance_id=instance_id, retired_on=retired_on, actor=actor(session)
    )
    return see_other(f"/ui/customers/{form.get('customer_id', '')}#instance-{instance.instance_id}")


@router.get("/customers/{customer_id}/statement")
async def statement(
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    customer_id: CustomerId,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: Annotated[str | None, Query(max_length=10)] = None,
    known_at: Annotated[AwareDatetime | None, Query()] = None,
    format: Literal["html", "csv"] = "html",
) -> Response:
    """The customer statement, exactly as ``GET /v1/customers/{id}/statement`` answers it
    (HTML, or its daily rows as a CSV download), by default for the period the customer's
    page shows by default, as known now."""
    return await statement_answer(
        store,
        settings,
        customer_id=customer_id,
        from_=from_,
        to=to,
        known_at=known_at,
        format=format,
    )
