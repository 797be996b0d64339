"""Documents of the kernel's own routes: the audit log and backups."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from core.auth import Role
from core.identifiers import FILE_NAME_PATTERN, TOKEN_NAME_PATTERN


class AuditEntry(BaseModel):
    """One admin change: who, when, what, before and after."""

    audit_id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Any
    after: Any
    on_behalf_of: str | None = Field(
        default=None, description="Whom the token's holder said they acted for, if anyone."
    )


class HealthStatus(BaseModel):
    """What ``/healthz`` and ``/readyz`` answer: ``ok`` or ``ready``, else why not."""

    status: str
    detail: str | None = None


class BackupRequest(BaseModel):
    """``POST /v1/backups``: the file name of the copy in the backup directory."""

    model_config = ConfigDict(extra="forbid")

    destination: Annotated[
        str,
        StringConstraints(pattern=FILE_NAME_PATTERN),
        Field(description="A plain file name: letters, digits, '.', '_', '-'; not a path."),
    ]


class BackupMade(BaseModel):
    """A backup written: where, how big, how long it took."""

    destination: str
    bytes: int
    seconds: float


TokenName = Annotated[str, StringConstraints(pattern=TOKEN_NAME_PATTERN)]


class TokenRequest(BaseModel):
    """``POST /v1/tokens``: a person's name and what they may do."""

    model_config = ConfigDict(extra="forbid")

    name: TokenName = Field(description="Lower-case letters, digits, '.', '_' or '-'; unique.")
    role: Role = Field(
        description="'viewer' reads everything but the tokens; 'admin' also changes."
    )


class TokenCreated(BaseModel):
    """A new named token, shown in this answer only; the server keeps its hash."""

    name: str
    role: Role
    token: str


class TokenInfo(BaseModel):
    """A named token as listed: never the token itself."""

    name: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None
