"""``POST /v1/attestations``: the quarterly bundle of an air-gapped installation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from core.auth import bearer_token
from core.dependencies import KeyringDep, RateLimiterDep, SettingsDep, StoreDep
from core.errors import RateLimited
from ingest import service
from ingest.attestation import MAX_BUNDLE_BYTES
from ingest.body import read_json_body

router = APIRouter(tags=["reports"])


@router.post(
    "/v1/attestations",
    status_code=202,
    summary="Upload a signed quarterly attestation (air-gapped installations)",
    responses={202: {"description": "Every report is committed (stored or duplicate)."}},
)
async def post_attestation(
    request: Request,
    keyring: KeyringDep,
    limiter: RateLimiterDep,
    store: StoreDep,
    settings: SettingsDep,
) -> Response:
    """Verify the signature, the quarter and every report, then store them as attested."""
    authorization = request.headers.get("authorization")
    holder = keyring.license_holder(authorization)
    license_key = bearer_token(authorization) or ""
    wait = limiter.acquire(holder.key_id)
    if wait is not None:
        raise RateLimited(
            f"Too many requests for key {holder.key_id}; retry in {wait} s.", retry_after=wait
        )
    within = 4 * settings.body_timeout_seconds  # up to 16 MiB
    body = await read_json_body(request, limit=MAX_BUNDLE_BYTES, within_seconds=within)
    result = await service.ingest_attestation(
        store, holder=holder, body=body, license_key=license_key
    )
    return Response(result.to_json(), status_code=202, media_type="application/json")
