"""The compliance evaluation: read from the store, compute in Polars, keep the findings."""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import polars as pl
from pydantic import TypeAdapter

from analytics import repository
from analytics.compliance import (
    GROUP_RANK,
    MATERIAL_PCT,
    REGULARIZATION_DAYS,
    SILENCE_DAYS,
    above_floors,
    attestation_overdue,
    instance_cloned,
    instance_silent,
    no_active_subscription,
    overuse_episodes,
    overuse_findings,
    telemetry_missing,
)
from analytics.entitlements import (
    active_order_days,
    counting_rules,
    daily_entitlements,
    entitlement_floors,
    licensed_metrics,
)
from analytics.schemas import (
    RULES_VERSION,
    CustomerUsage,
    EpisodeHistory,
    Evaluation,
    EvaluationRun,
    Finding,
    Series,
    UsageDay,
)
from analytics.usage import USAGE_METRICS, daily_usage
from core.days import latest_finished_day
from core.errors import InvalidPayload, NotFound
from core.identifiers import FIRST_REPORTING_DAY, LAST_REPORTING_DAY
from core.store import Store
from core.telemetry import ApiMetrics
from core.usage_metrics import ACTIVITY_DAYS

#: The first day an evaluation or a usage range may be asked about; no report is older.
EARLIEST_AS_OF = FIRST_REPORTING_DAY
#: The last day a usage range may reach: far enough for any order's term, and far from the
#: end of the calendar that date arithmetic would overflow.
LATEST_DAY = LAST_REPORTING_DAY

log = logging.getLogger("statreport.analytics")

#: How far back reports count; ingest refuses reports older than 400 days.
HISTORY_DAYS = 400


@dataclass(frozen=True)
class EvaluationInputs:
    """Everything an evaluation reads, taken in one consistent read."""

    instance_days: pl.DataFrame
    orders: pl.DataFrame
    items: pl.DataFrame
    customers: pl.DataFrame
    last_report_days: pl.DataFrame
    attestations: pl.DataFrame
    #: Sequence regressions of the 7 days up to ``as_of`` (the only raw-report read).
    regressions: pl.DataFrame
    #: The latest audit-log entry: the version of the order forms read.
    customers_version: int | None = None
    #: Instance-days before the 400-day window, of the customers with an over-use episode
    #: open since before it: they judge over-use only (SPEC §6 v3, episodes of any length).
    earlier_days: pl.DataFrame | None = None
    #: The instant these are what was known at (SPEC §11 v3); None for what is stored now.
    known_at: datetime | None = None


def load_inputs(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: date,
    customer_id: str | None = None,
    known_at: datetime | None = None,
) -> EvaluationInputs:
    """``read_inputs`` in one snapshot of every table."""
    con.execute("BEGIN TRANSACTION")
    try:
        return read_inputs(con, as_of=as_of, customer_id=customer_id, known_at=known_at)
    finally:
        con.execute("COMMIT")


def read_inputs(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: date,
    customer_id: str | None = None,
    known_at: datetime | None = None,
) -> EvaluationInputs:
    """Read what an evaluation as of ``as_of`` needs (reports generated up to that day), in
    the caller's transaction: what is stored now, or what was known at ``known_at``.

    With ``customer_id``, only what that customer's usage and entitlements need (its
    instance-days, orders and items; no sequence regressions): what a chart, a statement or
    a finding's evidence reads, without reading the whole fleet.
    """
    mine = pl.col("customer_id") == customer_id if customer_id is not None else pl.lit(True)
    since = as_of - timedelta(days=HISTORY_DAYS)
    retirements = repository.retirements(con, known_at=known_at)
    return EvaluationInputs(
        earlier_days=earlier_instance_days(
            con,
            since=since,
            as_of=as_of,
            customer_id=customer_id,
            known_at=known_at,
            retirements=retirements,
        ),
        instance_days=repository.instance_days(
            con, since=since, until=as_of, customer_id=customer_id, known_at=known_at
        ).join(retirements, on="instance_id", how="left"),
        orders=repository.order_forms(con, known_at=known_at).filter(mine),
        items=repository.entitlement_items(con, known_at=known_at).filter(mine),
        customers=repository.customers(con, known_at=known_at).filter(mine),
        # Only older reports need a second look: the window's are in instance_days.
        last_report_days=repository.last_report_days(
            con, until=since - timedelta(days=1), customer_id=customer_id, known_at=known_at
        ),
        attestations=repository.attestations(con, known_at=known_at).filter(mine),
        regressions=(
            repository.sequence_regressions(con, since=as_of - timedelta(days=6), until=as_of)
            if customer_id is None
            else _NO_REGRESSIONS
        ),
        customers_version=repository.customers_version(con, known_at=known_at),
        known_at=known_at,
    )


def earlier_instance_days(
    con: duckdb.DuckDBPyConnection,
    *,
    since: date,
    as_of: date,
    customer_id: str | None,
    known_at: datetime | None,
    retirements: pl.DataFrame,
) -> pl.DataFrame | None:
    """The instance-days before ``since`` that an over-use episode still open needs, for the
    customers with one that began before the window (or about when it begins): without them
    its start, deadline and id would move forward a day every day. None when no customer has
    one. Instance-days are kept for ever, so the episode is recomputed whole, not carried."""
    edge = since + timedelta(days=ACTIVITY_DAYS)
    starts = repository.open_episode_starts(
        con, before=edge, customer_id=customer_id, known_at=known_at
    )
    frames = [
        repository.instance_days(
            con,
            since=start - timedelta(days=ACTIVITY_DAYS),
            until=since - timedelta(days=1),
            customer_id=customer,
            known_at=known_at,
        )
        for customer, start in sorted(starts.items())
        if start - timedelta(days=ACTIVITY_DAYS) < since
    ]
    if not frames:
        return None
    return pl.concat(frames, how="vertical_relaxed").join(retirements, on="instance_id", how="left")


_NO_REGRESSIONS = pl.DataFrame(
    schema={
        "customer_id": pl.String,
        "instance_id": pl.String,
        "regressions": pl.Int64,
        "first_regression_at": pl.Datetime("us", "UTC"),
    }
)


@dataclass(frozen=True)
class Overuse:
    """Over-use as one computation reads it (SPEC §11 v3): the evaluation's findings, a
    finding's evidence and a statement's episodes all come from here, so they cannot disagree
    about a day. Only the (customer, metric) pairs that exceeded their least entitlement are
    judged; the others cannot have been over."""

    #: ``customer_id, metric, day, usage`` of the judged pairs.
    usage: pl.DataFrame
    #: ``customer_id, metric, day, entitled`` of the judged pairs, from ``start``.
    entitlements: pl.DataFrame
    #: ``customer_id, day`` with an active order, from ``start``.
    subscribed: pl.DataFrame
    #: Every over-use episode up to ``as_of``, judged at ``as_of``.
    episodes: pl.DataFrame
    start: date


def overuse_of(
    inputs: EvaluationInputs,
    *,
    as_of: date,
    activity_days: int = ACTIVITY_DAYS,
    relapse_days: int = 7,
) -> Overuse:
    """Usage against entitlement, day by day, and the episodes it makes, as of ``as_of``. Pure."""
    # Only the metrics whose usage ever exceeded their least entitlement can have been over:
    # the others' days are not judged one by one (1.52 -> 1.24 s of Polars on 40M reports).
    # A metric no order names has no floor, and its usage is not added up at all.
    floors = entitlement_floors(inputs.orders.lazy(), inputs.items.lazy())
    usage = usage_of(
        inputs,
        as_of=as_of,
        activity_days=activity_days,
        metrics=licensed_metrics(inputs.items),
        floors=floors,
    )
    usage = above_floors(usage, floors)
    first_day = usage["day"].min() if usage.height else None
    start = min(first_day, as_of - timedelta(days=7)) if isinstance(first_day, date) else as_of
    judged = usage.select("customer_id", "metric").unique()
    orders = inputs.orders.join(judged, on="customer_id", how="semi")
    entitlements = daily_entitlements(
        orders.lazy(), inputs.items.lazy(), start=start, end=as_of, only=judged
    )
    subscribed = active_order_days(orders.lazy(), start=start, end=as_of)
    episodes = overuse_episodes(
        usage.lazy(),
        entitlements.lazy(),
        as_of=as_of,
        relapse_days=relapse_days,
        subscribed=subscribed.lazy(),
    )
    return Overuse(usage, entitlements, subscribed, episodes, start)


def compute_findings(
    inputs: EvaluationInputs,
    *,
    as_of: date,
    activity_days: int = ACTIVITY_DAYS,
    relapse_days: int = 7,
) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    """The sorted findings as of ``as_of``, and every over-use episode. Pure."""
    inputs = _keyed(inputs)
    episodes = overuse_of(
        inputs, as_of=as_of, activity_days=activity_days, relapse_days=relapse_days
    ).episodes
    managers = inputs.customers.select("customer_id", "account_manager")
    order_days = active_order_days(inputs.orders.lazy(), start=as_of - timedelta(days=7), end=as_of)
    frames = [
        overuse_findings(episodes, as_of=as_of)
        .join(managers, on="customer_id", how="left")
        .with_columns(kind=pl.lit("overuse")),
        telemetry_missing(
            inputs.customers, order_days, _last_report_days(inputs), as_of=as_of
        ).with_columns(kind=pl.lit("telemetry_missing")),
        instance_cloned(inputs.customers, inputs.regressions).with_columns(
            kind=pl.lit("instance_cloned")
        ),
        instance_silent(
            inputs.customers, inputs.instance_days, order_days, as_of=as_of
        ).with_columns(kind=pl.lit("instance_silent")),
        attestation_overdue(
            inputs.customers, inputs.orders, inputs.attestations, as_of=as_of
        ).with_columns(kind=pl.lit("attestation_overdue")),
        no_active_subscription(
            inputs.customers, inputs.instance_days, order_days, inputs.orders, as_of=as_of
        ).with_columns(kind=pl.lit("no_active_subscription")),
    ]
    findings = [row for frame in frames for row in frame.iter_rows(named=True)]
    findings.sort(key=_sort_key)
    return findings, episodes.with_columns(pl.col("customer_id").cast(pl.String))


#: The ids an evaluation joins, groups and sorts by.
_IDS = ("customer_id", "instance_id")


def _keyed(inputs: EvaluationInputs) -> EvaluationInputs:
    """``inputs`` with their ids as categoricals, so that joins, groups and sorts compare
    integers instead of strings: 0.52 -> 0.42 s of Polars on 10M reports. Rows read out of
    them carry the ids as text again."""

    def keyed(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.col(c).cast(pl.Categorical) for c in _IDS if c in frame.columns
        )

    return replace(
        inputs,
        instance_days=keyed(inputs.instance_days),
        earlier_days=None if inputs.earlier_days is None else keyed(inputs.earlier_days),
        orders=keyed(inputs.orders),
        items=keyed(inputs.items),
        customers=keyed(inputs.customers),
        last_report_days=keyed(inputs.last_report_days),
        attestations=keyed(inputs.attestations),
        regressions=keyed(inputs.regressions),
    )


def usage_of(
    inputs: EvaluationInputs,
    *,
    as_of: date,
    activity_days: int,
    metrics: Sequence[str] = USAGE_METRICS,
    floors: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Daily usage of ``metrics`` up to ``as_of`` under each day's counting rules, without the
    metrics that never exceed ``floors`` when given (``daily_usage``). Pure."""
    days, start = inputs.instance_days, as_of - timedelta(days=HISTORY_DAYS)
    if inputs.earlier_days is not None and inputs.earlier_days.height:
        days = pl.concat([inputs.earlier_days, days], how="vertical_relaxed")
        earliest = inputs.earlier_days["day"].min()
        if isinstance(earliest, date):
            start = min(start, earliest)
    counting = counting_rules(inputs.orders.lazy(), start=start, end=as_of)
    return daily_usage(
        days.lazy(),
        as_of=as_of,
        activity_days=activity_days,
        counting=counting.lazy(),
        metrics=metrics,
        floors=floors,
    )


def _last_report_days(inputs: EvaluationInputs) -> pl.DataFrame:
    recent = inputs.instance_days.group_by("customer_id").agg(last_report_on=pl.col("day").max())
    return (
        pl.concat([recent, inputs.last_report_days], how="vertical_relaxed")
        .group_by("customer_id")
        .agg(pl.col("last_report_on").max())
    )


def _sort_key(finding: dict[str, Any]) -> tuple[int, float, str, str]:
    rank = GROUP_RANK[(finding["kind"], finding.get("status"))]
    days_left = finding.get("days_left")
    return (
        rank,
        math.inf if days_left is None else days_left,
        finding["customer_id"],
        finding.get("metric") or "",
    )


async def evaluate(
    store: Store,
    *,
    as_of: date,
    activity_days: int = ACTIVITY_DAYS,
    relapse_days: int = 7,
    keep: bool = True,
    metrics: ApiMetrics | None = None,
) -> Evaluation:
    """Evaluate as of ``as_of``, keep the findings and the episodes' history, return them,
    and set ``metrics``' last-evaluation gauge. With ``keep=False`` (a dry run, SPEC §7 v3)
    nothing is stored: no run, no history, and the gauge stays.

    The inputs are read on a snapshot of exactly what was committed at the run's
    ``known_at``, so its evidence, read later "as known at" that instant, is this
    computation's again (SPEC §11 v3)."""
    known_at, inputs = await store.read_known(lambda con: read_inputs(con, as_of=as_of))
    findings, episodes = await asyncio.to_thread(
        compute_findings,
        inputs,
        as_of=as_of,
        activity_days=activity_days,
        relapse_days=relapse_days,
    )
    evaluated_at = datetime.now(UTC)
    result = Evaluation.model_validate(
        {
            "evaluation_id": f"ev_{evaluated_at:%Y%m%dT%H%M%S}_{secrets.token_hex(4)}",
            "as_of": as_of,
            "evaluated_at": evaluated_at,
            "rules_version": RULES_VERSION,
            "customers_version": inputs.customers_version,
            "known_at": known_at,
            "parameters": {
                "activity_days": activity_days,
                "relapse_days": relapse_days,
                "silence_days": SILENCE_DAYS,
                "regularization_days": REGULARIZATION_DAYS,
                "material_pct": MATERIAL_PCT,
            },
            "findings": findings,
        }
    )
    if keep:
        reported = overuse_findings(episodes, as_of=as_of)
        document = result.model_dump(mode="json")
        await store.write(
            lambda con: repository.save_evaluation(con, document=document, episodes=reported)
        )
        if metrics is not None:
            metrics.last_evaluation.set(result.evaluated_at.timestamp())
    log.info(
        "event=evaluation.done as_of=%s findings=%d episodes=%d kept=%s",
        as_of,
        len(findings),
        episodes.height,
        keep,
    )
    return result


async def evaluate_now(
    store: Store, *, as_of: date | None, metrics: ApiMetrics | None = None
) -> Evaluation:
    """An evaluation asked for by a person: as of ``as_of``, by default the latest finished
    day (UTC); refused after today."""
    now = datetime.now(UTC)
    as_of = as_of or latest_finished_day(now)
    check_as_of(as_of, today=now.date())
    return await evaluate(store, as_of=as_of, metrics=metrics)


async def newest_run(store: Store) -> Evaluation | None:
    """The newest run, whatever its ``as_of``; None before the first."""
    document = await store.read(repository.evaluation)
    return None if document is None else Evaluation.model_validate(document)


async def stored_findings(store: Store, *, as_of: date) -> Evaluation:
    """The newest run as of ``as_of``, as it was answered, without recomputing."""
    return Evaluation.model_validate(await _newest_run_document(store, as_of=as_of))


async def stored_finding(
    store: Store, *, finding_id: str, as_of: date | None = None, evaluation_id: str | None = None
) -> tuple[EvaluationRun, Finding]:
    """One finding of the run ``evaluation_id``, or of the newest run as of ``as_of``, and
    that run. Only the finding is validated: validating a whole run of 2,078 findings took
    120 ms."""
    if evaluation_id is not None:
        document = await _run_document(store, evaluation_id=evaluation_id)
        if as_of is not None and document["as_of"] != as_of.isoformat():
            raise InvalidPayload(
                f"Evaluation {evaluation_id} is as of {document['as_of']}, not {as_of}; give "
                "one of as_of and evaluation_id, or both of the same run.",
                errors=[{"loc": ["query", "as_of"], "msg": "not the as_of of evaluation_id"}],
            )
        where = f"evaluation {evaluation_id}"
        listing = f"GET /v1/evaluations/{evaluation_id}"
    elif as_of is not None:
        document = await _newest_run_document(store, as_of=as_of)
        where = f"the newest evaluation as of {as_of} ({document['evaluation_id']})"
        listing = f"GET /v1/findings?as_of={as_of}"
    else:
        raise InvalidPayload(
            "Say which run's finding: give evaluation_id (the run quoted) or as_of (the "
            "newest run of that day).",
            errors=[{"loc": ["query", "evaluation_id"], "msg": "give evaluation_id or as_of"}],
        )
    found = next((f for f in document["findings"] if f["finding_id"] == finding_id), None)
    if found is None:
        raise NotFound(f"Finding {finding_id} is not in {where}. List its findings with {listing}.")
    run = EvaluationRun.model_validate({**document, "findings": len(document["findings"])})
    return run, _FINDING.validate_python(found)


_FINDING: TypeAdapter[Finding] = TypeAdapter(Finding)


async def _newest_run_document(store: Store, *, as_of: date) -> dict[str, Any]:
    document = await store.read(lambda con: repository.evaluation(con, as_of=as_of))
    if document is None:
        raise NotFound(
            f"No evaluation as of {as_of} has been run. Run one with POST /v1/evaluations "
            f'{{"as_of": "{as_of}"}} (or statreport evaluate --as-of {as_of}).'
        )
    return document


async def evaluation_run(store: Store, *, evaluation_id: str) -> Evaluation:
    """One run by its id, as it was answered."""
    return Evaluation.model_validate(await _run_document(store, evaluation_id=evaluation_id))


async def _run_document(store: Store, *, evaluation_id: str) -> dict[str, Any]:
    document = await store.read(lambda con: repository.evaluation(con, evaluation_id=evaluation_id))
    if document is None:
        raise NotFound(
            f"No evaluation {evaluation_id!r}. List the runs with GET /v1/evaluations?as_of=."
        )
    return document


async def evaluation_runs(
    store: Store, *, as_of: date | None, limit: int = 100
) -> list[EvaluationRun]:
    """Runs, newest first, optionally of one day."""
    rows = await store.read(lambda con: repository.evaluation_runs(con, as_of=as_of, limit=limit))
    return [EvaluationRun.model_validate(row) for row in rows]


async def episode_history(store: Store, *, customer_id: str | None) -> list[EpisodeHistory]:
    """Every episode the evaluations have reported."""
    rows = await store.read(lambda con: repository.episode_history(con, customer_id=customer_id))
    return [EpisodeHistory.model_validate(row) for row in rows]


async def customer_usage(
    store: Store,
    *,
    customer_id: str,
    start: date,
    end: date,
    activity_days: int = ACTIVITY_DAYS,
    known_at: datetime | None = None,
) -> CustomerUsage:
    """A customer's daily usage and entitlement of every metric from ``start`` to ``end``, as
    stored now or as known at ``known_at``."""
    if end < start:
        raise InvalidPayload(
            f"'to' ({end}) is before 'from' ({start}); swap them.",
            errors=[{"loc": ["query", "to"], "msg": "must be on or after 'from'"}],
        )
    if (end - start).days > HISTORY_DAYS:
        raise InvalidPayload(
            f"The range spans {(end - start).days + 1} days; ask for at most {HISTORY_DAYS}.",
            errors=[{"loc": ["query", "to"], "msg": f"at most {HISTORY_DAYS} days after 'from'"}],
        )
    if start < EARLIEST_AS_OF or end > LATEST_DAY:
        raise InvalidPayload(
            f"Ask for days between {EARLIEST_AS_OF} and {LATEST_DAY}; no report or order form "
            "lies outside them.",
            errors=[
                {
                    "loc": ["query", "from"],
                    "msg": f"must be within {EARLIEST_AS_OF} to {LATEST_DAY}",
                }
            ],
        )
    inputs = await store.read(
        lambda con: load_inputs(con, as_of=end, customer_id=customer_id, known_at=known_at)
    )
    if inputs.customers.height == 0:
        raise NotFound(f"No customer {customer_id!r}.")
    keys = {(customer_id, metric) for metric in USAGE_METRICS}
    series = await asyncio.to_thread(
        series_from, inputs, keys=keys, start=start, end=end, activity_days=activity_days
    )
    subscribed = set(active_order_days(inputs.orders.lazy(), start=start, end=end)["day"])
    days = [
        UsageDay(
            day=day,
            usage={m: series[(customer_id, m)][n][1] for m in USAGE_METRICS},
            entitled={m: series[(customer_id, m)][n][2] for m in USAGE_METRICS},
            subscription=day in subscribed,
        )
        for n, day in enumerate(_span(start, end))
    ]
    return CustomerUsage(customer_id=customer_id, from_=start, to=end, days=days)


def _span(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def series_from(
    inputs: EvaluationInputs,
    *,
    keys: set[tuple[str, str]],
    start: date,
    end: date,
    activity_days: int = ACTIVITY_DAYS,
) -> dict[tuple[str, str], Series]:
    """Daily ``(day, usage, entitled)`` from ``start`` to ``end`` per (customer, metric). Pure."""
    wanted = pl.col("customer_id").is_in(sorted({customer for customer, _ in keys}))
    orders, items = inputs.orders.filter(wanted), inputs.items.filter(wanted)
    usage = usage_of(
        replace(inputs, instance_days=inputs.instance_days.filter(wanted), orders=orders),
        as_of=end,
        activity_days=activity_days,
    ).filter(pl.col("day") >= start)
    entitled = daily_entitlements(orders.lazy(), items.lazy(), start=start, end=end)
    used = {(r["customer_id"], r["metric"], r["day"]): r["usage"] for r in usage.to_dicts()}
    allowed = {
        (r["customer_id"], r["metric"], r["day"]): r["entitled"] for r in entitled.to_dicts()
    }
    return {
        (customer, metric): [
            (day, used.get((customer, metric, day)), allowed.get((customer, metric, day)))
            for day in _span(start, end)
        ]
        for customer, metric in keys
    }


async def metric_series(
    store: Store,
    *,
    keys: set[tuple[str, str]],
    start: date,
    end: date,
    activity_days: int = ACTIVITY_DAYS,
    known_at: datetime | None = None,
) -> dict[tuple[str, str], Series]:
    """``series_from`` over a read of the store: now, or as known at ``known_at``."""
    if not keys:
        return {}
    customers = {customer for customer, _ in keys}
    only = next(iter(customers)) if len(customers) == 1 else None
    inputs = await store.read(
        lambda con: load_inputs(con, as_of=end, customer_id=only, known_at=known_at)
    )
    return await asyncio.to_thread(
        series_from, inputs, keys=keys, start=start, end=end, activity_days=activity_days
    )


async def accounts_per_manager(store: Store) -> dict[str, int]:
    """How many customers each account manager looks after."""
    customers = await store.read(repository.customers)
    counts: dict[str, int] = {}
    for manager in customers["account_manager"].to_list():
        counts[manager] = counts.get(manager, 0) + 1
    return counts


async def customer_names(store: Store) -> dict[str, str]:
    """Every customer's name, by id: how emails and pages name a customer."""
    return await store.read(repository.customer_names)


def check_as_of(as_of: date, *, today: date) -> None:
    """Refuse an ``as_of`` after today (it would judge days not yet reported, and pin the
    episode history to them) or before 2000."""
    if as_of > today:
        raise InvalidPayload(
            f"as_of {as_of} is after today ({today}, UTC): a day can only be judged once it has "
            "begun. Leave as_of out for the latest finished day.",
            errors=[{"loc": ["body", "as_of"], "msg": "must not be after today (UTC)"}],
        )
    if as_of < EARLIEST_AS_OF:
        raise InvalidPayload(
            f"as_of {as_of} is before {EARLIEST_AS_OF}; give a day in the period reports cover.",
            errors=[{"loc": ["body", "as_of"], "msg": f"must be on or after {EARLIEST_AS_OF}"}],
        )


async def last_evaluated_at(store: Store) -> datetime | None:
    """When the latest evaluation succeeded (it is kept only then); None if never."""
    return await store.read(repository.last_evaluated_at)


async def customer_episodes(
    store: Store,
    customer_id: str,
    *,
    as_of: date,
    activity_days: int = ACTIVITY_DAYS,
    known_at: datetime | None = None,
) -> pl.DataFrame:
    """Every over-use episode of one customer up to ``as_of``, as an evaluation as of that
    day sees them (the same computation, ``overuse_of``), whether or not an evaluation ever
    reported them; from what is stored now, or what was known at ``known_at``."""
    inputs = await store.read(
        lambda con: load_inputs(con, as_of=as_of, customer_id=customer_id, known_at=known_at)
    )
    overuse = await asyncio.to_thread(overuse_of, inputs, as_of=as_of, activity_days=activity_days)
    return overuse.episodes
