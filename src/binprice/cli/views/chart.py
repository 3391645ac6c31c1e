"""Draw candles (or one interval's trades as a line) in the terminal with plotext, or as a PNG.

plotext is imported only here, by `binprice chart`; matplotlib only for ``--png`` (the optional
``binprice[png]`` extra). Prices become floats only to be drawn: a chart has a few dozen rows
of resolution, far coarser than a float's 15 digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from binprice.charts import PricePath
from binprice.db.candles import Candle, Interval
from binprice.errors import MissingExtraError

#: Columns a candle needs to be told apart from its neighbours (body plus a gap).
COLUMNS_PER_CANDLE = 2
#: Width of the price axis labels and the frame, taken off the plot width for candles.
AXIS_COLUMNS = 12
MIN_WIDTH, MIN_HEIGHT = 40, 10
#: At most this many time labels, so they never run into each other at 80 columns.
MAX_TIME_TICKS = 5
TIME_TICK_COLUMNS = 16
#: Below this span time labels show seconds.
SHORT_SPAN = timedelta(minutes=10)
PNG_SIZE_INCHES = (12, 6)
PNG_DPI = 100


def max_candles(width: int) -> int:
    """How many candles fit in a chart ``width`` columns wide."""
    return max(1, (max(width, MIN_WIDTH) - AXIS_COLUMNS) // COLUMNS_PER_CANDLE)


def time_format(span: timedelta, interval: Interval | None) -> str:
    """Labels that say enough and fit: dates for daily candles, else date and time or time."""
    if interval is not None and (interval.monthly or (interval.width or span) >= timedelta(days=1)):
        return "%Y-%m-%d"
    if span >= timedelta(days=1):
        return "%m-%d %H:%M"
    return "%H:%M" if span >= SHORT_SPAN else "%H:%M:%S"


def chart_text(
    title: str,
    data: Sequence[Candle] | PricePath,
    *,
    start: datetime,
    end: datetime,
    interval: Interval | None,
    width: int,
    height: int,
    color: bool,
) -> str:
    """The chart as text: plotext's frame, a price axis and UTC time labels."""
    import plotext as plt

    figure = plt.figure
    figure.clear()
    plt.terminal.limit(False, False)  # we size the chart; plotext must not clip it again
    figure.plot_size(max(width, MIN_WIDTH), max(height, MIN_HEIGHT))
    if isinstance(data, PricePath):
        xs = [_seconds(t, start) for t in data.times]
        figure.draw(figure.signal(xs, [float(p) for p in data.prices]).lines())
    else:
        # Each candle stands in the middle of its part of the window (the first and last may
        # be partial), so no candle falls outside the time axis.
        xs = [_middle(c, start, end) for c in data]
        figure.draw(
            figure.candlestick(
                {
                    "date": xs,
                    "open": [float(c.open) for c in data],
                    "close": [float(c.close) for c in data],
                    "high": [float(c.high) for c in data],
                    "low": [float(c.low) for c in data],
                }
            )
        )
    ticks = _time_ticks(start, end, max(width, MIN_WIDTH))
    fmt = time_format(end - start, interval)
    labels = [tick.strftime(fmt) for tick in ticks]
    figure.ruler("x").ticks([_seconds(t, start) for t in ticks], labels=labels)
    figure.title(title)
    text: str = figure.build().string(colorless=not color)
    return text.rstrip()


def chart_png(
    title: str, data: Sequence[Candle] | PricePath, path: Path, interval: Interval | None
) -> None:
    """Write the chart as a PNG with matplotlib (the ``png`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: a file only
        import matplotlib.dates as mdates
        import matplotlib.pyplot as pyplot
    except ImportError:
        raise MissingExtraError("--png", ("matplotlib",)) from None
    figure, drawn = pyplot.subplots(figsize=PNG_SIZE_INCHES, dpi=PNG_DPI)
    # matplotlib's stubs want numpy-like sequences; datetimes and floats are what it accepts.
    axes: Any = drawn
    date_formatter: Any = mdates.DateFormatter
    try:
        if isinstance(data, PricePath):
            axes.plot(list(data.times), [float(p) for p in data.prices], linewidth=1)
        else:
            _png_candles(axes, data, interval)
        axes.set_title(title)
        axes.set_xlabel("UTC")
        axes.xaxis.set_major_formatter(date_formatter("%Y-%m-%d %H:%M", tz="UTC"))
        axes.grid(alpha=0.3)
        figure.autofmt_xdate()
        figure.savefig(path)
    finally:
        pyplot.close(figure)


def _png_candles(axes: Any, candles: Sequence[Candle], interval: Interval | None) -> None:
    step = interval.width if interval is not None and interval.width else timedelta(days=28)
    body_width = step * 0.7
    for candle in candles:
        color = "tab:green" if candle.close >= candle.open else "tab:red"
        axes.vlines(candle.open_time + step / 2, float(candle.low), float(candle.high), color=color)
        low, high = sorted((float(candle.open), float(candle.close)))
        axes.bar(
            candle.open_time + step / 2,
            max(high - low, 0.0) or 1e-12,
            body_width,
            bottom=low,
            color=color,
        )


def _middle(candle: Candle, start: datetime, end: datetime) -> float:
    shown_from, shown_to = max(candle.open_time, start), min(candle.close_time, end)
    return _seconds(shown_from + (shown_to - shown_from) / 2, start)


def _seconds(moment: datetime, start: datetime) -> float:
    return (moment - start).total_seconds()


def _time_ticks(start: datetime, end: datetime, width: int) -> list[datetime]:
    count = max(2, min(MAX_TIME_TICKS, width // TIME_TICK_COLUMNS))
    step = (end - start) / (count - 1)
    return [start + i * step for i in range(count)]
