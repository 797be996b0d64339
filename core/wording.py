"""How statreport writes a count with its noun, in pages, emails, statements and the CLI."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 report`` or ``3 reports`` (``plural`` for a noun that does not take an s)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
