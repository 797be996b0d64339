"""The wire format (SPEC §2) and the admin documents (SPEC §3)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

METRIC_MAX = 10_000_000
FUTURE_TOLERANCE = timedelta(minutes=10)
PAST_LIMIT = timedelta(days=400)
MAX_BATCH = 1000

#: Metrics a report carries (SPEC §1); instance counts are derived, never reported.
REPORT_METRICS = ("users", "tenants", "namespaces", "worker_groups", "roles", "service_accounts")
#: Metrics an order form can entitle; users come as user packs.
ENTITLED_METRICS = (
    "users",
    "production_instances",
    "non_production_instances",
    "tenants",
    "namespaces",
    "worker_groups",
    "roles",
    "service_accounts",
)

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)

MetricValue = Annotated[int, Field(strict=True, ge=0, le=METRIC_MAX)]
Quantity = Annotated[int, Field(strict=True, ge=0, le=METRIC_MAX)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]


def _rfc3339(value: Any) -> Any:
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-11-20T03:17:00Z")
    return value


class ReportMetrics(BaseModel):
    """Usage counts of one instance; no free text can enter here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: MetricValue
    tenants: MetricValue | None = None
    namespaces: MetricValue | None = None
    worker_groups: MetricValue | None = None
    roles: MetricValue | None = None
    service_accounts: MetricValue | None = None


class StatisticsReport(BaseModel):
    """One Statistics Report, wire format v1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1]
    report_id: UUID
    instance_id: UUID
    environment: Literal["production", "non_production"]
    generated_at: Annotated[datetime, BeforeValidator(_rfc3339)]
    product_version: Annotated[
        str,
        StringConstraints(max_length=32, pattern=r"^\d+\.\d+\.\d+(-[0-9A-Za-z][0-9A-Za-z.-]*)?$"),
    ]
    sequence: Annotated[int, Field(strict=True, ge=0, le=2**62)] | None = None
    metrics: ReportMetrics

    @field_validator("generated_at")
    @classmethod
    def _within_window(cls, value: datetime) -> datetime:
        now = datetime.now(UTC)
        if value > now + FUTURE_TOLERANCE:
            raise ValueError("lies more than 10 minutes in the future; check the instance's clock")
        if value < now - PAST_LIMIT:
            raise ValueError("lies more than 400 days in the past; such reports are not accepted")
        return value.astimezone(UTC)

    @property
    def usage_day(self) -> date:
        """The UTC day the report counts for."""
        return self.generated_at.date()


class ReportBatch(BaseModel):
    """``{"reports": [...]}`` with 1 to 1000 reports."""

    model_config = ConfigDict(extra="forbid")

    reports: Annotated[list[Any], Field(min_length=1, max_length=MAX_BATCH)]


class ReportOutcome(BaseModel):
    """Whether one report was stored now or had been stored before."""

    report_id: UUID
    status: Literal["stored", "duplicate"]


class IngestResult(BaseModel):
    """The 202 answer: what was stored and what was a duplicate."""

    stored: int
    duplicates: int
    results: list[ReportOutcome]


class OrderEntitlements(BaseModel):
    """Quantities on an order form. Users come as packs of ``users_per_pack``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_packs: Quantity | None = None
    users_per_pack: Annotated[int, Field(strict=True, ge=1, le=METRIC_MAX)] | None = None
    production_instances: Quantity | None = None
    non_production_instances: Quantity | None = None
    tenants: Quantity | None = None
    namespaces: Quantity | None = None
    worker_groups: Quantity | None = None
    roles: Quantity | None = None
    service_accounts: Quantity | None = None


class AddonEntitlements(BaseModel):
    """Quantities an add-on adds to its order; user packs use the order's pack size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_packs: Quantity | None = None
    production_instances: Quantity | None = None
    non_production_instances: Quantity | None = None
    tenants: Quantity | None = None
    namespaces: Quantity | None = None
    worker_groups: Quantity | None = None
    roles: Quantity | None = None
    service_accounts: Quantity | None = None


class Addon(BaseModel):
    """An add-on to an order form, effective from a date."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    addon_id: Identifier
    effective: date
    entitlements: AddonEntitlements


class OrderForm(BaseModel):
    """An order form: entitlements valid from ``start`` to ``end`` inclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: Identifier
    start: date
    end: date
    entitlements: OrderEntitlements
    addons: list[Addon] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> OrderForm:
        if self.end < self.start:
            raise ValueError(
                f"order {self.order_id} ends ({self.end}) before it starts ({self.start})"
            )
        ids = [addon.addon_id for addon in self.addons]
        if len(ids) != len(set(ids)):
            raise ValueError(f"order {self.order_id} lists the same addon_id twice")
        for addon in self.addons:
            if not self.start <= addon.effective <= self.end:
                raise ValueError(
                    f"add-on {addon.addon_id} is effective {addon.effective}, outside its order's "
                    f"term {self.start} to {self.end}"
                )
        packs_used = self.entitlements.user_packs is not None or any(
            addon.entitlements.user_packs is not None for addon in self.addons
        )
        if packs_used and self.entitlements.users_per_pack is None:
            raise ValueError(f"order {self.order_id} sells user_packs but sets no users_per_pack")
        return self


class CustomerDocument(BaseModel):
    """The declarative document of one customer and all its order forms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    account_manager: Annotated[
        str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    ]
    air_gapped: bool = False
    orders: list[OrderForm] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _unique_orders(self) -> CustomerDocument:
        ids = [order.order_id for order in self.orders]
        if len(ids) != len(set(ids)):
            raise ValueError("the same order_id appears twice")
        return self


class Customer(CustomerDocument):
    """A stored customer, as the admin API returns it."""

    customer_id: str
    created_at: datetime
    updated_at: datetime


class LicenseKeyCreated(BaseModel):
    """A new licence key; the key itself is shown this once."""

    key_id: str
    customer_id: str
    license_key: str


class AuditEntry(BaseModel):
    """One admin change: who, when, what, before and after."""

    audit_id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Any
    after: Any
