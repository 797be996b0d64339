"""Instance-days (SPEC §13 v2): per instance and UTC day, what its reports of that day say.

One row per instance and day holds the maximum of every metric, the report count, the first
and last ``generated_at`` and the lowest and highest ``sequence``. The evaluation, usage,
evidence, statements and the console read these rows instead of the raw reports: 24 times
fewer for an hourly fleet, and as many whatever the reports per day.

The rollup of a set of reports is written here once. The migration that builds the table runs
it over every stored report; the group commit runs it over the reports it stores, in the same
transaction, and merges the result into the rows already there (a late report for an old day
updates its row).
"""

from __future__ import annotations

from core.usage_metrics import REPORT_METRICS

#: The table's columns, in order: the key, who and what, then the day's figures.
COLUMNS = (
    "instance_id",
    "day",
    "customer_id",
    "environment",
    "product_version",
    *REPORT_METRICS,
    "reports",
    "first_generated_at",
    "last_generated_at",
    "min_sequence",
    "max_sequence",
)

CREATE_TABLE = f"""
CREATE TABLE instance_days (
    instance_id UUID NOT NULL,
    day DATE NOT NULL,
    customer_id VARCHAR NOT NULL,
    environment VARCHAR NOT NULL,
    product_version VARCHAR NOT NULL,
    {", ".join(f"{metric} INTEGER" for metric in REPORT_METRICS)},
    reports BIGINT NOT NULL,
    first_generated_at TIMESTAMPTZ NOT NULL,
    last_generated_at TIMESTAMPTZ NOT NULL,
    min_sequence BIGINT,
    max_sequence BIGINT,
    PRIMARY KEY (instance_id, day)
);
"""


def rollup(source: str) -> str:
    """The instance-days of the reports in ``source`` (a table or registered Arrow name with
    the columns of ``reports``), in the order of ``COLUMNS``. The environment and product
    version are those of the day's latest report."""
    peaks = ", ".join(f"max({metric})" for metric in REPORT_METRICS)
    return (
        "SELECT instance_id::UUID, usage_day, any_value(customer_id), "  # noqa: S608
        "arg_max(environment, generated_at), arg_max(product_version, generated_at), "
        f"{peaks}, count(*), min(generated_at), "
        f"max(generated_at), min(sequence), max(sequence) FROM {source} "
        "GROUP BY instance_id, usage_day"
    )


def upsert(source: str) -> str:
    """Merge the rollup of ``source`` into ``instance_days``: maxima and minima combine,
    counts add up, and the environment and version of the later report win. Adding is right
    because a report is only ever stored once (``report_id`` is unique)."""
    peaks = ", ".join(
        f"{metric} = greatest(instance_days.{metric}, excluded.{metric})"
        for metric in REPORT_METRICS
    )
    return (
        f"INSERT INTO instance_days {rollup(source)} "
        "ON CONFLICT (instance_id, day) DO UPDATE SET "
        f"{_latest('environment')}, {_latest('product_version')}, "
        f"{peaks}, "
        "reports = instance_days.reports + excluded.reports, "
        "first_generated_at = least(instance_days.first_generated_at, "
        "excluded.first_generated_at), "
        "last_generated_at = greatest(instance_days.last_generated_at, "
        "excluded.last_generated_at), "
        "min_sequence = least(instance_days.min_sequence, excluded.min_sequence), "
        "max_sequence = greatest(instance_days.max_sequence, excluded.max_sequence)"
    )


def _latest(column: str) -> str:
    return (
        f"{column} = CASE WHEN excluded.last_generated_at >= instance_days.last_generated_at "
        f"THEN excluded.{column} ELSE instance_days.{column} END"
    )
