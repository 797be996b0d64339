"""Over-use episodes and the other findings of an evaluation as of day T (SPEC §6)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from core.quarters import ATTESTATION_GRACE_DAYS, next_quarter, quarter_bounds, quarter_of

KEYS = ["customer_id", "metric"]
#: Days a customer has to regularize an over-use (SPEC §6; licence §11.2).
REGULARIZATION_DAYS = 30
#: Over-use above this share of the entitlement is material (licence §11.3).
MATERIAL_PCT = 10
#: Days without a report after which a customer or an instance is silent.
SILENCE_DAYS = 7
#: Findings groups, in the order the SPEC sorts them.
GROUP_RANK = {
    ("overuse", "overdue"): 0,
    ("overuse", "in_window"): 1,
    ("overuse", "regularized"): 2,
    ("telemetry_missing", None): 3,
    ("instance_cloned", None): 4,
    ("instance_silent", None): 5,
    ("attestation_overdue", None): 6,
    ("no_active_subscription", None): 7,
}
#: Silence of one instance is reported from ``silence_days`` to this many days.
SILENT_INSTANCE_MAX_DAYS = 30
#: Sequence regressions in 7 days that mean two installations share an instance_id.
CLONE_REGRESSIONS = 2


def above_floors(usage: pl.DataFrame, floors: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``usage`` whose (customer, metric) exceeded its entitlement's ``floor``
    (``customer_id, metric, floor``) on some day: only these can have an over-day."""
    peaks = usage.group_by(KEYS).agg(peak=pl.col("usage").max())
    exceeded = peaks.join(floors, on=KEYS, how="inner").filter(pl.col("peak") > pl.col("floor"))
    return usage.join(exceeded.select(KEYS), on=KEYS, how="semi")


def overuse_episodes(
    usage: pl.LazyFrame,
    entitlements: pl.LazyFrame,
    *,
    as_of: date,
    relapse_days: int = 7,
    subscribed: pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """Every over-use episode up to ``as_of``, with its status at ``as_of``.

    ``usage`` is ``customer_id, metric, day, usage``; ``entitlements`` is ``customer_id,
    metric, day, entitled`` (no row: unlimited). An over-day has usage > entitlement. Over-days
    are one episode until a compliant day intervenes and the next over-day comes more than
    ``relapse_days`` after the last one; days without usage never end an episode.
    ``subscribed`` (``customer_id, day``), when given, lists the days with an active order:
    the other days have no entitlement at all and are skipped exactly like days without usage
    (SPEC §1, §6 v2), so a lapse neither ends nor continues an episode.
    """
    if subscribed is not None:
        usage = usage.join(subscribed, on=["customer_id", "day"], how="semi")
    judged = (
        usage.filter(pl.col("day") <= as_of)
        .join(entitlements, on=[*KEYS, "day"], how="left")
        .with_columns(over=(pl.col("usage") > pl.col("entitled")).fill_null(False))
        # Read twice below: computed once (the plan would join twice, 0.1 s on 10M reports).
        .collect()
        .lazy()
    )
    # Most customers never go over: sort and scan only the metrics that did.
    ever_over = judged.filter(pl.col("over")).select(KEYS).unique()
    # In day order, each metric's rows are in day order within its group (``over``).
    days = (
        judged.join(ever_over, on=KEYS, how="semi")
        .sort("day")
        .with_columns(compliant_seen=(~pl.col("over")).cast(pl.Int64).cum_sum().over(KEYS))
    )
    episodes = _group_episodes(days, relapse_days=relapse_days)
    compliant = days.filter(~pl.col("over")).select(*KEYS, pl.col("day").alias("ended_on"))
    return _judge_episodes(episodes, compliant, entitlements, as_of=as_of)


def _group_episodes(days: pl.LazyFrame, *, relapse_days: int) -> pl.LazyFrame:
    """Over-days into episodes: a new one starts after a compliant day and a gap of more than
    ``relapse_days``; each with its start, last over-day, peak and materiality. ``days`` are
    in day order within each metric."""
    over_days = (
        days.filter(pl.col("over"))
        .with_columns(
            previous=pl.col("day").shift(1).over(KEYS),
            compliant_before=pl.col("compliant_seen").shift(1).over(KEYS),
        )
        .with_columns(
            new_episode=pl.col("previous").is_null()
            | (
                ((pl.col("day") - pl.col("previous")).dt.total_days() > relapse_days)
                & (pl.col("compliant_seen") > pl.col("compliant_before"))
            )
        )
        .with_columns(episode=pl.col("new_episode").cast(pl.Int64).cum_sum().over(KEYS))
    )
    return over_days.group_by(*KEYS, "episode").agg(
        started_on=pl.col("day").min(),
        last_over_on=pl.col("day").max(),
        peak_usage=pl.col("usage").max(),
        # A group keeps its rows' order, here the days': the entitlement on the first peak
        # day, and on the last over-day (sorting each group again cost 40 ms on 40M reports).
        entitled=pl.col("entitled").get(pl.col("usage").arg_max()),
        entitled_last_over=pl.col("entitled").last(),
        material=(
            (pl.col("usage") * 100 > pl.col("entitled") * (100 + MATERIAL_PCT))
            | (pl.col("entitled") == 0)
        ).any(),
    )


def _judge_episodes(
    episodes: pl.LazyFrame, compliant: pl.LazyFrame, entitlements: pl.LazyFrame, *, as_of: date
) -> pl.DataFrame:
    """Each episode's end (the first compliant day after its last over-day), status, deadline,
    overage and how it was regularized, at ``as_of``. One Polars query, read top to bottom:
    cut into functions, it would only name its intermediate frames."""
    ended_entitlement = entitlements.select(
        *KEYS, pl.col("day").alias("ended_on"), pl.col("entitled").alias("entitled_on_end")
    )
    deadline = pl.col("started_on") + pl.duration(days=REGULARIZATION_DAYS)
    open_status = pl.when(pl.lit(as_of) <= pl.col("deadline"))
    return (
        episodes.sort("last_over_on")
        .join_asof(
            compliant.sort("ended_on"),
            left_on="last_over_on",
            right_on="ended_on",
            by=KEYS,
            strategy="forward",
            allow_exact_matches=False,
            check_sortedness=False,  # sorted by the key above; groups come from `by`
        )
        .join(ended_entitlement, on=[*KEYS, "ended_on"], how="left")
        .with_columns(
            deadline=deadline,
            tenths=(2000 * pl.col("peak_usage") - 2000 * pl.col("entitled") + pl.col("entitled"))
            // pl.when(pl.col("entitled") > 0).then(2 * pl.col("entitled")),
        )
        .with_columns(
            days_left=(pl.col("deadline") - pl.lit(as_of)).dt.total_days(),
            overage=pl.col("peak_usage") - pl.col("entitled"),
            status=pl.when(pl.col("ended_on").is_not_null())
            .then(pl.lit("regularized"))
            .otherwise(open_status.then(pl.lit("in_window")).otherwise(pl.lit("overdue"))),
        )
        .with_columns(
            # 100 * overage / entitled, rounded half up to 0.1: counted in integer tenths,
            # then read as decimal text, so 33.3 is the float 33.3 (not 33.300000000000004).
            overage_pct=pl.when(pl.col("entitled") > 0).then(
                pl.format("{}.{}", pl.col("tenths") // 10, pl.col("tenths") % 10).cast(pl.Float64)
            ),
            resolution=pl.when(pl.col("ended_on").is_null())
            .then(pl.lit(None, dtype=pl.String))
            .when(
                pl.col("entitled_on_end").is_null()  # no order names it any more: unlimited
                | (pl.col("entitled_on_end") > pl.col("entitled_last_over"))
            )
            .then(pl.lit("capacity_purchased"))
            .otherwise(pl.lit("usage_reduced")),
            late=pl.when(pl.col("ended_on").is_not_null()).then(
                pl.col("ended_on") > pl.col("deadline")
            ),
        )
        .select(
            *KEYS,
            "status",
            "started_on",
            "deadline",
            "days_left",
            "entitled",
            "peak_usage",
            "overage",
            "overage_pct",
            "material",
            "ended_on",
            "resolution",
            "late",
        )
        .sort(*KEYS, "started_on")
        .collect()
    )


def overuse_findings(episodes: pl.DataFrame, *, as_of: date) -> pl.DataFrame:
    """The episodes to act on: open ones, and those regularized in the 7 days up to T."""
    week_start = as_of - timedelta(days=6)
    return episodes.filter(
        (pl.col("status") != "regularized") | pl.col("ended_on").is_between(week_start, as_of)
    )


def telemetry_missing(
    customers: pl.DataFrame,
    active_order_days: pl.DataFrame,
    last_report_days: pl.DataFrame,
    *,
    as_of: date,
    silence_days: int = SILENCE_DAYS,
) -> pl.DataFrame:
    """Phoning-home customers under an order on T and the 7 days before, silent for 7 days."""
    needed = pl.date_range(as_of - timedelta(days=silence_days), as_of, eager=True)
    covered = (
        active_order_days.filter(pl.col("day").is_in(needed.implode()))
        .group_by("customer_id")
        .agg(days=pl.col("day").n_unique())
        .filter(pl.col("days") == len(needed))
    )
    quiet_since = as_of - timedelta(days=silence_days - 1)
    return (
        customers.filter(~pl.col("air_gapped"))
        .join(covered.select("customer_id"), on="customer_id", how="semi")
        .join(last_report_days, on="customer_id", how="left")
        .filter(pl.col("last_report_on").is_null() | (pl.col("last_report_on") < quiet_since))
        .select("customer_id", "account_manager", "last_report_on")
    )


def no_active_subscription(
    customers: pl.DataFrame,
    instance_days: pl.DataFrame,
    active_order_days: pl.DataFrame,
    orders: pl.DataFrame,
    *,
    as_of: date,
    window_days: int = 7,
) -> pl.DataFrame:
    """Customers whose instances reported, in the 7 days up to T, on days with no order."""
    since = as_of - timedelta(days=window_days - 1)
    uncovered = (
        instance_days.filter(pl.col("day").is_between(since, as_of))
        .join(active_order_days, on=["customer_id", "day"], how="anti")
        .group_by("customer_id")
        .agg(instances=pl.col("instance_id").n_unique())
    )
    last_end = (
        orders.filter(pl.col("end_on") <= as_of)
        .group_by("customer_id")
        .agg(last_order_end=pl.col("end_on").max())
    )
    return (
        uncovered.join(customers, on="customer_id", how="inner")
        .join(last_end, on="customer_id", how="left")
        .select("customer_id", "account_manager", "last_order_end", "instances")
    )


def attestation_overdue(
    customers: pl.DataFrame,
    orders: pl.DataFrame,
    attestations: pl.DataFrame,
    *,
    as_of: date,
    grace_days: int = ATTESTATION_GRACE_DAYS,
) -> pl.DataFrame:
    """Every quarter an air-gapped customer owes an attestation for and has not sent, one row
    each, oldest first (SPEC §6 v2).

    A quarter is owed when an order was active on one of its days and it ends on or after the
    day the customer became air-gapped (``air_gapped_since``; if unset, the start of its
    earliest order); the row appears once T is more than ``grace_days`` after its last day.
    A later attestation does not excuse an earlier missing one.
    """
    received = {(row["customer_id"], row["quarter"]) for row in attestations.iter_rows(named=True)}
    terms: dict[str, list[tuple[date, date]]] = {}
    for row in orders.iter_rows(named=True):
        terms.setdefault(row["customer_id"], []).append((row["start_on"], row["end_on"]))
    rows = []
    for customer in customers.filter(pl.col("air_gapped")).iter_rows(named=True):
        customer_terms = terms.get(customer["customer_id"], [])
        since = customer["air_gapped_since"] or min((s for s, _ in customer_terms), default=None)
        if since is None:
            continue
        quarter = quarter_of(since)
        while True:
            first, last = quarter_bounds(quarter)
            due_on = last + timedelta(days=grace_days)
            if as_of <= due_on:
                break
            covered = any(start <= last and end >= first for start, end in customer_terms)
            if covered and (customer["customer_id"], quarter) not in received:
                rows.append(
                    {
                        "customer_id": customer["customer_id"],
                        "account_manager": customer["account_manager"],
                        "quarter": quarter,
                        "due_on": due_on,
                    }
                )
            quarter = next_quarter(quarter)
    return pl.DataFrame(
        rows,
        schema={
            "customer_id": pl.String,
            "account_manager": pl.String,
            "quarter": pl.String,
            "due_on": pl.Date,
        },
    )


def instance_silent(
    customers: pl.DataFrame,
    instance_days: pl.DataFrame,
    order_days: pl.DataFrame,
    *,
    as_of: date,
    silence_days: int = SILENCE_DAYS,
) -> pl.DataFrame:
    """Instances silent for ``silence_days`` to 30 days while another instance of the same
    customer reported in the 2 days up to T (SPEC §6 v2).

    Only customers with an order active on T that are not air-gapped; only instances that
    reported on at least 2 days and are not retired (``retired_on`` <= T, no report after).
    """
    reported = instance_days.filter(pl.col("day") <= as_of)
    instances = reported.group_by("customer_id", "instance_id").agg(
        last_report_on=pl.col("day").max(),
        days=pl.col("day").n_unique(),
        environment=pl.col("environment").sort_by("day").last(),
        retired_on=pl.col("retired_on").first(),
    )
    recent = (
        instances.filter(pl.col("last_report_on") >= as_of - timedelta(days=1))
        .group_by("customer_id")
        .agg(recent=pl.col("instance_id"))
    )
    subscribed = order_days.filter(pl.col("day") == as_of).select("customer_id").unique()
    silent_for = (pl.lit(as_of) - pl.col("last_report_on")).dt.total_days()
    retired = (
        pl.col("retired_on").is_not_null()
        & (pl.col("retired_on") <= as_of)
        & (pl.col("last_report_on") <= pl.col("retired_on"))
    )
    return (
        instances.filter(
            (pl.col("days") >= 2)
            & silent_for.is_between(silence_days, SILENT_INSTANCE_MAX_DAYS)
            & ~retired
        )
        .join(recent, on="customer_id", how="inner")
        .join(subscribed, on="customer_id", how="semi")
        .join(
            customers.filter(~pl.col("air_gapped")).select("customer_id", "account_manager"),
            on="customer_id",
            how="inner",
        )
        .select("customer_id", "account_manager", "instance_id", "environment", "last_report_on")
        .sort("customer_id", "last_report_on", "instance_id")
    )


def instance_cloned(
    customers: pl.DataFrame, regressions: pl.DataFrame, *, threshold: int = CLONE_REGRESSIONS
) -> pl.DataFrame:
    """Instances whose sequence went backwards ``threshold`` times or more in the 7 days up to
    T (``regressions`` per instance, from the raw reports): one regression is a restore from
    backup, repeated ones two installations sharing one ``instance_id`` (SPEC §6 v2)."""
    return (
        regressions.filter(pl.col("regressions") >= threshold)
        .join(customers.select("customer_id", "account_manager"), on="customer_id", how="inner")
        .select(
            "customer_id", "account_manager", "instance_id", "regressions", "first_regression_at"
        )
        .sort("customer_id", "instance_id")
    )
