"""What every console page shares: templates, the signed-in session, CSRF, security headers,
and errors shown as pages rather than problem documents."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import date
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from console.sessions import COOKIE, Session, Sessions
from core.auth import Actor
from core.errors import (
    Forbidden,
    InvalidPayload,
    MalformedBody,
    PayloadTooLarge,
    StatreportError,
    UnsupportedMediaType,
)
from core.problems import describe_validation_errors, format_loc
from core.templates import environment


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` that names a download (RFC 6266): an ASCII ``filename`` for
    old clients, and the exact name, percent-encoded UTF-8, in ``filename*``."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


#: Only the console's own origin, no framing, no inline script (SPEC §12). Inline SVG charts
#: use presentation attributes, so styles need no exception either.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: A statement is a self-contained document meant to be forwarded: its styles are inline,
#: and it may load nothing at all.
DOCUMENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = environment("console", trim_blocks=True)


class SignInRequired(Exception):
    """No live session: the page sends the browser to the sign-in form."""


class ConsoleRoute(APIRoute):
    """A console route: every answer carries the security headers; an error is a page that
    says what went wrong, with the status the JSON API would answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            response: Response
            try:
                response = await handler(request)
            except SignInRequired:
                # Back to the page after signing in; a form's target is no page to return to.
                query = f"?{request.url.query}" if request.url.query else ""
                page_asked = request.method == "GET"
                target = quote(request.url.path + query, safe="/") if page_asked else "/ui/"
                response = RedirectResponse(f"/ui/login?next={target}", status_code=303)
            except StatreportError as exc:
                response = await error_page(request, exc.status, exc.title, exc.detail)
                response.headers.update(exc.headers)  # Retry-After of a 503, for one
            except ValidationError as exc:
                response = await error_page(
                    request, 422, "Invalid input", "; ".join(validation_text(exc))
                )
            except RequestValidationError as exc:  # a query or path the route refuses
                described = describe_validation_errors(list(exc.errors()))
                response = await error_page(
                    request,
                    422,
                    "Invalid address",
                    "; ".join(f"{format_loc(e['loc'])}: {e['msg']}" for e in described),
                )
            if "Content-Security-Policy" not in response.headers:
                response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
            for name, value in _SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return handle


def sessions_of(request: Request) -> Sessions:
    """The console's sessions, opened with the app."""
    sessions: Sessions = request.app.state.sessions
    return sessions


async def current_session(request: Request) -> Session:
    """The signed-in session of this browser, or off to the sign-in form."""
    session = await sessions_of(request).get(request.cookies.get(COOKIE))
    if session is None:
        raise SignInRequired
    return session


SessionDep = Annotated[Session, Depends(current_session)]


#: The largest form the console accepts: a customer document of 1,000 orders fits.
FORM_LIMIT_BYTES = 1 << 20
_FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a console form (URL-encoded, as browsers send them), read with a bound:
    413 over 1 MiB, 415 for another type, 400 when it cannot be decoded."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != _FORM_TYPE:
        raise UnsupportedMediaType(
            f"The console's forms are sent as {_FORM_TYPE}; use the page's own form, or the "
            "JSON API for scripts."
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT_BYTES:
            raise PayloadTooLarge(
                f"A console form is at most {FORM_LIMIT_BYTES // 1024} KiB; for a larger "
                "document use 'statreport customers apply'."
            )
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=100,
            strict_parsing=True,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedBody(f"The form could not be read ({exc}); reload the page.") from exc
    return dict(pairs)


async def checked_form(request: Request, session: SessionDep) -> Mapping[str, str]:
    """A changing form's fields, once its CSRF token matched the session's and the session
    is an admin's; otherwise 403 and nothing changes."""
    form = await read_form(request)
    if not session.csrf_matches(form.get("csrf")):
        raise Forbidden(
            "This form did not come from your console session (its CSRF token is missing or "
            "stale). Reload the page and try again."
        )
    session.staff.require_admin()
    return form


FormDep = Annotated[Mapping[str, str], Depends(checked_form)]


def page(
    request: Request,
    template: str,
    *,
    session: Session | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render one page of the console."""
    html = templates.get_template(template).render(
        request=request,
        session=session,
        staff=session.staff if session else None,
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def confirmed(form: Mapping[str, str]) -> bool:
    """Whether the form comes from a confirmation page (``confirmation``)."""
    return form.get("confirm") == "yes"


def confirmation(
    request: Request,
    session: Session,
    *,
    title: str,
    consequence: str,
    confirm_label: str,
    fields: Mapping[str, str],
    back: str,
) -> HTMLResponse:
    """The second step of an action that cannot be undone: a page that names what will
    happen, whose own button posts the same form again with ``confirm=yes``; Cancel goes
    ``back``. A misclick on the first button changes nothing."""
    return page(
        request,
        "confirm.html.j2",
        session=session,
        title=title,
        consequence=consequence,
        confirm_label=confirm_label,
        action=request.url.path,
        fields=fields,
        back=back,
    )


async def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """An error as a page: what was wrong and what to do, with the API's status."""
    try:
        session = await sessions_of(request).get(request.cookies.get(COOKIE))
    except StatreportError:  # the store is failing: the page says so without the session
        session = None
    return page(
        request, "error.html.j2", session=session, status=status, title=title, detail=detail
    )


def validation_text(exc: ValidationError | InvalidPayload) -> list[str]:
    """Validation errors as lines a person can act on."""
    errors = (
        describe_validation_errors(exc.errors()) if isinstance(exc, ValidationError) else exc.errors
    )
    return [f"{format_loc(list(e['loc']))}: {e['msg']}" for e in errors]


def see_other(url: str) -> RedirectResponse:
    """After a change, back to a page (so that reloading it changes nothing)."""
    return RedirectResponse(url, status_code=303)


def parse_day(value: str | None, *, field: str) -> date | None:
    """A ``YYYY-MM-DD`` form field, or None when empty."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidPayload(
            f"{field} must be a day written YYYY-MM-DD, such as 2026-11-22; {value!r} is not.",
            errors=[{"loc": ["form", field], "msg": "a day, YYYY-MM-DD"}],
        ) from None


#: Rows a list page shows at once: enough to scan, few enough to draw at once.
PAGE_ROWS = 100


def pager(request: Request, start: int, total: int) -> dict[str, Any]:
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


def actor(session: Session) -> Actor:
    """Who a change made in the console is made by: the signed-in staff token's name."""
    return Actor(name=session.staff.name)
