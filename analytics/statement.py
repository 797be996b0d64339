"""The customer statement (SPEC §11): a self-contained document of a period's usage against
entitlement, with the SHA-256 of its daily rows so that both sides refer to the same figures."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape

from analytics import repository
from analytics.service import customer_episodes, customer_usage
from analytics.usage import USAGE_METRICS
from core.errors import InvalidPayload, NotFound
from core.store import Store

#: The longest period a statement covers, both ends included.
MAX_DAYS = 400
CSV_HEADER = ("date", "metric", "usage", "entitled", "over")
_RULE_WORDS = {
    "sum": "every active instance counts, production and non-production",
    "production": "only production instances count; non-production use is free",
    "max_instance": "the largest single instance counts (the same people use every instance)",
}
_CHART_WIDTH, _CHART_HEIGHT, _MARGIN = 640, 160, 28

_templates = Environment(
    loader=PackageLoader("analytics", "templates"),
    autoescape=select_autoescape(["html.j2"]),
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Statement:
    """A rendered statement: its daily rows as CSV, their SHA-256, and the HTML document."""

    csv: str
    sha256: str
    html: str


async def customer_statement(
    store: Store, *, customer_id: str, start: date, end: date
) -> Statement:
    """The statement of ``customer_id`` from ``start`` to ``end`` (both included)."""
    if end < start or (end - start).days + 1 > MAX_DAYS:
        raise InvalidPayload(
            f"A statement covers 1 to {MAX_DAYS} days, from 'from' to 'to' included; "
            f"{start} to {end} is not such a period.",
            errors=[{"loc": ["query", "to"], "msg": f"1 to {MAX_DAYS} days after 'from'"}],
        )
    document = await store.read(
        lambda con: repository.customer_document(con, customer_id=customer_id)
    )
    if document is None:
        raise NotFound(f"No customer {customer_id!r}. List customers with GET /v1/customers.")
    usage = await customer_usage(store, customer_id=customer_id, start=start, end=end)
    instances = await store.read(
        lambda con: repository.reporting_instances(
            con, customer_id=customer_id, since=start, until=end
        )
    )
    episodes = (
        (await customer_episodes(store, customer_id, as_of=end))
        .filter(
            (pl.col("started_on") <= end)
            & (pl.col("ended_on").is_null() | (pl.col("ended_on") >= start))
        )
        .to_dicts()
    )
    rows = [
        (day.day, metric, day.usage[metric], day.entitled[metric])
        for day in usage.days
        for metric in USAGE_METRICS
    ]
    daily_csv = _csv(rows)
    digest = hashlib.sha256(daily_csv.encode()).hexdigest()
    licensed = [m for m in USAGE_METRICS if any(e is not None for _, mm, _, e in rows if mm == m)]
    charts = [
        {
            "metric": metric,
            "svg": usage_svg([(d, u, e) for d, mm, u, e in rows if mm == metric]),
            "over_days": [d for d, mm, u, e in rows if mm == metric and _over(u, e)],
        }
        for metric in licensed
    ]
    rules = sorted(
        {
            (metric, rule)
            for order in document.get("orders", [])
            for metric, rule in (order.get("counting") or {}).items()
        }
    )
    html = _templates.get_template("statement.html.j2").render(
        customer_id=customer_id,
        name=document["name"],
        start=start,
        end=end,
        orders=document.get("orders", []),
        charts=charts,
        episodes=episodes,
        instances=instances,
        rules=[(metric, _RULE_WORDS[rule]) for metric, rule in rules],
        default_rule=_RULE_WORDS["sum"],
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        sha256=digest,
    )
    return Statement(csv=daily_csv, sha256=digest, html=html)


def _over(usage: int | None, entitled: int | None) -> bool:
    return usage is not None and entitled is not None and usage > entitled


def _csv(rows: list[tuple[date, str, int | None, int | None]]) -> str:
    """The daily rows, one per day and metric; empty cells are no usage or unlimited."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for day, metric, usage, entitled in rows:
        writer.writerow(
            [
                day.isoformat(),
                metric,
                _cell(usage),
                _cell(entitled),
                str(_over(usage, entitled)).lower(),
            ]
        )
    return out.getvalue()


def _cell(value: int | None) -> str:
    return "" if value is None else str(value)


def usage_svg(series: list[tuple[date, int | None, int | None]]) -> str:
    """An inline SVG chart of daily usage (line) against entitlement (steps), over-days marked;
    drawn here so that the statement loads nothing from elsewhere."""
    values = [v for _, u, e in series for v in (u, e) if v is not None]
    top = max(values, default=1) * 1.1 or 1
    width, height = _CHART_WIDTH - 2 * _MARGIN, _CHART_HEIGHT - 2 * _MARGIN
    step = width / max(len(series) - 1, 1)

    def point(index: int, value: int) -> str:
        x = _MARGIN + index * step
        y = _MARGIN + height - value / top * height
        return f"{x:.1f},{y:.1f}"

    def polyline(pick: int, colour: str, dashed: bool) -> str:
        runs: list[list[str]] = [[]]
        for index, row in enumerate(series):
            value = row[pick]
            if value is None:
                runs.append([])
            else:
                runs[-1].append(point(index, value))  # type: ignore[arg-type]
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        return "".join(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} '
            f'points="{" ".join(run)}"/>'
            for run in runs
            if run
        )

    marks = "".join(
        f'<circle cx="{point(i, u).split(",")[0]}" cy="{point(i, u).split(",")[1]}" r="2.5" '
        'fill="#c0392b"/>'
        for i, (_, u, e) in enumerate(series)
        if u is not None and _over(u, e)
    )
    axis = (
        f'<text x="4" y="{_MARGIN + 4}" font-size="10">{int(top)}</text>'
        f'<text x="4" y="{_MARGIN + height}" font-size="10">0</text>'
        f'<text x="{_MARGIN}" y="{_CHART_HEIGHT - 6}" font-size="10">{series[0][0]}</text>'
        f'<text x="{_CHART_WIDTH - _MARGIN}" y="{_CHART_HEIGHT - 6}" font-size="10" '
        f'text-anchor="end">{series[-1][0]}</text>'
        if series
        else ""
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_CHART_WIDTH} {_CHART_HEIGHT}" '
        f'width="{_CHART_WIDTH}" height="{_CHART_HEIGHT}" role="img">'
        f'<rect x="{_MARGIN}" y="{_MARGIN}" width="{width}" height="{height}" fill="#f7f9fb"/>'
        f"{polyline(2, '#7f8c8d', True)}{polyline(1, '#2c6fb7', False)}{marks}{axis}</svg>"
    )
