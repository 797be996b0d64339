"""The email's chart speaks the console's colours: red is an over-day, never the usage line."""

from __future__ import annotations

import io
from datetime import date, timedelta

from PIL import Image

from analytics.charts import OVER_COLOUR, USAGE_COLOUR
from analytics.schemas import Series
from scheduler.charts import usage_chart

START = date(2026, 10, 1)


def _pixels(png: bytes, colour: str) -> int:
    """How many pixels are (about) ``colour``."""
    target = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    colours = Image.open(io.BytesIO(png)).convert("RGB").getcolors(maxcolors=1 << 24) or []
    return sum(
        count
        for count, pixel in colours
        if isinstance(pixel, tuple)
        and all(abs(a - b) <= 24 for a, b in zip(pixel, target, strict=True))
    )


def _chart(usage: int) -> bytes:
    series: Series = [(START + timedelta(days=n), usage if n > 20 else 40, 50) for n in range(30)]
    return usage_chart(
        series,
        metric="users",
        started_on=START + timedelta(days=21),
        deadline=START + timedelta(days=51),
        as_of=START + timedelta(days=29),
    )


def test_over_days_are_red_and_usage_is_blue() -> None:
    within, over = _chart(usage=45), _chart(usage=58)
    assert _pixels(within, OVER_COLOUR) == 0  # no over-day: no red at all
    assert _pixels(over, OVER_COLOUR) > 0
    assert _pixels(within, USAGE_COLOUR) > 0
