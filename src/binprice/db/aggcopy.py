"""COPY encoding of aggregate trades (`ingest --stream aggTrade`), and the SQL around it.

The aggregate side of `db.copy`: one pass over the aggregates builds the COPY rows of
`agg_trades` (migration 0013) and the same per-batch bookkeeping a trade batch carries (counts,
newest aggregate per symbol, times), so the buffer, the spool, the sink and the recorder take
an aggregate batch as they take a trade batch. Every row starts with its market (the table is
new: there is no spot layout from before markets to keep). The staging fallback is `INSERT …
ON CONFLICT DO NOTHING` on the primary key `(market, symbol, agg_id)`.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

from binprice.db.copy import Batch, CopyEncoder
from binprice.exchange.protocol import SeriesRecord, WireAggTrade
from binprice.markets import DEFAULT_MARKET, Market

AGG_COLUMNS = (
    "market, symbol, agg_id, price, quantity, first_trade_id, last_trade_id, timestamp, "
    "is_buyer_maker"
)
COPY_AGG_TRADES = f"COPY agg_trades ({AGG_COLUMNS}) FROM STDIN"
AGG_STAGE_TABLE = "binprice_agg_trades_stage"
CREATE_AGG_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {AGG_STAGE_TABLE} "
    "(LIKE agg_trades INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
COPY_AGG_STAGE = f"COPY {AGG_STAGE_TABLE} ({AGG_COLUMNS}) FROM STDIN"
INSERT_AGG_FROM_STAGE = (
    f"INSERT INTO agg_trades ({AGG_COLUMNS}) SELECT {AGG_COLUMNS} FROM {AGG_STAGE_TABLE} "
    "ON CONFLICT (market, symbol, agg_id) DO NOTHING RETURNING symbol"
)
#: Per symbol, how many of the given keys are rows that transaction `xmin` inserted.
AGG_ROWS_OF_XID = (
    "SELECT a.symbol, count(*) FROM agg_trades AS a "
    "JOIN unnest(%s::text[], %s::bigint[]) AS k(symbol, agg_id) "
    "ON a.market = %s AND a.symbol = k.symbol AND a.agg_id = k.agg_id "
    "WHERE a.xmin::text::bigint = %s GROUP BY a.symbol"
)
#: Per symbol, the highest stored aggregate id of one market and its time (epoch ms).
LAST_AGG_TRADES_SQL = (
    "SELECT s, a.agg_id, (extract(epoch FROM a.timestamp) * 1000)::bigint "
    "FROM unnest(%s::text[]) AS s CROSS JOIN LATERAL (SELECT agg_id, timestamp "
    "FROM agg_trades WHERE market = %s AND symbol = s ORDER BY agg_id DESC LIMIT 1) AS a"
)


@dataclass(slots=True)
class AggBatch(Batch):
    """A batch of aggregate trades: the COPY rows of `agg_trades` and the same bookkeeping as
    a trade batch (`latest` holds the newest aggregate id per symbol)."""

    def decoded(self) -> list[SeriesRecord]:
        """The aggregates, decoded back from the COPY text if they went through the spool."""
        if self.trades is not None:
            return list(self.trades)
        out: list[SeriesRecord] = []
        for line in self.payload.decode().splitlines():
            _, symbol, agg, price, qty, first, last, stamp, maker = line.split("\t")
            moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f+00").replace(tzinfo=UTC)
            ms = int(moment.timestamp() * 1000 + 0.5)
            out.append(
                WireAggTrade(
                    symbol,
                    int(agg),
                    Decimal(price),
                    Decimal(qty),
                    int(first),
                    int(last),
                    ms,
                    maker == "t",
                )
            )
        return out


class AggCopyEncoder(CopyEncoder):
    """Encodes aggregate trades as COPY rows of `agg_trades` (`AGG_COLUMNS`) of one market."""

    __slots__ = ()

    def __init__(self, market: Market = DEFAULT_MARKET) -> None:
        super().__init__(market)
        self._lead = f"{market.number}\t"

    def batch(self, trades: Sequence[SeriesRecord]) -> AggBatch:
        """One pass over the aggregates `trades`: the COPY rows and the per-batch bookkeeping,
        grouped by symbol as `CopyEncoder.batch` does."""
        by_symbol: dict[str, list[str]] = {}
        latest: dict[str, WireAggTrade] = {}
        times = array("q")
        lead = self._lead
        # An aggregate run's records are aggregates (`encoder_of`): no per-record check.
        for a in cast("Sequence[WireAggTrade]", trades):
            symbol = a.symbol
            rows = by_symbol.get(symbol)
            if rows is None:
                if symbol not in self._safe:
                    self._check_symbol(symbol)
                rows = by_symbol[symbol] = []
            sec, milli = divmod(a.time_ms, 1000)
            stamp = self._seconds.get(sec) or self._second(sec)
            rows.append(
                f"{lead}{symbol}\t{a.agg_id}\t{a.price:f}\t{a.quantity:f}\t{a.first_trade_id}\t"
                f"{a.last_trade_id}\t{stamp}.{milli:03d}+00\t{'t' if a.is_buyer_maker else 'f'}\n"
            )
            times.append(a.time_ms)
            best = latest.get(symbol)
            if best is None or a.agg_id > best.agg_id:
                latest[symbol] = a
        return AggBatch(
            payload="".join(["".join(rows) for rows in by_symbol.values()]).encode(),
            counts={symbol: len(rows) for symbol, rows in by_symbol.items()},
            latest={s: (a.agg_id, f"{a.price:f}", a.time_ms) for s, a in latest.items()},
            times=times,
            trades=trades,
        )


__all__ = [
    "AGG_COLUMNS",
    "AGG_ROWS_OF_XID",
    "COPY_AGG_TRADES",
    "LAST_AGG_TRADES_SQL",
    "AggBatch",
    "AggCopyEncoder",
]
