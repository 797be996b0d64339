"""What a webhook says (SPEC §14): the JSON body of an event, and its one plain sentence a
chat channel can post as it is. Built from the event as the outbox keeps it, the same bytes
at every attempt, retry and replay."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from analytics.schemas import Finding, OveruseFinding, overage_share
from core.usage_metrics import label
from core.wording import moment
from scheduler.messages import describe

#: The most a body may weigh (SPEC §14).
MAX_BODY_BYTES = 256 * 1024
_FINDING: TypeAdapter[Finding] = TypeAdapter(Finding)


def _who(data: dict[str, Any]) -> str:
    finding = data["finding"]
    return f"{finding['customer_id']} ({data.get('customer_name') or finding['customer_id']})"


def _overuse(kind: str, who: str, f: OveruseFinding) -> str:
    metric = label(f.metric).lower()
    share = overage_share(f.overage_pct).replace("%", " %")
    figures = f"{f.peak_usage} of {f.entitled} ({share}{', material' if f.material else ''})"
    window = f"30 days end {f.deadline}"
    if kind == "finding.resolved":
        how = (f.resolution or "regularized").replace("_", " ")
        return f"{who} regularized its {metric} over-use ({how}) on {f.ended_on or f.deadline}."
    if kind == "finding.material":
        return (
            f"{who}'s {metric} over-use became material: {figures} since {f.started_on}; {window}."
        )
    if kind == "finding.deadline_near":
        left = f"{f.days_left} day{'s' if f.days_left != 1 else ''}"
        return f"{who} has {left} left to regularize its {metric} over-use: {figures}; {window}."
    if kind == "finding.overdue":
        return (
            f"{who} is overdue on its {metric} over-use: {figures} since {f.started_on}; the 30 "
            f"days ended {f.deadline}."
        )
    return f"{who} is over its {metric} licence: {figures} since {f.started_on}; {window}."


def text(kind: str, data: dict[str, Any]) -> str:
    """The event in one plain sentence, naming the customer's id and name."""
    if kind == "evaluation.completed":
        counts = data.get("findings") or {}
        total = sum(counts.values())
        parts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
        return (
            f"Evaluation {data['evaluation_id']} as of {data['as_of']}: {total} finding"
            f"{'s' if total != 1 else ''}{f' ({parts})' if parts else ''}."
        )
    if kind == "webhook.test":
        return f"Test event from statreport for webhook {data['webhook_id']}: signatures verify."
    finding = _FINDING.validate_python(data["finding"])
    who = _who(data)
    if isinstance(finding, OveruseFinding):
        return _overuse(kind, who, finding)
    title, detail = describe(finding)
    if kind == "finding.resolved":
        return f"{who} is no longer listed under {title.lower()} ({detail})."
    return f"{who}: {title.lower()}; {detail}."


def body(*, kind: str, created_at: datetime, data: dict[str, Any], public_url: str | None) -> bytes:
    """The request body: type, timestamp, data (with ``evidence_url`` for a finding), text."""
    shown = dict(data)
    if "finding" in data:
        base = (public_url or "").rstrip("/")
        shown["evidence_url"] = (
            f"{base}/ui/findings/{data['finding']['finding_id']}"
            f"?evaluation_id={data['evaluation_id']}"
            if public_url
            else None
        )
    document = {
        "type": kind,
        "timestamp": moment(created_at),
        "data": shown,
        "text": text(kind, data),
    }
    encoded = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    if len(encoded) > MAX_BODY_BYTES:  # a finding is a few hundred bytes: never in practice
        document["data"] = {k: v for k, v in shown.items() if k != "finding"}
        encoded = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return encoded
