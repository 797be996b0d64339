"""Named staff tokens: list, create (shown once), revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import HTMLResponse, Response

from console.sessions import COOKIE
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
from core.auth import Role
from core.dependencies import KeyringDep, StoreDep
from core.identifiers import TOKEN_NAME_PATTERN
from staff import tokens
from staff.schemas import TokenRequest

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)


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
        created=await sessions_of(request).take_once(request.cookies.get(COOKIE), "token"),
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
        store, keyring, name=asked.name, role=asked.role, actor=actor(session)
    )
    await sessions_of(request).show_once(request.cookies.get(COOKIE), "token", created)
    return see_other("/ui/tokens")


@router.post("/tokens/{name}/revoke")
async def revoke_token(
    form: FormDep,
    session: SessionDep,
    store: StoreDep,
    keyring: KeyringDep,
    name: Annotated[str, Path(pattern=TOKEN_NAME_PATTERN)],
    request: Request,
) -> Response:
    """Revoke a named token, once confirmed: it is refused from now on and its sessions
    end."""
    if not confirmed(form):
        return confirmation(
            request,
            session,
            title=f"Revoke the staff token {name}?",
            consequence=f"{name} is refused from then on, by the API and the console, and every "
            "console session signed in with it ends at once. A revoked token cannot be "
            "restored; create a new one to give access again.",
            confirm_label=f"Revoke {name}",
            fields={},
            back="/ui/tokens",
        )
    await tokens.revoke_token(store, keyring, name=name, actor=actor(session))
    return see_other("/ui/tokens")
