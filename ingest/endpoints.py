"""The phone-home route: ``POST /v1/reports``."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from core.auth import Keyring
from core.errors import InvalidPayload, RateLimited
from core.ratelimit import RateLimiter
from core.store import Store
from ingest.body import read_json_body
from ingest.service import ingest_reports, parse_reports, with_new_instance_errors


async def post_reports(request: Request) -> Response:
    """Authenticate the licence key, validate the whole body, and answer once committed."""
    state = request.app.state
    keyring: Keyring = state.keyring
    limiter: RateLimiter = state.rate_limiter
    store: Store = state.store
    holder = keyring.license_holder(request.headers.get("authorization"))
    wait = limiter.acquire(holder.key_id)
    if wait is not None:
        raise RateLimited(
            f"Licence key {holder.key_id} sent more than {int(limiter.capacity)} requests a "
            f"minute. Retry in {wait} s; send spooled reports in batches to need fewer requests.",
            retry_after=wait,
        )
    within = state.settings.body_timeout_seconds
    body = await read_json_body(request, within_seconds=within)
    try:
        reports, batch = parse_reports(body)
    except InvalidPayload as refusal:
        raise await with_new_instance_errors(store, refusal, body=body) from None
    result = await ingest_reports(store, holder=holder, reports=reports, batch=batch)
    return Response(result.to_json(), status_code=202, media_type="application/json")


class _NamedRoute(Route):
    """A plain route that names itself in the scope, as FastAPI's routes do, so that request
    metrics carry its template."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match != Match.NONE:
            child_scope["route"] = self
        return match, child_scope


#: ``POST /v1/reports`` in the app's routes. The server's lane (``core/fastlane.py``) serves
#: every POST before the app sees it; this route answers the path's other methods with 405,
#: and serves the POST only where no lane is in front. The document of the route is built
#: from the wire models in ``ingest/openapi.py``: FastAPI cannot see a body read by hand.
#: Added to the app's own router (``include_router`` would copy it into a plain Route).
reports_route = _NamedRoute("/v1/reports", post_reports, methods=["POST"])
