"""The customer's own view (SPEC §15), under ``/c/``: what a link an account manager sent
opens, read-only and with no account. It shows that customer's own numbers only, through the
services and the templates the staff console uses where they show the same thing. Every
route takes the customer from the session, never from the address, so no address can reach
another customer's data."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from analytics import evidence as evidence_service
from analytics import runs
from console.overview import customer_overview, evidence_charts, period, statement_answer
from console.web import CONTENT_SECURITY_POLICY, templates
from core.dependencies import SettingsDep, StoreDep
from core.errors import NotFound, StatreportError
from core.store import Store
from customers import links
from customers import service as customers

#: What a link's token looks like: 256 random bits, URL-safe base64.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
#: The cookie of a customer's view: its own name and path, apart from the staff console's.
COOKIE = "statreport_view"
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


class ViewEnded(Exception):
    """No live view in this browser: why, and whose account manager to ask, if known."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


class PortalRoute(APIRoute):
    """A page of the customer's view: its headers on every answer; an error is a page of
    the view (never a link into the staff console)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            response: Response
            try:
                response = await handler(request)
            except ViewEnded as exc:
                response = _page(
                    request, "portal/ended.html.j2", exc.status, title=exc.title, detail=exc.detail
                )
                response.delete_cookie(COOKIE, path=links.VIEW_PATH)
            except StatreportError as exc:
                response = _page(
                    request, "portal/error.html.j2", exc.status, title=exc.title, detail=exc.detail
                )
            except (ValidationError, RequestValidationError):
                response = _page(
                    request,
                    "portal/error.html.j2",
                    422,
                    title="Invalid address",
                    detail="Part of this address is not understood; go back to the overview.",
                )
            for name, value in _HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return handle


router = APIRouter(prefix="/c", include_in_schema=False, route_class=PortalRoute)


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template(template).render(request=request, staff=None, **context)
    return HTMLResponse(html, status_code=status)


async def _account_manager(store: Store, customer_id: str | None) -> str:
    if customer_id is None:
        return "your account manager"
    try:
        found = await customers.get_customer(store, customer_id=customer_id)
    except NotFound:
        return "your account manager"
    return str(found["account_manager"])


async def current_view(request: Request, store: StoreDep) -> links.Viewer:
    """The customer this browser's session shows; otherwise a page that says why."""
    found = await links.viewer(store, session_id=request.cookies.get(COOKIE))
    if found is None:
        raise ViewEnded(
            401,
            "This view is not open",
            "Open the link you were sent again. A link stays valid until it expires or is "
            "revoked; a view opened from it lasts at most 12 hours.",
        )
    if found.gone is not None:
        manager = await _account_manager(store, found.customer_id)
        raise ViewEnded(
            410,
            "This link has ended",
            f"The link to this view {found.gone}. Ask {manager} for a new one.",
        )
    return found


ViewDep = Annotated[links.Viewer, Depends(current_view)]


@router.get("/")
async def overview(
    request: Request,
    view: ViewDep,
    store: StoreDep,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    """The customer's findings of the newest run, usage charts for a period, order forms,
    instances and attestations, and its statements."""
    start, end = period(from_, to)
    shown = await customer_overview(store, customer_id=view.customer_id, start=start, end=end)
    return _page(
        request,
        "portal/overview.html.j2",
        view=view,
        evidence_base="/c/findings/",
        page_base="/c/",
        statement_base="/c/statement",
        **shown,
    )


@router.get("/findings/{finding_id}")
async def finding(
    request: Request,
    view: ViewDep,
    store: StoreDep,
    finding_id: Annotated[str, Path(pattern=r"^f_[0-9a-f]{16}$")],
) -> HTMLResponse:
    """A finding of the newest run and its evidence, as known at that run; 404 for a finding
    that is not this customer's."""
    run = await runs.newest_run(store)
    mine = [f for f in (run.findings if run else []) if f.customer_id == view.customer_id]
    if run is None or finding_id not in {f.finding_id for f in mine}:
        raise NotFound("This finding is not in the newest evaluation of your account.")
    found = await evidence_service.finding_evidence(
        store, finding_id=finding_id, as_of=None, evaluation_id=run.evaluation_id
    )
    customer = await customers.get_customer(store, customer_id=view.customer_id)
    return _page(
        request,
        "portal/evidence.html.j2",
        view=view,
        evidence=found,
        customer=customer,
        **evidence_charts(found),
    )


@router.get("/statement")
async def statement(
    view: ViewDep,
    store: StoreDep,
    settings: SettingsDep,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: Annotated[str | None, Query(max_length=10)] = None,
    format: Literal["html", "csv"] = "html",
) -> Response:
    """The customer's statement for a period, exactly as the API and the console answer it:
    HTML with its SHA-256, or its daily rows as a CSV download."""
    return await statement_answer(
        store,
        settings,
        customer_id=view.customer_id,
        from_=from_,
        to=to,
        known_at=None,
        format=format,
    )


@router.get("/{token}")
async def open_link(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    token: Annotated[str, Path(max_length=200)],
) -> Response:
    """Exchange the link's token for a session and go to the view, so that the token leaves
    the address bar and the history; 410 for an expired or revoked link, naming whom to ask."""
    if not _TOKEN.fullmatch(token):
        raise NotFound(
            "This link is not known. Check that it was copied whole, or ask your account "
            "manager for a new one."
        )
    opened = await links.open_link(store, token=token)
    if opened.gone is not None:
        manager = await _account_manager(store, opened.customer_id)
        raise ViewEnded(
            410, "This link has ended", f"This link {opened.gone}. Ask {manager} for a new one."
        )
    if opened.session_id is None or opened.expires_at is None:
        raise NotFound(
            "This link is not known. Check that it was copied whole, or ask your account "
            "manager for a new one."
        )
    response = RedirectResponse(links.VIEW_PATH, status_code=303)
    # Max-Age, not Expires: the browser counts the session's life on its own clock, so a
    # browser whose clock is off still keeps it for exactly as long as the server does.
    lifetime = max(int((opened.expires_at - datetime.now(UTC)).total_seconds()), 1)
    response.set_cookie(
        COOKIE,
        opened.session_id,
        max_age=lifetime,
        path=links.VIEW_PATH,
        secure=not settings.insecure_http,
        httponly=True,
        samesite="lax",
    )
    return response
