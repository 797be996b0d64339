"""Every SQL statement of the compliance evaluation: what it reads, what it keeps.

Over 400 lines because SQL lives only in a package's ``repository.py``, and every read here
comes twice: as stored now, and as known at an instant (SPEC §11 v3)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import polars as pl

from core import instance_days as instance_day_rows
from core.database import Connection, Engine, engine_of, staged
from core.repository import rows_as_dicts
from core.snapshot import arrow_of, slice_reports
from core.usage_metrics import REPORT_METRICS

# Every reader below reads what is stored now, or, given ``known_at``, what was known at that
# instant (SPEC §11 v3): the instance-days committed by then, the versions of the customers'
# order forms in force then, the retirements and attestations recorded by then.

#: The same rows computed from the raw reports: what instance-days save (the benchmark's
#: comparison, and a check that the two agree).
RAW_INSTANCE_DAYS = (
    "SELECT customer_id, instance_id, usage_day AS day, "  # noqa: S608
    "arg_max(environment, generated_at) AS environment, "
    f"{', '.join(f'max({m}) AS {m}' for m in REPORT_METRICS)} "
    "FROM reports WHERE usage_day BETWEEN ? AND ? GROUP BY customer_id, instance_id, usage_day"
)


def _frame(
    con: Connection, sql: str, params: list[Any] | dict[str, Any] | None = None
) -> pl.DataFrame:
    frame = pl.from_arrow(arrow_of(con, sql, params))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _totals(
    *, customer_id: str | None, since: date | None, until: date, known_at: datetime | None
) -> tuple[str, dict[str, Any]]:
    """The instance-day totals of a customer (or all) from ``since`` (or the first) to
    ``until``, now or as known at ``known_at``: a subquery and its named parameters."""
    where = ["day <= $until"]
    params: dict[str, Any] = {"until": until}
    if since is not None:
        where.append("day >= $since")
        params["since"] = since
    if customer_id is not None:
        where.append("customer_id = $customer_id")
        params["customer_id"] = customer_id
    condition = " AND ".join(where)
    if known_at is None:
        return f"(SELECT * FROM instance_day_totals WHERE {condition})", params  # noqa: S608
    params["known_at"] = known_at
    return f"({instance_day_rows.known_at_totals(condition)})", params


def _in_force(table: str, columns: str, known_at: datetime | None) -> tuple[str, dict[str, Any]]:
    """``columns`` of a table of order forms, now or (from its versions) as known at
    ``known_at``."""
    if known_at is None:
        return f"SELECT {columns} FROM {table}", {}  # noqa: S608 - constant names
    versions = _VERSIONS[table]
    return (
        f"SELECT {columns} FROM {versions} WHERE known_from <= $known_at "  # noqa: S608
        "AND (known_until IS NULL OR known_until > $known_at)",
        {"known_at": known_at},
    )


_VERSIONS = {
    "customers": "customer_versions",
    "order_forms": "order_form_versions",
    "entitlements": "entitlement_versions",
}


def instance_days(
    con: Connection,
    *,
    since: date,
    until: date,
    customer_id: str | None = None,
    known_at: datetime | None = None,
) -> pl.DataFrame:
    """Each instance's peak of every metric per UTC day, from the instance-days.

    The UUIDs leave DuckDB as they are: its Arrow export writes them as the same lower-case
    text as a ``::VARCHAR`` cast, in 40 % less time (169 -> 101 ms for 40M reports'
    instance-days)."""
    source, params = _totals(customer_id=customer_id, since=since, until=until, known_at=known_at)
    return _frame(
        con,
        "SELECT customer_id, instance_id, day, environment, "  # noqa: S608
        f"{', '.join(REPORT_METRICS)} FROM {source}",
        params,
    )


def open_episode_starts(
    con: Connection,
    *,
    before: date,
    customer_id: str | None = None,
    known_at: datetime | None = None,
) -> dict[str, date]:
    """Per customer, the earliest start before ``before`` of an over-use episode that the
    latest evaluation to see it left open (SPEC §6 v3: episodes of any length). Only the
    newest episode of a metric counts: an older row still open was followed by another.

    As known at ``known_at``: the newest episode of each metric that a run had reported by
    then, open or not, since a later run may have closed it since. Reading a closed
    episode's history as well changes no day's figures (a day's usage looks back three days),
    and an episode's start and the day it was first reported never change."""
    params: dict[str, Any] = {"before": before}
    mine = ""
    if customer_id is not None:
        mine = "AND e.customer_id = $customer_id"
        params["customer_id"] = customer_id
    reported = "e.ended_on IS NULL"
    later_reported = "true"
    if known_at is not None:
        reported = "e.first_reported_at <= $known_at"
        later_reported = "later.first_reported_at <= $known_at"
        params["known_at"] = known_at
    rows = con.execute(
        f"""
        SELECT e.customer_id, min(e.started_on) FROM episodes e
        WHERE {reported} AND e.started_on < $before {mine}
          AND NOT EXISTS (
              SELECT 1 FROM episodes later
              WHERE later.customer_id = e.customer_id AND later.metric = e.metric
                AND later.started_on > e.started_on AND {later_reported}
          )
        GROUP BY e.customer_id
        """,  # noqa: S608 - fixed fragments, values as parameters
        params,
    ).fetchall()
    return {str(customer): start for customer, start in rows}


def _days(first: str, last: str) -> str:
    """The raw reports of the UTC days ``first`` to ``last`` (parameters), in PostgreSQL's
    words, as it finds them by the index on ``(instance_id, generated_at)``: a snapshot reads
    only those (``core.snapshot``). A report's ``usage_day`` is its ``generated_at``'s UTC
    day; a condition on it too led the planner to the day index (1.4 s, not 30 ms)."""
    return (
        f"generated_at >= {first}::TIMESTAMP AT TIME ZONE 'UTC' "
        f"AND generated_at < ({last}::DATE + 1)::TIMESTAMP AT TIME ZONE 'UTC'"
    )


_DAYS = _days("$2", "$3")


def reports_per_day(
    con: Connection,
    *,
    customer_id: str,
    metric: str,
    since: date,
    until: date,
    known_at: datetime | None = None,
) -> pl.DataFrame:
    """Per instance and day: how many reports it sent, and up to 3 ids of those that hold its
    peak of ``metric`` that day, oldest first (the evidence behind a value).

    The counts and peaks come from the instance-days; only the ids are looked up in the raw
    reports, on those days and instances alone (an archived day has none left to name). The
    customer's own filter on the raw rows, before the join, halves the lookup (154 to 87 ms
    on 10M reports, one thread).
    """
    if metric not in REPORT_METRICS:
        raise ValueError(f"not a reported metric: {metric}")
    source, params = _totals(customer_id=customer_id, since=since, until=until, known_at=known_at)
    received = "AND r.received_at <= $known_at" if known_at is not None else ""
    slice_reports(
        con,
        f"instance_id IN (SELECT instance_id FROM instances WHERE customer_id = $1) AND {_DAYS}",  # noqa: S608
        [customer_id, since, until],
    )
    # The metric is one of a constant tuple of column names; values arrive as parameters.
    return _frame(
        con,
        f"""
        WITH days AS (
            SELECT instance_id, day, reports, {metric} AS peak FROM {source}
        ), holders AS (
            SELECT r.instance_id, r.usage_day AS day,
                   list(r.report_id::VARCHAR ORDER BY r.generated_at)[1:3] AS report_ids
            FROM reports r JOIN days d ON r.instance_id = d.instance_id
                 AND r.usage_day = d.day AND r.{metric} = d.peak
            WHERE r.usage_day BETWEEN $since AND $until AND r.customer_id = $customer_id
                  {received}
            GROUP BY ALL
        )
        SELECT d.instance_id::VARCHAR AS instance_id, d.day, d.reports,
               coalesce(h.report_ids, []::VARCHAR[]) AS report_ids
        FROM days d LEFT JOIN holders h USING (instance_id, day)
        """,  # noqa: S608
        params,
    )


def order_forms(con: Connection, *, known_at: datetime | None = None) -> pl.DataFrame:
    """Every order form's term, pack size and counting rules (JSON text)."""
    return _frame(
        con,
        *_in_force(
            "order_forms",
            "customer_id, order_id, start_on, end_on, users_per_pack, "
            "counting::VARCHAR AS counting",
            known_at,
        ),
    )


def retirements(con: Connection, *, known_at: datetime | None = None) -> pl.DataFrame:
    """``instance_id, retired_on`` of every retired instance; as known at ``known_at``, from
    the latest audited retirement (or its undoing) of each instance by then."""
    if known_at is None:
        return _frame(
            con,
            "SELECT instance_id::VARCHAR AS instance_id, retired_on FROM instances "
            "WHERE retired_on IS NOT NULL",
        )
    return _frame(
        con,
        f"""
        SELECT instance_id, retired_on FROM (
            SELECT substr(target, {len(_INSTANCE_TARGET) + 1}) AS instance_id,
                   CAST(after ->> 'retired_on' AS DATE) AS retired_on
            FROM audit_log
            WHERE starts_with(target, '{_INSTANCE_TARGET}') AND changed_at <= $known_at
            QUALIFY row_number() OVER (PARTITION BY target ORDER BY audit_id DESC) = 1
        ) WHERE retired_on IS NOT NULL
        """,  # noqa: S608 - a constant
        {"known_at": known_at},
    )


#: How the audit log names an instance (``customers.service.set_retirement``).
_INSTANCE_TARGET = "instance:"


def entitlement_items(con: Connection, *, known_at: datetime | None = None) -> pl.DataFrame:
    """Every quantity of every order and add-on, with the day it takes effect."""
    return _frame(
        con,
        *_in_force(
            "entitlements",
            "customer_id, order_id, addon_id, effective_on, item, quantity",
            known_at,
        ),
    )


def customers(con: Connection, *, known_at: datetime | None = None) -> pl.DataFrame:
    """Every customer's account manager, whether it is air-gapped, and since when."""
    return _frame(
        con,
        *_in_force(
            "customers", "customer_id, account_manager, air_gapped, air_gapped_since", known_at
        ),
    )


def customer_names(con: Connection) -> dict[str, str]:
    """Every customer's name, by id."""
    return dict(con.execute("SELECT customer_id, name FROM customers").fetchall())


def last_report_days(
    con: Connection,
    *,
    until: date,
    customer_id: str | None = None,
    known_at: datetime | None = None,
) -> pl.DataFrame:
    """Each customer's latest report day on or before ``until``."""
    source, params = _totals(customer_id=customer_id, since=None, until=until, known_at=known_at)
    return _frame(
        con,
        f"SELECT customer_id, max(day) AS last_report_on FROM {source} GROUP BY customer_id",  # noqa: S608
        params,
    )


def attestations(con: Connection, *, known_at: datetime | None = None) -> pl.DataFrame:
    """The quarters for which a valid attestation was received (by ``known_at``)."""
    if known_at is None:
        return _frame(con, "SELECT customer_id, quarter FROM attestations")
    return _frame(
        con,
        "SELECT customer_id, quarter FROM attestations WHERE received_at <= $known_at",
        {"known_at": known_at},
    )


def save_evaluation(
    con: Connection,
    *,
    document: dict[str, Any],
    episodes: pl.DataFrame,
) -> None:
    """Keep one evaluation run (never replacing another) and update the history of the
    episodes it reported.

    An episode keeps the earliest evaluation that reported it, and the state seen by the
    latest ``as_of``; evaluating an earlier day later never rolls that state back.
    """
    as_of, evaluated_at = document["as_of"], document["evaluated_at"]
    con.execute(
        "INSERT INTO evaluation_runs (evaluation_id, as_of, evaluated_at, rules_version, "
        "customers_version, findings, known_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            document["evaluation_id"],
            as_of,
            evaluated_at,
            document["rules_version"],
            document["customers_version"],
            json.dumps(document, default=str),
            document["known_at"],
        ],
    )
    if episodes.height == 0:
        return
    with staged(con, "evaluated_episodes", episodes.to_arrow()):
        con.execute(
            "INSERT INTO episodes SELECT customer_id, metric, started_on, ?, ?, ?, status, "
            "deadline, peak_usage, entitled, material, ended_on, resolution "
            "FROM evaluated_episodes ON CONFLICT DO NOTHING",
            [as_of, evaluated_at, as_of],
        )
        con.execute(
            "UPDATE episodes e SET first_reported_as_of = least(e.first_reported_as_of, ?), "
            "first_reported_at = least(e.first_reported_at, ?) "
            "FROM evaluated_episodes n WHERE e.customer_id = n.customer_id "
            "AND e.metric = n.metric AND e.started_on = n.started_on",
            [as_of, evaluated_at],
        )
        con.execute(
            "UPDATE episodes e SET last_evaluated_as_of = ?, status = n.status, "
            "deadline = n.deadline, peak_usage = n.peak_usage, entitled = n.entitled, "
            "material = n.material, ended_on = n.ended_on, resolution = n.resolution "
            "FROM evaluated_episodes n WHERE e.customer_id = n.customer_id "
            "AND e.metric = n.metric AND e.started_on = n.started_on "
            "AND e.last_evaluated_as_of <= ?",
            [as_of, as_of],
        )


def evaluation(
    con: Connection, *, as_of: date | None = None, evaluation_id: str | None = None
) -> dict[str, Any] | None:
    """One run's document as it was answered: by id, or the newest of a day, or the newest of
    all; or None."""
    params: list[Any]
    if evaluation_id is not None:
        where, params = "evaluation_id = ?", [evaluation_id]
    elif as_of is not None:
        where, params = "as_of = ?", [as_of]
    else:
        where, params = "true", []
    row = con.execute(
        f"SELECT findings, evaluation_id, rules_version, customers_version FROM evaluation_runs "  # noqa: S608
        f"WHERE {where} ORDER BY evaluated_at DESC LIMIT 1",
        params,
    ).fetchone()
    if row is None:
        return None
    # Runs carried over from version 1 kept only the findings document.
    return {
        "evaluation_id": row[1],
        "rules_version": row[2],
        "customers_version": row[3],
        **json.loads(row[0]),
    }


def evaluation_runs(con: Connection, *, as_of: date | None, limit: int) -> list[dict[str, Any]]:
    """Runs, newest first, optionally of one ``as_of``, with how many findings each had."""
    sql = (
        "SELECT evaluation_id, as_of, evaluated_at, rules_version, customers_version, known_at, "
        "json_array_length(findings -> 'findings') AS findings FROM evaluation_runs"
    )
    params: list[Any] = []
    if as_of is not None:
        sql += " WHERE as_of = ?"
        params.append(as_of)
    sql += " ORDER BY evaluated_at DESC LIMIT ?"
    params.append(limit)
    cursor = con.execute(sql, params)
    return rows_as_dicts(cursor)


def customers_version(con: Connection, *, known_at: datetime | None = None) -> int | None:
    """The id of the latest audit-log entry (by ``known_at``): which order forms an
    evaluation saw."""
    if known_at is None:
        row = con.execute("SELECT max(audit_id) FROM audit_log").fetchone()
    else:
        row = con.execute(
            "SELECT max(audit_id) FROM audit_log WHERE changed_at <= ?", [known_at]
        ).fetchone()
    return None if row is None else row[0]


def episode_history(con: Connection, *, customer_id: str | None) -> list[dict[str, Any]]:
    """Every episode ever reported: when it opened, was first reported, and ended."""
    sql = (
        "SELECT customer_id, metric, started_on, deadline, first_reported_as_of, "
        "first_reported_at, last_evaluated_as_of, status, peak_usage, entitled, material, "
        "ended_on, resolution FROM episodes"
    )
    params: list[Any] = []
    if customer_id is not None:
        sql += " WHERE customer_id = ?"
        params.append(customer_id)
    sql += " ORDER BY customer_id, metric, started_on"
    cursor = con.execute(sql, params)
    return rows_as_dicts(cursor)


def last_evaluated_at(con: Connection) -> datetime | None:
    """When the latest evaluation was made, of any ``as_of``."""
    row = con.execute("SELECT max(evaluated_at) FROM evaluation_runs").fetchone()
    return None if row is None else row[0]


#: A report whose sequence went back: lower than the report before it, in the order of
#: ``generated_at`` then ``sequence``, and generated later (reports of the same moment are
#: not compared). The window ``moments`` orders one instance's reports so.
_REGRESSION = (
    "(sequence < lag(sequence) OVER moments AND generated_at > lag(generated_at) OVER moments)"
)


def sequence_regressions(con: Connection, *, since: date, until: date) -> pl.DataFrame:
    """Per instance, how often its ``sequence`` went backwards between reports generated on
    ``since`` to ``until`` (UTC days), in order of ``generated_at``, and when it first did.

    Reports without a sequence are left out; reports with the same ``generated_at`` are not
    compared with each other. Ordered by time, then sequence, the first report of a moment is
    the lowest and the one before it the highest of the previous moment: comparing the two
    is comparing the moments (measured: half the time of grouping by moment first). The
    window carries nothing but the instance, time and sequence; the customer is looked up for
    the few instances that regressed (an instance has one customer).

    Only the instances with an instance-day in those days that received a report out of
    order are read: the others' sequences cannot have gone backwards
    (``ingest.frontier.Frontier``). On 10M reports that arrived in order, this took the
    whole evaluation from 0.98 s to 0.68 s.
    """
    slice_reports(
        con,
        "sequence IS NOT NULL AND instance_id IN (SELECT instance_id FROM "  # noqa: S608
        f"instance_days_out_of_order WHERE day BETWEEN $1 AND $2) AND {_days('$1', '$2')}",
        [since, until],
    )
    return _frame(
        con,
        f"""
        SELECT i.customer_id, r.instance_id::VARCHAR AS instance_id, r.regressions,
               r.first_regression_at
        FROM (
            SELECT instance_id, count(*)::BIGINT AS regressions,
                   min(generated_at) AS first_regression_at
            FROM (
                SELECT instance_id, generated_at FROM reports
                SEMI JOIN (
                    SELECT DISTINCT instance_id FROM instance_days_out_of_order
                    WHERE day BETWEEN ? AND ?
                ) USING (instance_id)
                WHERE usage_day BETWEEN ? AND ? AND sequence IS NOT NULL
                WINDOW moments AS (PARTITION BY instance_id ORDER BY generated_at, sequence)
                QUALIFY {_REGRESSION}
            )
            GROUP BY instance_id
        ) r JOIN instances i USING (instance_id)
        """,  # noqa: S608 - a constant fragment
        [since, until, since, until],
    )


def reports_around_regressions(
    con: Connection,
    *,
    instance_id: str,
    since: date,
    until: date,
    known_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """The reports around each time an instance's sequence went back (SPEC: the clone
    evidence), generated on ``since`` to ``until`` and stored by ``known_at``, in order of
    generation: ``AROUND_REGRESSION`` before and after each, the regressing one marked."""
    received = "AND received_at <= $known_at" if known_at is not None else ""
    params: dict[str, Any] = {"instance_id": instance_id, "since": since, "until": until}
    if known_at is not None:
        params["known_at"] = known_at
    slice_reports(con, f"instance_id = $1::UUID AND {_DAYS}", [instance_id, since, until])
    cursor = con.execute(
        f"""
        WITH ordered AS (
            SELECT generated_at, sequence, report_id::VARCHAR AS report_id,
                   coalesce({_REGRESSION}, false) AS regression,
                   row_number() OVER moments AS n
            FROM reports
            WHERE instance_id = $instance_id::UUID AND usage_day BETWEEN $since AND $until
                  {received}
            WINDOW moments AS (ORDER BY generated_at, sequence)
        ), marked AS (SELECT n FROM ordered WHERE regression)
        SELECT generated_at, sequence, report_id, regression FROM ordered
        WHERE EXISTS (SELECT 1 FROM marked WHERE ordered.n BETWEEN marked.n - $around
                      AND marked.n + $around)
        ORDER BY n
        """,  # noqa: S608 - constant fragments, values as parameters
        {**params, "around": AROUND_REGRESSION},
    )
    return rows_as_dicts(cursor)


#: How many reports before and after each regression the clone evidence shows.
AROUND_REGRESSION = 2


def customer_document(
    con: Connection, *, customer_id: str, known_at: datetime | None = None
) -> dict[str, Any] | None:
    """A customer's stored document (name, order forms, add-ons), or None."""
    sql, params = _in_force("customers", "customer_id, document", known_at)
    row = con.execute(
        f"SELECT document FROM ({sql}) WHERE customer_id = $customer_id",  # noqa: S608
        {**params, "customer_id": customer_id},
    ).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def reporting_instances(
    con: Connection,
    *,
    customer_id: str,
    since: date,
    until: date,
    known_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """Each instance that reported from ``since`` to ``until``: its latest environment, first
    and last report day in the period, and how many reports it sent in it."""
    source, params = _totals(customer_id=customer_id, since=since, until=until, known_at=known_at)
    cursor = con.execute(
        "SELECT instance_id::VARCHAR AS instance_id, "  # noqa: S608
        "arg_max(environment, last_generated_at) AS environment, "
        "min(day) AS first_report_on, max(day) AS last_report_on, "
        f"sum(reports)::BIGINT AS reports FROM {source} "
        "GROUP BY instance_id ORDER BY first_report_on, instance_id",
        params,
    )
    return rows_as_dicts(cursor)


# -- working notes on findings (issue 28) ----------------------------------------------------


#: A finding's customer, from the runs' documents: each engine's JSON functions. The text
#: search first skips the runs that cannot hold it.
_FINDING_CUSTOMER = {
    Engine.DUCKDB: (
        "SELECT f ->> 'customer_id' FROM (SELECT unnest((findings -> '$.findings')::JSON[]) AS f "
        "FROM evaluation_runs WHERE contains(findings::VARCHAR, ?)) AS runs "
        "WHERE f ->> 'finding_id' = ? LIMIT 1"
    ),
    Engine.POSTGRESQL: (
        "SELECT f ->> 'customer_id' FROM evaluation_runs, "
        "json_array_elements(findings -> 'findings') AS f "
        "WHERE strpos(findings::TEXT, ?) > 0 AND f ->> 'finding_id' = ? LIMIT 1"
    ),
}


def finding_customer(con: Connection, *, finding_id: str) -> str | None:
    """The customer of a finding some kept run holds, or None when no run holds it."""
    row = con.execute(_FINDING_CUSTOMER[engine_of(con)], [f'"{finding_id}"', finding_id]).fetchone()
    return None if row is None else str(row[0])


def insert_note(
    con: Connection,
    *,
    finding_id: str,
    customer_id: str,
    written_at: datetime,
    author: str,
    text: str,
) -> dict[str, Any]:
    """Keep one working note; answers it as stored."""
    rows = rows_as_dicts(
        con.execute(
            "INSERT INTO finding_notes (finding_id, customer_id, written_at, author, text) "
            "VALUES (?, ?, ?, ?, ?) RETURNING *",
            [finding_id, customer_id, written_at, author, text],
        )
    )
    return rows[0]


def notes(con: Connection, *, finding_ids: list[str]) -> list[dict[str, Any]]:
    """The working notes of these findings, oldest first."""
    if not finding_ids:
        return []
    return rows_as_dicts(
        con.execute(
            "SELECT * FROM finding_notes WHERE finding_id = ANY(?::VARCHAR[]) "
            "ORDER BY written_at, note_id",
            [finding_ids],
        )
    )


# -- announcing a run (SPEC §14 v3) ----------------------------------------------------------


def later_run_exists(con: Connection, *, as_of: Any, evaluation_id: str) -> bool:
    """Whether another kept run judged a later day than ``as_of``."""
    row = con.execute(
        "SELECT count(*) FROM evaluation_runs WHERE as_of > ? AND evaluation_id <> ?",
        [as_of, evaluation_id],
    ).fetchone()
    return bool(row and row[0])


def announced_states(con: Connection, *, finding_ids: list[str]) -> dict[str, dict[str, Any]]:
    """What was last announced of these findings, and of every finding of another kind than
    over-use not yet announced as resolved (its absence from a run resolves it)."""
    rows = con.execute(
        "SELECT finding_id, state FROM finding_announcements WHERE finding_id = ANY(?::VARCHAR[]) "
        "OR (state ->> 'kind' <> 'overuse' AND NOT (state ->> 'resolved')::BOOLEAN)",
        [finding_ids],
    ).fetchall()
    return {r[0]: json.loads(r[1]) for r in rows}


def save_announced_states(con: Connection, *, states: dict[str, dict[str, Any]], at: Any) -> None:
    """Remember what is announced of each finding."""
    if states:
        con.executemany(
            "INSERT INTO finding_announcements VALUES (?, ?, ?) ON CONFLICT (finding_id) "
            "DO UPDATE SET state = excluded.state, announced_at = excluded.announced_at",
            [[fid, json.dumps(state, default=str), at] for fid, state in states.items()],
        )


def customer_name_map(con: Connection) -> dict[str, str]:
    """Every customer's name, by id."""
    return dict(con.execute("SELECT customer_id, name FROM customers").fetchall())


def enqueue_events(
    con: Connection, *, events: list[tuple[str, str, dict[str, Any]]], at: Any
) -> None:
    """Put events in the outbox, and a pending delivery of each for every enabled endpoint
    subscribed to its type; an event or a delivery already there is left as it is (at most
    once per event id and endpoint)."""
    for event_id, kind, data in events:
        con.execute(
            "INSERT INTO webhook_events VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [event_id, kind, at, json.dumps(data, default=str)],
        )
        con.execute(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, status, attempts, "
            "created_at, next_attempt_at) SELECT webhook_id, ?, 'pending', 0, ?, ? "
            "FROM webhook_endpoints WHERE enabled AND (?::VARCHAR = ANY(events) OR "
            "'*' = ANY(events)) ON CONFLICT DO NOTHING",
            [event_id, at, at, kind],
        )
