"""The admin documents of SPEC §3: a customer, its order forms and add-ons, a new licence key."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from core.identifiers import Day, EmailAddress, Identifier
from core.usage_metrics import METRIC_MAX

Quantity = Annotated[int, Field(strict=True, ge=0, le=METRIC_MAX)]


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


class OrderEntitlements(AddonEntitlements):
    """Quantities on an order form. Users come as packs of ``users_per_pack``."""

    users_per_pack: Annotated[int, Field(strict=True, ge=1, le=METRIC_MAX)] | None = None


class Addon(BaseModel):
    """An add-on to an order form, effective from a date."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    addon_id: Identifier
    effective: Day
    entitlements: AddonEntitlements


#: How a reported metric adds up across a customer's active instances (SPEC §3, §5 v2).
CountingRule = Literal["sum", "production", "max_instance"]
CountedMetric = Literal[
    "users", "tenants", "namespaces", "worker_groups", "roles", "service_accounts"
]


class OrderForm(BaseModel):
    """An order form: entitlements valid from ``start`` to ``end`` inclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: Identifier
    start: Day
    end: Day
    entitlements: OrderEntitlements
    addons: list[Addon] = Field(default_factory=list, max_length=500)
    counting: dict[CountedMetric, CountingRule] | None = Field(
        None,
        description="How each reported metric adds up across active instances; `sum` for a "
        "metric not named.",
    )

    def rule(self, metric: str) -> str:
        """The counting rule of ``metric`` on this order (``sum`` unless named)."""
        return (self.counting or {}).get(metric, "sum")  # type: ignore[call-overload, no-any-return]

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
    account_manager: EmailAddress
    air_gapped: Annotated[bool, Field(strict=True)] = False
    air_gapped_since: Day | None = Field(
        None,
        description="The day from which the customer is air-gapped; with air_gapped and no "
        "day, the start of its earliest order.",
    )
    orders: list[OrderForm] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="before")
    @classmethod
    def _without_read_only_fields(cls, data: Any) -> Any:
        """Take back what GET answered: its read-only fields are set aside, not refused."""
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in READ_ONLY_FIELDS}
        return data

    @model_validator(mode="after")
    def _consistent_orders(self) -> CustomerDocument:
        ids = [order.order_id for order in self.orders]
        if len(ids) != len(set(ids)):
            raise ValueError("the same order_id appears twice")
        # Orders that overlap must count each metric the same way. Equality is transitive, so
        # that holds exactly when every run of overlapping orders (one sweep by start) counts
        # like its first: O(n log n), where comparing every pair was O(n²) (issue 32).
        by_start = sorted(self.orders, key=lambda order: order.start)
        metrics = get_args(CountedMetric)
        latest: OrderForm | None = None  # of the current run, the order that ends last
        for second in by_start:
            if latest is None or second.start > latest.end:
                latest = second
                continue
            for metric in metrics:
                if latest.rule(metric) != second.rule(metric):
                    raise ValueError(
                        f"orders {latest.order_id} and {second.order_id} overlap "
                        f"({second.start} to {min(latest.end, second.end)}) but count "
                        f"{metric} differently ({latest.rule(metric)} and "
                        f"{second.rule(metric)}); give them the same counting rule"
                    )
            if second.end > latest.end:
                latest = second
        return self

    def effective_air_gapped_since(self) -> date | None:
        """The day from which attestations are owed: ``air_gapped_since``, else the start of
        the earliest order; None when not air-gapped."""
        if not self.air_gapped:
            return None
        if self.air_gapped_since is not None:
            return self.air_gapped_since
        return min((order.start for order in self.orders), default=None)


#: What GET /v1/customers/{id} adds to the document; a PUT of that answer sets them aside.
READ_ONLY_FIELDS = frozenset({"customer_id", "created_at", "updated_at", "license_keys"})


class Customer(CustomerDocument):
    """A stored customer, as the admin API returns it."""

    customer_id: str
    #: As stored: an address written before the strict check is still read (and fails only
    #: its own weekly email).
    account_manager: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def _without_read_only_fields(cls, data: Any) -> Any:  # type: ignore[override]
        """A stored customer keeps them (this replaces the document's validator)."""
        return data


class LicenseKeyCreated(BaseModel):
    """A new licence key; the key itself is shown this once."""

    key_id: str
    customer_id: str
    license_key: str


class Instance(BaseModel):
    """An installation that reported for a customer, as the admin API lists it."""

    instance_id: str
    environment: str
    product_version: str
    first_report_on: date
    last_report_on: date
    reports: int
    last_sequence: int | None = Field(
        description="The highest sequence the instance sent on its latest report day."
    )
    active_on_as_of: bool = Field(
        description="Active on the latest day that has ended (UTC): reported on it or on one "
        "of the two days before, and not retired since."
    )
    retired_on: date | None


class Retirement(BaseModel):
    """``POST /v1/instances/{id}/retire``: the day the installation was decommissioned."""

    model_config = ConfigDict(extra="forbid")

    retired_on: Day


class Attestation(BaseModel):
    """A quarter's attestation as first received."""

    quarter: str
    received_at: datetime = Field(description="When it was first stored; a resend keeps it.")
    due_on: date = Field(description="The quarter's last day plus 30 days.")
    late: bool = Field(description="First stored after due_on (UTC).")
    reports: int
    officer_name: str | None
    officer_title: str | None
    certified_on: date | None
    bundle_sha256: str | None


class LinkRequest(BaseModel):
    """``POST /v1/customers/{id}/links``: how long the customer's view stays open, and for
    whom (a note for staff)."""

    model_config = ConfigDict(extra="forbid")

    expires_in_days: Annotated[int, Field(strict=True, ge=1, le=90)] = 30
    note: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] = ""


class LinkCreated(BaseModel):
    """A new link; its address (with the token) is in this answer only."""

    link_id: str
    url: str
    expires_at: datetime
    note: str


class Link(BaseModel):
    """A link as listed: never its token."""

    link_id: str
    note: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None
    last_viewed_at: datetime | None
    views: int
