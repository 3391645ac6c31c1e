"""How `binprice watch` looks: a Rich table on a terminal, one plain line per update elsewhere."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

import typer

from binprice.cli.views.queries import format_ago
from binprice.timespec import format_duration, format_timestamp
from binprice.watch import Snapshot, SymbolSnapshot

if TYPE_CHECKING:
    from rich.table import Table

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
NO_TRADES = " "
PERCENT_PLACES = Decimal("0.01")
RATE_PLACES = Decimal("0.1")
#: The table's columns other than the sparkline take about this many characters.
OTHER_COLUMNS = 62
MIN_SPARK, DEFAULT_SPARK = 8, 30


def sparkline(closes: Sequence[Decimal | None]) -> str:
    """One character per minute, from the lowest close (▁) to the highest (█); blank if quiet."""
    known = [c for c in closes if c is not None]
    if not known:
        return NO_TRADES * len(closes)
    low, high = min(known), max(known)
    top = len(SPARK_LEVELS) - 1
    out = []
    for close in closes:
        if close is None:
            out.append(NO_TRADES)
        elif high == low:
            out.append(SPARK_LEVELS[top // 2])
        else:
            out.append(SPARK_LEVELS[int((close - low) / (high - low) * top)])
    return "".join(out)


def plain(value: Decimal) -> str:
    """A decimal without trailing zeros, never in exponent form: ``73108.7300`` is ``73108.73``."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def change_text(item: SymbolSnapshot) -> str:
    """``+12.3 +0.02%``, or ``-`` when there is no earlier price to compare with."""
    if item.change is None or item.change_percent is None:
        return "-"
    sign = "+" if item.change >= 0 else ""
    return f"{sign}{plain(item.change)} {item.change_percent.quantize(PERCENT_PLACES):+f}%"


def rate_text(item: SymbolSnapshot) -> str:
    return f"{item.trades_per_second.quantize(RATE_PLACES):f}"


def sparkline_width(columns: int) -> int:
    """Minutes of sparkline that fit beside the other columns in a terminal this wide."""
    return max(MIN_SPARK, min(columns - OTHER_COLUMNS, DEFAULT_SPARK))


def to_table(snapshot: Snapshot, *, columns: int = 80) -> Table:
    """The live view for a terminal ``columns`` wide: one row per symbol, nothing wrapped."""
    from rich.table import Table

    title = (
        f"{format_timestamp(snapshot.taken_at)} · change over {format_duration(snapshot.window)}"
        f" · trades/s over {format_duration(snapshot.rate_window)}"
    )
    table = Table(title=title, box=None, header_style="bold", title_justify="left")
    spark = sparkline_width(columns)
    for name in ("symbol", "last", "change", "trades/s", "last trade", f"last {spark} min"):
        left = name == "symbol" or name.endswith("min")
        table.add_column(name, justify="left" if left else "right", no_wrap=True)
    for item in snapshot.symbols:
        style = _style(item)
        table.add_row(
            item.symbol,
            plain(item.price) if item.price is not None else "-",
            f"[{style}]{change_text(item)}[/]" if style else change_text(item),
            rate_text(item),
            format_ago(snapshot.taken_at - item.last_trade_at) if item.last_trade_at else "never",
            sparkline(item.closes[-spark:]),
        )
    if not snapshot.symbols:
        table.caption = "no trades recorded yet: run `binprice ingest`"
    return table


def to_line(snapshot: Snapshot) -> str:
    """One line per update for a pipe: the time, then per symbol price, change and rate."""
    parts = [format_timestamp(snapshot.taken_at)]
    for item in snapshot.symbols:
        price = plain(item.price) if item.price is not None else "-"
        parts.append(f"{item.symbol} {price} {change_text(item)} {rate_text(item)}/s")
    return "  ".join(parts)


def _style(item: SymbolSnapshot) -> str:
    if item.change is None or item.change == 0:
        return ""
    return "green" if item.change > 0 else "red"


def show(snapshots: Iterator[Snapshot]) -> None:
    """Each snapshot as it comes: a live table redrawn on a terminal, one line per update
    elsewhere; Ctrl+C ends it with exit status 0 (the user's way to stop, not an error)."""
    try:
        if sys.stdout.isatty():
            from rich.console import Console
            from rich.live import Live

            console = Console()
            first = next(snapshots, None)
            if first is None:
                return
            # We redraw on every poll ourselves; Rich's own refresh thread would add nothing.
            with Live(
                to_table(first, columns=console.width), console=console, auto_refresh=False
            ) as live:
                for snapshot in snapshots:
                    live.update(to_table(snapshot, columns=console.width), refresh=True)
        else:
            for snapshot in snapshots:
                typer.echo(to_line(snapshot))
                sys.stdout.flush()
    except KeyboardInterrupt:
        return
