"""The staff console's pages (SPEC §12). Each page is one route that calls the same services as
the JSON API: nothing here decides a rule, it only shows what the services answer."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import logging
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import AwareDatetime, ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from analytics import evidence as evidence_service
from analytics import service as analytics
from analytics import statement as statement_service
from analytics.charts import over, usage_svg
from analytics.compliance import GROUP_RANK
from analytics.schemas import Evaluation
from analytics.usage import USAGE_METRICS
from console.sessions import COOKIE, LIFETIME_SECONDS, Session, address_key
from console.web import (
    DOCUMENT_SECURITY_POLICY,
    ConsoleRoute,
    FormDep,
    SessionDep,
    attachment,
    error_page,
    page,
    parse_day,
    read_form,
    see_other,
    sessions_of,
    validation_text,
)
from core import audit, tokens
from core.auth import Actor, Keyring, Role
from core.dependencies import ApiMetricsDep, KeyringDep, SettingsDep, StoreDep
from core.errors import InvalidPayload, NotFound, Unauthenticated
from core.identifiers import ID_PATTERN, TOKEN_NAME_PATTERN, UUID_PATTERN, RecipientPath
from core.schemas import TokenRequest
from core.store import Store
from customers import service as customers
from customers.schemas import READ_ONLY_FIELDS, CustomerDocument
from scheduler.endpoints import IsoWeek, WeeklyReporterDep
from scheduler.messages import SECTIONS

log = logging.getLogger("statreport.console")

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)
root_router = APIRouter(include_in_schema=False)

CustomerId = Annotated[str, Path(pattern=ID_PATTERN)]
FindingId = Annotated[str, Path(pattern=r"^f_[0-9a-f]{16}$")]
#: How far back a customer's charts look unless asked otherwise.
DEFAULT_PERIOD_DAYS = 90
#: Rows a list page shows at once: enough to scan, few enough to draw at once.
PAGE_ROWS = 100
#: The kinds of finding, in the order the findings are listed.
KINDS = tuple(dict.fromkeys(kind for kind, _ in sorted(GROUP_RANK, key=GROUP_RANK.__getitem__)))


def _actor(staff_name: str) -> Actor:
    return Actor(name=staff_name)


@root_router.get("/")
async def home() -> RedirectResponse:
    """The console is the front page."""
    return RedirectResponse("/ui/", status_code=307)


# --- signing in and out -----------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request, next: str = "/ui/") -> HTMLResponse:
    """The sign-in form."""
    return page(request, "login.html.j2", session=None, next=_safe_next(next))


@router.post("/login")
async def login(request: Request, keyring: KeyringDep, settings: SettingsDep) -> Response:
    """Sign in with a named or the root token; five failures a minute from one address get
    429."""
    sessions = sessions_of(request)
    address = address_key(request.client.host if request.client else None)
    wait = sessions.failures.blocked(address)
    if wait is not None:
        refused = error_page(
            request,
            429,
            "Too many failed sign-ins",
            f"Five sign-ins from your address failed within a minute. Wait {wait} s, then try "
            "again with your token.",
        )
        refused.headers["Retry-After"] = str(wait)
        return refused
    form = await read_form(request)
    token = form.get("token", "").strip()
    next_url = _safe_next(form.get("next") or "/ui/")
    try:
        staff = keyring.staff(token or None)
    except Unauthenticated as exc:
        sessions.failures.acquire(address)
        log.info("event=console.sign_in_failed")
        return page(
            request, "login.html.j2", session=None, status=401, next=next_url, error=exc.detail
        )
    log.info("event=console.signed_in name=%s role=%s", staff.name, staff.role)
    response = see_other(next_url)
    response.set_cookie(
        COOKIE,
        sessions.start(staff),
        max_age=LIFETIME_SECONDS,
        path="/ui",
        secure=not settings.insecure_http,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    """Sign out: the session ends on the server, whatever happens to the cookie."""
    form = await read_form(request)
    if not session.csrf_matches(form.get("csrf")):
        return error_page(request, 403, "Forbidden", "Reload the page and sign out again.")
    sessions_of(request).end(request.cookies.get(COOKIE))
    response = see_other("/ui/login")
    response.delete_cookie(COOKIE, path="/ui")
    return response


def _safe_next(target: str) -> str:
    """Only a path of this console: never an address elsewhere."""
    if target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


# --- findings ---------------------------------------------------------------------------


@router.get("/")
async def findings(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    as_of: Annotated[str | None, Query(max_length=10)] = None,
    manager: Annotated[str | None, Query(max_length=254)] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    start: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HTMLResponse:
    """The findings of the newest run (or of the newest run as of a day), grouped and ordered
    as the weekly email groups them, filtered by account manager and kind."""
    day = parse_day(as_of, field="as_of")
    run: Evaluation | None
    if day is None:
        run = await analytics.newest_run(store)
    else:
        try:
            run = await analytics.stored_findings(store, as_of=day)
        except NotFound:
            run = None
    chosen = [
        f.model_dump(mode="json")
        for f in (run.findings if run else [])
        if (not manager or f.account_manager == manager) and (not kind or f.kind == kind)
    ]
    names = await analytics.customer_names(store)
    shown = chosen[start : start + PAGE_ROWS]  # in the SPEC's order, so sections stay whole
    sections = [
        {
            "title": spec.title,
            "hint": spec.hint,
            "columns": spec.columns,
            "rows": [(f, spec.cells(f)) for f in shown if spec.matches(f)],
            "total": sum(spec.matches(f) for f in chosen),
        }
        for spec in SECTIONS
    ]
    return page(
        request,
        "findings.html.j2",
        session=session,
        run=run,
        as_of=as_of or "",
        sections=[s for s in sections if s["rows"]],
        managers=sorted(await analytics.accounts_per_manager(store)),
        manager=manager or "",
        kinds=KINDS,
        kind=kind or "",
        names=names,
        matching=len(chosen),
        pages=_pages(request, start, len(chosen)),
        default_as_of=customers.latest_finished_day(),
    )


def _pages(request: Request, start: int, total: int) -> dict[str, Any]:
    """Where this page of a long list starts and ends, and links to the ones around it."""

    def link(offset: int) -> str:
        return (
            str(request.url.include_query_params(start=offset).path)
            + "?"
            + str(request.url.include_query_params(start=offset).query)
        )

    return {
        "first": min(start + 1, total),
        "last": min(start + PAGE_ROWS, total),
        "total": total,
        "previous": link(max(start - PAGE_ROWS, 0)) if start > 0 else None,
        "next": link(start + PAGE_ROWS) if start + PAGE_ROWS < total else None,
    }


@router.post("/evaluations")
async def run_evaluation(
    request: Request, form: FormDep, store: StoreDep, metrics: ApiMetricsDep
) -> Response:
    """Run an evaluation now, as ``POST /v1/evaluations`` does, and show its findings."""
    as_of = parse_day(form.get("as_of"), field="as_of")
    result = await analytics.evaluate_now(store, as_of=as_of)
    metrics.last_evaluation.set(result.evaluated_at.timestamp())
    return see_other(f"/ui/?as_of={result.as_of}")


@router.get("/findings/{finding_id}")
async def finding_evidence(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    finding_id: FindingId,
    as_of: Annotated[str | None, Query(max_length=10)] = None,
    evaluation_id: Annotated[str | None, Query(pattern=r"^ev_[0-9A-Za-z_]{1,60}$")] = None,
) -> HTMLResponse:
    """A finding's evidence, as ``GET /v1/findings/{id}/evidence`` answers it, as known at
    its run: the run ``evaluation_id``, or the newest run as of ``as_of``, by default the
    newest run, as the findings page shows it."""
    day = parse_day(as_of, field="as_of")
    if day is None and evaluation_id is None:
        newest = await analytics.newest_run(store)
        if newest is None:
            raise NotFound("No evaluation has been run yet, so there is no finding to show.")
        evaluation_id = newest.evaluation_id
    found = await evidence_service.finding_evidence(
        store, finding_id=finding_id, as_of=day, evaluation_id=evaluation_id
    )
    chart = None
    if found.days:
        chart = usage_svg(
            [(d.date, d.usage, d.entitled) for d in found.days],
            title=f"{found.metric}: daily usage against entitlement",
        )
    names = await analytics.customer_names(store)
    return page(
        request,
        "evidence.html.j2",
        session=session,
        evidence=found,
        chart=chart,
        name=names.get(found.customer_id, found.customer_id),
    )


# --- customers --------------------------------------------------------------------------


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
    run = await analytics.newest_run(store)
    worst: dict[str, dict[str, Any]] = {}
    for finding in run.findings if run else []:  # in the SPEC's order: the first is the worst
        worst.setdefault(finding.customer_id, _label(finding.model_dump(mode="json")))
    return page(
        request,
        "customers.html.j2",
        session=session,
        customers=shown,
        pages=_pages(request, start, len(listed)),
        fleet=fleet,
        worst=worst,
        q=q,
        run=run,
    )


def _label(finding: dict[str, Any]) -> dict[str, Any]:
    """A finding in a few words, with the section of the weekly email it belongs to."""
    section = next(spec.title for spec in SECTIONS if spec.matches(finding))
    metric = finding.get("metric")
    words = f"{section}: {metric}" if metric else section
    return {"text": words, "kind": finding["kind"], "finding_id": finding["finding_id"]}


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
    new_key = sessions_of(request).take_once(request.cookies.get(COOKIE), f"key:{customer_id}")
    return await _customer_page(
        request, session, store, keyring, customer_id, from_=from_, to=to, new_key=new_key
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
) -> HTMLResponse:
    customer = await customers.get_customer(store, customer_id=customer_id, keyring=keyring)
    start, end = _period(from_, to)
    usage = await analytics.customer_usage(store, customer_id=customer_id, start=start, end=end)
    episodes = await analytics.episode_history(store, customer_id=customer_id)
    instances = await customers.list_instances(store, customer_id=customer_id)
    attestations = await customers.attestations(store, customer_id=customer_id)
    run = await analytics.newest_run(store)
    mine = [f for f in (run.findings if run else []) if f.customer_id == customer_id]
    silent = {getattr(f, "instance_id", None) for f in mine if f.kind == "instance_silent"}
    cloned = {getattr(f, "instance_id", None) for f in mine if f.kind == "instance_cloned"}
    charts = []
    for metric in USAGE_METRICS:
        series = [(d.day, d.usage[metric], d.entitled[metric]) for d in usage.days]
        if all(e is None for _, _, e in series):
            continue  # not licensed in the period: nothing to compare with
        windows = [
            (e.started_on, e.deadline)
            for e in episodes
            if e.metric == metric and e.started_on <= end
        ]
        charts.append(
            {
                "metric": metric,
                "svg": usage_svg(
                    series, windows=windows, title=f"{metric}: daily usage against entitlement"
                ),
                "over_days": sum(over(u, e) for _, u, e in series),
                "latest": series[-1],
            }
        )
    editable = {k: v for k, v in customer.items() if k not in READ_ONLY_FIELDS}
    return page(
        request,
        "customer.html.j2",
        session=session,
        status=status,
        customer=customer,
        start=start,
        end=end,
        charts=charts,
        episodes=episodes,
        instances=instances,
        silent=silent,
        cloned=cloned,
        findings=[f.model_dump(mode="json") for f in mine],
        run=run,
        attestations=attestations,
        document_text=document_text or json.dumps(editable, indent=2),
        document_errors=document_errors,
        new_key=new_key,
        today=datetime.now(UTC).date(),
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
            store, customer_id=customer_id, document=document, actor=_actor(session.staff.name)
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
    return see_other(f"/ui/customers/{customer_id}#document")


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
        store, keyring, customer_id=customer_id, actor=_actor(session.staff.name)
    )
    sessions_of(request).show_once(
        request.cookies.get(COOKIE),
        f"key:{customer_id}",
        {"key_id": created.key_id, "license_key": created.license_key},
    )
    return see_other(f"/ui/customers/{customer_id}#keys")


@router.post("/license-keys/{key_id}/revoke")
async def revoke_key(
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    keyring: KeyringDep,
    key_id: Annotated[str, Path(pattern=ID_PATTERN)],
) -> Response:
    """Revoke a licence key, as ``DELETE /v1/license-keys/{id}`` does."""
    await customers.revoke_license_key(
        store, keyring, key_id=key_id, actor=_actor(session.staff.name)
    )
    return see_other(f"/ui/customers/{form.get('customer_id', '')}#keys")


@router.post("/instances/{instance_id}/retire")
async def retire_instance(
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    instance_id: Annotated[str, Path(pattern=UUID_PATTERN)],
) -> Response:
    """Record (or, without a day, undo) a retirement, as ``/v1/instances/{id}/retire`` does."""
    retired_on = parse_day(form.get("retired_on"), field="retired_on")
    instance = await customers.set_retirement(
        store, instance_id=instance_id, retired_on=retired_on, actor=_actor(session.staff.name)
    )
    return see_other(f"/ui/customers/{form.get('customer_id', '')}#instance-{instance.instance_id}")


def _period(from_: str | None, to: str | None) -> tuple[date, date]:
    """The days a customer's page and statement cover: as asked, or by default the
    ``DEFAULT_PERIOD_DAYS`` up to the latest finished day."""
    end = parse_day(to, field="to") or customers.latest_finished_day()
    start = parse_day(from_, field="from") or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    return start, end


@router.get("/customers/{customer_id}/statement")
async def statement(
    session: SessionDep,
    store: StoreDep,
    customer_id: CustomerId,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: Annotated[str | None, Query(max_length=10)] = None,
    known_at: Annotated[AwareDatetime | None, Query()] = None,
    format: Literal["html", "csv"] = "html",
) -> Response:
    """The customer statement, exactly as ``GET /v1/customers/{id}/statement`` answers it
    (HTML, or its daily rows as a CSV download), by default for the period the customer's
    page shows by default, as known now."""
    start, end = _period(from_, to)
    made = await statement_service.customer_statement(
        store, customer_id=customer_id, start=start, end=end, known_at=known_at
    )
    if format == "csv":
        return Response(
            made.csv,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": attachment(f"statement-{customer_id}-{start}-{end}.csv")
            },
        )
    return HTMLResponse(made.html, headers={"Content-Security-Policy": DOCUMENT_SECURITY_POLICY})


# --- weekly reports ---------------------------------------------------------------------


@router.get("/weekly")
async def weekly(
    request: Request,
    session: SessionDep,
    reporter: WeeklyReporterDep,
    week: Annotated[str | None, Query(pattern=r"^[0-9]{4}-W[0-9]{2}$")] = None,
) -> HTMLResponse:
    """Each ISO week's deliveries and failures; a week's emails as they were sent."""
    weeks = await reporter.weeks()
    chosen = week or (weeks[0]["iso_week"] if weeks else None)
    deliveries = await reporter.deliveries(iso_week=chosen) if chosen else []
    return page(
        request,
        "weekly.html.j2",
        session=session,
        weeks=weeks,
        week=chosen,
        deliveries=deliveries,
        run=None,
        default_as_of=reporter.default_as_of(),
    )


@router.post("/weekly")
async def weekly_run(
    request: Request, form: FormDep, session: SessionDep, reporter: WeeklyReporterDep
) -> HTMLResponse:
    """Run the weekly report now: first as a dry run that sends nothing, then for real."""
    as_of = parse_day(form.get("as_of"), field="as_of")
    dry_run = form.get("action") != "send"
    run = await reporter.run(as_of=as_of, dry_run=dry_run, force=form.get("force") == "on")
    weeks = await reporter.weeks()
    return page(
        request,
        "weekly.html.j2",
        session=session,
        weeks=weeks,
        week=run.iso_week,
        deliveries=await reporter.deliveries(iso_week=run.iso_week),
        run=run,
        dry_run=dry_run,
        default_as_of=run.as_of,
    )


@router.get("/weekly/{iso_week}/{recipient}")
async def weekly_email(
    request: Request,
    session: SessionDep,
    reporter: WeeklyReporterDep,
    iso_week: IsoWeek,
    recipient: RecipientPath,
) -> HTMLResponse:
    """One email as it was sent: its headers, its text, its attachments and its SHA-256."""
    raw = await reporter.delivered_message(iso_week=iso_week, recipient=recipient)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    attachments = [
        {"name": part.get_filename() or "inline chart", "type": part.get_content_type()}
        for part in message.walk()
        if part.get_content_disposition() in ("attachment", "inline") and not part.is_multipart()
    ]
    return page(
        request,
        "email.html.j2",
        session=session,
        iso_week=iso_week,
        recipient=recipient,
        headers=[(k, str(message[k])) for k in ("Subject", "From", "To", "Date") if message[k]],
        text=text,
        attachments=attachments,
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
    )


@router.get("/weekly/{iso_week}/{recipient}/message.eml")
async def weekly_email_raw(
    session: SessionDep,
    reporter: WeeklyReporterDep,
    iso_week: IsoWeek,
    recipient: RecipientPath,
) -> Response:
    """The message byte for byte, to open in a mail program."""
    raw = await reporter.delivered_message(iso_week=iso_week, recipient=recipient)
    return Response(
        raw,
        media_type="message/rfc822",
        headers={"Content-Disposition": attachment(f"{iso_week}-{recipient}.eml")},
    )


# --- audit log and tokens ---------------------------------------------------------------


@router.get("/audit")
async def audit_log(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    target: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> HTMLResponse:
    """Who changed what and when, before and after side by side."""
    entries = await audit.audit_log(store, target=target.strip() or None, limit=limit)
    rows = [
        {
            "entry": entry,
            "before": _pretty(entry.before),
            "after": _pretty(entry.after),
            "changed": _changed_keys(entry.before, entry.after),
        }
        for entry in entries
    ]
    return page(request, "audit.html.j2", session=session, rows=rows, target=target, limit=limit)


def _pretty(document: Any) -> str:
    return "" if document is None else json.dumps(document, indent=2, sort_keys=True)


def _changed_keys(before: Any, after: Any) -> list[str]:
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@router.get("/tokens")
async def token_list(
    request: Request, session: SessionDep, store: StoreDep, keyring: KeyringDep
) -> HTMLResponse:
    """Named tokens (admins only, as ``GET /v1/tokens``)."""
    session.staff.require_admin("Seeing the tokens")
    return page(
        request,
        "tokens.html.j2",
        session=session,
        tokens=await tokens.list_tokens(store, keyring),
        created=sessions_of(request).take_once(request.cookies.get(COOKIE), "token"),
        roles=[r.value for r in Role],
        pattern=TOKEN_NAME_PATTERN,
    )


@router.post("/tokens")
async def create_token(
    request: Request, form: FormDep, session: SessionDep, store: StoreDep, keyring: KeyringDep
) -> Response:
    """Create a named token; the tokens page shows it once (never in a URL)."""
    asked = TokenRequest.model_validate(
        {"name": form.get("name", "").strip(), "role": form.get("role", "")}
    )
    created = await tokens.create_token(
        store, keyring, name=asked.name, role=asked.role, actor=_actor(session.staff.name)
    )
    sessions_of(request).show_once(request.cookies.get(COOKIE), "token", created)
    return see_other("/ui/tokens")


@router.post("/tokens/{name}/revoke")
async def revoke_token(
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    keyring: KeyringDep,
    name: Annotated[str, Path(pattern=TOKEN_NAME_PATTERN)],
) -> Response:
    """Revoke a named token: it is refused from now on and its sessions end."""
    await tokens.revoke_token(store, keyring, name=name, actor=_actor(session.staff.name))
    return see_other("/ui/tokens")
