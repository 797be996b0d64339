"""Charts drawn on the server as inline SVG: nothing to load, in a statement or a page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

_CHART_WIDTH, _CHART_HEIGHT, _MARGIN = 640, 160, 28

#: What each colour means in every chart, the console's, the statement's and the email's:
#: usage blue, the entitlement grey and dashed, an over-day a red dot, the regularization
#: window shaded.
USAGE_COLOUR = "#2c6fb7"
ENTITLEMENT_COLOUR = "#7f8c8d"
OVER_COLOUR = "#c0392b"
WINDOW_COLOUR = "#fdebd0"


def over(usage: int | None, entitled: int | None) -> bool:
    """An over-day: usage above a finite entitlement."""
    return usage is not None and entitled is not None and usage > entitled


def _index(days: list[date], day: date) -> int:
    return (day - days[0]).days


def usage_svg(
    series: Sequence[tuple[date, int | None, int | None]],
    *,
    windows: Sequence[tuple[date, date]] = (),
    title: str = "",
) -> str:
    """An inline SVG chart of daily usage (line) against entitlement (dashed), over-days
    marked in red and regularization ``windows`` (first over-day to deadline) shaded; drawn
    here so that a statement or a page loads nothing from elsewhere."""
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

    days = [row[0] for row in series]
    shaded = "".join(
        f'<rect class="window" x="{_MARGIN + lo * step:.1f}" y="{_MARGIN}" '
        f'width="{max((hi - lo) * step, 2):.1f}" height="{height}" fill="{WINDOW_COLOUR}"/>'
        for start, end in windows
        if days and start <= days[-1] and end >= days[0]
        for lo, hi in [(_index(days, max(start, days[0])), _index(days, min(end, days[-1])))]
    )
    marks = "".join(
        f'<circle cx="{point(i, u).split(",")[0]}" cy="{point(i, u).split(",")[1]}" r="2.5" '
        f'fill="{OVER_COLOUR}"/>'
        for i, (_, u, e) in enumerate(series)
        if u is not None and over(u, e)
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
    label = f' aria-label="{escape(title)}"' if title else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_CHART_WIDTH} {_CHART_HEIGHT}" '
        f'width="{_CHART_WIDTH}" height="{_CHART_HEIGHT}" role="img"'
        f"{label}>"
        f'<rect x="{_MARGIN}" y="{_MARGIN}" width="{width}" height="{height}" fill="#f7f9fb"/>'
        f"{shaded}{polyline(2, ENTITLEMENT_COLOUR, True)}{polyline(1, USAGE_COLOUR, False)}"
        f"{marks}{axis}</svg>"
    )
