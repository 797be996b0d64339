"""The instance side of an attestation (SPEC §4): which reports a quarter's bundle holds."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from core.quarters import quarter_bounds


def report_day(report: dict[str, Any]) -> date | None:
    """The UTC day a report counts for, as the server counts it; None if it has no valid time."""
    try:
        moment = datetime.fromisoformat(str(report.get("generated_at", "")).upper())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC).date()


def reports_of_quarter(reports: Iterable[dict[str, Any]], *, quarter: str) -> list[dict[str, Any]]:
    """The reports whose UTC day lies in ``quarter``, whatever offset each was written with."""
    first, last = quarter_bounds(quarter)
    return [r for r in reports if (day := report_day(r)) is not None and first <= day <= last]
