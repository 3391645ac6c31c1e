"""Fetching missing trade ids from REST `historicalTrades`, page by page.

One walk serves both the running ingest (which hands what it fetches to the writer, and whose
missing ids can also arrive late on the stream meanwhile) and `binprice gaps --repair` (which
writes straight to the table). The walk pages through `historicalTrades?fromId=` (1000 per
page, weight 25) from the first id still missing, so whatever the consumer already has is
skipped. If the exchange has no trade for an id (its first row is past `fromId`), those ids are
a confirmed hole: reported, not looped on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from binprice.binance import Trade
from binprice.ingest.gapset import GapSet
from binprice.ingest.rest import RestClient

#: Attempts per page before the walk gives up (the caller retries the gap later).
PAGE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Page:
    """One answer of the walk: trades inside the range, and ids the exchange does not have."""

    symbol: str
    trades: list[Trade]
    holes: list[tuple[int, int]]


async def fetch_missing(
    rest: RestClient, symbol: str, missing: GapSet, first: int, last: int
) -> AsyncIterator[Page]:
    """Pages covering the ids of `first..last` that are in `missing`.

    The consumer must take each page's trades and holes out of `missing` (claim and remove)
    before asking for the next page: that is how the walk moves on. Raises ExchangeError when
    a page cannot be had after PAGE_ATTEMPTS.
    """
    while True:
        todo = missing.within(first, last)
        if not todo:
            return
        from_id = todo[0][0]
        page = await rest.historical_trades(symbol, from_id, PAGE_ATTEMPTS)
        holes: list[tuple[int, int]] = []
        if not page or page[0].trade_id > from_id:
            end = last if not page else min(last, page[0].trade_id - 1)
            holes = missing.within(from_id, end)
        yield Page(symbol, [t for t in page if first <= t.trade_id <= last], holes)
        if not page or page[-1].trade_id >= last:
            return
