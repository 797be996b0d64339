"""The licence's metrics (SPEC §1): what a report carries, and the bound of every count."""

from __future__ import annotations

#: Metrics a report carries; instance counts are derived, never reported.
REPORT_METRICS = ("users", "tenants", "namespaces", "worker_groups", "roles", "service_accounts")
#: The largest count a report or an order form may carry.
METRIC_MAX = 10_000_000
#: An instance is active on D if it reported on D or on one of the days before, up to this
#: many days in all (SPEC §5, ``instance_activity_days``).
ACTIVITY_DAYS = 3

#: How a person reads each metric, and each item of an order form.
LABELS = {
    "users": "Users",
    "tenants": "Tenants",
    "namespaces": "Namespaces",
    "worker_groups": "Worker groups",
    "roles": "Roles",
    "service_accounts": "Service accounts",
    "production_instances": "Production instances",
    "non_production_instances": "Non-production instances",
    "user_packs": "User packs",
    "users_per_pack": "Users per pack",
}


def label(name: str) -> str:
    """A metric's or an order item's name as a person reads it (``worker_groups``: Worker
    groups); an unknown name as it is."""
    return LABELS.get(name, name)
