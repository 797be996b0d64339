"""The webhook documents of SPEC §14: an endpoint, a new one's secret, a delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from analytics.announcements import EVENT_TYPES

EventType = Literal[
    "finding.opened",
    "finding.material",
    "finding.deadline_near",
    "finding.overdue",
    "finding.resolved",
    "evaluation.completed",
    "webhook.test",
    "*",
]
assert set(get_args(EventType)) == {*EVENT_TYPES, "*"}
Url = Annotated[
    str,
    StringConstraints(
        min_length=10, max_length=2000, strip_whitespace=True, pattern=r"^https?://\S+$"
    ),
]
Description = Annotated[str, StringConstraints(max_length=500, strip_whitespace=True)]


Events = Annotated[
    list[EventType],
    Field(min_length=1, max_length=20, description="Event types, or ['*'] for all of them."),
]


class WebhookCreate(BaseModel):
    """``POST /v1/webhooks``: where to send, which events, and a note for people."""

    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="https only; the host must resolve to public addresses.")
    events: Events = ["*"]
    description: Description = ""

    @field_validator("events")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class WebhookPatch(BaseModel):
    """``PATCH /v1/webhooks/{id}``: what to change; what is absent stays."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    enabled: Annotated[bool, Field(strict=True)] | None = None

    @field_validator("events")
    @classmethod
    def _once_each(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted(set(value))


class Webhook(BaseModel):
    """An endpoint as listed: never its secret."""

    webhook_id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    created_at: datetime
    disabled_reason: str | None = Field(
        None,
        description="Why it was disabled, when statreport disabled it (a 410, 5 days of failures).",
    )
    previous_secret_until: datetime | None = Field(
        None, description="Until when deliveries are also signed with the secret before a rotation."
    )


class WebhookCreated(Webhook):
    """A new endpoint, or a rotated secret: the secret is in this answer only."""

    secret: str = Field(description="whsec_ and the base64 of 32 random bytes; shown once.")


class Delivery(BaseModel):
    """One event's delivery to one endpoint, as the delivery log lists it."""

    event_id: str
    type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]


class Attempt(BaseModel):
    """What one attempt to send came to."""

    event_id: str
    delivered: bool
    status_code: int | None
    error: str | None
    seconds: float
