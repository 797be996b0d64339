"""The phone-home route: ``POST /v1/reports``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ingest.body import read_json_body
from ingest.dependencies import KeyringDep, RateLimiterDep, StoreDep
from ingest.errors import RateLimited
from ingest.service import ingest_reports, parse_reports

router = APIRouter(tags=["reports"])


@router.post(
    "/v1/reports",
    status_code=202,
    summary="Send one Statistics Report or a batch of up to 1000",
    responses={202: {"description": "Every report is committed (stored or duplicate)."}},
)
async def post_reports(
    request: Request, keyring: KeyringDep, limiter: RateLimiterDep, store: StoreDep
) -> Response:
    """Authenticate the licence key, validate the whole body, and answer once committed."""
    holder = keyring.license_holder(request.headers.get("authorization"))
    wait = limiter.acquire(holder.key_id)
    if wait is not None:
        raise RateLimited(
            f"Licence key {holder.key_id} sent more than {int(limiter.capacity)} requests a "
            f"minute. Retry in {wait} s; send spooled reports in batches to need fewer requests.",
            retry_after=wait,
        )
    reports = parse_reports(await read_json_body(request))
    result = await ingest_reports(store, holder=holder, reports=reports)
    return Response(result.model_dump_json(), status_code=202, media_type="application/json")
