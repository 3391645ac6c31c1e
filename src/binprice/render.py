"""Turn query results into JSON, CSV or a Rich table. Pure: text in, text (or a Table) out.

Machine formats have stable keys in a fixed order, decimals as plain strings (never exponent
notation, never through float) and timestamps as ISO 8601 UTC with milliseconds and ``Z``.
Rich is imported only when a table is built for a terminal: it costs more start-up time than
the rest of the CLI together, so a pipe gets the same table as plain aligned text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from binprice.candles import Candle
from binprice.queries import PriceAtResult, PricePoint, PriceSummary
from binprice.timespec import format_timestamp

if TYPE_CHECKING:
    from rich.table import Table

__all__ = [
    "Result",
    "format_ago",
    "records",
    "table_cells",
    "to_csv",
    "to_json",
    "to_table",
    "to_text",
]

Result = PricePoint | PriceAtResult | PriceSummary | Candle
Value = str | int

#: Column order of each result kind: the stable keys of --json and the header of --csv.
FIELDS: dict[type[Result], tuple[str, ...]] = {
    PricePoint: ("symbol", "price", "timestamp", "trade_id"),
    PriceAtResult: ("symbol", "price", "timestamp", "trade_id", "requested", "offset_ms"),
    PriceSummary: (
        "symbol",
        "start",
        "end",
        "open",
        "high",
        "low",
        "close",
        "high_at",
        "low_at",
        "trades",
        "volume",
        "vwap",
    ),
    Candle: (
        "symbol",
        "open_time",
        "close_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "trades",
        "vwap",
    ),
}
_LEFT_ALIGNED = frozenset(
    {"symbol", "timestamp", "requested", "start", "end", "high_at", "low_at"}
    | {"open_time", "close_time"}  # candles
)
_AGO_UNITS = (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1))


def records(results: Sequence[Result]) -> list[dict[str, Value]]:
    """One ordered dict of JSON-ready values per result."""
    return [
        {key: _value(getattr(result, key)) for key in FIELDS[type(result)]} for result in results
    ]


def to_json(results: Sequence[Result]) -> str:
    """A JSON array, one object per symbol, keys in the documented order."""
    return json.dumps(records(results), indent=2)


def to_csv(results: Sequence[Result]) -> str:
    """CSV with a header row; an empty input gives an empty string."""
    rows = records(results)
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def table_cells(results: Sequence[Result], *, now: datetime) -> tuple[list[str], list[list[str]]]:
    """Header and cells for people; ``latest`` gains an "ago" column measured from ``now``."""
    rows = records(results)
    if not rows:
        return [], []
    header = list(rows[0])
    show_ago = isinstance(results[0], PricePoint)
    cells = []
    for result, row in zip(results, rows, strict=True):
        line = [str(row[key]) for key in header]
        if isinstance(result, PricePoint):
            line.append(format_ago(now - result.timestamp))
        cells.append(line)
    return [*header, "ago"] if show_ago else header, cells


def to_table(results: Sequence[Result], *, now: datetime) -> Table:
    """A Rich table (for a terminal); numbers right-aligned."""
    from rich.table import Table

    header, cells = table_cells(results, now=now)
    table = Table(box=None, header_style="bold")
    for key in header:
        table.add_column(key, justify="left" if key in _LEFT_ALIGNED else "right")
    for line in cells:
        table.add_row(*line)
    return table


def to_text(results: Sequence[Result], *, now: datetime) -> str:
    """The table as plain aligned text, for a pipe: same columns, no Rich, no styling."""
    header, cells = table_cells(results, now=now)
    if not header:
        return ""
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    lines = []
    for line in [header, *cells]:
        padded = (
            cell.ljust(width) if key in _LEFT_ALIGNED else cell.rjust(width)
            for key, cell, width in zip(header, line, widths, strict=True)
        )
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines) + "\n"


def format_ago(elapsed: timedelta) -> str:
    """Human "how long ago": the two largest units, e.g. ``3m12s``, ``2d4h``; future is "ahead"."""
    if elapsed < timedelta(0):
        return "in the future"
    seconds = int(elapsed.total_seconds())
    if seconds == 0:
        return f"{elapsed // timedelta(milliseconds=1)}ms ago"
    # The two largest units from the first non-zero one: 1h0m5s reads "1h ago", not "1h0m".
    parts: list[tuple[int, str]] = []
    for unit, size in _AGO_UNITS:
        count, seconds = divmod(seconds, size)
        if count or parts:
            parts.append((count, unit))
    return "".join(f"{count}{unit}" for count, unit in parts[:2] if count) + " ago"


def _value(value: object) -> Value:
    if isinstance(value, Decimal):
        # "f" keeps 0.00000001 as written; str() would give 1E-8.
        return format(value, "f")
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, int | str):
        return value
    raise TypeError(f"cannot render {type(value).__name__}")
