"""Health, readiness and Prometheus metrics (SPEC §9)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.responses import JSONResponse, Response

from ingest.dependencies import KeyringDep, SettingsDep, StoreDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """200 while the process is alive."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: storage accepts writes")
async def readyz(store: StoreDep, settings: SettingsDep) -> Response:
    """200 only while a write to storage commits; 503 otherwise."""
    if await store.probe():
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"status": "unavailable", "detail": "Storage does not accept writes."},
        status_code=503,
        headers={"Retry-After": str(settings.retry_after_seconds)},
    )


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(
    request: Request,
    keyring: KeyringDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """The exposition format; needs the admin token unless metrics are public."""
    if not settings.metrics_public:
        keyring.require_admin(authorization)
    registry: CollectorRegistry = request.app.state.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
