"""The audit log: every admin change, what it changed."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse

from console.web import (
    ConsoleRoute,
    SessionDep,
    page,
)
from core.dependencies import StoreDep
from staff import audit

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)


@router.get("/audit")
async def audit_log(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    target: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> HTMLResponse:
    """Who changed what and when: each field a change added, removed or changed, and the
    whole documents before and after one click away."""
    entries = await audit.audit_log(store, target=target.strip() or None, limit=limit)
    rows = [
        {
            "entry": entry,
            "before": _pretty(entry.before),
            "after": _pretty(entry.after),
            "changes": audit.changes(entry.before, entry.after),
        }
        for entry in entries
    ]
    return page(request, "audit.html.j2", session=session, rows=rows, target=target, limit=limit)


def _pretty(document: Any) -> str:
    return "" if document is None else json.dumps(document, indent=2, sort_keys=True)
