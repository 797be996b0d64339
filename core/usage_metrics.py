"""The licence's metrics (SPEC §1): what a report carries, and the bound of every count."""

from __future__ import annotations

#: Metrics a report carries; instance counts are derived, never reported.
REPORT_METRICS = ("users", "tenants", "namespaces", "worker_groups", "roles", "service_accounts")
#: The largest count a report or an order form may carry.
METRIC_MAX = 10_000_000
#: An instance is active on D if it reported on D or on one of the days before, up to this
#: many days in all (SPEC §5, ``instance_activity_days``).
ACTIVITY_DAYS = 3
