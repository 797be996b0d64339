"""The staff domain's routes: health, readiness, Prometheus metrics (SPEC §9), the audit log,
backups and named tokens (SPEC §10)."""

from __future__ import annotations

import shutil
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.responses import JSONResponse, Response

from core.dependencies import (
    ActorDep,
    AdminOnly,
    KeyringDep,
    SettingsDep,
    StaffBearer,
    StaffOnly,
    StoreDep,
)
from core.errors import Conflict
from core.identifiers import TokenNamePath
from core.openapi import problem
from core.settings import Settings
from staff import audit, backup, tokens
from staff.schemas import (
    AuditEntry,
    BackupMade,
    BackupRequest,
    HealthStatus,
    TokenCreated,
    TokenInfo,
    TokenRequest,
)

router = APIRouter(tags=["operations"])
admin_router = APIRouter(tags=["admin"], dependencies=[StaffOnly])


_HEALTH: dict[int | str, dict[str, Any]] = {
    200: {"model": HealthStatus},
    503: {"model": HealthStatus, "description": "Not now; see detail and Retry-After"},
}


@router.get("/healthz", summary="Liveness: the process answers", response_model=HealthStatus)
async def healthz(store: StoreDep) -> Response:
    """200 while the process is alive, also while its storage fails or recovers: a liveness
    probe must never restart it in mid-recovery. Whether storage takes writes
    is ``/readyz``'s answer; the ``detail`` here says so when it does not."""
    if store.invalidated:
        return JSONResponse(
            {
                "status": "ok",
                "detail": "The process is alive and is reopening its database after a fatal "
                "storage error (a full disk during a checkpoint?); /readyz answers 503 until "
                "it takes writes again. Free disk space; no restart is needed.",
            }
        )
    return JSONResponse({"status": "ok"})


def _disk_trouble(settings: Settings) -> str | None:
    """What is wrong with the data directory's disk, or None."""
    try:
        free_mb = shutil.disk_usage(settings.data_dir).free // (1 << 20)
    except OSError as exc:  # the data directory was removed under the server
        return (
            f"The data directory {settings.data_dir} cannot be read ({exc.strerror}): restore "
            "it, or restart the server, which makes it again."
        )
    if free_mb < settings.min_free_disk_mb:
        return (
            f"The data directory's disk has {free_mb} MiB free, under "
            f"STATREPORT_MIN_FREE_DISK_MB ({settings.min_free_disk_mb}); free space."
        )
    return None


@router.get("/readyz", summary="Readiness: storage accepts writes", responses=_HEALTH)
async def readyz(store: StoreDep, settings: SettingsDep) -> Response:
    """200 only while a write to storage commits and its disk has room; 503 otherwise."""
    detail = _disk_trouble(settings)
    if detail is None and not await store.probe():
        detail = "Storage does not accept writes."
    if detail is None:
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"status": "unavailable", "detail": detail},
        status_code=503,
        headers={"Retry-After": str(settings.retry_after_seconds)},
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(
    request: Request,
    keyring: KeyringDep,
    settings: SettingsDep,
    credentials: StaffBearer,
) -> Response:
    """The exposition format; needs a staff token (any role) unless metrics are public."""
    if not settings.metrics_public:
        keyring.staff(credentials.credentials if credentials else None)
    registry: CollectorRegistry = request.app.state.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@admin_router.get("/v1/audit-log", summary="Admin changes, newest first")
async def get_audit_log(
    store: StoreDep,
    target: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEntry]:
    """Who changed what, when, with the document before and after."""
    return await audit.audit_log(store, target=target, limit=limit)


@admin_router.post(
    "/v1/backups",
    status_code=201,
    summary="Write a consistent copy of the database",
    responses=problem(Conflict, "A file of that name exists already"),
)
async def post_backup(
    body: BackupRequest, store: StoreDep, settings: SettingsDep, actor: ActorDep
) -> BackupMade:
    """``destination`` is a file name in the backup directory (``STATREPORT_BACKUP_DIR``);
    the copy opens as a data directory's ``statreport.duckdb``."""
    return await backup.backup(
        store, folder=settings.backups_path, name=body.destination, actor=actor
    )


@admin_router.post(
    "/v1/tokens",
    status_code=201,
    summary="Create a named staff token (shown once)",
    responses=problem(Conflict, "The name is taken, or is 'root'"),
)
async def post_token(
    body: TokenRequest, store: StoreDep, keyring: KeyringDep, actor: ActorDep
) -> TokenCreated:
    """The token is in this answer only; the server keeps its hash. Audited."""
    return await tokens.create_token(store, keyring, name=body.name, role=body.role, actor=actor)


@admin_router.get(
    "/v1/tokens", summary="Named staff tokens (never the tokens)", dependencies=[AdminOnly]
)
async def get_tokens(store: StoreDep, keyring: KeyringDep) -> list[TokenInfo]:
    """Names, roles, when each was created and last used."""
    return await tokens.list_tokens(store, keyring)


@admin_router.delete(
    "/v1/tokens/{name}",
    status_code=204,
    summary="Revoke a named staff token",
    responses=problem(Conflict, "'root' cannot be revoked here"),
)
async def delete_token(
    name: TokenNamePath, store: StoreDep, keyring: KeyringDep, actor: ActorDep
) -> Response:
    """From now on the token gets 401, and its console sessions end. Audited."""
    await tokens.revoke_token(store, keyring, name=name, actor=actor)
    return Response(status_code=204)
