"""How `binprice watch` looks: a Rich table on a terminal, one plain line per update elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from binprice.render import format_ago
from binprice.timespec import format_duration, format_timestamp
from binprice.watch import Snapshot, SymbolSnapshot

if TYPE_CHECKING:
    from rich.table import Table

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
NO_TRADES = " "
PERCENT_PLACES = Decimal("0.01")
RATE_PLACES = Decimal("0.1")


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


def change_text(item: SymbolSnapshot) -> str:
    """``+12.30 (+0.02%)``, or ``-`` when there is no earlier price to compare with."""
    if item.change is None or item.change_percent is None:
        return "-"
    percent = item.change_percent.quantize(PERCENT_PLACES)
    return f"{item.change:+f} ({percent:+f}%)"


def rate_text(item: SymbolSnapshot) -> str:
    return f"{item.trades_per_second.quantize(RATE_PLACES):f}/s"


def to_table(snapshot: Snapshot) -> Table:
    """The live view: one row per symbol."""
    from rich.table import Table

    title = (
        f"binprice watch · {format_timestamp(snapshot.taken_at)} · change over "
        f"{format_duration(snapshot.window)} · rate over {format_duration(snapshot.rate_window)}"
    )
    table = Table(title=title, box=None, header_style="bold", title_justify="left")
    for name in ("symbol", "last", "change", "trades", "last trade", "minutes"):
        table.add_column(name, justify="left" if name in ("symbol", "minutes") else "right")
    for item in snapshot.symbols:
        style = _style(item)
        table.add_row(
            item.symbol,
            f"{item.price:f}" if item.price is not None else "-",
            f"[{style}]{change_text(item)}[/]" if style else change_text(item),
            rate_text(item),
            format_ago(snapshot.taken_at - item.last_trade_at) if item.last_trade_at else "never",
            sparkline(item.closes),
        )
    if not snapshot.symbols:
        table.caption = "no trades recorded yet: run `binprice ingest`"
    return table


def to_line(snapshot: Snapshot) -> str:
    """One line per update for a pipe: the time, then per symbol price, change and rate."""
    parts = [format_timestamp(snapshot.taken_at)]
    for item in snapshot.symbols:
        price = f"{item.price:f}" if item.price is not None else "-"
        parts.append(f"{item.symbol} {price} {change_text(item)} {rate_text(item)}")
    return "  ".join(parts)


def _style(item: SymbolSnapshot) -> str:
    if item.change is None or item.change == 0:
        return ""
    return "green" if item.change > 0 else "red"
