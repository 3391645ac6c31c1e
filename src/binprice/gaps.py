"""Recorded gaps and the completeness check: `binprice gaps` and `binprice gaps --verify`.

The ingestor records every range of trade ids it found missing in the `gaps` table (migration
0003) before it commits any trade beyond it, and updates the row as the range is fetched
(`filled`), found absent on the exchange (`hole`) or left out over `--backfill-max`
(`skipped`). `verify_gaps` checks that promise against the stored ids: a window-function scan
over the primary key finds every hole between consecutive stored ids, and each must lie inside a
recorded `open`, `hole` or `skipped` range. Binance Spot ids are consecutive per symbol (protocol
notes §8), so any other hole is a trade lost without a trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from binprice.queries import normalise_symbols, recorded_symbols
from binprice.timespec import format_timestamp

__all__ = [
    "ACCOUNTED_STATES",
    "GapRecord",
    "Hole",
    "SymbolCheck",
    "Verification",
    "list_gaps",
    "uncovered",
    "verify_gaps",
]

Connection = psycopg.Connection[Any]

#: States whose range may legitimately be absent from `trades`.
ACCOUNTED_STATES = ("open", "hole", "skipped")

#: Insert a gap, or move a still-open one to its new state (an open gap found to be wholly
#: absent on the exchange becomes a `hole`). Re-recording an existing range is a no-op.
UPSERT_SQL = """
INSERT INTO gaps (symbol, first_id, last_id, state) VALUES (%s, %s, %s, %s)
ON CONFLICT (symbol, first_id, last_id) DO UPDATE SET state = EXCLUDED.state
WHERE gaps.state = 'open' AND EXCLUDED.state <> 'open'
"""

#: Mark an open gap filled once every id in it is stored or inside a recorded hole/skip. Counting
#: in the database (not in memory) makes `filled` mean "committed", whatever crashed before.
SETTLE_SQL = """
UPDATE gaps AS g SET state = 'filled', filled_at = now()
WHERE g.symbol = %(symbol)s AND g.first_id = %(first)s AND g.last_id = %(last)s
  AND g.state = 'open'
  AND (SELECT count(*) FROM trades AS t
       WHERE t.symbol = g.symbol AND t.trade_id BETWEEN g.first_id AND g.last_id)
    + (SELECT coalesce(sum(least(h.last_id, g.last_id) - greatest(h.first_id, g.first_id) + 1), 0)
       FROM gaps AS h
       WHERE h.symbol = g.symbol AND h.state IN ('hole', 'skipped')
         AND h.first_id <= g.last_id AND h.last_id >= g.first_id
         AND (h.first_id, h.last_id) <> (g.first_id, g.last_id))
    = g.last_id - g.first_id + 1
RETURNING g.symbol
"""

OPEN_GAPS_SQL = """
SELECT symbol, first_id, last_id FROM gaps
WHERE state = 'open' AND symbol = ANY(%s)
ORDER BY symbol, first_id
"""

#: Ids of `first..last` that are neither stored nor in a recorded hole/skip, as ranges: the
#: stored ids plus two sentinels, consecutive pairs compared with lag() over the primary key.
MISSING_IN_RANGE_SQL = """
SELECT prev + 1, trade_id - 1 FROM (
    SELECT trade_id, lag(trade_id) OVER (ORDER BY trade_id) AS prev FROM (
        SELECT trade_id FROM trades
        WHERE symbol = %(symbol)s AND trade_id BETWEEN %(first)s AND %(last)s
        UNION ALL SELECT %(first)s - 1
        UNION ALL SELECT %(last)s + 1
    ) AS ids
) AS pairs
WHERE trade_id > prev + 1
ORDER BY 1
"""

LIST_SQL = """
SELECT symbol, first_id, last_id, state, detected_at, filled_at FROM gaps
WHERE %(all)s OR symbol = ANY(%(symbols)s)
ORDER BY symbol, first_id, last_id
"""

GAP_SYMBOLS_SQL = "SELECT DISTINCT symbol FROM gaps ORDER BY symbol"

_WINDOW = "AND timestamp >= %(start)s AND timestamp < %(end)s"
#: Holes and repeats between consecutive stored ids, per symbol, in id order.
_SCAN_SQL = """
SELECT symbol, prev, trade_id FROM (
    SELECT symbol, trade_id,
           lag(trade_id) OVER (PARTITION BY symbol ORDER BY trade_id) AS prev
    FROM trades WHERE symbol = ANY(%(symbols)s) {window}
) AS pairs
WHERE trade_id <> prev + 1
ORDER BY symbol, trade_id
"""
_EXTENT_SQL = """
SELECT symbol, count(*), min(trade_id), max(trade_id) FROM trades
WHERE symbol = ANY(%(symbols)s) {window}
GROUP BY symbol
"""


@dataclass(frozen=True, slots=True)
class GapRecord:
    """One row of the `gaps` table."""

    symbol: str
    first_id: int
    last_id: int
    state: str
    detected_at: datetime
    filled_at: datetime | None

    @property
    def size(self) -> int:
        return self.last_id - self.first_id + 1


@dataclass(frozen=True, slots=True)
class Hole:
    """Ids `first_id..last_id` of `symbol` missing between two stored trades."""

    symbol: str
    first_id: int
    last_id: int
    #: The parts of the hole no open/hole/skipped gap accounts for.
    unaccounted: tuple[tuple[int, int], ...]

    @property
    def size(self) -> int:
        return self.last_id - self.first_id + 1

    @property
    def accounted(self) -> bool:
        return not self.unaccounted


@dataclass(frozen=True, slots=True)
class SymbolCheck:
    """What `verify_gaps` found for one symbol in the window."""

    symbol: str
    trades: int
    first_id: int | None
    last_id: int | None
    holes: tuple[Hole, ...]
    duplicates: int
    open_gaps: int

    @property
    def missing(self) -> int:
        return sum(h.size for h in self.holes)

    @property
    def unaccounted(self) -> int:
        return sum(b - a + 1 for h in self.holes for a, b in h.unaccounted)


@dataclass(frozen=True, slots=True)
class Verification:
    """The completeness check over a window (None = all stored trades)."""

    start: datetime | None
    end: datetime | None
    symbols: tuple[SymbolCheck, ...]

    @property
    def ok(self) -> bool:
        """No unaccounted hole and no repeated id."""
        return all(s.unaccounted == 0 and s.duplicates == 0 for s in self.symbols)


def list_gaps(conn: Connection, symbols: Iterable[str] = ()) -> list[GapRecord]:
    """Recorded gaps of `symbols` (all symbols if none), by symbol and first id."""
    wanted = normalise_symbols(symbols)
    rows = conn.execute(LIST_SQL, {"all": not wanted, "symbols": wanted}).fetchall()
    return [
        GapRecord(s, a, b, state, detected.astimezone(UTC), filled and filled.astimezone(UTC))
        for s, a, b, state, detected, filled in rows
    ]


def verify_gaps(
    conn: Connection,
    symbols: Iterable[str] = (),
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Verification:
    """Scan the stored ids of `symbols` (default: every symbol with trades or gaps) for holes
    and repeats, over trades with `start <= timestamp < end` (default: all), and match each
    hole against the recorded gaps."""
    wanted = normalise_symbols(symbols)
    if not wanted:
        known = set(recorded_symbols(conn))
        known.update(row[0] for row in conn.execute(GAP_SYMBOLS_SQL).fetchall())
        wanted = sorted(known)
    windowed = start is not None or end is not None
    params: dict[str, Any] = {
        "symbols": wanted,
        "start": start or datetime.min.replace(tzinfo=UTC),
        "end": end or datetime.max.replace(tzinfo=UTC),
    }
    window = _WINDOW if windowed else ""
    extents = {row[0]: row[1:] for row in conn.execute(_EXTENT_SQL.format(window=window), params)}
    pairs: dict[str, list[tuple[int, int]]] = {}
    for symbol, prev, tid in conn.execute(_SCAN_SQL.format(window=window), params):
        pairs.setdefault(symbol, []).append((prev, tid))
    accounted: dict[str, list[tuple[int, int]]] = {}
    open_count: dict[str, int] = {}
    for gap in list_gaps(conn, wanted):
        if gap.state in ACCOUNTED_STATES:
            accounted.setdefault(gap.symbol, []).append((gap.first_id, gap.last_id))
        if gap.state == "open":
            open_count[gap.symbol] = open_count.get(gap.symbol, 0) + 1
    checks = []
    for symbol in wanted:
        count, first, last = extents.get(symbol, (0, None, None))
        holes = []
        duplicates = 0
        for prev, tid in pairs.get(symbol, []):
            if tid <= prev:
                duplicates += 1
                continue
            a, b = prev + 1, tid - 1
            holes.append(Hole(symbol, a, b, uncovered(a, b, accounted.get(symbol, []))))
        checks.append(
            SymbolCheck(
                symbol, count, first, last, tuple(holes), duplicates, open_count.get(symbol, 0)
            )
        )
    return Verification(start, end, tuple(checks))


def uncovered(
    first: int, last: int, ranges: Sequence[tuple[int, int]]
) -> tuple[tuple[int, int], ...]:
    """The parts of `first..last` outside every range in `ranges` (inclusive bounds)."""
    out: list[tuple[int, int]] = []
    cursor = first
    for a, b in sorted(ranges):
        if b < cursor:
            continue
        if a > last:
            break
        if a > cursor:
            out.append((cursor, a - 1))
        cursor = max(cursor, b + 1)
        if cursor > last:
            break
    if cursor <= last:
        out.append((cursor, last))
    return tuple(out)


# --- output (pure) --------------------------------------------------------------------------


def gaps_json(gaps: Sequence[GapRecord]) -> str:
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


def gaps_text(gaps: Sequence[GapRecord]) -> str:
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
                    "duplicates": s.duplicates,
                    "open_gaps": s.open_gaps,
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
        verdict = "ok" if s.unaccounted == 0 and s.duplicates == 0 else "NOT OK"
        lines.append(
            f"{s.symbol}: {verdict}: {s.trades:,} trades, {span}, {len(s.holes)} holes "
            f"({s.missing:,} ids, {s.unaccounted:,} unaccounted), {s.duplicates} duplicates, "
            f"{s.open_gaps} open gaps"
        )
        for h in s.holes:
            for a, b in h.unaccounted:
                lines.append(f"  unaccounted: {s.symbol} {a}..{b} ({b - a + 1:,} ids)")
    return "".join(line + "\n" for line in lines)
