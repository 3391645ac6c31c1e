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

from binprice.timespec import format_timestamp

if TYPE_CHECKING:
    from rich.table import Table

    from binprice.db.candles import Candle
    from binprice.db.gaps import Gap, Verification
    from binprice.db.queries import At, Latest, Range

__all__ = [
    "format_ago",
    "records",
    "table_cells",
    "to_csv",
    "to_json",
    "to_table",
    "to_text",
]

if TYPE_CHECKING:
    Result = Latest | At | Range | Candle
Value = str | int

#: Column order of each result kind (by class name, so rendering imports no result module):
#: the stable keys of --json and the header of --csv.
FIELDS: dict[str, tuple[str, ...]] = {
    "Latest": ("symbol", "price", "timestamp", "trade_id"),
    "At": ("symbol", "price", "timestamp", "trade_id", "requested", "offset_ms"),
    "Range": (
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
    "Candle": (
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
        {key: _value(getattr(result, key)) for key in FIELDS[type(result).__name__]}
        for result in results
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
    show_ago = type(results[0]).__name__ == "Latest"
    cells = []
    for result, row in zip(results, rows, strict=True):
        line = [str(row[key]) for key in header]
        if show_ago:
            moment: datetime = getattr(result, "timestamp")  # noqa: B009 - Latest's field
            line.append(format_ago(now - moment))
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


def print_terminal(results: Sequence[Result], *, now: datetime) -> None:
    """On a terminal: the Rich table if it fits the width, else one block per result (no
    value is ever cut to `…`, whatever the width)."""
    from rich.console import Console

    console = Console()
    header, cells = table_cells(results, now=now)
    # Rich's table (no box) pads each cell with a space on either side; it would shrink the
    # columns to fit, cutting values, so the natural width decides.
    natural = sum(max(len(line[i]) for line in [header, *cells]) + 2 for i in range(len(header)))
    if natural <= console.width:
        console.print(to_table(results, now=now))
    else:
        console.print(to_blocks(results, now=now), end="", markup=False, highlight=False)


def to_blocks(results: Sequence[Result], *, now: datetime) -> str:
    """The vertical layout for narrow terminals: per result, `key  value` lines."""
    header, cells = table_cells(results, now=now)
    width = max(len(key) for key in header)
    blocks = [
        "\n".join(f"{key:<{width}}  {cell}" for key, cell in zip(header, line, strict=True))
        for line in cells
    ]
    return "\n\n".join(blocks) + "\n"


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


# --- gaps and the completeness check ------------------------------------------------------


def gaps_json(gaps: Sequence[Gap]) -> str:
    """A JSON array, one object per gap, stable keys."""
    return json.dumps(
        [
            {
                "symbol": g.symbol,
                "first_id": g.first_id,
                "last_id": g.last_id,
                "size": g.size,
                "state": g.state,
                "detected_at": format_timestamp(g.detected_at),
                "filled_at": None if g.filled_at is None else format_timestamp(g.filled_at),
            }
            for g in gaps
        ],
        indent=2,
    )


def gaps_text(gaps: Sequence[Gap]) -> str:
    """Aligned plain text, one gap per line."""
    header = ("symbol", "first_id", "last_id", "size", "state", "detected_at", "filled_at")
    rows = [header] + [
        (
            g.symbol,
            str(g.first_id),
            str(g.last_id),
            f"{g.size:,}",
            g.state,
            format_timestamp(g.detected_at),
            "-" if g.filled_at is None else format_timestamp(g.filled_at),
        )
        for g in gaps
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() + "\n"
        for r in rows
    )


def verification_json(result: Verification) -> str:
    """The check as one JSON object: ok, window, and per symbol its holes."""
    return json.dumps(
        {
            "ok": result.ok,
            "against_exchange": result.against_exchange,
            "start": None if result.start is None else format_timestamp(result.start),
            "end": None if result.end is None else format_timestamp(result.end),
            "symbols": [
                {
                    "symbol": s.symbol,
                    "trades": s.trades,
                    "first_id": s.first_id,
                    "last_id": s.last_id,
                    "missing": s.missing,
                    "unaccounted": s.unaccounted,
                    "open_gaps": s.open_gaps,
                    "exchange_last_id": s.exchange_last_id,
                    "disproved_holes": [{"first_id": a, "last_id": b} for a, b in s.disproved],
                    "tail": None
                    if s.tail is None
                    else {
                        "first_id": s.tail.first_id,
                        "last_id": s.tail.last_id,
                        "size": s.tail.size,
                        "accounted": s.tail.accounted,
                    },
                    "holes": [
                        {
                            "first_id": h.first_id,
                            "last_id": h.last_id,
                            "size": h.size,
                            "accounted": h.accounted,
                        }
                        for h in s.holes
                    ],
                }
                for s in result.symbols
            ],
        },
        indent=2,
    )


def verification_text(result: Verification) -> str:
    """One line per symbol, then one per unaccounted hole."""
    lines = []
    for s in result.symbols:
        span = "no trades" if s.first_id is None else f"ids {s.first_id}..{s.last_id}"
        verdict = "ok" if s.unaccounted == 0 and not s.disproved else "NOT OK"
        tail = ""
        if result.against_exchange:
            if s.exchange_last_id is None:
                tail = ", the exchange has no trades"
            elif s.tail is None:
                tail = f", up to date with the exchange (id {s.exchange_last_id})"
            else:
                tail = f", {s.tail.size:,} ids behind the exchange (id {s.exchange_last_id})"
        lines.append(
            f"{s.symbol}: {verdict}: {s.trades:,} trades, {span}, {len(s.holes)} holes "
            f"({s.missing:,} ids missing, {s.unaccounted:,} unaccounted), "
            f"{s.open_gaps} open gaps{tail}"
        )
        for a, b in s.unaccounted_ranges:
            lines.append(f"  unaccounted: {s.symbol} {a}..{b} ({b - a + 1:,} ids)")
        for a, b in s.disproved:
            lines.append(
                f"  recorded as a hole, but the exchange has trades from {a}: {s.symbol} "
                f"{a}..{b} (binprice gaps --repair fetches them)"
            )
    return "".join(line + "\n" for line in lines)
