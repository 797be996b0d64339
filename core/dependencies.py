"""Request dependencies: the resources opened in the app's lifespan, and admin auth."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.auth import Actor, Keyring, Staff, bearer_token
from core.ratelimit import RateLimiter
from core.settings import Settings
from core.store import Store
from core.telemetry import ApiMetrics


async def get_store(request: Request) -> Store:
    """The open store."""
    store: Store = request.app.state.store
    return store


async def get_keyring(request: Request) -> Keyring:
    """The admin token and licence key hashes."""
    keyring: Keyring = request.app.state.keyring
    return keyring


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_rate_limiter(request: Request) -> RateLimiter:
    """The per-key rate limiter."""
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


async def get_api_metrics(request: Request) -> ApiMetrics:
    """The API's Prometheus metrics."""
    metrics: ApiMetrics = request.app.state.api_metrics
    return metrics


StoreDep = Annotated[Store, Depends(get_store)]
KeyringDep = Annotated[Keyring, Depends(get_keyring)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
ApiMetricsDep = Annotated[ApiMetrics, Depends(get_api_metrics)]

ACTOR_PATTERN = r"^[A-Za-z0-9._@+-]{1,64}$"


# Declares the staff token as a bearer scheme in the OpenAPI document, so that /docs can
# send it; the check itself, and its problem+json 401, stay with the keyring.
_staff_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="staffToken",
    description="STATREPORT_ADMIN_TOKEN (root) or a named token from 'statreport tokens create'",
)

#: The bearer credentials, declared so that the document names the staff token's scheme.
StaffBearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_staff_bearer)]

_READS = frozenset({"GET", "HEAD"})


async def current_staff(
    request: Request,
    keyring: KeyringDep,
    _: StaffBearer,
) -> Staff:
    """The staff member behind the bearer token. A viewer may read (GET) and nothing else:
    any change answers 403 naming the role. One rule, for every admin route."""
    staff = keyring.staff(bearer_token(request.headers.get("authorization")))
    if request.method not in _READS:
        staff.require_admin(f"{request.method} {request.url.path}")
    return staff


StaffDep = Annotated[Staff, Depends(current_staff)]


async def require_admin_role(staff: StaffDep) -> None:
    """For the few reads only an admin may make (the list of tokens)."""
    staff.require_admin("Reading this")


async def admin_actor(
    staff: StaffDep,
    x_statreport_actor: Annotated[str | None, Header(pattern=ACTOR_PATTERN)] = None,
) -> Actor:
    """Who is making a change, for the audit log: the token's name, and whom it says it acts
    for (the CLI sends the login name) beside it."""
    return Actor(name=staff.name, on_behalf_of=x_statreport_actor)


StaffOnly = Depends(current_staff)
AdminOnly = Depends(require_admin_role)
ActorDep = Annotated[Actor, Depends(admin_actor)]
