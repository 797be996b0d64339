"""Request dependencies: the resources opened in the app's lifespan, and admin auth."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.auth import Keyring
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


# Declares the admin token as a bearer scheme in the OpenAPI document, so that /docs can
# send it; the check itself, and its problem+json 401, stay with the keyring.
_admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="adminToken", description="STATREPORT_ADMIN_TOKEN"
)


async def require_admin(
    request: Request,
    keyring: KeyringDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
) -> None:
    """Admit only the admin token."""
    keyring.require_admin(request.headers.get("authorization"))


async def admin_actor(
    x_statreport_actor: Annotated[str | None, Header(pattern=ACTOR_PATTERN)] = None,
) -> str:
    """Who is making an admin change, for the audit log (the CLI sends the login name)."""
    return x_statreport_actor or "admin"


AdminDep = Depends(require_admin)
ActorDep = Annotated[str, Depends(admin_actor)]
