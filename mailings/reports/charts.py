"""Line charts of cumulative figures, drawn on the server as SVG for the report pages.

The geometry is worked out here and the markup is a template
(admin/mailings/report/_line_chart.html), inline in the page: no script, nothing fetched,
and a <title> and <desc> that screen readers announce. Each page puts the same figures in a
table beside it. Lines differ by dash as well as by colour (the Okabe-Ito palette, which
colour-blind readers can tell apart).

A report's series is hourly for three days, then daily (mailings/reports/selectors.py). An
hour's point gets as much room as any other and a day's DAY_WIDTH times that, so the first
hours, when most happens, keep their room however long the series; a divider marks where
hours give way to days.
"""

import math
from dataclasses import dataclass

from .selectors import HOURLY_POINTS, SeriesPoint

WIDTH, HEIGHT = 720, 320
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 28, 40
# The room of a day's point, in hours' points.
DAY_WIDTH = 4
# Tick labels closer than this to the one before are left out.
TICK_SPACING = 40
# (colour, dash) per line, in order: blue, vermilion, bluish green, reddish purple, orange.
STYLES = (
    ("#0072B2", ""),
    ("#D55E00", "8 4"),
    ("#009E73", "2 3"),
    ("#CC79A7", "10 3 2 3"),
    ("#E69F00", "4 4"),
    ("#56B4E9", "1 2"),
)


@dataclass(frozen=True)
class ChartLine:
    label: str
    colour: str
    dash: str
    # The SVG polyline's points: "x,y x,y …".
    points: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LineChart:
    """What _line_chart.html draws. `element_id` prefixes the ids of its title and description."""

    element_id: str
    title: str
    description: str
    lines: list[ChartLine]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    # Where daily points begin, if they do: a dashed divider.
    divider_x: float | None
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = MARGIN_LEFT
    plot_right: int = WIDTH - MARGIN_RIGHT
    plot_top: int = MARGIN_TOP
    plot_bottom: int = HEIGHT - MARGIN_BOTTOM


def cumulative_chart(
    *, element_id: str, title: str, description: str, series: dict[str, list[int]]
) -> LineChart | None:
    """Return a chart of cumulative lines, {label: values}, every line over the same points.

    Point n is n hours after the start for n ≤ 72, then a day more each. None without points.
    """
    count = max((len(values) for values in series.values()), default=0)
    if count == 0:
        return None
    top = nice_ceiling(max((max(values, default=0) for values in series.values()), default=0))
    lines = [
        ChartLine(label, colour, dash, _polyline(values, count=count, top=top))
        for (label, values), (colour, dash) in zip(
            series.items(), _styles(len(series)), strict=True
        )
    ]
    y_ticks = [Tick(_y(value, top), f"{value:,}") for value in _tick_values(top)]
    return LineChart(
        element_id=element_id,
        title=title,
        description=description,
        lines=lines,
        x_ticks=[Tick(_x(n, count), label) for n, label in _x_tick_labels(count)],
        y_ticks=y_ticks,
        divider_x=_x(HOURLY_POINTS, count) if count > HOURLY_POINTS else None,
    )


def point_label(n: int) -> str:
    """Say when point n of a series is (n counted from 1): "5 h" or "day 4"."""
    if n <= HOURLY_POINTS:
        return f"{n} h"
    return f"day {HOURLY_POINTS // 24 + n - HOURLY_POINTS}"


def series_values(points: list[SeriesPoint], name: str) -> list[int]:
    return [getattr(point, name) for point in points]


def nice_ceiling(value: int) -> int:
    """Return the smallest of 1, 2, 2.5, 5 × 10ⁿ that is at least `value` (1 for 0)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return math.ceil(step * power)
    raise AssertionError("unreachable")


def _tick_values(top: int) -> list[int]:
    step = top / 4 if top >= 4 and top % 4 == 0 else top / 5 if top % 5 == 0 else top
    values, value = [], 0.0
    while value <= top + 1e-9:
        values.append(round(value))
        value += step
    return sorted(set(values))


def _x_tick_labels(count: int) -> list[tuple[int, str]]:
    """Return (point number, label) for the x axis: the start, every 12 hours, then days."""
    candidates = [(0, "start")]
    candidates += [(n, point_label(n)) for n in range(12, min(count, HOURLY_POINTS) + 1, 12)]
    days = count - HOURLY_POINTS
    if days > 0:
        every = 1 if days <= 14 else 7 if days <= 120 else 30
        candidates += [(n, point_label(n)) for n in range(HOURLY_POINTS + every, count + 1, every)]
    ticks: list[tuple[int, str]] = []
    for n, label in candidates:
        if not ticks or _x(n, count) - _x(ticks[-1][0], count) >= TICK_SPACING:
            ticks.append((n, label))
    return ticks


def _x(n: int, count: int) -> float:
    """Return the x of point n (0 is the start, before the first point)."""
    span = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    return round(MARGIN_LEFT + span * _room_before(n) / _room_before(count), 1)


def _room_before(n: int) -> int:
    """Return the room of points 1…n, in hours' points."""
    return min(n, HOURLY_POINTS) + DAY_WIDTH * max(0, n - HOURLY_POINTS)


def _y(value: int, top: int) -> float:
    span = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    return round(HEIGHT - MARGIN_BOTTOM - span * value / top, 1)


def _polyline(values: list[int], *, count: int, top: int) -> str:
    coordinates = [(_x(0, count), _y(0, top))]
    coordinates += [(_x(n, count), _y(value, top)) for n, value in enumerate(values, start=1)]
    return " ".join(f"{x},{y}" for x, y in coordinates)


def _styles(count: int):
    return [STYLES[n % len(STYLES)] for n in range(count)]
