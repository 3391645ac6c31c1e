"""Recorded gaps and the completeness check: `binprice gaps` and `binprice gaps --verify`.

The ingestor records every range of trade ids it found missing in the `gaps` table (migration
0003) before it commits any trade beyond it, and updates the row as the range is fetched
(`filled`), found absent on the exchange (`hole`) or left out over `--backfill-max`
(`skipped`). `verify_gaps` checks that promise against the stored ids: the per-minute rollup's
first/last ids (migration 0005) point at every minute that misses ids or leaves a hole before
the next one, only those id ranges are read from `trades`, and each hole must lie inside a
recorded `open`, `hole` or `skipped` range; and no id may be stored twice (`db.duplicates`).
Asked with the exchange's newest ids, it also checks the tail past the last stored trade, which
no scan of stored ids can see. Binance Spot ids are consecutive per symbol (protocol notes §8),
so any other hole is a trade lost without a trace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import psycopg

from binprice.db.aggtrades import AGG_SYMBOLS_SQL
from binprice.db.blockreads import compressed_catalog, trade_ids, window_blocks
from binprice.db.duplicates import Duplicates, find_duplicates
from binprice.db.partitions import pruned_before
from binprice.db.queries import latest_prices, recorded_symbols
from binprice.kinds import DEFAULT_KIND, TradeKind
from binprice.markets import DEFAULT_MARKET, Market
from binprice.symbols import normalize_symbols

__all__ = [
    "ACCOUNTED_STATES",
    "Gap",
    "Hole",
    "SymbolCheck",
    "Verification",
    "checkpoint_starts",
    "gap_symbols",
    "hole_rows",
    "last_stored_ids",
    "list_gaps",
    "record_gaps",
    "set_checkpoints",
    "uncovered",
    "verify_gaps",
]

Connection = psycopg.Connection[Any]

#: States whose range may legitimately be absent from `trades`.
ACCOUNTED_STATES = ("open", "hole", "skipped")

#: Insert a gap, or move a still-open one to its new state (an open gap found to be wholly
#: absent on the exchange becomes a `hole`). Re-recording an existing range is a no-op.
UPSERT_SQL = """
INSERT INTO gaps (market, kind, symbol, first_id, last_id, state)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (market, kind, symbol, first_id, last_id) DO UPDATE SET state = EXCLUDED.state
WHERE gaps.state = 'open' AND EXCLUDED.state <> 'open'
"""

#: Mark an open gap filled once every id in it is stored or inside a recorded hole/skip. Counting
#: in the database (not in memory) makes `filled` mean "committed", whatever crashed before.
SETTLE_SQL = """
UPDATE gaps AS g SET state = 'filled', filled_at = now()
WHERE g.market = %(market)s AND g.kind = %(kind)s AND g.symbol = %(symbol)s
  AND g.first_id = %(first)s
  AND g.last_id = %(last)s AND g.state = 'open'
  AND (SELECT count(*) FROM trades AS t
       WHERE t.market = g.market AND t.symbol = g.symbol
         AND t.trade_id BETWEEN g.first_id AND g.last_id)
    + (SELECT coalesce(sum(least(h.last_id, g.last_id) - greatest(h.first_id, g.first_id) + 1), 0)
       FROM gaps AS h
       WHERE h.market = g.market AND h.kind = g.kind AND h.symbol = g.symbol
         AND h.state IN ('hole', 'skipped')
         AND h.first_id <= g.last_id AND h.last_id >= g.first_id
         AND (h.first_id, h.last_id) <> (g.first_id, g.last_id))
    = g.last_id - g.first_id + 1
RETURNING g.symbol
"""

#: A recorded hole goes back to `open`: the exchange was asked again and has trades inside
#: it (or a repair re-asks it). The walk then records what is truly absent as holes again.
REOPEN_HOLE_SQL = """
UPDATE gaps SET state = 'open', filled_at = NULL
WHERE market = %s AND kind = %s AND symbol = %s AND first_id = %s AND last_id = %s
  AND state = 'hole'
"""

#: The state of the row for exactly one range.
STATE_SQL = (
    "SELECT state FROM gaps "
    "WHERE market = %s AND kind = %s AND symbol = %s AND first_id = %s AND last_id = %s"
)

#: Ranges known to be absent on the exchange (holes and skipped ranges).
ABSENT_SQL = """
SELECT symbol, first_id, last_id FROM gaps
WHERE market = %s AND kind = %s AND state IN ('hole', 'skipped') AND symbol = ANY(%s)
"""

HOLES_SQL = """
SELECT symbol, first_id, last_id FROM gaps
WHERE market = %s AND kind = %s AND state = 'hole' AND symbol = ANY(%s)
ORDER BY symbol, first_id
"""

OPEN_GAPS_SQL = """
SELECT symbol, first_id, last_id FROM gaps
WHERE market = %s AND kind = %s AND state = 'open' AND symbol = ANY(%s)
ORDER BY symbol, first_id
"""


def _missing_in_range(also: str = "") -> str:
    """Ids of `first..last` that are neither stored nor in a recorded hole/skip, as ranges: the
    stored ids (rows, and `also`'s) plus two sentinels, consecutive pairs compared with lag()."""
    return f"""
SELECT prev + 1, trade_id - 1 FROM (
    SELECT trade_id, lag(trade_id) OVER (ORDER BY trade_id) AS prev FROM (
        SELECT trade_id FROM trades
        WHERE market = %(market)s AND symbol = %(symbol)s
          AND trade_id BETWEEN %(first)s AND %(last)s
        {also}
        UNION ALL SELECT %(first)s - 1
        UNION ALL SELECT %(last)s + 1
    ) AS ids
) AS pairs
WHERE trade_id > prev + 1
ORDER BY 1
"""


#: The row ids' version (over the primary key).
MISSING_IN_RANGE_SQL = _missing_in_range()

# The same four questions where months are compressed: ids stored in rows or in blocks. Blocks
# have no index by id, but ids grow with time, so the block holding an id is the one starting
# last among those whose first id is at or below it (an index-only walk of the key).
_BLOCKS = "trade_blocks AS b WHERE b.market = %(market)s AND b.symbol = %(symbol)s"
#: The newest block whose first id is at or below `id` (the block that would hold `id`).
_HOLDING = """(SELECT {columns} FROM trade_blocks AS c
      WHERE c.market = %(market)s AND c.symbol = %(symbol)s AND c.first_id <= {id}
      ORDER BY c.first_ts DESC, c.first_id DESC LIMIT 1)"""
#: A block's ids within `lo..hi` (a series when consecutive, else its offsets).
_IDS_OF_B = """CROSS JOIN LATERAL (
    SELECT generate_series(greatest(b.first_id, {lo}), least(b.last_id, {hi})) WHERE b.ids IS NULL
    UNION ALL
    SELECT b.first_id + o FROM unnest(b.ids) AS o WHERE b.first_id + o BETWEEN {lo} AND {hi}
) AS x(trade_id)"""
#: The ids of `first..last` held by blocks: from the block holding `first` on, by first id.
_BLOCK_IDS = f"""
SELECT x.trade_id FROM trade_blocks AS b
{_IDS_OF_B.format(lo="%(first)s", hi="%(last)s")}
WHERE b.market = %(market)s AND b.symbol = %(symbol)s AND b.first_id <= %(last)s
  AND b.first_id >= coalesce({_HOLDING.format(columns="c.first_id", id="%(first)s")}, %(first)s)
  AND b.last_id >= %(first)s"""
MISSING_IN_RANGE_ALL_SQL = _missing_in_range(f"UNION ALL {_BLOCK_IDS}")
#: The highest id below `id`: the newest block starting below it holds it, if a block does.
PREV_STORED_ALL_SQL = f"""
SELECT greatest(
    (SELECT max(trade_id) FROM trades
     WHERE market = %(market)s AND symbol = %(symbol)s AND trade_id < %(id)s),
    (SELECT CASE WHEN b.ids IS NULL THEN least(b.last_id, %(id)s - 1)
                 ELSE (SELECT max(b.first_id + o) FROM unnest(b.ids) AS o
                       WHERE b.first_id + o < %(id)s) END
     FROM {_BLOCKS} AND b.first_id < %(id)s
     ORDER BY b.first_ts DESC, b.first_id DESC LIMIT 1))
"""
#: The lowest id above `id`: in the block that would hold `id + 1` or in the one after it
#: (or, with none starting at or below it, in the symbol's first block).
NEXT_STORED_ALL_SQL = f"""
WITH holding AS {_HOLDING.format(columns="c.first_ts, c.first_id", id="%(id)s + 1")},
candidates AS (
    (SELECT b.* FROM trade_blocks AS b, holding AS h
     WHERE b.market = %(market)s AND b.symbol = %(symbol)s
       AND (b.first_ts, b.first_id) >= (h.first_ts, h.first_id)
     ORDER BY b.first_ts, b.first_id LIMIT 2)
    UNION ALL
    (SELECT b.* FROM {_BLOCKS} AND NOT EXISTS (SELECT FROM holding)
     ORDER BY b.first_ts, b.first_id LIMIT 1)
)
SELECT least(
    (SELECT min(trade_id) FROM trades
     WHERE market = %(market)s AND symbol = %(symbol)s AND trade_id > %(id)s),
    (SELECT min(CASE WHEN b.ids IS NULL THEN
                    CASE WHEN b.last_id > %(id)s THEN greatest(b.first_id, %(id)s + 1) END
                ELSE (SELECT min(b.first_id + o) FROM unnest(b.ids) AS o
                      WHERE b.first_id + o > %(id)s) END)
     FROM candidates AS b))
"""
SETTLE_ALL_SQL = SETTLE_SQL.replace(
    """(SELECT count(*) FROM trades AS t
       WHERE t.market = g.market AND t.symbol = g.symbol
         AND t.trade_id BETWEEN g.first_id AND g.last_id)""",
    f"""(SELECT count(DISTINCT trade_id) FROM (
           SELECT trade_id FROM trades AS t
           WHERE t.market = %(market)s AND t.symbol = %(symbol)s
             AND t.trade_id BETWEEN %(first)s AND %(last)s
           UNION ALL {_BLOCK_IDS}) AS stored)""",
)
#: Whether any month is compressed (the four questions above are needed then).
ANY_COMPRESSED_SQL = "SELECT EXISTS (SELECT FROM compressed_months WHERE market = %s)"

LIST_SQL = """
SELECT symbol, first_id, last_id, state, detected_at, filled_at FROM gaps
WHERE market = %(market)s AND kind = %(kind)s AND (%(all)s OR symbol = ANY(%(symbols)s))
ORDER BY symbol, first_id, last_id
"""

GAP_SYMBOLS_SQL = "SELECT DISTINCT symbol FROM gaps WHERE market = %s AND kind = %s ORDER BY symbol"

#: A symbol's open gaps that overlap a range of ids.
OPEN_WITHIN_SQL = """
SELECT first_id, last_id FROM gaps
WHERE market = %s AND kind = %s AND symbol = %s AND state = 'open'
  AND last_id >= %s AND first_id <= %s
ORDER BY first_id
"""
#: The stored ids next to an id, below and above it (one primary-key probe each).
PREV_STORED_SQL = (
    "SELECT max(trade_id) FROM trades WHERE market = %s AND symbol = %s AND trade_id < %s"
)
NEXT_STORED_SQL = (
    "SELECT min(trade_id) FROM trades WHERE market = %s AND symbol = %s AND trade_id > %s"
)

#: Minutes of the rollup that cannot be whole, per symbol from its own start minute: a minute
#: misses ids iff `trades <> last_id - first_id + 1`, and two minutes leave a hole between
#: them iff `first_id <> previous last_id + 1` (Binance Spot ids grow by one per trade).
#: Tens of thousands of rollup rows stand for millions of trades; only flagged ranges are then
#: read from `trades`, by primary key.
SUSPECT_MINUTES_SQL = """
SELECT w.symbol, m.trades, m.first_id, m.last_id, m.prev_last
FROM unnest(%(symbols)s::text[], %(starts)s::timestamptz[]) AS w(symbol, start)
CROSS JOIN LATERAL (
    SELECT trades, first_id, last_id,
           lag(last_id) OVER (ORDER BY minute) AS prev_last
    FROM trade_minutes
    WHERE trade_minutes.market = %(market)s AND trade_minutes.symbol = w.symbol
      AND minute >= w.start AND minute < %(end)s
) AS m
WHERE m.trades <> m.last_id - m.first_id + 1 OR m.first_id <> m.prev_last + 1
"""
EXTENT_SQL = """
SELECT w.symbol, e.trades, e.first_id, e.last_id
FROM unnest(%(symbols)s::text[], %(starts)s::timestamptz[]) AS w(symbol, start)
CROSS JOIN LATERAL (
    SELECT sum(trades)::bigint AS trades, min(first_id) AS first_id, max(last_id) AS last_id
    FROM trade_minutes
    WHERE trade_minutes.market = %(market)s AND trade_minutes.symbol = w.symbol
      AND minute >= w.start AND minute < %(end)s
) AS e
WHERE e.trades IS NOT NULL
"""
#: The time of one stored trade (the newest copy, should an id be stored twice).
STORED_AT_SQL = """
SELECT max(timestamp) FROM trades WHERE market = %s AND symbol = %s AND trade_id = %s
HAVING count(*) > 0
"""
#: The highest stored id of each symbol (one primary-key probe each).
LAST_IDS_SQL = """
SELECT s, (SELECT max(trade_id) FROM trades WHERE market = %s AND symbol = s)
FROM unnest(%s::text[]) AS s
"""
#: Where a check that starts after a verified id begins: the minute of the last stored trade
#: at or below it (a primary-key probe backwards).
CHECKPOINT_START_SQL = """
SELECT c.symbol, date_trunc('minute', t.timestamp, 'UTC')
FROM checkpoints AS c
CROSS JOIN LATERAL (
    SELECT timestamp FROM trades
    WHERE trades.market = c.market AND trades.symbol = c.symbol
      AND trade_id <= c.verified_through
    ORDER BY trade_id DESC LIMIT 1
) AS t
WHERE c.market = %s AND c.kind = %s AND c.symbol = ANY(%s)
"""
SET_CHECKPOINT_SQL = """
INSERT INTO checkpoints (market, kind, symbol, verified_through) VALUES (%s, %s, %s, %s)
ON CONFLICT (market, kind, symbol) DO UPDATE
SET verified_through = greatest(checkpoints.verified_through, EXCLUDED.verified_through),
    verified_at = now()
"""


def of_aggregates(sql: str) -> str:
    """`sql`, a question of stored trade ids, asked of the aggregate trades: `agg_trades` keys
    its series as `trades` does, `(market, symbol, id)`, with `agg_id` for `trade_id`."""
    return re.sub(r"\btrades\b", "agg_trades", sql).replace("trade_id", "agg_id")


AGG_SETTLE_SQL = of_aggregates(SETTLE_SQL)
AGG_MISSING_IN_RANGE_SQL = of_aggregates(MISSING_IN_RANGE_SQL)
AGG_PREV_STORED_SQL = of_aggregates(PREV_STORED_SQL)
AGG_NEXT_STORED_SQL = of_aggregates(NEXT_STORED_SQL)
AGG_LAST_IDS_SQL = of_aggregates(LAST_IDS_SQL)
AGG_STORED_AT_SQL = of_aggregates(STORED_AT_SQL)
AGG_CHECKPOINT_START_SQL = of_aggregates(CHECKPOINT_START_SQL)
#: One symbol's stored aggregates in a window: how many, the first and the last id. There is no
#: rollup of aggregates: the window's ids are read by the time index (a tenth of the trades).
AGG_EXTENT_SQL = """
SELECT count(*), min(agg_id), max(agg_id) FROM agg_trades
WHERE market = %(market)s AND symbol = %(symbol)s
  AND timestamp >= %(start)s AND timestamp < %(end)s
"""
#: The aggregate ids missing between stored ones in a window (consecutive ids compared).
AGG_HOLES_SQL = """
SELECT prev + 1, agg_id - 1 FROM (
    SELECT agg_id, lag(agg_id) OVER (ORDER BY agg_id) AS prev FROM agg_trades
    WHERE market = %(market)s AND symbol = %(symbol)s
      AND timestamp >= %(start)s AND timestamp < %(end)s
) AS pairs
WHERE agg_id > prev + 1
ORDER BY 1
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Gap:
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
    """Ids `first_id..last_id` of `symbol` that are not stored."""

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
    #: Holes between the first and the last stored id of the window.
    holes: tuple[Hole, ...]
    open_gaps: int
    #: The exchange's newest id, when it was asked (`--against-exchange`).
    exchange_last_id: int | None = None
    #: Ids past the last stored one up to the exchange's newest.
    tail: Hole | None = None
    #: Parts of recorded holes the exchange has trades in (asked with `--against-exchange`):
    #: they account for nothing.
    disproved: tuple[tuple[int, int], ...] = ()
    #: Ids stored more than once (a conflicting copy at another time), if any.
    duplicates: Duplicates | None = None
    #: The time of the last stored trade, when there is a tail: the exchange has traded since.
    tail_since: datetime | None = None

    @property
    def duplicate_ids(self) -> int:
        return 0 if self.duplicates is None else self.duplicates.count

    @property
    def ok(self) -> bool:
        """Every id missing between stored ones accounted for, no recorded hole disproved, no
        id stored twice. The tail is not a hole: it is what the exchange traded after the last
        capture (`--repair` or the next ingest fetches it)."""
        return not self.unaccounted_in_holes and not self.disproved and not self.duplicate_ids

    @property
    def unaccounted_in_holes(self) -> int:
        """Ids missing between stored ones that no recorded gap accounts for."""
        return sum(b - a + 1 for h in self.holes for a, b in h.unaccounted)

    @property
    def behind(self) -> int:
        """Ids past the last stored one that the exchange has and no recorded gap covers."""
        return 0 if self.tail is None else sum(b - a + 1 for a, b in self.tail.unaccounted)

    def _all(self) -> tuple[Hole, ...]:
        return self.holes if self.tail is None else (*self.holes, self.tail)

    @property
    def missing(self) -> int:
        return sum(h.size for h in self._all())

    @property
    def unaccounted(self) -> int:
        return sum(b - a + 1 for h in self._all() for a, b in h.unaccounted)

    @property
    def unaccounted_ranges(self) -> list[tuple[int, int]]:
        return [r for h in self._all() for r in h.unaccounted]


@dataclass(frozen=True, slots=True)
class Verification:
    """The completeness check over a window (None = all stored trades)."""

    start: datetime | None
    end: datetime | None
    symbols: tuple[SymbolCheck, ...]
    #: Whether the exchange was asked for each symbol's newest id.
    against_exchange: bool = False
    #: Recorded holes not asked about again against the exchange: that needs the futures
    #: markets' `historicalTrades`, and its API key was not given (they still account).
    unasked_holes: int = 0

    @property
    def ok(self) -> bool:
        """No missing id that a recorded gap does not account for, no recorded hole the
        exchange has trades in, and no id stored twice."""
        return all(s.ok for s in self.symbols)


def list_gaps(
    conn: Connection,
    symbols: Iterable[str] = (),
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> list[Gap]:
    """Recorded gaps of `symbols` (all symbols if none) of `kind` in `market`, by symbol and
    first id."""
    wanted = list(normalize_symbols(symbols))
    params = {"all": not wanted, "symbols": wanted, "market": market.number, "kind": kind.number}
    rows = conn.execute(LIST_SQL, params).fetchall()
    return [
        Gap(s, a, b, state, detected.astimezone(UTC), filled and filled.astimezone(UTC))
        for s, a, b, state, detected, filled in rows
    ]


def record_gaps(
    conn: Connection,
    symbol: str,
    ranges: Iterable[tuple[int, int]],
    state: str,
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> None:
    """Record (upsert) the gaps `ranges` of `symbol` in `state`, in the caller's transaction."""
    rows = [(market.number, kind.number, symbol, a, b, state) for a, b in ranges]
    with conn.cursor() as cur:
        cur.executemany(UPSERT_SQL, rows)


def hole_rows(
    conn: Connection,
    symbols: Sequence[str],
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> list[tuple[str, int, int]]:
    """The recorded holes of `symbols`: (symbol, first id, last id)."""
    rows = conn.execute(HOLES_SQL, (market.number, kind.number, list(symbols))).fetchall()
    return [(str(sym), int(a), int(b)) for sym, a, b in rows]


def gap_symbols(
    conn: Connection,
    symbols: Iterable[str] = (),
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> list[str]:
    """`symbols` normalised, or every symbol of `market` with records of `kind` or recorded
    gaps of it."""
    wanted = list(normalize_symbols(symbols))
    if wanted:
        return wanted
    if kind is TradeKind.AGG_TRADES:
        found = conn.execute(AGG_SYMBOLS_SQL, {"market": market.number}).fetchall()
        known = {str(row[0]) for row in found}
    else:
        known = set(recorded_symbols(conn, market))
    params = (market.number, kind.number)
    known.update(row[0] for row in conn.execute(GAP_SYMBOLS_SQL, params).fetchall())
    return sorted(known)


def last_stored_ids(
    conn: Connection,
    symbols: Sequence[str],
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> dict[str, int]:
    """The highest stored id of each symbol that has trades (or aggregates, by `kind`)."""
    if kind is TradeKind.AGG_TRADES:
        rows = conn.execute(AGG_LAST_IDS_SQL, (market.number, list(symbols))).fetchall()
        return {str(s): int(m) for s, m in rows if m is not None}
    if symbols and compressed_catalog(conn, market):
        found = latest_prices(conn, list(symbols), market=market)
        return {point.symbol: point.trade_id for point in found}
    rows = conn.execute(LAST_IDS_SQL, (market.number, list(symbols))).fetchall()
    return {str(s): int(m) for s, m in rows if m is not None}


def verify_gaps(
    conn: Connection,
    symbols: Iterable[str] = (),
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    starts: dict[str, datetime] | None = None,
    exchange_last_ids: dict[str, int] | None = None,
    disproved: dict[str, list[tuple[int, int]]] | None = None,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> Verification:
    """Find every stored-id hole of `symbols` (default: every symbol with trades or gaps) in the
    UTC minutes overlapping `[start, end)` (default: all), and match each against the recorded
    gaps. `starts` gives some symbols a later start of their own (an ingest's checkpoints).

    With `exchange_last_ids` (the exchange's newest id per symbol), the ids past each symbol's
    last stored one are checked too: a tail that no recorded gap covers is unaccounted (what
    `--repair` fetches), though not a hole: the exchange traded on after the last capture.
    `disproved` (per symbol, id ranges of recorded holes where the exchange has trades) is
    taken out of what the holes account for.

    Of `kind` aggregate trades, the ids are aggregate ids, checked against the aggregate gaps
    (there is no rollup of aggregates: the window's ids are read from `agg_trades`).
    """
    wanted = gap_symbols(conn, symbols, market=market, kind=kind)
    # History `db prune` dropped is not missing: the check starts where the stored one does.
    first = max(start or _EPOCH, pruned_before(conn) or _EPOCH)
    per_symbol = [max(first, (starts or {}).get(s, first)) for s in wanted]
    params: dict[str, Any] = {
        "symbols": wanted,
        "starts": per_symbol,
        "end": end or _FAR_FUTURE,
        "market": market.number,
    }
    aggregates = kind is TradeKind.AGG_TRADES
    if aggregates:
        extents, agg_missing = _aggregate_ids(conn, wanted, per_symbol, params["end"], market)
        spans, suspects = None, {}
    else:
        extents = {row[0]: row[1:] for row in conn.execute(EXTENT_SQL, params).fetchall()}
        spans = _suspect_spans(conn, params) if compressed_catalog(conn, market) else None
        suspects = _suspects(conn, params) if spans is None else {}
    accounted: dict[str, list[tuple[int, int]]] = {}
    open_count: dict[str, int] = {}
    false = disproved or {}
    for gap in list_gaps(conn, wanted, market=market, kind=kind):
        if gap.state == "hole" and false.get(gap.symbol):
            parts = uncovered(gap.first_id, gap.last_id, false[gap.symbol])
            accounted.setdefault(gap.symbol, []).extend(parts)
        elif gap.state in ACCOUNTED_STATES:
            accounted.setdefault(gap.symbol, []).append((gap.first_id, gap.last_id))
        if gap.state == "open":
            open_count[gap.symbol] = open_count.get(gap.symbol, 0) + 1
    last_ids = (
        last_stored_ids(conn, wanted, market=market, kind=kind)
        if exchange_last_ids is not None
        else {}
    )
    # The primary key of `agg_trades` is (market, symbol, agg_id): no aggregate twice.
    twice = (
        {}
        if aggregates
        else find_duplicates(conn, wanted, per_symbol, params["end"], market=market)
    )
    checks = []
    for symbol in wanted:
        count, lo, hi = extents.get(symbol, (0, None, None))
        covered = accounted.get(symbol, [])
        missing = (
            agg_missing.get(symbol, [])
            if aggregates
            else _missing_in(conn, symbol, suspects.get(symbol, []), market)
            if spans is None
            else _missing_with_blocks(conn, symbol, spans.get(symbol, []), market)
        )
        holes = tuple(Hole(symbol, a, b, uncovered(a, b, covered)) for a, b in missing)
        tail = since = None
        newest = None if exchange_last_ids is None else exchange_last_ids.get(symbol)
        stored = last_ids.get(symbol)
        if newest is not None and stored is not None and newest > stored:
            tail = Hole(symbol, stored + 1, newest, uncovered(stored + 1, newest, covered))
            since = _stored_at(conn, symbol, stored, market, kind)
        opened = open_count.get(symbol, 0)
        wrong = tuple(false.get(symbol, ()))
        checks.append(
            SymbolCheck(
                symbol,
                count or 0,
                lo,
                hi,
                holes,
                opened,
                newest,
                tail,
                wrong,
                twice.get(symbol),
                since,
            )
        )
    return Verification(start, end, tuple(checks), exchange_last_ids is not None)


def _stored_at(
    conn: Connection, symbol: str, trade_id: int, market: Market, kind: TradeKind
) -> datetime | None:
    """When the stored trade `trade_id` of `symbol` happened (a primary-key probe)."""
    sql = AGG_STORED_AT_SQL if kind is TradeKind.AGG_TRADES else STORED_AT_SQL
    row = conn.execute(sql, (market.number, symbol, trade_id)).fetchone()
    return None if row is None else row[0].astimezone(UTC)


def _aggregate_ids(
    conn: Connection, symbols: list[str], starts: list[datetime], end: datetime, market: Market
) -> tuple[dict[str, tuple[int, int, int]], dict[str, list[tuple[int, int]]]]:
    """Per symbol with aggregates in its window: (count, first id, last id), and the aggregate
    ids missing between its stored ones."""
    extents: dict[str, tuple[int, int, int]] = {}
    missing: dict[str, list[tuple[int, int]]] = {}
    for symbol, start in zip(symbols, starts, strict=True):
        params = {"market": market.number, "symbol": symbol, "start": start, "end": end}
        row = conn.execute(AGG_EXTENT_SQL, params).fetchone()
        if row is None or not row[0]:
            continue
        extents[symbol] = (int(row[0]), int(row[1]), int(row[2]))
        found = conn.execute(AGG_HOLES_SQL, params).fetchall()
        missing[symbol] = [(int(a), int(b)) for a, b in found]
    return extents, missing


# --- compressed months -----------------------------------------------------------------------
# A compressed month's ids are in blocks, which have no index by id: each suspect range keeps
# the rollup minutes it came from, so its blocks are found by time.

#: SUSPECT_MINUTES_SQL with each minute and the one before it.
SUSPECT_TIMED_SQL = """
SELECT w.symbol, m.trades, m.first_id, m.last_id, m.prev_last, m.minute, m.prev_minute
FROM unnest(%(symbols)s::text[], %(starts)s::timestamptz[]) AS w(symbol, start)
CROSS JOIN LATERAL (
    SELECT trades, first_id, last_id, minute,
           lag(last_id) OVER (ORDER BY minute) AS prev_last,
           lag(minute) OVER (ORDER BY minute) AS prev_minute
    FROM trade_minutes
    WHERE trade_minutes.market = %(market)s AND trade_minutes.symbol = w.symbol
      AND minute >= w.start AND minute < %(end)s
) AS m
WHERE m.trades <> m.last_id - m.first_id + 1 OR m.first_id <> m.prev_last + 1
"""
#: The stored row ids of a range (the primary key).
ROW_IDS_SQL = (
    "SELECT trade_id FROM trades WHERE market = %s AND symbol = %s AND trade_id BETWEEN %s AND %s"
)
_MINUTE = timedelta(minutes=1)
#: A suspect id range and the time its trades lie in.
Span = tuple[int, int, datetime, datetime]


def _suspect_spans(conn: Connection, params: dict[str, Any]) -> dict[str, list[Span]]:
    """As SUSPECT_MINUTES_SQL's ranges, each with the minutes its ids were stored in."""
    spans: dict[str, list[Span]] = {}
    for row in conn.execute(SUSPECT_TIMED_SQL, params).fetchall():
        symbol, trades, lo, hi, prev, minute, prev_minute = row
        ranges = spans.setdefault(symbol, [])
        if trades != hi - lo + 1:
            ranges.append((lo, hi, minute, minute + _MINUTE))
        if prev is not None and lo != prev + 1:
            ranges.append((min(prev, lo), max(prev, lo), prev_minute, minute + _MINUTE))
    return spans


def _missing_with_blocks(
    conn: Connection, symbol: str, spans: list[Span], market: Market
) -> list[tuple[int, int]]:
    """The ids of the suspect ranges that neither a row nor a block holds."""
    merged: list[Span] = []
    for a, b, since, until in sorted(spans):
        if merged and a <= merged[-1][1] + 1:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], b), min(last[2], since), max(last[3], until))
        else:
            merged.append((a, b, since, until))
    out: list[tuple[int, int]] = []
    for a, b, since, until in merged:
        ids = {int(row[0]) for row in conn.execute(ROW_IDS_SQL, (market.number, symbol, a, b))}
        with conn.transaction():
            for block in window_blocks(conn, symbol, since, until, market):
                ids.update(i for i in trade_ids(block) if a <= i <= b)
        stored = sorted({a - 1, b + 1, *ids})
        out.extend((x + 1, y - 1) for x, y in pairwise(stored) if y > x + 1)
    return out


def _suspects(conn: Connection, params: dict[str, Any]) -> dict[str, list[tuple[int, int]]]:
    """Per symbol, the id ranges the rollup says may miss ids (see SUSPECT_MINUTES_SQL)."""
    suspects: dict[str, list[tuple[int, int]]] = {}
    for symbol, trades, lo, hi, prev in conn.execute(SUSPECT_MINUTES_SQL, params).fetchall():
        ranges = suspects.setdefault(symbol, [])
        if trades != hi - lo + 1:
            ranges.append((lo, hi))
        if prev is not None and lo != prev + 1:
            ranges.append((min(prev, lo), max(prev, lo)))
    return suspects


def _missing_in(
    conn: Connection, symbol: str, ranges: list[tuple[int, int]], market: Market
) -> list[tuple[int, int]]:
    """The ids not stored inside the suspect id ranges (both ends of each are stored ids)."""
    out: list[tuple[int, int]] = []
    for a, b in _merge(ranges):
        params = {"symbol": symbol, "first": a, "last": b, "market": market.number}
        out.extend((int(x), int(y)) for x, y in conn.execute(MISSING_IN_RANGE_SQL, params))
    return out


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def checkpoint_starts(
    conn: Connection,
    symbols: Sequence[str],
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> dict[str, datetime]:
    """Per symbol with a checkpoint, the minute a check of what came after it starts at."""
    sql = AGG_CHECKPOINT_START_SQL if kind is TradeKind.AGG_TRADES else CHECKPOINT_START_SQL
    rows = conn.execute(sql, (market.number, kind.number, list(symbols))).fetchall()
    return {str(s): minute for s, minute in rows}


def set_checkpoints(
    conn: Connection,
    through: dict[str, int],
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> None:
    """Every id (of `kind`) up to `through[symbol]` is stored or accounted for by a recorded
    gap."""
    rows = [(market.number, kind.number, symbol, last) for symbol, last in through.items()]
    with conn.cursor() as cur:
        cur.executemany(SET_CHECKPOINT_SQL, rows)


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
