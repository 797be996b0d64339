"""Instance-days (SPEC §13 v2): per instance and UTC day, what its reports of that day say.

Per instance and day: the maximum of every metric, the report count, the first and last
``generated_at``, the lowest and highest ``sequence``, and the environment and product version
of the day's latest report. The evaluation, usage, evidence, statements and the console read
these instead of the raw reports: 24 times fewer rows for an hourly fleet, and as many
whatever the reports per day.

How they are kept current cheaply. Updating a keyed row in DuckDB costs 12-35 ms a commit
whatever the group's size (``ON CONFLICT DO UPDATE`` on the table's index, measured), which
cut single-report ingest by 60 %. So the group commit only *appends* the rollup of the
reports it stores, in the same transaction, as ``partial`` rows; the view
``instance_day_totals`` merges every row of an instance and day (maxima and minima combine,
counts add up, the latest report's environment wins), so a reader always sees the totals of
every committed report, late ones for an old day included. ``fold`` replaces the partial rows
by their totals now and then, so that an instance-day is one row again.

The merge is written here once, for the fold and the readers. The rollup is written here twice:
in SQL for the migration and for large commits, and in Python (``rollup_rows``) for commits of
single reports, where planning the SQL cost more than the rest of the commit;
``tests/core/test_instance_days.py`` holds the two equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from core.usage_metrics import REPORT_METRICS

_METRIC_COLUMNS = ", ".join(f"{metric} INTEGER" for metric in REPORT_METRICS)

CREATE_TABLE = f"""
CREATE TABLE instance_days (
    instance_id UUID NOT NULL,
    day DATE NOT NULL,
    customer_id VARCHAR NOT NULL,
    environment VARCHAR NOT NULL,
    product_version VARCHAR NOT NULL,
    {_METRIC_COLUMNS},
    reports BIGINT NOT NULL,
    first_generated_at TIMESTAMPTZ NOT NULL,
    last_generated_at TIMESTAMPTZ NOT NULL,
    min_sequence BIGINT,
    max_sequence BIGINT,
    partial BOOLEAN NOT NULL
);
"""


def rollup(source: str, *, partial: bool, known_at: str | None = None) -> str:
    """The instance-days of the reports in ``source`` (a table or registered Arrow name with
    the columns of ``reports``), as rows of ``instance_days``; with ``known_at`` (an SQL
    expression), rows of the table since it has that column (schema version 12)."""
    peaks = ", ".join(f"max({metric})" for metric in REPORT_METRICS)
    stamp = "" if known_at is None else f", {known_at}"
    return (
        "SELECT instance_id::UUID, usage_day, any_value(customer_id), "  # noqa: S608
        "arg_max(environment, generated_at), arg_max(product_version, generated_at), "
        f"{peaks}, count(*), min(generated_at), max(generated_at), min(sequence), "
        f"max(sequence), {str(partial).lower()}{stamp} FROM {source} "
        "GROUP BY instance_id, usage_day"
    )


#: The columns of a report row that ``rollup_rows`` (and ingest's ``Frontier``) read, in the
#: order of ``reports``.
_ID, _CUSTOMER, INSTANCE, _ENVIRONMENT, GENERATED, DAY, _VERSION, SEQUENCE = range(8)
_METRICS = slice(8, 8 + len(REPORT_METRICS))


def rollup_rows(reports: Iterable[Sequence[Any]], *, known_at: datetime) -> list[tuple[Any, ...]]:
    """``rollup`` in Python, as partial rows of ``instance_days`` known at ``known_at``: for
    a commit of a few reports, where DuckDB's ``GROUP BY`` costs more to plan than to run
    (7.6 ms for 30 reports, against 0.1 ms here). ``reports`` are rows in the column order of
    ``reports``.
    The two are held equal by a test."""
    days: dict[tuple[Any, Any], list[Any]] = {}
    for report in reports:
        metrics = report[_METRICS]
        moment, sequence = report[GENERATED], report[SEQUENCE]
        day = days.get((report[INSTANCE], report[DAY]))
        if day is None:
            days[report[INSTANCE], report[DAY]] = [
                report[INSTANCE],
                report[DAY],
                report[_CUSTOMER],
                report[_ENVIRONMENT],
                report[_VERSION],
                *metrics,
                1,
                moment,
                moment,
                sequence,
                sequence,
            ]
            continue
        for n, value in enumerate(metrics, start=5):
            if value is not None and (day[n] is None or value > day[n]):
                day[n] = value
        count = 5 + len(REPORT_METRICS)
        day[count] += 1
        if moment < day[count + 1]:
            day[count + 1] = moment
        if moment > day[count + 2]:  # the latest report's environment and version
            day[count + 2] = moment
            day[3], day[4] = report[_ENVIRONMENT], report[_VERSION]
        if sequence is not None:
            lowest, highest = day[count + 3], day[count + 4]
            day[count + 3] = sequence if lowest is None else min(lowest, sequence)
            day[count + 4] = sequence if highest is None else max(highest, sequence)
    return [(*day, True, known_at) for day in days.values()]


#: The instance-days that received a report out of order (``ingest.frontier.Frontier``): the
#: only ones whose
#: raw sequences the clone check reads. Every instance-day stored before it counts as one.
CREATE_OUT_OF_ORDER = (
    "CREATE TABLE instance_days_out_of_order (instance_id UUID NOT NULL, day DATE NOT NULL);"
    "INSERT INTO instance_days_out_of_order SELECT DISTINCT instance_id, day FROM instance_days;"
)


def _merge(source: str, *, known: bool = False) -> str:
    """The totals of the rows of ``source`` per instance and day, in the order of COLUMNS;
    with ``known``, and when the latest of them became known."""
    stamp = ", max(known_at) AS known_at" if known else ""
    peaks = ", ".join(f"max({metric}) AS {metric}" for metric in REPORT_METRICS)
    return (
        "SELECT instance_id, day, customer_id, "  # noqa: S608
        "arg_max(environment, last_generated_at) AS environment, "
        "arg_max(product_version, last_generated_at) AS product_version, "
        f"{peaks}, sum(reports)::BIGINT AS reports, "
        "min(first_generated_at) AS first_generated_at, "
        "max(last_generated_at) AS last_generated_at, "
        f"min(min_sequence) AS min_sequence, max(max_sequence) AS max_sequence{stamp} "
        f"FROM {source} GROUP BY instance_id, day, customer_id"
    )


_COLUMNS = (
    f"instance_id, day, customer_id, environment, product_version, {', '.join(REPORT_METRICS)}, "
    "reports, first_generated_at, last_generated_at, min_sequence, max_sequence"
)
#: The instance-days that have partial rows: the few written since the last fold.
_PENDING = "(SELECT DISTINCT instance_id, day FROM instance_days WHERE partial)"

#: What readers read. A folded row whose instance-day has no partial row is read as it is;
#: only the instance-days with partial rows are merged: merging every row cost 104 ms of a
#: 420,000-row read, this 31 ms. ``customer_id`` is a grouping column (an instance has one
#: customer) so that a filter on it, like one on ``day``, is applied before the merge.
CREATE_VIEW = (
    "CREATE OR REPLACE VIEW instance_day_totals AS "  # noqa: S608
    f"SELECT {_COLUMNS} FROM instance_days ANTI JOIN {_PENDING} USING (instance_id, day) "
    "WHERE NOT partial "
    f"UNION ALL {_merge(f'instance_days SEMI JOIN {_PENDING} USING (instance_id, day)')};"
)

#: Append the rollup of the reports a commit stores (registered as ``stored_reports``), known
#: at the commit's stamp (the parameter), and return each instance-day's latest moment and
#: highest sequence (what moves a ``Frontier``).
APPEND_RETURNING_LATEST = (
    f"INSERT INTO instance_days {rollup('stored_reports', partial=True, known_at='?')} "
    "RETURNING instance_id::VARCHAR, day, last_generated_at, max_sequence"
)

_REPLACED_COLUMNS = ", ".join(f"d.{column}" for column in _COLUMNS.split(", "))

#: Replace every partial row, and the other rows of its instance and day, by their totals,
#: known when the latest of them became known; in one transaction. The rows replaced are kept
#: in ``instance_days_replaced`` with the moment they stopped being the answer, so that a
#: fold never changes what was known at an earlier instant (``known_at_totals``). A row
#: replaced the moment it became known was never an answer on its own, and is not kept.
FOLD = (
    "CREATE OR REPLACE TEMP TABLE folding AS "
    "SELECT DISTINCT instance_id, day FROM instance_days WHERE partial",
    "CREATE OR REPLACE TEMP TABLE folded AS "
    f"{_merge('instance_days SEMI JOIN folding USING (instance_id, day)', known=True)}",
    f"INSERT INTO instance_days_replaced SELECT {_REPLACED_COLUMNS}, "  # noqa: S608
    "d.partial, d.known_at, f.known_at FROM instance_days d "
    "JOIN folded f ON d.instance_id = f.instance_id AND d.day = f.day "
    "WHERE d.known_at < f.known_at",
    "DELETE FROM instance_days USING folding "
    "WHERE instance_days.instance_id = folding.instance_id AND instance_days.day = folding.day",
    f"INSERT INTO instance_days SELECT {_COLUMNS}, false, known_at FROM folded",  # noqa: S608
    "DROP TABLE folding",
    "DROP TABLE folded",
)

#: Schema version 12: when each row became known, and the rows folds replaced. Rows stored
#: before it count as known from the start: their commits were not stamped.
CREATE_KNOWN = (
    "ALTER TABLE instance_days ADD COLUMN known_at TIMESTAMPTZ "
    "DEFAULT TIMESTAMPTZ '2000-01-01 00:00:00+00';"
    "CREATE TABLE instance_days_replaced AS "
    "SELECT *, known_at AS replaced_at FROM instance_days LIMIT 0;"
)


def known_at_totals(where: str) -> str:
    """The instance-day totals matching ``where`` (on ``customer_id`` and ``day``, with named
    parameters) as ``instance_day_totals`` answered them at the instant ``$known_at``
    (SPEC §11 v3): the rows known by then, with the rows folds replaced since put back.

    A row replaced by a fold is visible from when it became known until the fold's result
    did; the result's own rows are then not (it is known only from its latest row). So the
    rows visible at an instant are exactly those that made the answer then, and they merge
    as the view merges them. A current folded row and a kept row of the same instance-day
    are never visible together: the kept one was replaced by that row or by an earlier one.
    """
    visible = (
        f"SELECT {_COLUMNS}, partial FROM instance_days "  # noqa: S608
        f"WHERE known_at <= $known_at AND {where} "
        f"UNION ALL SELECT {_COLUMNS}, true FROM instance_days_replaced "
        f"WHERE known_at <= $known_at AND replaced_at > $known_at AND {where}"
    )
    pending = "(SELECT DISTINCT instance_id, day FROM visible WHERE partial)"
    return (
        f"WITH visible AS ({visible}) "  # noqa: S608
        f"SELECT {_COLUMNS} FROM visible ANTI JOIN {pending} USING (instance_id, day) "
        "WHERE NOT partial "
        f"UNION ALL {_merge(f'visible SEMI JOIN {pending} USING (instance_id, day)')}"
    )


# -- PostgreSQL (SPEC §16 v3) ---------------------------------------------------------------


def _merge_postgres(source: str, *, known: bool = False) -> str:
    """``_merge`` in PostgreSQL's words: ``arg_max`` is the first of an ordered aggregate."""
    stamp = ", max(known_at) AS known_at" if known else ""
    peaks = ", ".join(f"max({metric}) AS {metric}" for metric in REPORT_METRICS)
    return (
        "SELECT instance_id, day, customer_id, "  # noqa: S608
        "(array_agg(environment ORDER BY last_generated_at DESC))[1] AS environment, "
        "(array_agg(product_version ORDER BY last_generated_at DESC))[1] AS product_version, "
        f"{peaks}, sum(reports)::BIGINT AS reports, "
        "min(first_generated_at) AS first_generated_at, "
        "max(last_generated_at) AS last_generated_at, "
        f"min(min_sequence) AS min_sequence, max(max_sequence) AS max_sequence{stamp} "
        f"FROM {source} GROUP BY instance_id, day, customer_id"
    )


_PENDING_POSTGRES = (
    "EXISTS (SELECT 1 FROM instance_days p WHERE p.partial AND p.instance_id = d.instance_id "
    "AND p.day = d.day)"
)

#: The tables of instance-days and the view readers read, on PostgreSQL: as on DuckDB, with
#: the indexes PostgreSQL needs to find an instance-day, a customer's days and the partial rows.
POSTGRES_TABLES = (
    CREATE_TABLE.replace(  # noqa: S608 - constants only
        "partial BOOLEAN NOT NULL",
        "partial BOOLEAN NOT NULL,\n    known_at "
        "TIMESTAMPTZ DEFAULT TIMESTAMPTZ '2000-01-01 00:00:00+00'",
    )
    + "CREATE INDEX instance_days_by_instance ON instance_days (instance_id, day);"  # noqa: S608
    "CREATE INDEX instance_days_by_customer ON instance_days (customer_id, day);"
    "CREATE INDEX instance_days_partial ON instance_days (instance_id, day) WHERE partial;"
    "CREATE TABLE instance_days_replaced AS "
    "SELECT *, known_at AS replaced_at FROM instance_days LIMIT 0;"
    "CREATE INDEX instance_days_replaced_by_customer ON instance_days_replaced "
    "(customer_id, day);"
    "CREATE TABLE instance_days_out_of_order (instance_id UUID NOT NULL, day DATE NOT NULL);"
    "CREATE INDEX instance_days_out_of_order_by_day ON instance_days_out_of_order (day);"
    "CREATE VIEW instance_day_totals AS "
    f"SELECT {_COLUMNS} FROM instance_days d WHERE NOT partial AND NOT {_PENDING_POSTGRES} "
    "UNION ALL " + _merge_postgres(f"instance_days d WHERE {_PENDING_POSTGRES}") + ";"
)

#: ``FOLD`` on PostgreSQL, where other processes append partial rows meanwhile: the rows
#: merged are exactly the rows the fold deleted (``DELETE ... RETURNING``), so a row committed
#: after that is left partial for the next fold. One process folds at a time (an advisory
#: lock, taken by the caller).
FOLD_POSTGRES = (
    "CREATE TEMP TABLE folding ON COMMIT DROP AS "
    "SELECT DISTINCT instance_id, day FROM instance_days WHERE partial",
    "CREATE TEMP TABLE folded_rows (LIKE instance_days) ON COMMIT DROP",
    "WITH gone AS (DELETE FROM instance_days d USING folding f "
    "WHERE d.instance_id = f.instance_id AND d.day = f.day RETURNING d.*) "
    "INSERT INTO folded_rows SELECT * FROM gone",
    f"CREATE TEMP TABLE folded ON COMMIT DROP AS {_merge_postgres('folded_rows', known=True)}",
    f"INSERT INTO instance_days_replaced SELECT {_REPLACED_COLUMNS}, "  # noqa: S608
    "d.partial, d.known_at, f.known_at FROM folded_rows d "
    "JOIN folded f ON d.instance_id = f.instance_id AND d.day = f.day "
    "WHERE d.known_at < f.known_at",
    f"INSERT INTO instance_days SELECT {_COLUMNS}, false, known_at FROM folded",  # noqa: S608
    "DROP TABLE folding",
    "DROP TABLE folded_rows",
    "DROP TABLE folded",
)


def fold(engine: str) -> tuple[str, ...]:
    """The fold's statements for an engine (``core.database.Engine``)."""
    return FOLD_POSTGRES if engine == "postgresql" else FOLD
