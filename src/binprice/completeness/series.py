"""Where REST serves each kind's ids: trades through `historicalTrades`, aggregate trades
through `aggTrades?fromId=` (public on every market, 1000 a page, docs/futures.md).

The gap keeper, the backfill walk and the reconciler ask these two questions and nothing else
of the exchange, so one walk serves both series: a page of records from an id, and the newest
id."""

from __future__ import annotations

from collections.abc import Sequence

from binprice.exchange.protocol import SeriesRecord
from binprice.exchange.rest import RestClient
from binprice.kinds import TradeKind


async def page_from(
    rest: RestClient, kind: TradeKind, symbol: str, from_id: int, attempts: int
) -> Sequence[SeriesRecord]:
    """Up to a page of `symbol`'s records of `kind` with ids >= `from_id`, ascending."""
    if kind is TradeKind.AGG_TRADES:
        return await rest.agg_trades(symbol, from_id=from_id, attempts=attempts)
    return await rest.historical_trades(symbol, from_id, attempts)


async def newest_id(rest: RestClient, kind: TradeKind, symbol: str) -> int | None:
    """The exchange's newest id of `symbol` in the series of `kind` (None if it never traded)."""
    if kind is TradeKind.AGG_TRADES:
        return await rest.newest_agg_id(symbol)
    return await rest.newest_trade_id(symbol)
