"""``POST /v1/attestations``: the quarterly bundle of an air-gapped installation."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from core.auth import bearer_token
from core.dependencies import KeyringDep, RateLimiterDep, SettingsDep, StoreDep
from core.errors import RateLimited
from ingest import repository
from ingest.attestation import MAX_BUNDLE_BYTES, verify_bundle
from ingest.body import read_json_body
from ingest.service import ingest_reports

log = logging.getLogger("statreport.attestation")

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
    bundle = await asyncio.to_thread(verify_bundle, body, license_key=license_key)
    result = await ingest_reports(
        store, holder=holder, reports=bundle.reports, source="attestation"
    )
    received_at = datetime.now(UTC)
    digest = hashlib.sha256(body).hexdigest()
    certification = bundle.certification
    await store.write(
        lambda con: repository.record_attestation(
            con,
            customer_id=holder.customer_id,
            quarter=bundle.quarter,
            received_at=received_at,
            reports=len(bundle.reports),
            officer_name=certification.officer_name,
            officer_title=certification.officer_title,
            certified_on=certification.certified_on,
            bundle_sha256=digest,
            key_id=holder.key_id,
        )
    )
    log.info(
        "event=attestation.received customer=%s quarter=%s reports=%d stored=%d",
        holder.customer_id,
        bundle.quarter,
        len(bundle.reports),
        result.stored,
    )
    return Response(result.to_json(), status_code=202, media_type="application/json")
