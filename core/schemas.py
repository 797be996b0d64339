"""Documents of the kernel's own routes: the audit log and backups."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints


class AuditEntry(BaseModel):
    """One admin change: who, when, what, before and after."""

    audit_id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Any
    after: Any


class BackupRequest(BaseModel):
    """``POST /v1/backups``: the file name of the copy in the backup directory."""

    model_config = ConfigDict(extra="forbid")

    destination: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class BackupMade(BaseModel):
    """A backup written: where, how big, how long it took."""

    destination: str
    bytes: int
    seconds: float
