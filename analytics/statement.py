"""The customer statement (SPEC §11): a self-contained document of a period's usage against
entitlement, with the SHA-256 of its daily rows so that both sides refer to the same figures."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import polars as pl

from analytics import repository
from analytics.charts import over, usage_svg
from analytics.service import customer_episodes, customer_usage
from analytics.usage import USAGE_METRICS
from core.errors import InvalidPayload, NotFound
from core.settings import Settings
from core.store import Store
from core.templates import environment
from core.usage_metrics import ACTIVITY_DAYS, label
from core.wording import counted, instant

#: The longest period a statement covers, both ends included.
MAX_DAYS = 400
CSV_HEADER = ("date", "metric", "usage", "entitled", "subscription", "over")
_RULE_WORDS = {
    "sum": "every active instance counts, production and non-production",
    "production": "only production instances count; non-production use is free",
    "max_instance": "the largest single instance counts (the same people use every instance)",
}

_templates = environment("analytics")


@dataclass(frozen=True)
class Statement:
    """A rendered statement: its daily rows as CSV, their SHA-256, the HTML document, and the
    address that answers the same again (``known_at`` included)."""

    csv: str
    sha256: str
    html: str
    address: str


@dataclass(frozen=True)
class Sender:
    """Who a statement is from, and whom to ask about it (``STATREPORT_VENDOR_NAME``,
    ``STATREPORT_VENDOR_CONTACT``); either may be unset."""

    name: str | None = None
    contact: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> Sender:
        """The sender this server's settings name."""
        return cls(settings.vendor_name, settings.vendor_contact)


async def customer_statement(
    store: Store,
    *,
    customer_id: str,
    start: date,
    end: date,
    known_at: datetime | None = None,
    sender: Sender | None = None,
) -> Statement:
    """The statement of ``customer_id`` from ``start`` to ``end`` (both included), as known at
    ``known_at`` (by default now): the same bytes, HTML and CSV, every time it is asked for
    the same three (SPEC §11 v3)."""
    _check_period(start, end, known_at=known_at)
    # An instant from which on nothing stored can change what it shows.
    known_at = await store.known_at(known_at)
    document = await store.analyze(
        lambda con: repository.customer_document(con, customer_id=customer_id, known_at=known_at),
        customer_id=customer_id,
    )
    if document is None:
        raise NotFound(
            f"No customer {customer_id!r} as known at {instant(known_at)}. List customers "
            "with GET /v1/customers."
        )
    usage = await customer_usage(
        store, customer_id=customer_id, start=start, end=end, known_at=known_at
    )
    # Every instance counted on a day of the period, also one active on its first day from a
    # report of the days before (the activity window carries it there).
    instances = await store.analyze(
        lambda con: repository.reporting_instances(
            con,
            customer_id=customer_id,
            since=start - timedelta(days=ACTIVITY_DAYS - 1),
            until=end,
            known_at=known_at,
        ),
        customer_id=customer_id,
    )
    # Episodes as of the period's last day, which has begun by known_at: an open episode is
    # never judged overdue before its deadline has come.
    episodes = (
        (await customer_episodes(store, customer_id, as_of=end, known_at=known_at))
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
    subscribed = {day.day for day in usage.days if day.subscription}
    daily_csv = _csv(rows, subscribed=subscribed)
    digest = hashlib.sha256(daily_csv.encode()).hexdigest()
    address = statement_address(customer_id, start=start, end=end, known_at=known_at)
    html = _templates.get_template("statement.html.j2").render(
        customer_id=customer_id,
        name=document["name"],
        start=start,
        end=end,
        orders=[_order_in_words(order) for order in document.get("orders", [])],
        charts=_charts(rows),
        sender=sender or Sender(),
        episodes=episodes,
        instances=instances,
        rules=_rules_in_words(document),
        default_rule=_RULE_WORDS["sum"],
        known_at=instant(known_at),
        address=address,
        sha256=digest,
    )
    return Statement(csv=daily_csv, sha256=digest, html=html, address=address)


#: The multiplication sign, as a customer reads a product.
_TIMES = "\u00d7"


def _order_in_words(order: dict[str, Any]) -> dict[str, Any]:
    """An order form's entitlements as a customer reads them: each item by its name, users as
    packs times their size (5 packs of 10: 50), each add-on from the day it takes effect."""
    per_pack = order.get("entitlements", {}).get("users_per_pack")

    def rows(entitlements: dict[str, int], effective: str, addon: str | None) -> list[Any]:
        found = []
        for item, quantity in entitlements.items():
            if item == "users_per_pack":
                continue
            if item == "user_packs" and per_pack is not None:
                name, amount = (
                    label("users"),
                    f"{counted(quantity, 'pack')} {_TIMES} {per_pack} = {quantity * per_pack}",
                )
            else:
                name, amount = label(item), str(quantity)
            found.append((name + (f" (add-on {addon})" if addon else ""), amount, effective))
        return found

    items = rows(order.get("entitlements", {}), order["start"], None)
    for addon in order.get("addons", []):
        items += rows(addon.get("entitlements", {}), addon["effective"], addon["addon_id"])
    return {
        "order_id": order["order_id"],
        "start": order["start"],
        "end": order["end"],
        "items": items,
    }


def _charts(rows: list[tuple[date, str, int | None, int | None]]) -> list[dict[str, Any]]:
    """A chart of each licensed metric (one an order entitles), with its over-days."""
    licensed = [m for m in USAGE_METRICS if any(e is not None for _, mm, _, e in rows if mm == m)]
    return [
        {
            "metric": metric,
            "svg": usage_svg([(d, u, e) for d, mm, u, e in rows if mm == metric]),
            "over_days": [d for d, mm, u, e in rows if mm == metric and over(u, e)],
        }
        for metric in licensed
    ]


def _rules_in_words(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Each metric an order counts other than by summing, and how, in words."""
    rules = sorted(
        {
            (metric, rule)
            for order in document.get("orders", [])
            for metric, rule in (order.get("counting") or {}).items()
        }
    )
    return [(metric, _RULE_WORDS[rule]) for metric, rule in rules]


def _check_period(start: date, end: date, *, known_at: datetime | None) -> None:
    """Refuse a period that is not 1 to ``MAX_DAYS`` days, an instant after now, and a period
    ending after the day it is known at (by default today)."""
    if end < start or (end - start).days + 1 > MAX_DAYS:
        raise InvalidPayload(
            f"A statement covers 1 to {MAX_DAYS} days, from 'from' to 'to' included; "
            f"{start} to {end} is not such a period.",
            errors=[{"loc": ["query", "to"], "msg": f"1 to {MAX_DAYS} days after 'from'"}],
        )
    now = datetime.now(UTC)
    if known_at is not None and known_at > now:
        raise InvalidPayload(
            f"known_at {instant(known_at)} is after now ({instant(now)}): nothing is known "
            "about the future yet. Leave known_at out for what is known now.",
            errors=[{"loc": ["query", "known_at"], "msg": "must not be after now"}],
        )
    known_on = (known_at or now).astimezone(UTC).date()
    if end > known_on:
        raise InvalidPayload(
            (
                f"'to' ({end}) is after today ({known_on}, UTC): a day not yet begun has no "
                "figures. End the period today or earlier."
                if known_at is None
                else f"'to' ({end}) is after the day of known_at ({known_on}): a day not yet "
                "begun then has no figures as known then. End the period on or before that "
                "day, or leave known_at out."
            ),
            errors=[{"loc": ["query", "to"], "msg": "must not be after the day of known_at"}],
        )


def statement_address(customer_id: str, *, start: date, end: date, known_at: datetime) -> str:
    """The API address that answers this statement again, byte for byte."""
    query = urlencode(
        {"from": start.isoformat(), "to": end.isoformat(), "known_at": instant(known_at)},
        safe=":",  # allowed in a query, and easier to read and copy
    )
    return f"/v1/customers/{quote(customer_id, safe='')}/statement?{query}"


def _csv(rows: list[tuple[date, str, int | None, int | None]], *, subscribed: set[date]) -> str:
    """The daily rows, one per day and metric. An empty ``usage`` is no active instance; an
    empty ``entitled`` is unlimited when ``subscription`` is true, no licence at all when it
    is false (SPEC §5 v3)."""
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
                str(day in subscribed).lower(),
                str(day in subscribed and over(usage, entitled)).lower(),
            ]
        )
    return out.getvalue()


def _cell(value: int | None) -> str:
    return "" if value is None else str(value)
