"""Calendar quarters (``2026Q3``): the period an attestation certifies (SPEC §4)."""

from __future__ import annotations

from datetime import date, timedelta


def quarter_bounds(quarter: str) -> tuple[date, date]:
    """First and last day of ``2026Q3``."""
    year, number = int(quarter[:4]), int(quarter[5])
    first = date(year, 3 * number - 2, 1)
    following = date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)
    return first, following - timedelta(days=1)


#: An attestation is due this many days after its quarter's last day (SPEC §4, §6).
ATTESTATION_GRACE_DAYS = 30


def attestation_due_on(quarter: str) -> date:
    """The last day on which ``quarter``'s attestation is on time."""
    return quarter_bounds(quarter)[1] + timedelta(days=ATTESTATION_GRACE_DAYS)


def quarter_of(day: date) -> str:
    """The quarter a day is in: ``2026Q3``."""
    return f"{day.year:04d}Q{(day.month - 1) // 3 + 1}"  # year 30 is 0030, as YYYY


def previous_quarter(quarter: str) -> str:
    """The quarter before ``2026Q1`` is ``2025Q4``."""
    year, number = int(quarter[:4]), int(quarter[5])
    return f"{year - 1:04d}Q4" if number == 1 else f"{year:04d}Q{number - 1}"


def next_quarter(quarter: str) -> str:
    """The quarter after ``2026Q4`` is ``2027Q1``."""
    year, number = int(quarter[:4]), int(quarter[5])
    return f"{year + 1:04d}Q1" if number == 4 else f"{year:04d}Q{number + 1}"
