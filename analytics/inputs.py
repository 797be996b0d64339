"""What an evaluation reads (SPEC §6, §11 v3): every table in one snapshot, as stored now or
as known at an instant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from analytics import repository
from core.database import Connection
from core.usage_metrics import ACTIVITY_DAYS

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
    con: Connection,
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
    con: Connection,
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
    con: Connection,
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
