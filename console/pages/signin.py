"""Signing in and out of the console (SPEC §12): a named token for a session cookie."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from console.sessions import COOKIE, LIFETIME_SECONDS, address_key
from console.web import (
    ConsoleRoute,
    SessionDep,
    error_page,
    page,
    read_form,
    see_other,
    sessions_of,
)
from core.dependencies import KeyringDep, SettingsDep
from core.errors import Unauthenticated

log = logging.getLogger("statreport.console")

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)
root_router = APIRouter(include_in_schema=False)


@root_router.get("/")
async def home() -> RedirectResponse:
    """The console is the front page."""
    return RedirectResponse("/ui/", status_code=307)


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
        refused = await error_page(
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
        await sessions.start(staff),
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
        return await error_page(request, 403, "Forbidden", "Reload the page and sign out again.")
    await sessions_of(request).end(request.cookies.get(COOKIE))
    response = see_other("/ui/login")
    response.delete_cookie(COOKIE, path="/ui")
    return response


def _safe_next(target: str) -> str:
    """Only a path of this console: never an address elsewhere."""
    if target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"
