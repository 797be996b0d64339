"""The whole evaluation against its parts: the shortcuts ``compute_findings`` takes for speed
(ids as categoricals, usage of licensed metrics only, metrics that never exceeded their least
entitlement left unjudged) change no episode."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from analytics.compliance import overuse_episodes
from analytics.entitlements import active_order_days, daily_entitlements
from analytics.evidence import overuse_evidence
from analytics.inputs import _NO_REGRESSIONS, EvaluationInputs
from analytics.schemas import OveruseFinding
from analytics.service import compute_findings, overuse_of, usage_of
from core.usage_metrics import ACTIVITY_DAYS, REPORT_METRICS

START = date(2026, 1, 1)
ITEMS = ("user_packs", "tenants", "production_instances", "namespaces")


@st.composite
def fleets(draw: st.DrawFn) -> tuple[EvaluationInputs, date]:
    """One to three customers, each with orders, add-ons and instances reporting on some days."""
    orders: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    days: list[dict[str, Any]] = []
    customers = [f"c{n}" for n in range(draw(st.integers(1, 3)))]
    for customer in customers:
        for number in range(draw(st.integers(0, 2))):
            first = START + timedelta(days=draw(st.integers(0, 40)))
            last = first + timedelta(days=draw(st.integers(0, 40)))
            order = f"OF-{number}"
            counting = draw(st.sampled_from(["{}", '{"users": "production"}']))
            orders.append(
                {
                    "customer_id": customer,
                    "order_id": order,
                    "start_on": first,
                    "end_on": last,
                    "users_per_pack": draw(st.integers(1, 10)),
                    "counting": counting,
                }
            )
            for item in draw(st.sets(st.sampled_from(ITEMS), max_size=3)):
                items.append(_item(customer, order, "", first, item, draw(st.integers(0, 30))))
                if draw(st.booleans()):  # an add-on from a later day
                    later = first + timedelta(days=draw(st.integers(0, 30)))
                    items.append(_item(customer, order, "A", later, item, draw(st.integers(0, 9))))
        for instance in range(draw(st.integers(1, 3))):
            environment = draw(st.sampled_from(["production", "non_production"]))
            for offset in sorted(draw(st.sets(st.integers(0, 70), max_size=25))):
                days.append(
                    {
                        "customer_id": customer,
                        "instance_id": f"{customer}-i{instance}",
                        "day": START + timedelta(days=offset),
                        "environment": environment,
                        **{m: draw(st.integers(0, 40)) for m in REPORT_METRICS},
                        "retired_on": None,
                    }
                )
    inputs = EvaluationInputs(
        instance_days=pl.DataFrame(
            days,
            schema={
                "customer_id": pl.String,
                "instance_id": pl.String,
                "day": pl.Date,
                "environment": pl.String,
                **dict.fromkeys(REPORT_METRICS, pl.Int32),
                "retired_on": pl.Date,
            },
        ),
        orders=pl.DataFrame(
            orders,
            schema={
                "customer_id": pl.String,
                "order_id": pl.String,
                "start_on": pl.Date,
                "end_on": pl.Date,
                "users_per_pack": pl.Int64,
                "counting": pl.String,
            },
        ),
        items=pl.DataFrame(
            items,
            schema={
                "customer_id": pl.String,
                "order_id": pl.String,
                "addon_id": pl.String,
                "effective_on": pl.Date,
                "item": pl.String,
                "quantity": pl.Int64,
            },
        ),
        customers=pl.DataFrame(
            {
                "customer_id": customers,
                "account_manager": ["am@vendor.example"] * len(customers),
                "air_gapped": [False] * len(customers),
                "air_gapped_since": [None] * len(customers),
            },
            schema_overrides={"air_gapped_since": pl.Date},
        ),
        last_report_days=pl.DataFrame(schema={"customer_id": pl.String, "last_report_on": pl.Date}),
        attestations=pl.DataFrame(schema={"customer_id": pl.String, "quarter": pl.String}),
        regressions=_NO_REGRESSIONS,
    )
    return inputs, START + timedelta(days=draw(st.integers(0, 80)))


def _item(
    customer: str, order: str, addon: str, effective_on: date, item: str, quantity: int
) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "order_id": order,
        "addon_id": addon,
        "effective_on": effective_on,
        "item": item,
        "quantity": quantity,
    }


def _every_day_judged(inputs: EvaluationInputs, *, as_of: date) -> pl.DataFrame:
    """The episodes without a shortcut: every metric's usage against every day's entitlement."""
    usage = usage_of(inputs, as_of=as_of, activity_days=ACTIVITY_DAYS)
    start = min([*usage["day"].to_list(), as_of - timedelta(days=7)])
    orders, items = inputs.orders.lazy(), inputs.items.lazy()
    return overuse_episodes(
        usage.lazy(),
        daily_entitlements(orders, items, start=start, end=as_of).lazy(),
        as_of=as_of,
        subscribed=active_order_days(orders, start=start, end=as_of).lazy(),
    )


@settings(max_examples=150, deadline=None)
@given(fleets())
def test_the_evaluation_judges_every_episode_its_parts_find(
    fleet: tuple[EvaluationInputs, date],
) -> None:
    inputs, as_of = fleet
    _, episodes = compute_findings(inputs, as_of=as_of)
    assert_frame_equal(episodes, _every_day_judged(inputs, as_of=as_of))


def _one_customer(inputs: EvaluationInputs, customer: str) -> EvaluationInputs:
    """What a customer's evidence or statement reads: its own rows of every input."""
    mine = pl.col("customer_id") == customer
    return replace(
        inputs,
        instance_days=inputs.instance_days.filter(mine),
        orders=inputs.orders.filter(mine),
        items=inputs.items.filter(mine),
        customers=inputs.customers.filter(mine),
    )


_NO_REPORT_IDS = pl.DataFrame(
    schema={
        "instance_id": pl.String,
        "day": pl.Date,
        "reports": pl.Int64,
        "report_ids": pl.List(pl.String),
    }
)


@settings(max_examples=150, deadline=None)
@given(fleets())
def test_the_run_its_evidence_and_a_statement_agree_on_every_day(
    fleet: tuple[EvaluationInputs, date],
) -> None:
    """SPEC §11 v3, one computation: a customer's episodes read alone (a statement) are the
    run's; each over-use finding's evidence peaks on the finding's peak_usage and entitled."""
    inputs, as_of = fleet
    findings, episodes = compute_findings(inputs, as_of=as_of)
    order = ["customer_id", "metric", "started_on"]
    for customer in inputs.customers["customer_id"].to_list():
        alone = overuse_of(_one_customer(inputs, customer), as_of=as_of).episodes
        assert_frame_equal(
            alone.sort(order),
            episodes.filter(pl.col("customer_id") == customer).sort(order),
            check_dtypes=False,
        )
    for finding in (f for f in findings if f["kind"] == "overuse"):
        evidence = overuse_evidence(
            _one_customer(inputs, finding["customer_id"]),
            finding=OveruseFinding.model_validate(finding),
            as_of=as_of,
            reports=_NO_REPORT_IDS,
        )
        over = [day for day in evidence["days"] if day["over"]]
        peak = max(over, key=lambda day: day["usage"])
        assert (peak["usage"], peak["entitled"]) == (finding["peak_usage"], finding["entitled"])
        assert over[0]["date"] == finding["started_on"]
