"""One customer's numbers as the staff console's customer page and the customer's own view
(SPEC §15) both show them: the newest run's findings, a chart per licensed metric over a
period, the order forms, instances and attestations. One function, so that both show the
same thing computed the same way; each page adds its own around it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.responses import HTMLResponse, Response

from analytics import runs
from analytics import service as analytics
from analytics import statement as statement_service
from analytics.charts import over, sequence_svg, usage_svg
from analytics.schemas import Evidence
from analytics.usage import USAGE_METRICS
from console.web import DOCUMENT_SECURITY_POLICY, attachment, parse_day
from core.auth import Keyring
from core.days import latest_finished_day
from core.settings import Settings
from core.store import Store
from customers import service as customers
from scheduler.messages import describe

#: How far back a customer's charts look unless asked otherwise.
DEFAULT_PERIOD_DAYS = 90


def period(from_: str | None, to: str | None) -> tuple[date, date]:
    """The days a customer's page and statement cover: as asked, or by default the
    ``DEFAULT_PERIOD_DAYS`` up to the latest finished day."""
    end = parse_day(to, field="to") or latest_finished_day()
    start = parse_day(from_, field="from") or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    return start, end


async def customer_overview(
    store: Store,
    *,
    customer_id: str,
    start: date,
    end: date,
    keyring: Keyring | None = None,
) -> dict[str, Any]:
    """What the customer's pages show, as template context (``customer``, ``run``,
    ``findings``, ``charts``, ``episodes``, ``instances``, ``states``, ``silent``, ``cloned``,
    ``attestations``, ``start``, ``end``). 404 for an unknown customer."""
    customer = await customers.get_customer(store, customer_id=customer_id, keyring=keyring)
    usage = await analytics.customer_usage(store, customer_id=customer_id, start=start, end=end)
    episodes = await runs.episode_history(store, customer_id=customer_id)
    instances = await customers.list_instances(store, customer_id=customer_id)
    attestations = await customers.attestations(store, customer_id=customer_id)
    run = await runs.newest_run(store)
    mine = [f for f in (run.findings if run else []) if f.customer_id == customer_id]
    charts = []
    for metric in USAGE_METRICS:
        series = [(d.day, d.usage[metric], d.entitled[metric]) for d in usage.days]
        if all(e is None for _, _, e in series):
            continue  # not licensed in the period: nothing to compare with
        windows = [
            (e.started_on, e.deadline)
            for e in episodes
            if e.metric == metric and e.started_on <= end
        ]
        charts.append(
            {
                "metric": metric,
                "svg": usage_svg(
                    series, windows=windows, title=f"{metric}: daily usage against entitlement"
                ),
                "over_days": sum(over(u, e) for _, u, e in series),
                "latest": series[-1],
            }
        )
    now = datetime.now(UTC)
    return {
        "customer": customer,
        "run": run,
        "findings": [(f, *describe(f)) for f in mine],
        "charts": charts,
        "episodes": episodes,
        "instances": instances,
        "states": {i.instance_id: customers.instance_state(i, now=now) for i in instances},
        "silent": {getattr(f, "instance_id", None) for f in mine if f.kind == "instance_silent"},
        "cloned": {getattr(f, "instance_id", None) for f in mine if f.kind == "instance_cloned"},
        "attestations": attestations,
        "start": start,
        "end": end,
    }


async def statement_answer(
    store: Store,
    settings: Settings,
    *,
    customer_id: str,
    from_: str | None,
    to: str | None,
    known_at: datetime | None,
    format: str,
) -> Response:
    """A customer's statement for a period (by default the pages' own), exactly as
    ``GET /v1/customers/{id}/statement`` makes it: the HTML, self-contained and loading
    nothing, or its daily rows as a CSV download."""
    start, end = period(from_, to)
    made = await statement_service.customer_statement(
        store,
        customer_id=customer_id,
        start=start,
        end=end,
        known_at=known_at,
        sender=statement_service.Sender.of(settings),
    )
    if format == "csv":
        return Response(
            made.csv,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": attachment(f"statement-{customer_id}-{start}-{end}.csv")
            },
        )
    return HTMLResponse(made.html, headers={"Content-Security-Policy": DOCUMENT_SECURITY_POLICY})


def evidence_charts(found: Evidence) -> dict[str, Any]:
    """The charts of a finding's evidence, as the console and the customer's view show them:
    daily usage against entitlement (over-use), the sequence over time (a clone)."""
    chart = None
    if found.days:
        chart = usage_svg(
            [(d.date, d.usage, d.entitled) for d in found.days],
            title=f"{found.metric}: daily usage against entitlement",
        )
    return {
        "chart": chart,
        "sequence_chart": sequence_svg(found.reports or [], title="sequence over time") or None,
    }
