"""The admin documents of SPEC §3: a customer, its order forms and add-ons, a new licence key."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from core.identifiers import Identifier
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
