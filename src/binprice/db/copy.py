"""COPY encoding of trades: the text `COPY trades FROM STDIN` takes, and the SQL around it.

One pass over the trades builds the COPY rows and the per-batch bookkeeping the writers need
after commit (counts, newest trade per symbol, trade times). The staging-table statements are
the fallback for batches that hold a stored trade: `INSERT … ON CONFLICT DO NOTHING` on the
primary key `(market, symbol, trade_id, timestamp)` (it holds the partition key, see migration 0008;
the market, 0012, comes from the staged rows: their default is spot).

Spot's rows leave the market out (the column's default, 0, is spot), so its COPY text is what it
was before markets; a futures encoder starts each row with the market's number and its COPY
names the column (`copy_columns(market)`).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from binprice.db.liverollup import MinuteRow, roll_up
from binprice.exchange.protocol import SeriesRecord, WireTrade
from binprice.markets import DEFAULT_MARKET, Market

COLUMNS = "symbol, trade_id, price, quantity, timestamp, is_buyer_maker"
COPY_TRADES = f"COPY trades ({COLUMNS}) FROM STDIN"
STAGE_TABLE = "binprice_trades_stage"
CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} "
    "(LIKE trades INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
COPY_STAGE = f"COPY {STAGE_TABLE} ({COLUMNS}) FROM STDIN"


def copy_columns(market: Market) -> str:
    """The columns of `market`'s COPY rows: spot's leave the market to its default."""
    return COLUMNS if market is DEFAULT_MARKET else f"market, {COLUMNS}"


def copy_trades(market: Market) -> str:
    return (
        COPY_TRADES
        if market is DEFAULT_MARKET
        else f"COPY trades ({copy_columns(market)}) FROM STDIN"
    )


def copy_partition(partition: str, market: Market) -> str:
    """COPY straight into one month partition of `trades` (the live writer's, see
    `TradeWriter`): a name `trades_YYYY_MM` binprice made, never user input."""
    return f"COPY {partition} ({copy_columns(market)}) FROM STDIN"


def copy_stage(market: Market) -> str:
    return (
        COPY_STAGE
        if market is DEFAULT_MARKET
        else f"COPY {STAGE_TABLE} ({copy_columns(market)}) FROM STDIN"
    )


INSERT_FROM_STAGE = (
    f"INSERT INTO trades ({COLUMNS}, market) SELECT {COLUMNS}, market FROM {STAGE_TABLE} "
    "ON CONFLICT (market, symbol, trade_id, timestamp) DO NOTHING RETURNING symbol"
)
#: The writing transaction's id (with its epoch, so it never wraps), asked before COMMIT is sent.
CURRENT_XID = "SELECT txid_current()"
#: After a COMMIT whose answer was lost: 'committed', 'aborted', 'in progress', or NULL (too
#: old). A transaction the server never made durable before a crash is "in the future" (22023).
XID_STATUS = "SELECT txid_status(%s)"
#: Per symbol, how many of the given keys are rows that transaction `xmin` inserted.
ROWS_OF_XID = (
    "SELECT t.symbol, count(*) FROM trades AS t "
    "JOIN unnest(%s::text[], %s::bigint[]) AS k(symbol, trade_id) "
    "ON t.market = %s AND t.symbol = k.symbol AND t.trade_id = k.trade_id "
    "WHERE t.xmin::text::bigint = %s GROUP BY t.symbol"
)
#: Seconds → "YYYY-MM-DD HH:MM:SS" memo; trades arrive in time order, so it stays tiny.
_SECOND_CACHE_LIMIT = 4096
_COPY_SPECIALS = ("\t", "\n", "\r", "\\")


@dataclass(slots=True)
class Batch:
    """Trades encoded once as COPY text, plus what the accounting after commit needs.

    The same object goes to the disk spool and back, so a spooled trade is never decoded
    again: its COPY text is sent as it was written.
    """

    payload: bytes
    #: Trades per symbol in this batch.
    counts: dict[str, int]
    #: Per symbol, the trade with the highest id: (trade_id, price text, time_ms).
    latest: dict[str, tuple[int, str, int]]
    #: WireTrade times (epoch ms), for the trade-time → commit latency histogram.
    times: array[int]
    #: The decoded trades while they are still in memory (for `-v`); None after the spool.
    #: (`db.aggcopy.AggBatch` holds aggregate trades.)
    trades: Sequence[SeriesRecord] | None = None
    #: The live writer's rollup of these trades per (symbol, minute) (`liverollup.roll_up`),
    #: kept through the spool; None where the trigger rolls them up (imports, old chunks,
    #: aggregate trades).
    minutes: list[MinuteRow] | None = None

    def __len__(self) -> int:
        return len(self.times)

    def decoded(self) -> list[SeriesRecord]:
        """The trades, decoded back from the COPY text if they went through the spool."""
        if self.trades is not None:
            return list(self.trades)
        out: list[SeriesRecord] = []
        for line in self.payload.decode().splitlines():
            fields = line.split("\t")
            symbol, tid, price, qty, stamp, maker = fields[
                -6:
            ]  # a futures row starts with its market
            moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f+00").replace(tzinfo=UTC)
            ms = int(moment.timestamp() * 1000 + 0.5)
            out.append(WireTrade(symbol, int(tid), Decimal(price), Decimal(qty), ms, maker == "t"))
        return out


class CopyEncoder:
    """Encodes trades as COPY text rows of one market (`copy_columns(market)`). Pure apart from
    a memo of formatted seconds."""

    __slots__ = ("_lead", "_safe", "_seconds", "market", "rollup")

    def __init__(self, market: Market = DEFAULT_MARKET, *, rollup: bool = False) -> None:
        self._seconds: dict[int, str] = {}
        self._safe: set[str] = set()
        self.market = market
        #: Whether each batch carries its per-minute rollup: the live writer's (ingest's)
        #: batches do, so it can write them past the rollup trigger (`TradeWriter`).
        self.rollup = rollup
        #: What starts every row: nothing for spot, the market's number and a tab otherwise.
        self._lead = "" if market is DEFAULT_MARKET else f"{market.number}\t"

    def _second(self, second: int) -> str:
        text = self._seconds.get(second)
        if text is None:
            if len(self._seconds) >= _SECOND_CACHE_LIMIT:
                self._seconds.clear()
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S")
            self._seconds[second] = text
        return text

    def _check_symbol(self, symbol: str) -> None:
        # Symbols come from validated stream names, but a tab or newline here would corrupt the
        # COPY stream, so each new symbol is checked once.
        if any(c in symbol for c in _COPY_SPECIALS):
            raise ValueError(f"symbol {symbol!r} contains a COPY control character")
        self._safe.add(symbol)

    def batch(self, trades: list[WireTrade]) -> Batch:
        """One pass over `trades`: the COPY rows and the per-batch bookkeeping.

        The rows go out grouped by symbol, each symbol's in arrival order: then one symbol's
        rows take neighbouring heap slots and neighbouring places in both indexes, which packs
        the indexes tighter and costs the server less (docs/storage-design.md, "Live month").
        """
        seconds = self._seconds
        safe = self._safe
        by_symbol: dict[str, list[str]] = {}
        latest: dict[str, WireTrade] = {}
        times = array("q")
        add_time = times.append
        lead = self._lead
        for t in trades:
            symbol = t.symbol
            rows = by_symbol.get(symbol)
            if rows is None:
                if symbol not in safe:
                    self._check_symbol(symbol)
                rows = by_symbol[symbol] = []
            ms = t.time_ms
            sec, milli = divmod(ms, 1000)
            stamp = seconds.get(sec) or self._second(sec)
            rows.append(
                f"{lead}{symbol}\t{t.trade_id}\t{t.price:f}\t{t.quantity:f}\t{stamp}.{milli:03d}+00\t"
                f"{'t' if t.is_buyer_maker else 'f'}\n"
            )
            add_time(ms)
            best = latest.get(symbol)
            if best is None or t.trade_id > best.trade_id:
                latest[symbol] = t
        return Batch(
            payload="".join(["".join(rows) for rows in by_symbol.values()]).encode(),
            counts={symbol: len(rows) for symbol, rows in by_symbol.items()},
            latest={s: (t.trade_id, f"{t.price:f}", t.time_ms) for s, t in latest.items()},
            times=times,
            trades=trades,
            minutes=roll_up(trades) if self.rollup else None,
        )

    def encode(self, trades: list[WireTrade]) -> bytes:
        """`symbol \\t id \\t price \\t qty \\t timestamptz \\t bool \\n` per trade, UTF-8."""
        return self.batch(trades).payload
