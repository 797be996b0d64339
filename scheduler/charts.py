"""Usage against entitlement over 90 days, drawn offline with matplotlib's Agg backend."""

from __future__ import annotations

import io
from datetime import date, timedelta

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analytics.charts import (
    ENTITLEMENT_COLOUR,
    OVER_COLOUR,
    USAGE_COLOUR,
    WINDOW_COLOUR,
    over,
)
from analytics.schemas import Series


def _x(day: date) -> float:
    """Matplotlib's number for a day."""
    return float(date2num(day))  # type: ignore[no-untyped-call]


def usage_chart(
    series: Series,
    *,
    metric: str,
    started_on: date,
    deadline: date,
    as_of: date,
    ended_on: date | None = None,
) -> bytes:
    """A PNG: daily usage, the entitlement as a step line, each over-day a dot, the
    regularization window shaded from the first over-day to its end (regularized), or to
    today or the deadline; in the colours of every other chart (``analytics.charts``)."""
    figure = Figure(figsize=(6.4, 2.4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    days = [_x(day) for day, _, _ in series]
    axes.plot(
        days,
        [u if u is not None else float("nan") for _, u, _ in series],
        color=USAGE_COLOUR,
        linewidth=1.6,
        label=f"{metric} used",
    )
    over_days = [(_x(day), u) for day, u, e in series if u is not None and over(u, e)]
    if over_days:
        axes.scatter(
            [x for x, _ in over_days],
            [u for _, u in over_days],
            color=OVER_COLOUR,
            s=9,
            zorder=3,
            label="over-day",
        )
    axes.step(
        days,
        [e if e is not None else float("nan") for _, _, e in series],
        where="post",
        color=ENTITLEMENT_COLOUR,
        linewidth=1.2,
        linestyle="--",
        label="entitled",
    )
    window_end = (ended_on or min(deadline, as_of)) + timedelta(days=1)
    axes.axvspan(
        _x(started_on),
        _x(window_end),
        color=WINDOW_COLOUR,
        label="regularization window",
    )
    axes.xaxis.set_major_formatter(DateFormatter("%d %b"))  # type: ignore[no-untyped-call]
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts have no halves
    axes.tick_params(labelsize=7)
    values = [v for _, u, e in series for v in (u, e) if v is not None]
    axes.set_ylim(0, max(values, default=1) * 1.15 or 1)
    axes.grid(axis="y", linewidth=0.3)
    axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4, frameon=False)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.tight_layout(pad=0.4)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
