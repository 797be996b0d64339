"""Charts drawn on the server as inline SVG: nothing to load, in a statement or a page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from html import escape
from typing import Any

_CHART_WIDTH, _CHART_HEIGHT = 640, 180
#: Room for the value axis on the left, the date axis below, the entitlement's label right.
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 64, 10, 26
#: Dates written under the chart, at most.
_DATE_LABELS = 6

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


def value_ticks(top: float) -> list[int]:
    """Round values for the value axis from 0 up to ``top``: a step of 1, 2 or 5 times a
    power of ten, three to six of them."""
    raw = max(top / 5, 1)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return list(range(0, int(top) + 1, step))


def date_ticks(count: int) -> list[int]:
    """Which of ``count`` days are written under the chart: the first, the last, and evenly
    between, at most ``_DATE_LABELS``."""
    if count <= 1:
        return [0] if count else []
    shown = min(count, _DATE_LABELS)
    return sorted({round(k * (count - 1) / (shown - 1)) for k in range(shown)})


def usage_svg(
    series: Sequence[tuple[date, int | None, int | None]],
    *,
    windows: Sequence[tuple[date, date]] = (),
    title: str = "",
) -> str:
    """An inline SVG chart of daily usage (line) against entitlement (dashed), over-days
    marked in red and regularization ``windows`` (first over-day to deadline) shaded, with a
    value axis, dates below and the latest entitlement named at its end; drawn here so that
    a statement or a page loads nothing from elsewhere."""
    values = [v for _, u, e in series for v in (u, e) if v is not None]
    top = max(values, default=1) * 1.1 or 1
    width = _CHART_WIDTH - _LEFT - _RIGHT
    height = _CHART_HEIGHT - _TOP - _BOTTOM
    step = width / max(len(series) - 1, 1)

    def x_of(index: int) -> float:
        return _LEFT + index * step

    def y_of(value: float) -> float:
        return _TOP + height - value / top * height

    def polyline(pick: int, colour: str, dashed: bool) -> str:
        runs: list[list[str]] = [[]]
        for index, row in enumerate(series):
            value = row[pick]
            if value is None:
                runs.append([])
            else:
                runs[-1].append(f"{x_of(index):.1f},{y_of(value):.1f}")  # type: ignore[arg-type]
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        return "".join(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} '
            f'points="{" ".join(run)}"/>'
            for run in runs
            if run
        )

    days = [row[0] for row in series]
    shaded = "".join(
        f'<rect class="window" x="{x_of(lo):.1f}" y="{_TOP}" '
        f'width="{max((hi - lo) * step, 2):.1f}" height="{height}" fill="{WINDOW_COLOUR}"/>'
        for start, end in windows
        if days and start <= days[-1] and end >= days[0]
        for lo, hi in [(_index(days, max(start, days[0])), _index(days, min(end, days[-1])))]
    )
    marks = "".join(
        f'<circle cx="{x_of(i):.1f}" cy="{y_of(u):.1f}" r="2.5" fill="{OVER_COLOUR}"/>'
        for i, (_, u, e) in enumerate(series)
        if u is not None and over(u, e)
    )
    grid = "".join(
        f'<line x1="{_LEFT}" x2="{_LEFT + width}" y1="{y_of(v):.1f}" y2="{y_of(v):.1f}" '
        f'stroke="#dde3ea" stroke-width="1"/>'
        f'<text x="{_LEFT - 6}" y="{y_of(v) + 3.5:.1f}" font-size="10" text-anchor="end" '
        f'fill="#52606d">{v:,}</text>'
        for v in value_ticks(top)
    )
    dates = "".join(
        f'<line x1="{x_of(i):.1f}" x2="{x_of(i):.1f}" y1="{_TOP + height}" '
        f'y2="{_TOP + height + 4}" stroke="#52606d" stroke-width="1"/>'
        f'<text x="{x_of(i):.1f}" y="{_CHART_HEIGHT - 8}" font-size="10" fill="#52606d" '
        f'text-anchor="{"start" if i == 0 else "end" if i == len(series) - 1 else "middle"}">'
        f"{days[i].isoformat()}</text>"
        for i in date_ticks(len(series))
    )
    last = next(
        ((i, e) for i, (_, _, e) in reversed(list(enumerate(series))) if e is not None), None
    )
    entitled = (
        f'<text x="{x_of(last[0]) + 4:.1f}" y="{y_of(last[1]) + 3.5:.1f}" font-size="10" '
        f'fill="{ENTITLEMENT_COLOUR}">entitled {last[1]:,}</text>'
        if last is not None
        else ""
    )
    label = f' aria-label="{escape(title)}"' if title else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_CHART_WIDTH} {_CHART_HEIGHT}" '
        f'width="{_CHART_WIDTH}" height="{_CHART_HEIGHT}" role="img"'
        f"{label}>"
        f'<rect x="{_LEFT}" y="{_TOP}" width="{width}" height="{height}" fill="#f7f9fb"/>'
        f"{grid}{shaded}{polyline(2, ENTITLEMENT_COLOUR, True)}{polyline(1, USAGE_COLOUR, False)}"
        f"{marks}{dates}{entitled}</svg>"
    )


def sequence_svg(reports: Sequence[dict[str, Any]], *, title: str = "") -> str:
    """A small chart of a cloned instance's ``sequence`` over time (the reports around each
    regression): each report a dot in time order, joined by a line, a regression red. Two
    installations sending as one show as a saw."""
    points: list[tuple[Any, int, bool]] = [
        (r["generated_at"], int(r["sequence"]), bool(r["regression"]))
        for r in reports
        if r.get("sequence") is not None
    ]
    if not points:
        return ""
    moments = [_moment(at) for at, _, _ in points]
    start, stop = min(moments), max(moments)
    low, high = min(s for _, s, _ in points), max(s for _, s, _ in points)
    width = _CHART_WIDTH - _LEFT - _RIGHT
    height = _CHART_HEIGHT - _TOP - _BOTTOM

    def x_of(moment: float) -> float:
        return _LEFT + (moment - start) / ((stop - start) or 1) * width

    def y_of(value: int) -> float:
        return _TOP + height - (value - low) / ((high - low) or 1) * height

    line = " ".join(
        f"{x_of(m):.1f},{y_of(s):.1f}" for m, (_, s, _) in zip(moments, points, strict=True)
    )
    dots = "".join(
        f'<circle cx="{x_of(m):.1f}" cy="{y_of(s):.1f}" r="{3 if back else 1.8}" '
        f'fill="{OVER_COLOUR if back else USAGE_COLOUR}"/>'
        for m, (_, s, back) in zip(moments, points, strict=True)
    )
    labels = (
        f'<text x="{_LEFT - 6}" y="{_TOP + 4}" font-size="10" text-anchor="end" '
        f'fill="#52606d">{high:,}</text>'
        f'<text x="{_LEFT - 6}" y="{_TOP + height}" font-size="10" text-anchor="end" '
        f'fill="#52606d">{low:,}</text>'
        f'<text x="{_LEFT}" y="{_CHART_HEIGHT - 8}" font-size="10" fill="#52606d">'
        f"{_stamp(points[0][0])}</text>"
        f'<text x="{_LEFT + width}" y="{_CHART_HEIGHT - 8}" font-size="10" fill="#52606d" '
        f'text-anchor="end">{_stamp(points[-1][0])}</text>'
    )
    label = f' aria-label="{escape(title)}"' if title else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_CHART_WIDTH} {_CHART_HEIGHT}" '
        f'width="{_CHART_WIDTH}" height="{_CHART_HEIGHT}" role="img"{label}>'
        f'<rect x="{_LEFT}" y="{_TOP}" width="{width}" height="{height}" fill="#f7f9fb"/>'
        f'<polyline fill="none" stroke="{ENTITLEMENT_COLOUR}" stroke-width="1" points="{line}"/>'
        f"{dots}{labels}</svg>"
    )


def _when(at: Any) -> datetime:
    """A report's time: a datetime, or ISO 8601 text."""
    moment: datetime = datetime.fromisoformat(at) if isinstance(at, str) else at
    return moment


def _moment(at: Any) -> float:
    """Seconds since the epoch of a report's time."""
    return _when(at).timestamp()


def _stamp(at: Any) -> str:
    """A report's time to the minute, UTC, as the console writes it."""
    return _when(at).astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
