"""How statreport writes a count with its noun, and an instant, in pages, emails, statements
and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime


def counted(count: int, noun: str) -> str:
    """``1 report`` or ``3 reports``."""
    return f"{count} {noun if count == 1 else noun + 's'}"


def refused(invalid: int, total: int, *, batch: bool) -> str:
    """How a refused request begins (SPEC §2): a batch is atomic, so one invalid report
    refuses them all."""
    if not batch:
        return "The report is invalid and was not stored"
    return f"{invalid} of {total} reports are invalid, so none was stored"


def moment(at: datetime | str) -> str:
    """A report's time as the API writes it, to the second: ``2026-12-02T00:00:54Z``; also of
    an ISO 8601 text (a value a console page kept as JSON)."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def instant(at: datetime) -> str:
    """An instant as a ``known_at`` is given back (SPEC §11 v3): UTC to the microsecond, so
    that pasted into an address it names exactly the same instant."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
