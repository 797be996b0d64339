"""The audit log of admin changes (SPEC §3): written in each change's own transaction."""

from __future__ import annotations

from core import repository
from core.schemas import AuditEntry
from core.store import Store


async def audit_log(store: Store, *, target: str | None, limit: int) -> list[AuditEntry]:
    """The newest admin changes first."""
    rows = await store.read(lambda con: repository.audit_entries(con, target=target, limit=limit))
    return [AuditEntry.model_validate(row) for row in rows]
