"""The audit log of admin changes (SPEC §3): written in each change's own transaction."""

from __future__ import annotations

from core.store import Store
from staff import repository
from staff.schemas import AuditEntry


async def audit_log(store: Store, *, target: str | None, limit: int) -> list[AuditEntry]:
    """The newest admin changes first."""
    rows = await store.read(lambda con: repository.audit_entries(con, target=target, limit=limit))
    return [AuditEntry.model_validate(row) for row in rows]
