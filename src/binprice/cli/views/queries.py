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
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from binprice.kinds import AGG_FIELD_NAMES, TradeKind, parse_kind
from binprice.timespec import format_timestamp

if TYPE_CHECKING:
    from rich.table import Table

    from binprice.db.aggtrades import AggAt, AggTrade
    from binprice.db.candles import Candle
    from binprice.db.queries import At, Latest, Range

__all__ = [
    "at_notes",
    "format_ago",
    "records",
    "table_cells",
    "to_csv",
    "to_json",
    "to_table",
    "to_text",
]

if TYPE_CHECKING:
    Result = Latest | At | Range | Candle | AggTrade | AggAt
Value = str | int

#: Keys named after Binance whose attribute is named otherwise.
_ATTRIBUTES = {"agg_trade_id": "agg_id", "transact_time": "time"}
#: The results shown with an "ago" column, and their time attribute.
_MOMENTS = {"Latest": "timestamp", "AggTrade": "time"}

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
    "AggTrade": AGG_FIELD_NAMES,
    "AggAt": (*AGG_FIELD_NAMES, "requested", "offset_ms"),
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
    {"symbol", "timestamp", "requested", "start", "end", "high_at", "low_at", "transact_time"}
    | {"open_time", "close_time"}  # candles
)
_AGO_UNITS = (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1))
#: How far the nearest trade may be from `at --ts` before the answer says so: a quiet symbol
#: can go minutes without a trade, but an hour away means the stored trades do not cover TS.
AT_FAR = timedelta(hours=1)


def records(results: Sequence[Result]) -> list[dict[str, Value]]:
    """One ordered dict of JSON-ready values per result."""
    return [
        {
            key: _value(getattr(result, _ATTRIBUTES.get(key, key)))
            for key in FIELDS[type(result).__name__]
        }
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
    moment_of = _MOMENTS.get(type(results[0]).__name__)
    show_ago = moment_of is not None
    cells = []
    for result, row in zip(results, rows, strict=True):
        line = [str(row[key]) for key in header]
        if moment_of is not None:
            moment: datetime = getattr(result, moment_of)
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
    if type(results[0]).__name__ == "Candle":
        candles = candles_text(results, width=console.width)  # type: ignore[arg-type]
        if candles is not None:
            console.print(candles, end="", markup=False, highlight=False)
            return
    header, cells = table_cells(results, now=now)
    # Rich's table (no box) pads each cell with a space on either side; it would shrink the
    # columns to fit, cutting values, so the natural width decides.
    natural = sum(max(len(line[i]) for line in [header, *cells]) + 2 for i in range(len(header)))
    if natural <= console.width:
        console.print(to_table(results, now=now))
    else:
        console.print(to_blocks(results, now=now), end="", markup=False, highlight=False)


#: The candle columns a terminal shows, most important last to go: time, OHLC, trades, volume
#: (close time, quote volume and VWAP are in --json, --csv and a pipe's table).
CANDLE_COLUMNS = ("open (UTC)", "open", "high", "low", "close", "trades", "volume")


def candles_text(candles: Sequence[Candle], *, width: int) -> str | None:
    """Candles for a terminal: per symbol a title line and one line per candle (prices with
    as many decimals as the column needs), as many columns of `CANDLE_COLUMNS` as fit
    `width`; None if even time and OHLC do not fit."""
    from binprice.cli.views.text import aligned

    by_symbol: dict[str, list[Candle]] = {}
    for candle in candles:
        by_symbol.setdefault(candle.symbol, []).append(candle)
    daily = all(c.open_time.astimezone(UTC).time() == time.min for c in candles)
    when = "%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"
    for keep in range(len(CANDLE_COLUMNS), 4, -1):
        blocks = []
        for symbol, rows in by_symbol.items():
            # One number of decimals for the four prices: they share the symbol's tick size.
            prices = _decimals([p for c in rows for p in (c.open, c.high, c.low, c.close)])
            columns = [
                [c.open_time.astimezone(UTC).strftime(when) for c in rows],
                *(prices[k::4] for k in range(4)),
                [f"{c.trades:,}" for c in rows],
                _decimals([c.volume for c in rows]),
            ]
            table = [list(CANDLE_COLUMNS[:keep])] + [
                list(r) for r in zip(*columns[:keep], strict=True)
            ]
            blocks.append(f"{symbol}\n" + aligned(table, right=range(1, keep)))
        text = "\n".join(blocks)
        if max(len(line) for line in text.splitlines()) <= width:
            return text
    return None


def _decimals(values: Sequence[Decimal]) -> list[str]:
    """Exact decimals with the fewest places that show every value of the column exactly."""
    places = max(max(0, -int(v.normalize().as_tuple().exponent)) for v in values)
    return [f"{v:.{places}f}" for v in values]


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


def at_notes(
    found: Sequence[At] | Sequence[AggAt], requested: datetime, *, now: datetime
) -> list[str]:
    """What `at` says beside its answer when the answer is far from TS: a TS in the future
    (the nearest trades are then the last ones stored), or, per symbol, a nearest trade more
    than `AT_FAR` away (nothing stored closer). Each note fits 80 columns."""
    from binprice.timespec import format_duration

    when = format_timestamp(requested)
    if requested > now:
        return [f"note: {when} is in the future: showing the last trades stored"]
    notes = []
    for result in found:
        offset = timedelta(milliseconds=result.offset_ms)
        if abs(offset) > AT_FAR:
            side = "before" if offset < timedelta(0) else "after"
            notes.append(
                f"note: {result.symbol}'s nearest trade is {format_duration(abs(offset))} {side} "
                f"{when}"
            )
    return notes


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


# --- naming a `--kind`'s records (the queries' and the other commands' messages) ----------


def record_of(kind: str) -> str:
    """One record of `kind`: "trade" or "aggregate trade"."""
    return parse_kind(kind).label


def records_of(kind: str) -> str:
    """The records of `kind`: "trades" or "aggregate trades"."""
    return f"{record_of(kind)}s"


def recorded_by(kind: str) -> str:
    """The commands that store records of `kind`."""
    if parse_kind(kind) is TradeKind.AGG_TRADES:
        return "`binprice ingest --stream aggTrade` or `binprice import --kind aggTrades`"
    return "`binprice ingest`"
