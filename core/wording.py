"""How statreport writes a count with its noun, in pages, emails, statements and the CLI."""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    """``1 report`` or ``3 reports``."""
    return f"{count} {noun if count == 1 else noun + 's'}"
